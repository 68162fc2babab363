//! Verdict scenario: a per-unit leak whose every unit allocates at a stack of its own.
//! 40 requests run one after another, each in a scope (`("request-N", "request")`); each
//! parses a request to a depth of its own (1 + N levels of recursion), so no two requests
//! allocate at the same stack, and at the deepest level allocates 20 buffers of 3333 bytes
//! from one call site. The first buffer made at each stack is therefore the first of 20:
//! by order of allocation alone it would look like warm-up (the first made at its stack,
//! every later one freed). But that order is the request's own, not the run's: only
//! stacks that units share order the run.
//!
//! - `correct`: both buffers are freed: no leak.
//! - `planted`: the first buffer is kept in a global list: exactly request-1 ...
//!   request-40, each 1 block, 3333 B.

mod common;
mod verdict_common;

use leaktracker::LeakTracker;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const REQUESTS: usize = 40;
const BUF: usize = 3333;
const BUFS: usize = 20;

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn buffer(fill: u8) -> Vec<u8> {
    black_box(vec![fill; BUF])
}

#[inline(never)]
fn parse(depth: usize, planted: bool) -> usize {
    if depth > 0 {
        return black_box(parse(black_box(depth - 1), planted)) + 1;
    }
    // Both buffers from one call site: one stack.
    let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(BUFS);
    for k in 0..BUFS as u8 {
        bufs.push(buffer(k + 1));
    }
    let n = bufs.iter().map(Vec::len).sum();
    if planted {
        KEPT.lock().unwrap().push(bufs.swap_remove(0));
    }
    n
}

fn program(mode: &str) {
    let tracker = LeakTracker::global();
    // The list's own buffer, made before any request.
    KEPT.lock().unwrap().reserve(REQUESTS);
    let mut total = 0;
    for i in 1..=REQUESTS {
        let _scope = tracker.scope(format!("request-{i}"), "request");
        total += parse(1 + i, mode == "planted");
    }
    println!("{REQUESTS} requests: {total} bytes parsed");
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(60);
    all_halves(vec![
        correct_half(t, assert_correct_retaining_nothing),
        planted_half(
            "planted",
            t,
            expect_each(
                (1..=REQUESTS).map(|i| format!("request-{i}")),
                "request",
                BUF as u64,
            ),
        ),
    ]);
}
