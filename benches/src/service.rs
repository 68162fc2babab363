//! The service loop of `examples/axum_service.rs`, as a benchmark: an axum 0.8 server and
//! a hyper-util client in one 2-worker tokio runtime on 127.0.0.1, a fixed number of
//! requests at concurrency 32. The service is the example's (same routes, JSON bodies, lazy
//! regexes, a pool of 4 tracked connections each with an mpsc channel to its task, a
//! `tracing` span per request); only how each request is tagged changes between the
//! binaries (`src/bin/axum-*.rs`), and the example's planted bug and debug routes are left
//! out.
//!
//! Output: one line, `alloc=NAME workload=axum requests=N checksum=N ns=N cpu_ns=N rps=N
//! maxrss_kb=N [info...]`, where `ns` and `cpu_ns` cover the measured requests only (after
//! a warm-up of [`WARMUP`] requests that fills the connection pools and compiles the
//! regexes). `AXUM_REQUESTS` sets N (default 20,000; `0` runs start-up, warm-up and
//! shutdown only: the baseline callgrind subtracts to get instructions per request).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use leaktracker::LeakTracker;
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// Requests sent before the measured ones.
pub const WARMUP: usize = 256;
/// Client tasks sending at once.
pub const CONCURRENCY: usize = 32;
/// Pooled "database connections".
pub const CONNECTIONS: usize = 4;
/// Every wait is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How each request is tagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tagging {
    /// Not at all (the span is still created; without a subscriber it costs next to nothing).
    None,
    /// `LeakTracker::global().instrument(..., "request-N", "request")` in the middleware.
    Instrument,
    /// Only the request's span: the binary installs a subscriber (a `LeakLayer`, or a bare
    /// registry for the reference row).
    Span,
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9._+-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$").unwrap()
});
static SKU: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Z]{3}-[0-9]{4}$").unwrap());

#[derive(Deserialize)]
struct NewUser {
    name: String,
    email: String,
}

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

#[derive(Deserialize)]
struct NewOrder {
    user_id: u64,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

#[derive(Serialize, Deserialize)]
struct Quote {
    user_id: u64,
    items: usize,
    total_cents: u64,
    connection: String,
}

#[derive(Serialize)]
struct ApiError {
    error: String,
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    json(status, &ApiError { error: msg.into() })
}

enum Query {
    InsertUser {
        name: String,
        email: String,
        reply: oneshot::Sender<u64>,
    },
    GetUser {
        id: u64,
        reply: oneshot::Sender<Option<User>>,
    },
    PriceOrder {
        lines: Vec<(u32, u64)>,
        reply: oneshot::Sender<u64>,
    },
}

struct Connection {
    name: String,
    session: Vec<u8>,
    tx: mpsc::Sender<Query>,
}

struct Pool {
    conns: Vec<Connection>,
    next: AtomicUsize,
}

impl Pool {
    fn open(k: usize) -> (Pool, Vec<JoinHandle<u64>>) {
        let ids = Arc::new(AtomicU64::new(0));
        let mut conns = Vec::with_capacity(k);
        let mut tasks = Vec::with_capacity(k);
        for i in 1..=k {
            let name = format!("connection-{i}");
            let (tx, rx) = mpsc::channel(16);
            tasks.push(tokio::spawn(connection_task(rx, ids.clone())));
            let session = vec![i as u8; 4096];
            // Tracked, as in the example (a no-op error under the System allocator).
            let _ = LeakTracker::global().track(&session, name.clone(), "database");
            conns.push(Connection { name, session, tx });
        }
        let next = AtomicUsize::new(0);
        (Pool { conns, next }, tasks)
    }

    fn get(&self) -> &Connection {
        &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()]
    }
}

async fn connection_task(mut rx: mpsc::Receiver<Query>, ids: Arc<AtomicU64>) -> u64 {
    let mut served = 0;
    while let Some(q) = rx.recv().await {
        served += 1;
        match q {
            Query::InsertUser { name, email, reply } => {
                debug_assert!(!name.is_empty() && !email.is_empty());
                let _ = reply.send(ids.fetch_add(1, Ordering::Relaxed) + 1);
            }
            Query::GetUser { id, reply } => {
                let known = id >= 1 && id <= ids.load(Ordering::Relaxed);
                let _ = reply.send(known.then(|| User {
                    id,
                    name: format!("user {id}"),
                    email: format!("user{id}@example.com"),
                }));
            }
            Query::PriceOrder { lines, reply } => {
                let total = lines.iter().map(|&(q, p)| u64::from(q) * p).sum::<u64>();
                let _ = reply.send(total);
            }
        }
    }
    served
}

