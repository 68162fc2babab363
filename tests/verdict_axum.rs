//! Verdict scenario: an axum 0.8 service on 127.0.0.1 (an ephemeral port) and a hyper-util
//! client in one 2-worker tokio runtime. 1,000 POST requests with 7777-byte bodies at
//! concurrency 32; a middleware runs each request's handling under `instrument`
//! (`("request-N", "request")`, N in arrival order). The handler queries a pool of 4
//! tracked connections (`("connection-K", "database")`), each with a bounded tokio mpsc
//! channel to its own background task, and answers with a oneshot reply. The server shuts
//! down gracefully, the pool is dropped and its tasks end before `main` returns. What
//! stays is the service's process-lifetime state, first used inside requests: a lazy
//! `Regex` (and its per-thread caches) and a metrics map's keys and table.
//!
//! - `correct`: no leak, status 0, and what was judged not a leak summarised.
//! - `planted`: every 50th request keeps its body in a global cache: exactly request-50,
//!   request-100, ... request-1000, each 1 block, 7777 B.

mod common;
mod verdict_common;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use leaktracker::LeakTracker;
use regex::Regex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const REQUESTS: usize = 1000;
const CONCURRENCY: usize = 32;
const CONNECTIONS: usize = 4;
/// Each request's body: a distinctive size, so a planted one is recognised exactly.
const BODY: usize = 7777;
/// Every how many requests `planted` keeps a body.
const EVERY: usize = 50;

/// Process-lifetime state of the service, first used inside requests: a lazily compiled
/// path validator (matched on both workers, so it keeps a cache per thread) and request
/// counters per route and connection (created before the load; the requests add keys).
static ROUTE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^/[a-z]{2,16}$").unwrap());
static METRICS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// Where `planted` keeps bodies. Created empty.
static CACHE: LazyLock<Mutex<HashMap<usize, Vec<u8>>>> = LazyLock::new(Default::default);

/// A query to a pooled connection.
struct Query {
    sql: String,
    reply: oneshot::Sender<String>,
}

/// A pooled "database connection": a tracked buffer and a channel to its task.
struct Conn {
    buf: Vec<u8>,
    tx: mpsc::Sender<Query>,
}

struct Pool {
    conns: Vec<Conn>,
    next: AtomicUsize,
    planted: bool,
}

/// The request's number, set by the middleware.
#[derive(Clone, Copy)]
struct RequestNo(usize);

static ARRIVED: AtomicUsize = AtomicUsize::new(0);

/// Runs the rest of the request's handling under `instrument`.
async fn track_request(mut req: Request, next: Next) -> Response {
    let n = ARRIVED.fetch_add(1, Ordering::Relaxed) + 1;
    req.extensions_mut().insert(RequestNo(n));
    LeakTracker::global()
        .instrument(next.run(req), format!("request-{n}"), "request")
        .await
}

async fn handle(
    State(pool): State<Arc<Pool>>,
    Extension(RequestNo(n)): Extension<RequestNo>,
    uri: axum::http::Uri,
    body: Bytes,
) -> String {
    assert!(ROUTE.is_match(uri.path()), "{uri}");
    // The request's own copy of its body (the extracted `Bytes` may share hyper's buffer).
    let body = body.to_vec();
    let k = pool.next.fetch_add(1, Ordering::Relaxed) % pool.conns.len();
    let conn = &pool.conns[k];
    let (reply, answer) = oneshot::channel();
    conn.tx
        .send(Query {
            sql: format!(
                "select sum(body) from request where id = {n} -- {}",
                body.len()
            ),
            reply,
        })
        .await
        .expect("the connection task runs");
    let row = answer.await.expect("the connection answers");
    let sum: usize = body.iter().map(|b| *b as usize).sum();
    let out = format!("{n} {sum} {row} {}", conn.buf.len());
    *METRICS
        .lock()
        .unwrap()
        .entry(format!("POST {} connection-{}", uri.path(), k + 1))
        .or_insert(0) += 1;
    if pool.planted && n % EVERY == 0 {
        CACHE.lock().unwrap().insert(n, body);
    }
    out
}

/// One pooled connection's background task: answers queries until the pool is dropped.
async fn connection_task(k: usize, mut rx: mpsc::Receiver<Query>) -> usize {
    let mut served = 0;
    while let Some(q) = rx.recv().await {
        served += 1;
        let _ = q
            .reply
            .send(format!("conn-{k} row {served}: {}", q.sql.len()));
    }
    served
}

async fn serve_and_load(mode: &str) {
    let tracker = LeakTracker::global();
    LazyLock::force(&CACHE);
    LazyLock::force(&METRICS);
    let mut tasks = Vec::new();
    let mut conns = Vec::new();
    for k in 1..=CONNECTIONS {
        let (tx, rx) = mpsc::channel(8);
        tasks.push(tokio::spawn(connection_task(k, rx)));
        let buf = vec![k as u8; 512 + k];
        tracker
            .track(&buf, format!("connection-{k}"), "database")
            .unwrap();
        conns.push(Conn { buf, tx });
    }
    let pool = Arc::new(Pool {
        conns,
        next: AtomicUsize::new(0),
        planted: mode == "planted",
    });
    let app = Router::new()
        .route("/echo", post(handle))
        .layer(middleware::from_fn(track_request))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}/echo").parse().unwrap();
    let issued = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, uri, issued) = (client.clone(), uri.clone(), issued.clone());
        clients.push(tokio::spawn(async move {
            let mut ok = 0;
            while issued.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                let req = hyper::Request::post(uri.clone())
                    .body(Full::new(Bytes::from(vec![7u8; BODY])))
                    .unwrap();
                let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
                    .await
                    .expect("a response in time")
                    .expect("a response");
                assert!(resp.status().is_success(), "{}", resp.status());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert!(!body.is_empty());
                ok += 1;
            }
            ok
        }));
    }
    let mut done = 0;
    for c in clients {
        done += tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("the client finishes in time")
            .unwrap();
    }
    assert_eq!(done, REQUESTS);
    // Clean shutdown: idle client connections closed, server stopped (dropping the router
    // and with it the pool), then the pool's tasks end.
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops in time")
        .unwrap()
        .unwrap();
    let mut served = 0;
    for t in tasks {
        served += tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("the connection tasks end")
            .unwrap();
    }
    assert_eq!(served, REQUESTS);
    println!(
        "{REQUESTS} requests served, {} bodies cached",
        CACHE.lock().unwrap().len()
    );
}

fn program(mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(serve_and_load(mode));
    drop(rt);
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(90);
    all_halves(vec![
        correct_half(t, assert_correct),
        planted_half(
            "planted",
            t,
            expect_each(
                (EVERY..=REQUESTS)
                    .step_by(EVERY)
                    .map(|n| format!("request-{n}")),
                "request",
                BODY as u64,
            ),
        ),
    ]);
}
