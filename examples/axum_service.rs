//! A realistic axum 0.8 service under leaktracker, with a planted leak behind a flag.
//!
//! The service: JSON in and out, validated with lazily compiled regexes (a `lazy_static!`
//! and a `once_cell` one), a pool of "database connections" — each a tracked session
//! buffer (`("connection-K", "database")`) and a tokio mpsc channel to its own background
//! task — and a middleware that runs every request under
//! [`LeakTracker::instrument`] as `("request-N", "request")`, N in arrival order, inside a
//! `tracing` span. Routes:
//!
//! | route | what it does |
//! | --- | --- |
//! | `POST /users` | `{"name", "email"}`, validated, inserted through the pool: `201` and the user |
//! | `GET /users/{id}` | the user, looked up through the pool (`404` when unknown) |
//! | `POST /orders` | `{"user_id", "items": [{"sku", "qty", "price_cents"}]}`: a priced quote |
//! | `GET /health` | `ok` |
//! | `GET /debug/leaks` | the live [`LeakReport`] as JSON (`?verdict=strict`, `?show-all`) |
//! | `GET /debug/leaks/pprof` | the same as a gzipped pprof heap profile (`go tool pprof URL`) |
//! | `GET /metrics` | Prometheus text: `leaktracker_live_resources{kind}`, `leaktracker_live_bytes{kind}`, … (with `--features metrics`; else `404`) |
//! | `POST /admin/shutdown` | a graceful shutdown (the exit report is made when `main` returns) |
//!
//! The planted bug (`--leak`, or `PLANT_LEAK=1`): a "replay sampler" keeps one request in
//! 50 — its request line and body, for replaying against a staging build — in a global
//! buffer that nothing ever drains. Each of those requests retains one block.
//!
//! ```text
//! # serve on 127.0.0.1:3000 until POST /admin/shutdown
//! cargo run --release --example axum_service
//! # start on an ephemeral port, send 2,000 requests at concurrency 32, shut down cleanly
//! LEAKTRACKER_REPORT=stderr LEAKTRACKER_EXIT_CODE=3 \
//!     cargo run --release --example axum_service -- --self-test 2000          # exit 0: no leaks
//! LEAKTRACKER_REPORT=stderr LEAKTRACKER_EXIT_CODE=3 \
//!     cargo run --release --example axum_service -- --self-test 2000 --leak   # exit 3: 40 leaks
//! ```
//!
//! Options: `--listen ADDR` (serve mode), `--self-test N`, `--concurrency C` (default 32),
//! `--connections K` (default 4), `--leak`, `--log` (a `tracing_subscriber::fmt` layer on
//! stderr, level INFO), `--tag instrument|span|none` (`span`: tag by the request's span
//! with [`LeakLayer`](leaktracker::LeakLayer) instead of `instrument`; needs the crate's
//! `tracing` feature), `--save-live FILE` (the self-test saves what it read from
//! `/debug/leaks`). The self-test also reads `/debug/leaks/pprof` and `/metrics` and checks
//! what they hold:
//!
//! ```text
//! cargo run --example axum_service --features metrics -- --self-test 300
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use leaktracker::{LeakReport, LeakTracker, TrackingAllocator, Verdict};
use once_cell::sync::Lazy;
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

lazy_static::lazy_static! {
    /// What `POST /users` accepts as an e-mail address (compiled on first use).
    static ref EMAIL: Regex =
        Regex::new(r"^[a-z0-9._+-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$").unwrap();
}

/// What `POST /orders` accepts as a stock-keeping unit (compiled on first use).
static SKU: Lazy<Regex> = Lazy::new(|| Regex::new(r"^[A-Z]{3}-[0-9]{4}$").unwrap());

/// The planted bug: one request in this many is sampled for replay.
const REPLAY_EVERY: usize = 50;
/// Requests sampled for replay. With `--leak` nothing ever takes them out.
static REPLAY: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Largest request body read by the sampler.
const MAX_BODY: usize = 64 * 1024;
/// Every wait of the self-test client is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The API's data

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

// ---------------------------------------------------------------------------------------
// The "database": a pool of connections, each a session buffer and a channel to its task

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
    /// The connection's session state (a tracked resource: it lives as long as the pool).
    session: Vec<u8>,
    tx: mpsc::Sender<Query>,
}

struct Pool {
    conns: Vec<Connection>,
    next: AtomicUsize,
}

/// Ids handed out by `InsertUser` (the "table" keeps no rows: rows kept by a real store
/// would be data retained per request, which a leak tracker rightly counts).
static USER_IDS: AtomicU64 = AtomicU64::new(0);

