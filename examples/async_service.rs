//! An async service with a leaking task.
//!
//! A small request handler runs on a multi-threaded tokio runtime. Every request is a task
//! wrapped with [`LeakTracker::instrument`], so everything it allocates while it is polled
//! — on whichever worker thread polls it — is tagged with the request's name. One handler
//! has a bug: `POST /upload` keeps the request body in a retry cache that nothing ever
//! empties. Once every request has completed, `live()` names the culprit.
//!
//! ```text
//! cargo run --example async_service
//! ```

use std::sync::Mutex;
use std::time::Duration;

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// The tracker for request tasks.
static REQUESTS: LeakTracker = LeakTracker::new();

/// The bug: bodies parked here "for a retry" are never taken out again.
static RETRY_CACHE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// What a handler answers.
struct Response {
    status: u16,
    body: String,
}

/// Handles one request: reads a body, does some "I/O" (a sleep), builds a response.
async fn handle(method: &'static str, path: &'static str, body_len: usize) -> Response {
    // The request body, read from the "socket".
    let body = vec![b'x'; body_len];
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Parse it (a temporary copy, freed when the task ends: no leak).
    let text = String::from_utf8_lossy(&body).into_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;

    if (method, path) == ("POST", "/upload") {
        // BUG: kept for a retry that never happens.
        RETRY_CACHE.lock().unwrap().push(body);
        return Response {
            status: 201,
            body: String::from("stored"),
        };
    }
    // The response leaves the task with its result: the caller frees it.
    Response {
        status: 200,
        body: format!("read {} bytes", text.len()),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    // The first `println!` allocates stdout's buffer for the life of the process: let it
    // happen here, outside every task, so that no request is charged for it.
    println!("async service: 6 requests on 4 worker threads");

    let requests: [(&str, &str, usize); 6] = [
        ("GET", "/", 512),
        ("GET", "/users", 2_048),
        ("POST", "/login", 1_024),
        ("POST", "/upload", 64 * 1024),
        ("GET", "/users/7", 256),
        ("DELETE", "/session", 128),
    ];

    let responses = runtime.block_on(async {
        let handles: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, &(method, path, len))| {
                let name = format!("request-{} {method} {path}", i + 1);
                tokio::spawn(REQUESTS.instrument(handle(method, path, len), name, "request"))
            })
            .collect();
        let mut responses = Vec::new();
        for h in handles {
            responses.push(h.await.expect("the handler does not panic"));
        }
        responses
    });

    for ((method, path, _), r) in requests.iter().zip(&responses) {
        println!("  {method:<6} {path:<10} -> {} {}", r.status, r.body);
    }

    // The responses were allocated by the tasks: they are theirs until the caller frees
    // them (listed now, they would look like leaks).
    drop(responses);

    // Every request has completed: whatever a request task allocated and is still live
    // has outlived it.
    let live = REQUESTS.live();
    println!();
    if live.is_empty() {
        println!("no request left anything behind");
    } else {
        println!("still live after every request completed:");
        for info in &live {
            println!("  {info}");
        }
        let names: Vec<&str> = live.iter().map(|l| l.name.as_str()).collect();
        println!(
            "{} of {} requests leaked: {}",
            live.len(),
            requests.len(),
            names.join(", ")
        );
        println!(
            "(for /upload: the 64 KiB body parked in RETRY_CACHE, and the cache's own \
             buffer, which that request allocated with its first push)"
        );
    }

    // The fix: empty the cache and free its buffer. Freed blocks leave the list by
    // themselves.
    drop(std::mem::take(&mut *RETRY_CACHE.lock().unwrap()));
    println!(
        "after emptying the retry cache: {} request(s) still hold memory",
        REQUESTS.live().len()
    );
}
