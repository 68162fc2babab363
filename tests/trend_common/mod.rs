//! A small service for the trend tests: 200 requests, each in a scope of kind `request`;
//! the first 40 fill a cache (tracked entries of kind `cache`, 1 KiB each) that then
//! stays as it is; with `leak`, every request also keeps 256 B for good (the planted
//! per-request leak). Run with LEAKTRACKER_INTERVAL, it leaves a series of snapshots.
#![allow(dead_code)]
// Each leaked block is its own allocation (a Box), as a real leak would be.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use leaktracker::LeakTracker;

static TRACKER: LeakTracker = LeakTracker::new();

pub const REQUESTS: usize = 200;
pub const CACHED: usize = 40;

#[inline(never)]
fn leak_body(leaked: &mut Vec<Box<[u8; 256]>>) {
    leaked.push(black_box(Box::new([1u8; 256])));
}

#[inline(never)]
fn cache_insert(cache: &mut Vec<Vec<u8>>) {
    let entry = black_box(vec![2u8; 1024]);
    TRACKER.track(&entry, "cache-entry", "cache").unwrap();
    cache.push(entry);
}

#[inline(never)]
fn handle(n: usize, leak: bool, leaked: &mut Vec<Box<[u8; 256]>>, cache: &mut Vec<Vec<u8>>) {
    let _scope = TRACKER.scope(format!("request-{n}"), "request");
    let body = black_box(vec![0u8; 512]);
    if leak {
        leak_body(leaked);
    }
    if n <= CACHED {
        cache_insert(cache);
    }
    drop(body);
}

/// The service's main loop.
pub fn serve(leak: bool) {
    // Room made before any scope opens: pushes never grow these inside a request.
    let mut leaked: Vec<Box<[u8; 256]>> = Vec::with_capacity(REQUESTS);
    let mut cache: Vec<Vec<u8>> = Vec::with_capacity(CACHED);
    for n in 1..=REQUESTS {
        handle(n, leak, &mut leaked, &mut cache);
        std::thread::sleep(Duration::from_millis(15));
    }
    println!("served {REQUESTS}");
    std::mem::forget(leaked);
    std::mem::forget(cache);
}

/// `leaktracker trend ARGS`: status and stdout.
pub fn trend(cli: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(cli).arg("trend").args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