async fn ask<T>(
    conn: &Connection,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = || error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    conn.tx.send(make(reply)).await.map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

struct App {
    pool: Pool,
    arrived: AtomicUsize,
    tagging: Tagging,
    shutdown: Notify,
}

async fn track_request(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let n = app.arrived.fetch_add(1, Ordering::Relaxed) + 1;
    let span = tracing::info_span!(
        "request",
        name = %format_args!("request-{n}"),
        kind = "request",
        method = %req.method(),
        path = %req.uri().path(),
    );
    let work = tracing::Instrument::instrument(next.run(req), span);
    match app.tagging {
        Tagging::Instrument => {
            LeakTracker::global()
                .instrument(work, format!("request-{n}"), "request")
                .await
        }
        Tagging::Span | Tagging::None => work.await,
    }
}

async fn create_user(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let new: NewUser = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let name = new.name.trim();
    if name.is_empty() || name.len() > 64 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "name: 1 to 64 characters");
    }
    if !EMAIL.is_match(&new.email) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "email: not an address");
    }
    let (name, email) = (name.to_string(), new.email.to_ascii_lowercase());
    let (n2, e2) = (name.clone(), email.clone());
    match ask(app.pool.get(), |reply| Query::InsertUser {
        name: n2,
        email: e2,
        reply,
    })
    .await
    {
        Ok(id) => json(StatusCode::CREATED, &User { id, name, email }),
        Err(resp) => resp,
    }
}

async fn get_user(State(app): State<Arc<App>>, Path(id): Path<u64>) -> Response {
    match ask(app.pool.get(), |reply| Query::GetUser { id, reply }).await {
        Ok(Some(user)) => json(StatusCode::OK, &user),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no user {id}")),
        Err(resp) => resp,
    }
}

async fn create_order(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let order: NewOrder = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if order.items.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "items: empty");
    }
    if let Some(bad) = order.items.iter().find(|i| !SKU.is_match(&i.sku)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("sku {:?}: expected AAA-0000", bad.sku),
        );
    }
    let lines: Vec<(u32, u64)> = order.items.iter().map(|i| (i.qty, i.price_cents)).collect();
    let conn = app.pool.get();
    match ask(conn, |reply| Query::PriceOrder { lines, reply }).await {
        Ok(total_cents) => json(
            StatusCode::OK,
            &Quote {
                user_id: order.user_id,
                items: order.items.len(),
                total_cents,
                connection: conn.name.clone(),
            },
        ),
        Err(resp) => resp,
    }
}

async fn health(State(app): State<Arc<App>>) -> &'static str {
    let ok = app
        .pool
        .conns
        .iter()
        .all(|c| !c.tx.is_closed() && !c.session.is_empty());
    if ok {
        "ok"
    } else {
        "degraded"
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/users", post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/orders", post(create_order))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(app.clone(), track_request))
        .with_state(app)
}

