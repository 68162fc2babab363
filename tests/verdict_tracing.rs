//! Verdict scenario: tracing-subscriber's `registry()` with a `fmt` layer (writing to a
//! sink) and `LeakLayer`, in both layer orders. 100 requests on two threads, each a
//! `request` span (resource `request-N`, kind `svc`) with nested child spans
//! (`request-N/parse`, `request-N/query` inside it), events formatted by `fmt` in all of
//! them: the registry's span storage, fmt's per-span field maps and per-thread buffers are
//! one-time or amortised state made inside spans.
//!
//! Modes: `correct-fmt-first` / `planted-fmt-first` (`registry().with(fmt).with(LeakLayer)`)
//! and `correct-leak-first` / `planted-leak-first` (`registry().with(LeakLayer).with(fmt)`).
//! - correct: no leak, status 0, and what was judged not a leak summarised.
//! - planted: every 10th request span keeps a 7777-byte buffer: exactly request-10,
//!   request-20, ... request-100, kind `svc`, each 1 block, 7777 B.

#![cfg(feature = "tracing")]

mod common;
mod verdict_common;

use leaktracker::LeakLayer;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;
use tracing::{info, info_span};
use tracing_subscriber::layer::SubscriberExt;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const REQUESTS: usize = 100;
const THREADS: usize = 2;
/// A distinctive size, so a planted block is recognised exactly.
const BODY: usize = 7777;

/// Where the planted modes keep every 10th request's buffer. Its own buffer is reserved
/// before any span, so only the planted blocks are made inside request spans.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn request(n: usize, planted: bool) -> usize {
    let span = info_span!(target: "svc", "request", req = %format!("request-{n}"), n);
    let _in_request = span.enter();
    info!(n, "request received");
    let body = black_box(vec![n as u8; BODY]);
    let words = {
        let parse = info_span!(target: "svc::parse", "parse", req = %format!("request-{n}/parse"));
        let _in = parse.enter();
        let text: String = body[..64]
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        info!(len = text.len(), "parsed");
        text.len()
    };
    let rows = {
        let query = info_span!(target: "svc::db", "query", req = %format!("request-{n}/query"));
        let _in = query.enter();
        let rows: Vec<String> = (0..words % 7 + 1)
            .map(|r| format!("row {r} of {n}"))
            .collect();
        info!(rows = rows.len(), sql = %format!("select * from t where id = {n}"), "queried");
        rows.len()
    };
    info!(words, rows, "request done");
    if planted && n.is_multiple_of(10) {
        KEPT.lock().unwrap().push(body);
    }
    words + rows
}

fn fmt<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().with_writer(std::io::sink)
}

fn leak() -> LeakLayer {
    LeakLayer::global().name_field("req")
}

fn program(mode: &str) {
    KEPT.lock().unwrap().reserve(REQUESTS);
    let planted = mode.starts_with("planted");
    let run = || {
        let total: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..THREADS)
                .map(|t| {
                    s.spawn(move || {
                        (1..=REQUESTS)
                            .filter(|n| n % THREADS == t)
                            .map(|n| request(n, planted))
                            .sum::<usize>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        println!("{REQUESTS} requests: {total}");
    };
    if mode.ends_with("fmt-first") {
        let sub = tracing_subscriber::registry().with(fmt()).with(leak());
        tracing::subscriber::set_global_default(sub).unwrap();
    } else if mode.ends_with("leak-first") {
        let sub = tracing_subscriber::registry().with(leak()).with(fmt());
        tracing::subscriber::set_global_default(sub).unwrap();
    } else {
        panic!("unknown mode {mode}");
    }
    run();
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(60);
    let mut halves: Vec<(String, Box<dyn FnOnce()>)> = Vec::new();
    for order in ["fmt-first", "leak-first"] {
        let correct = format!("correct-{order}");
        halves.push((
            correct.clone(),
            Box::new(move || {
                let run = run_mode(&correct, &[], t);
                if order == "fmt-first" {
                    // The fmt layer's per-span storage is allocated inside the spans.
                    assert_correct(&run);
                } else {
                    // With LeakLayer first, the fmt layer runs after the span's tag is
                    // gone: nothing one-time is tagged, so there may be nothing to judge.
                    assert_correct_retaining_nothing(&run);
                }
            }),
        ));
        let planted_mode = format!("planted-{order}");
        halves.push((
            planted_mode.clone(),
            Box::new(move || {
                let run = run_mode(&planted_mode, &[], t);
                let planted = (10..=REQUESTS).step_by(10).map(|n| format!("request-{n}"));
                assert_planted(&run, &expect_each(planted, "svc", BODY as u64));
            }),
        ));
    }
    all_halves(halves);
}