impl Pool {
    /// Opens `k` connections, each with its background task (spawned on the runtime).
    fn open(k: usize) -> (Pool, Vec<JoinHandle<u64>>) {
        let mut conns = Vec::with_capacity(k);
        let mut tasks = Vec::with_capacity(k);
        for i in 1..=k {
            let name = format!("connection-{i}");
            let (tx, rx) = mpsc::channel(16);
            tasks.push(tokio::spawn(connection_task(name.clone(), rx)));
            let session = vec![i as u8; 4096];
            LeakTracker::global()
                .track(&session, name.clone(), "database")
                .expect("leaktracker is the global allocator");
            conns.push(Connection { name, session, tx });
        }
        let pool = Pool {
            conns,
            next: AtomicUsize::new(0),
        };
        (pool, tasks)
    }

    fn get(&self) -> &Connection {
        &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()]
    }
}

/// A connection's background task: answers queries until the pool is dropped; returns
/// how many it served.
async fn connection_task(name: String, mut rx: mpsc::Receiver<Query>) -> u64 {
    let mut served = 0;
    while let Some(q) = rx.recv().await {
        served += 1;
        match q {
            Query::InsertUser { name, email, reply } => {
                debug_assert!(!name.is_empty() && !email.is_empty());
                let _ = reply.send(USER_IDS.fetch_add(1, Ordering::Relaxed) + 1);
            }
            Query::GetUser { id, reply } => {
                let known = id >= 1 && id <= USER_IDS.load(Ordering::Relaxed);
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
    tracing::info!(connection = %name, served, "connection closed");
    served
}

/// Sends a query built around `reply` to a connection and waits for the answer.
async fn ask<T>(
    conn: &Connection,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = || error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    conn.tx.send(make(reply)).await.map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

// ---------------------------------------------------------------------------------------
// The service

/// How requests are tagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tagging {
    /// `LeakTracker::instrument` in the middleware.
    Instrument,
    /// The request's `tracing` span, through `LeakLayer`.
    Span,
    /// Not at all.
    None,
}

struct App {
    pool: Pool,
    arrived: AtomicUsize,
    plant_leak: bool,
    tagging: Tagging,
    shutdown: Notify,
}

/// The request's number, set by the middleware.
#[derive(Clone, Copy)]
struct RequestNo(usize);

/// Numbers the request and runs the rest of its handling tagged as `request-N`.
async fn track_request(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let n = app.arrived.fetch_add(1, Ordering::Relaxed) + 1;
    let span = tracing::info_span!(
        "request",
        name = %format_args!("request-{n}"),
        kind = "request",
        method = %req.method(),
        path = %req.uri().path(),
    );
    let work = tracing::Instrument::instrument(handle_request(app.clone(), n, req, next), span);
    match app.tagging {
        Tagging::Instrument => {
            LeakTracker::global()
                .instrument(work, format!("request-{n}"), "request")
                .await
        }
        Tagging::Span | Tagging::None => work.await,
    }
}

async fn handle_request(app: Arc<App>, n: usize, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(RequestNo(n));
    if app.plant_leak && n.is_multiple_of(REPLAY_EVERY) {
        // The planted bug: the sample is kept for a replay that never drains the buffer.
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        };
        let head = format!("{} {}\n", parts.method, parts.uri);
        let mut sample = Vec::with_capacity(head.len() + bytes.len());
        sample.extend_from_slice(head.as_bytes());
        sample.extend_from_slice(&bytes);
        REPLAY.lock().unwrap().push(sample);
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let resp = next.run(req).await;
    tracing::debug!(status = resp.status().as_u16(), "done");
    resp
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
    let conn = app.pool.get();
    let (n2, e2) = (name.clone(), email.clone());
    match ask(conn, |reply| Query::InsertUser {
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

async fn create_order(
    State(app): State<Arc<App>>,
    Extension(RequestNo(n)): Extension<RequestNo>,
    body: Bytes,
) -> Response {
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
        Ok(total_cents) => {
            tracing::debug!(request = n, total_cents, "priced");
            json(
                StatusCode::OK,
                &Quote {
                    user_id: order.user_id,
                    items: order.items.len(),
                    total_cents,
                    connection: conn.name.clone(),
                },
            )
        }
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

/// The live report of every tracker, as JSON: what `LEAKTRACKER_REPORT` would write at
/// exit, judged as a live process (requests in progress are not leaks).
async fn debug_leaks(uri: Uri) -> Response {
    let mut report = LeakReport::of_all();
    for item in uri.query().unwrap_or("").split('&') {
        match item {
            "verdict=strict" => report = report.verdict(Verdict::Strict),
            "show-all" | "show-all=1" | "verdict=show-all" => report = report.show_all(true),
            _ => {}
        }
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        report.to_json(),
    )
        .into_response()
}

/// `GET /debug/leaks/pprof`: what `/debug/leaks` lists, as a gzipped pprof profile.
async fn debug_leaks_pprof() -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        LeakReport::of_all().to_pprof(),
    )
        .into_response()
}

/// The Prometheus recorder of `/metrics`, installed by `main` before anything is served.
#[cfg(feature = "metrics")]
static PROMETHEUS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Installs the Prometheus recorder (the `metrics` facade's) and describes leaktracker's
/// gauges to it.
fn install_metrics() {
    #[cfg(feature = "metrics")]
    {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the Prometheus recorder installs");
        let _ = PROMETHEUS.set(handle);
        leaktracker::metrics::describe();
    }
}

/// `GET /metrics`: leaktracker's gauges, set on scrape, in Prometheus's text format.
async fn metrics_page() -> Response {
    #[cfg(feature = "metrics")]
    if let Some(handle) = PROMETHEUS.get() {
        leaktracker::metrics::publish();
        return (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        "built without leaktracker's `metrics` feature: cargo run --example axum_service --features metrics\n",
    )
        .into_response()
}

async fn shutdown(State(app): State<Arc<App>>) -> &'static str {
    app.shutdown.notify_one();
    "shutting down\n"
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/users", post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/orders", post(create_order))
        .route("/health", get(health))
        .route("/debug/leaks", get(debug_leaks))
        .route("/debug/leaks/pprof", get(debug_leaks_pprof))
        .route("/metrics", get(metrics_page))
        .route("/admin/shutdown", post(shutdown))
        .layer(middleware::from_fn_with_state(app.clone(), track_request))
        .with_state(app)
}

/// Serves on `listener` until `POST /admin/shutdown` (or the self-test) asks to stop,
/// then waits for the open connections to close.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
) -> JoinHandle<std::io::Result<()>> {
    let routes = router(app.clone());
    tokio::spawn(async move {
        axum::serve(listener, routes)
            .with_graceful_shutdown(async move { app.shutdown.notified().await })
            .await
    })
}

// ---------------------------------------------------------------------------------------
// The self-test client

/// Request `i` of the self-test: a rotation of the API's routes.
fn nth_request(base: &str, i: usize) -> (hyper::Request<Full<Bytes>>, StatusCode) {
    let post = |path: &str, body: String| {
        hyper::Request::post(format!("{base}{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    match i % 4 {
        0 if i % 40 == 20 => (
            post(
                "/users",
                format!(r#"{{"name":"user {i}","email":"not an address"}}"#),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        0 => (
            post(
                "/users",
                format!(r#"{{"name":"user {i}","email":"user{i}@example.com"}}"#),
            ),
            StatusCode::CREATED,
        ),
        1 => (
            hyper::Request::get(format!("{base}/users/{}", 1 + i / 8))
                .body(Full::new(Bytes::new()))
                .unwrap(),
            // Found once inserted: the client cannot know the order of the server's inserts.
            StatusCode::OK,
        ),
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
            (
                post(
                    "/orders",
                    format!(
                        r#"{{"user_id":{},"items":[{}]}}"#,
                        1 + i / 4,
                        items.join(",")
                    ),
                ),
                StatusCode::OK,
            )
        }
        _ => (
            hyper::Request::get(format!("{base}/health"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
            StatusCode::OK,
        ),
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends `req`, reads the whole answer; every wait bounded.
async fn send(
    client: &HttpClient,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| "no response in time".to_string())?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
        .await
        .map_err(|_| "no body in time".to_string())?
        .map_err(|e| format!("body failed: {e}"))?
        .to_bytes();
    Ok((status, body))
}

#[derive(Default)]
struct Tally {
    ok: usize,
    not_found: usize,
    rejected: usize,
    total_cents: u64,
}

/// Starts the service on an ephemeral port of 127.0.0.1, sends `requests` requests at
/// `concurrency`, reads `/debug/leaks` once, and shuts everything down.
async fn self_test(cfg: &Config) -> Result<(), String> {
    let (pool, tasks) = Pool::open(cfg.connections);
    let app = Arc::new(App {
        pool,
        arrived: AtomicUsize::new(0),
        plant_leak: cfg.plant_leak,
        tagging: cfg.tagging,
        shutdown: Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = spawn_server(listener, app.clone());
    let base = format!("http://{addr}");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let requests = cfg.self_test.unwrap_or(0);
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency {
        let (client, base, next) = (client.clone(), base.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<Tally, String>(tally);
                }
                let (req, expected) = nth_request(&base, i);
                let (status, body) = send(&client, req).await?;
                match status {
                    StatusCode::NOT_FOUND if i % 4 == 1 => tally.not_found += 1,
                    s if s == expected && s == StatusCode::UNPROCESSABLE_ENTITY => {
                        tally.rejected += 1
                    }
                    s if s == expected => {
                        tally.ok += 1;
                        if i % 4 == 2 {
                            let quote: Quote = serde_json::from_slice(&body)
                                .map_err(|e| format!("request {i}: quote: {e}"))?;
                            tally.total_cents += quote.total_cents;
                        }
                    }
                    s => {
                        return Err(format!(
                            "request {i}: status {s}, expected {expected}: {}",
                            String::from_utf8_lossy(&body)
                        ))
                    }
                }
            }
        }));
    }
    let mut tally = Tally::default();
    for w in workers {
        let t = tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .map_err(|_| "the load did not finish in 120 s".to_string())?
            .map_err(|e| format!("a client task failed: {e}"))??;
        tally.ok += t.ok;
        tally.not_found += t.not_found;
        tally.rejected += t.rejected;
        tally.total_cents += t.total_cents;
    }
    let took = started.elapsed();
    println!(
        "self-test: {requests} requests at concurrency {} in {:.2} s ({:.0} requests/s): \
         {} ok, {} not found, {} rejected as invalid; quotes total {} cents",
        cfg.concurrency,
        took.as_secs_f64(),
        requests as f64 / took.as_secs_f64().max(1e-9),
        tally.ok,
        tally.not_found,
        tally.rejected,
        tally.total_cents
    );

    // What the live endpoint says now (this request is still in progress while it reports).
    let live = hyper::Request::get(format!("{base}/debug/leaks"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(&client, live).await?;
    if status != StatusCode::OK {
        return Err(format!("/debug/leaks: status {status}"));
    }
    if let Some(path) = &cfg.save_live {
        std::fs::write(path, &body).map_err(|e| format!("--save-live {path}: {e}"))?;
    }
    let report: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("/debug/leaks: not JSON: {e}"))?;
    let names = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let leaks = names("leaks");
    let requests_listed = leaks.iter().filter(|n| n.starts_with("request-")).count();
    println!(
        "/debug/leaks (live, {} bytes of JSON): {} resources listed ({} requests, {} others: {}), \
         {} groups judged not leaks",
        body.len(),
        leaks.len(),
        requests_listed,
        leaks.len() - requests_listed,
        leaks
            .iter()
            .filter(|n| !n.starts_with("request-"))
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        report["not_leaks"].as_array().map_or(0, Vec::len),
    );

    // The same as a pprof profile, and the gauges.
    let pprof = hyper::Request::get(format!("{base}/debug/leaks/pprof"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(&client, pprof).await?;
    if status != StatusCode::OK || !body.starts_with(&[0x1f, 0x8b]) {
        return Err(format!(
            "/debug/leaks/pprof: status {status}, {} bytes, not a gzipped profile",
            body.len()
        ));
    }
    println!(
        "/debug/leaks/pprof: {} bytes of gzipped profile",
        body.len()
    );
    let scrape = hyper::Request::get(format!("{base}/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(&client, scrape).await?;
    let text = String::from_utf8_lossy(&body);
    if cfg!(feature = "metrics") {
        let gauge = |name: &str, kind: &str| -> Option<f64> {
            let head = format!("{name}{{kind=\"{kind}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&head))
                .and_then(|v| v.trim().parse().ok())
        };
        let connections = gauge("leaktracker_live_resources", "database");
        if status != StatusCode::OK || connections != Some(cfg.connections as f64) {
            return Err(format!(
                "/metrics: status {status}; expected leaktracker_live_resources{{kind=\"database\"}} {}:\n{text}",
                cfg.connections
            ));
        }
        println!(
            "/metrics: {} live database connections, {} requests in progress or retained ({} bytes)",
            cfg.connections,
            gauge("leaktracker_live_resources", "request").unwrap_or(0.0),
            gauge("leaktracker_live_bytes", "request").unwrap_or(0.0),
        );
    } else if status != StatusCode::NOT_FOUND {
        return Err(format!(
            "/metrics without the metrics feature: status {status}"
        ));
    }

    // Clean shutdown: the client's idle connections closed, the server stopped (which drops
    // the router and its handle on the app), the pool dropped, its tasks ended.
    drop(client);
    app.shutdown.notify_one();
    tokio::time::timeout(TIMEOUT, server)
        .await
        .map_err(|_| "the server did not stop in time".to_string())?
        .map_err(|e| format!("the server task failed: {e}"))?
        .map_err(|e| format!("the server failed: {e}"))?;
    let arrived = app.arrived.load(Ordering::Relaxed);
    drop(app);
    let mut served = 0;
    for t in tasks {
        served += tokio::time::timeout(TIMEOUT, t)
            .await
            .map_err(|_| "a connection task did not end in time".to_string())?
            .map_err(|e| format!("a connection task failed: {e}"))?;
    }
    println!(
        "shut down: {arrived} requests arrived, {served} queries served by {} connections, \
         {} requests kept in the replay buffer",
        cfg.connections,
        REPLAY.lock().unwrap().len()
    );
    Ok(())
}

/// Serves on `cfg.listen` until `POST /admin/shutdown`.
async fn serve(cfg: &Config) -> Result<(), String> {
    let (pool, tasks) = Pool::open(cfg.connections);
    let app = Arc::new(App {
        pool,
        arrived: AtomicUsize::new(0),
        plant_leak: cfg.plant_leak,
        tagging: cfg.tagging,
        shutdown: Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr} (POST /admin/shutdown to stop; GET /debug/leaks)");
    let server = spawn_server(listener, app.clone());
    server
        .await
        .map_err(|e| format!("the server task failed: {e}"))?
        .map_err(|e| format!("the server failed: {e}"))?;
    let arrived = app.arrived.load(Ordering::Relaxed);
    drop(app);
    for t in tasks {
        let _ = tokio::time::timeout(TIMEOUT, t).await;
    }
    println!("shut down after {arrived} requests");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Start-up

struct Config {
    listen: SocketAddr,
    self_test: Option<usize>,
    concurrency: usize,
    connections: usize,
    plant_leak: bool,
    log: bool,
    tagging: Tagging,
    /// Where the self-test saves the JSON it read from `/debug/leaks`.
    save_live: Option<String>,
}

const USAGE: &str = "usage: axum_service [--listen ADDR] [--self-test N] [--concurrency C] \
[--connections K] [--leak] [--log] [--tag instrument|span|none] [--save-live FILE]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        self_test: None,
        concurrency: 32,
        connections: 4,
        plant_leak: std::env::var_os("PLANT_LEAK").is_some_and(|v| v == "1"),
        log: false,
        tagging: Tagging::Instrument,
        save_live: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or_else(|| format!("{arg} needs {what}"));
        let count = |s: String, what: &str| match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{what}: `{s}` is not a positive number")),
        };
        match arg.as_str() {
            "--listen" => {
                let v = value("an address")?;
                cfg.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--self-test" => cfg.self_test = Some(count(value("a request count")?, "--self-test")?),
            "--concurrency" => cfg.concurrency = count(value("a number")?, "--concurrency")?,
            "--connections" => cfg.connections = count(value("a number")?, "--connections")?,
            "--leak" => cfg.plant_leak = true,
            "--save-live" => cfg.save_live = Some(value("a file path")?),
            "--log" => cfg.log = true,
            "--tag" => {
                cfg.tagging = match value("instrument, span or none")?.as_str() {
                    "instrument" => Tagging::Instrument,
                    "span" if cfg!(feature = "tracing") => Tagging::Span,
                    "span" => return Err("--tag span needs the `tracing` feature".into()),
                    "none" => Tagging::None,
                    other => {
                        return Err(format!("--tag {other}: expected instrument, span or none"))
                    }
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(cfg)
}

/// Installs the subscriber: an optional `fmt` layer on stderr (INFO), and with
/// `--tag span` a `LeakLayer` that tags each request's span as `(request-N, request)`.
fn install_tracing(cfg: &Config) {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    if !cfg.log && cfg.tagging != Tagging::Span {
        return;
    }
    let fmt = cfg.log.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "tracing")]
    let registry = registry.with((cfg.tagging == Tagging::Span).then(|| {
        leaktracker::LeakLayer::global()
            .name_field("name")
            .kind_field("kind")
    }));
    tracing::subscriber::set_global_default(registry).expect("no other subscriber");
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("axum_service: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    install_tracing(&cfg);
    install_metrics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match cfg.self_test {
            Some(_) => self_test(&cfg).await,
            None => serve(&cfg).await,
        }
    });
    // The runtime's threads and buffers go before `main` returns and the exit report runs.
    drop(runtime);
    if let Err(e) = result {
        eprintln!("axum_service: {e}");
        std::process::exit(1);
    }
}
