//! Verdict scenario: a command-line program whose `main` runs in one scope
//! (`("main", "cli")`) and processes 40 inputs, each in a nested scope
//! (`("input-N", "input")`), with worker threads of `std::thread::scope` (each in its own
//! scope, `("input-N/worker-W", "input-worker")`). On first use it fills `OnceLock`,
//! `LazyLock`, `thread_local!`, `once_cell::sync::Lazy`, `lazy_static!` and two
//! `regex::Regex` statics, and matches with them from the main thread and the workers:
//! one-time state that is rightly alive at exit, inside tagged scopes.
//!
//! - `correct`: no leak, status 0, and the one-time state summarised as not a leak.
//! - `planted-main`: main's scope forgets one 4096-byte `Vec`: exactly `main` (cli),
//!   1 block, 4096 B.
//! - `planted-inputs`: every 5th input keeps its 7777-byte buffer in a global
//!   `Mutex<Vec<Vec<u8>>>` created empty: exactly input-5, input-10, ... input-40, each
//!   1 block, 7777 B.

mod common;
mod verdict_common;

use leaktracker::LeakTracker;
use regex::Regex;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hint::black_box;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Duration;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const INPUTS: usize = 40;
const WORKERS: usize = 2;
/// Each input's buffer: a distinctive size, so a planted one is recognised exactly.
const BODY: usize = 7777;

/// Read at start-up, in main's scope.
static CONFIG: OnceLock<Vec<String>> = OnceLock::new();
/// First used by input-1.
static KEYWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    ["alpha", "beta", "gamma", "delta", "omega"]
        .iter()
        .map(|s| s.to_string())
        .collect()
});
/// First used by input-1.
static ALIASES: once_cell::sync::Lazy<HashMap<String, String>> = once_cell::sync::Lazy::new(|| {
    (0..16)
        .map(|i| (format!("k{i}"), format!("key-number-{i}")))
        .collect()
});
lazy_static::lazy_static! {
    /// First used by input-1.
    static ref UNITS: BTreeMap<String, u64> = [("b", 1), ("kb", 1000), ("mb", 1_000_000)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
}
/// The line parser: compiled by input-1, matched from the main thread and the workers.
static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<word>[a-z]+)-(?P<num>\d+)\s*=\s*(?P<size>\d+)(?P<unit>[a-z]*)\s+(?P<rest>.*)$",
    )
    .unwrap()
});
/// A second regex, in a `once_cell` static, used only by the workers.
static TOKEN: once_cell::sync::Lazy<Regex> =
    once_cell::sync::Lazy::new(|| Regex::new(r"\b[a-z]{3,}\d*\b").unwrap());

thread_local! {
    /// Scratch space of each thread, kept between inputs.
    static SCRATCH: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Where `planted-inputs` keeps every 5th input's buffer. Created empty: its own
/// buffer is allocated (and grown) inside the scopes of the inputs that push.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn tracker() -> &'static LeakTracker {
    LeakTracker::global()
}

/// One worker's part of an input: tokenises the lines of its share.
fn work(n: usize, w: usize, lines: &[String]) -> usize {
    let _scope = tracker().scope(format!("input-{n}/worker-{w}"), "input-worker");
    let mut found = 0;
    for line in lines.iter().skip(w).step_by(WORKERS) {
        let toks: Vec<&str> = TOKEN.find_iter(line).map(|m| m.as_str()).collect();
        found += toks.iter().filter(|t| KEYWORDS.contains(**t)).count();
        if LINE.is_match(line) {
            found += 1;
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.extend(toks.iter().map(|t| t.to_uppercase()));
        });
    }
    found
}

/// Processes input `n` in its own scope.
fn process(n: usize, mode: &str) -> (usize, u64) {
    let _scope = tracker().scope(format!("input-{n}"), "input");
    let body = black_box(vec![n as u8; BODY]);
    let word = ["alpha", "beta", "gamma", "delta", "omega"][n % 5];
    let unit = ["b", "kb", "mb"][n % 3];
    let header = format!(
        "{word}-{n} = {}{unit} k{} payload of input {n}",
        n * 3,
        n % 16
    );
    let caps = LINE.captures(&header).expect("the header matches");
    let size: u64 = caps["size"].parse().unwrap();
    let bytes = size * UNITS.get(&caps["unit"]).copied().unwrap_or(1);
    let alias = ALIASES
        .get(caps["rest"].split_whitespace().next().unwrap())
        .cloned()
        .unwrap_or_default();
    let lines: Vec<String> = (0..24)
        .map(|i| {
            format!(
                "{alias} {word}{i} line {i} of input {n}: {}",
                body[i] as usize + i
            )
        })
        .collect();
    SCRATCH.with(|s| s.borrow_mut().push(format!("{word}-{n}")));
    let found = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let lines = &lines;
                s.spawn(move || work(n, w, lines))
            })
            .collect();
        // Joined explicitly: each worker's thread-local state is gone when this returns.
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    if mode == "planted-inputs" && n.is_multiple_of(5) {
        KEPT.lock().unwrap().push(body);
    } else {
        drop(body);
    }
    (found, bytes)
}

/// The program: everything under main's scope.
fn program(mode: &str) {
    let _main = tracker().scope("main", "cli");
    let config = CONFIG.get_or_init(|| {
        std::env::args()
            .chain(["--color=never".to_string(), "--threads=2".to_string()])
            .collect()
    });
    let verbose = config.iter().any(|a| a == "--verbose");
    let mut total = (0, 0);
    for n in 1..=INPUTS {
        let (found, bytes) = process(n, mode);
        total.0 += found;
        total.1 += bytes;
        if verbose {
            println!("input-{n}: {found} tokens, {bytes} bytes");
        }
    }
    if mode == "planted-main" {
        std::mem::forget(black_box(vec![0u8; 4096]));
    }
    println!(
        "{INPUTS} inputs: {} tokens, {} bytes, {} lines kept",
        total.0,
        total.1,
        SCRATCH.with(|s| s.borrow().len())
    );
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(60);
    all_halves(vec![
        correct_half(t, assert_correct),
        planted_half(
            "planted-main",
            t,
            expect_each(["main".to_string()], "cli", 4096),
        ),
        planted_half(
            "planted-inputs",
            t,
            expect_each(
                (5..=INPUTS).step_by(5).map(|n| format!("input-{n}")),
                "input",
                BODY as u64,
            ),
        ),
    ]);
}
