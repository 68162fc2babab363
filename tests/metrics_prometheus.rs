//! Feature `metrics`: the gauges of the live tagged resources, published by a
//! `Publisher` thread through the real Prometheus exporter and scraped over 127.0.0.1.
//! Both halves: a kind's gauges show its live resources and bytes, and fall to 0 when
//! they are freed; kinds past the cap are added up under `kind="other"` and get no series
//! of their own; publishing inside a scope tags nothing the recorder keeps.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use leaktracker::metrics::{publish, set_max_kinds, Publisher};
use leaktracker::{LeakReport, LeakTracker, TrackingAllocator};
use metrics_exporter_prometheus::PrometheusBuilder;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of `name{kind="KIND"}` in a scrape.
fn value(text: &str, name: &str, kind: Option<&str>) -> Option<f64> {
    let head = match kind {
        Some(k) => format!("{name}{{kind=\"{k}\"}} "),
        None => format!("{name} "),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrapes until `ok` holds of the text (the publisher runs every 50 ms), at most 10 s.
fn scrape_until(addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(t) = scrape(addr) {
            if ok(&t) {
                return t;
            }
            last = t;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no scrape showed {what} within 10 s; the last one:\n{last}");
}

#[test]
fn main() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .expect("the Prometheus exporter starts");

    let t = LeakTracker::new();

    // Publishing inside a request's scope: the series the recorder creates (and keeps)
    // are not the request's.
    let first = vec![0u8; 64];
    t.track(&first, "first-1", "first").unwrap();
    {
        let _s = t.scope("request-1", "request");
        publish();
    }
    let tagged: Vec<String> = LeakReport::of(&t)
        .leaks()
        .iter()
        .map(|e| format!("{} ({}): {} blocks", e.name, e.kind, e.allocations))
        .collect();
    assert_eq!(
        tagged,
        ["first-1 (first): 1 blocks"],
        "publish tagged nothing"
    );
    drop(first);

    // 4 labelled kinds at most: `first` has one already; database, cache, k3 take the
    // rest (oldest first), k4 and k5 go to `other`.
    set_max_kinds(4);
    let db1 = vec![0u8; 100];
    let db2 = vec![0u8; 200];
    t.track(&db1, "connection-1", "database").unwrap();
    std::thread::sleep(Duration::from_millis(3));
    t.track(&db2, "connection-2", "database").unwrap();
    std::thread::sleep(Duration::from_millis(3));
    let cache = vec![0u8; 50];
    t.track(&cache, "cache-1", "cache").unwrap();
    let mut small = Vec::new();
    for (i, kind) in ["k3", "k4", "k5"].iter().enumerate() {
        std::thread::sleep(Duration::from_millis(3));
        let v = vec![0u8; 10 + i];
        t.track(&v, format!("{kind}-1"), *kind).unwrap();
        small.push(v);
    }

    assert!(
        Publisher::start(Duration::ZERO).is_err(),
        "a zero interval is refused"
    );
    let publisher = Publisher::start(Duration::from_millis(50)).unwrap();

    let text = scrape_until(addr, "database with 2 resources", |t| {
        value(t, "leaktracker_live_resources", Some("database")) == Some(2.0)
    });
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("database")),
        Some(300.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "leaktracker_live_resources", Some("cache")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("cache")),
        Some(50.0)
    );
    assert_eq!(
        value(&text, "leaktracker_live_resources", Some("k3")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "leaktracker_live_resources", Some("other")),
        Some(2.0),
        "k4 and k5 are added up under other:\n{text}"
    );
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("other")),
        Some(11.0 + 12.0)
    );
    assert!(
        !text.contains("kind=\"k4\"") && !text.contains("kind=\"k5\""),
        "no series past the cap:\n{text}"
    );
    // `first` was freed: 0, not its last value.
    assert_eq!(
        value(&text, "leaktracker_live_resources", Some("first")),
        Some(0.0),
        "{text}"
    );
    let age = value(
        &text,
        "leaktracker_oldest_resource_age_seconds",
        Some("database"),
    )
    .unwrap();
    assert!(age > 0.0 && age < 60.0, "age {age}");
    assert_eq!(
        value(&text, "leaktracker_dropped_records_total", None),
        Some(0.0),
        "{text}"
    );

    // The connections close: their gauges fall to 0; the others stay.
    drop(db1);
    drop(db2);
    let text = scrape_until(addr, "database at 0", |t| {
        value(t, "leaktracker_live_resources", Some("database")) == Some(0.0)
    });
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("database")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("cache")),
        Some(50.0)
    );
    assert_eq!(
        value(&text, "leaktracker_live_resources", Some("other")),
        Some(2.0)
    );

    // After stop, nothing more is published: a freed kind keeps its last value.
    publisher.stop();
    drop(cache);
    std::thread::sleep(Duration::from_millis(200));
    let text = scrape(addr).unwrap();
    assert_eq!(
        value(&text, "leaktracker_live_bytes", Some("cache")),
        Some(50.0),
        "a stopped publisher publishes nothing"
    );
    drop(small);
}