/// Request `i`: the example's self-test rotation of routes.
fn nth_request(base: &str, i: usize) -> hyper::Request<Full<Bytes>> {
    let post = |path: &str, body: String| {
        hyper::Request::post(format!("{base}{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let get = |path: String| {
        hyper::Request::get(format!("{base}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    match i % 4 {
        0 if i % 40 == 20 => post(
            "/users",
            format!(r#"{{"name":"user {i}","email":"not an address"}}"#),
        ),
        0 => post(
            "/users",
            format!(r#"{{"name":"user {i}","email":"user{i}@example.com"}}"#),
        ),
        1 => get(format!("/users/{}", 1 + i / 8)),
        2 => {
            let items: Vec<String> = (0..1 + i % 5)
                .map(|k| {
                    format!(
                        r#"{{"sku":"ABC-{:04}","qty":{},"price_cents":{}}}"#,
                        (i + k) % 10_000,
                        1 + k,
                        100 + 7 * k
                    )
                })
                .collect();
            post(
                "/orders",
                format!(
                    r#"{{"user_id":{},"items":[{}]}}"#,
                    1 + i / 4,
                    items.join(",")
                ),
            )
        }
        _ => get("/health".to_string()),
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends requests `from..to` from [`CONCURRENCY`] tasks; returns a checksum that does not
/// depend on the order in which the server saw them (the quotes' totals, and one per
/// answer of the expected class: user lookups may find the user or not yet).
async fn load(client: &HttpClient, base: &str, from: usize, to: usize) -> u64 {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, base, next) = (client.clone(), base.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sum = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return sum;
                }
                let resp = tokio::time::timeout(TIMEOUT, client.request(nth_request(&base, i)))
                    .await
                    .expect("a response in time")
                    .expect("a response");
                let status = resp.status();
                let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
                    .await
                    .expect("a body in time")
                    .expect("a body")
                    .to_bytes();
                let expected = match i % 4 {
                    0 if i % 40 == 20 => status == StatusCode::UNPROCESSABLE_ENTITY,
                    0 => status == StatusCode::CREATED,
                    1 => status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                    _ => status == StatusCode::OK,
                };
                assert!(expected, "request {i}: status {status}");
                if i % 4 == 2 {
                    let quote: Quote = serde_json::from_slice(&body).expect("a quote");
                    sum += quote.total_cents;
                }
                sum += 1;
            }
        }));
    }
    let mut sum = 0;
    for t in tasks {
        sum += tokio::time::timeout(Duration::from_secs(600), t)
            .await
            .expect("the load finishes in time")
            .expect("a client task");
    }
    sum
}

/// What one run measured.
pub struct Measured {
    /// Measured requests.
    pub requests: usize,
    /// Order-independent checksum of the answers.
    pub checksum: u64,
    /// Wall time of the measured requests.
    pub ns: u128,
    /// CPU time (user + system, all threads) of the measured requests.
    pub cpu_ns: u128,
}

/// Starts the service, sends [`WARMUP`] then `requests` requests, shuts down cleanly
/// (client, server, pool, connection tasks, runtime).
pub fn run(tagging: Tagging, requests: usize) -> Measured {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let m = runtime.block_on(async {
        let (pool, tasks) = Pool::open(CONNECTIONS);
        let app = Arc::new(App {
            pool,
            arrived: AtomicUsize::new(0),
            tagging,
            shutdown: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let routes = router(app.clone());
        let stop = app.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, routes)
                .with_graceful_shutdown(async move { stop.shutdown.notified().await })
                .await
        });
        let base = format!("http://{addr}");
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

        let mut checksum = load(&client, &base, 0, WARMUP).await;
        let cpu_start = crate::cpu_ns();
        let start = Instant::now();
        checksum += load(&client, &base, WARMUP, WARMUP + requests).await;
        let ns = start.elapsed().as_nanos();
        let cpu_ns = crate::cpu_ns() - cpu_start;

        drop(client);
        app.shutdown.notify_one();
        tokio::time::timeout(TIMEOUT, server)
            .await
            .expect("the server stops in time")
            .expect("the server task")
            .expect("the server");
        drop(app);
        for t in tasks {
            tokio::time::timeout(TIMEOUT, t)
                .await
                .expect("the connection tasks end")
                .expect("a connection task");
        }
        Measured {
            requests,
            checksum,
            ns,
            cpu_ns,
        }
    });
    drop(runtime);
    m
}

/// Requests to measure: `AXUM_REQUESTS`, default 20,000.
pub fn requests() -> usize {
    std::env::var("AXUM_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// The `main` of every `axum-*` binary.
pub fn service_main(alloc_name: &str, tagging: Tagging, info: fn() -> String) {
    let m = run(tagging, requests());
    let rps = if m.ns == 0 {
        0.0
    } else {
        m.requests as f64 * 1e9 / m.ns as f64
    };
    let info = info();
    println!(
        "alloc={alloc_name} workload=axum requests={} checksum={} ns={} cpu_ns={} rps={rps:.0} maxrss_kb={}{}{}",
        m.requests,
        m.checksum,
        m.ns,
        m.cpu_ns,
        crate::max_rss_kb(),
        if info.is_empty() { "" } else { " " },
        info
    );
}

/// The `info` of the leaktracker rows: the record table's counters after the run (every
/// request's blocks freed: `records` is the tracked connections' 0 once the pool is gone),
/// and the stack setting in force.
pub fn lt_info() -> String {
    let s = leaktracker::stats();
    format!(
        "records={} table_bytes={} resources={} stacks={} stack_bytes={} dropped={} backtraces={:?}",
        s.records,
        s.table_bytes,
        s.resources,
        s.stacks,
        s.stack_bytes,
        s.dropped_records,
        leaktracker::backtraces()
    )
}
