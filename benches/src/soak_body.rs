// The soak's body, shared by `soak` (leaktracker) and `soak-system` (the reference):
// included by both, each with its own global allocator.

/// The binary's name, first on every output line.
const NAME: &str = env!("CARGO_BIN_NAME");

use std::alloc::{alloc, dealloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leaktracker::LeakTracker;
use leaktracker_bench::Rng;


static TRACKER: LeakTracker = LeakTracker::new();
static STOP: AtomicBool = AtomicBool::new(false);
static OPS: AtomicU64 = AtomicU64::new(0);

struct Block(*mut u8, Layout);

impl Block {
    fn new(size: usize) -> Block {
        let layout = Layout::from_size_align(size, 8).expect("layout");
        // SAFETY: `size` > 0.
        let p = unsafe { alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: `p` is a live block of at least one byte.
        unsafe { p.write(1) };
        Block(p, layout)
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated by `Block::new` with this layout, freed once.
        unsafe { dealloc(self.0, self.1) }
    }
}

// SAFETY: a `Block` owns its allocation; any thread may free it.
unsafe impl Send for Block {}

/// One worker: requests, half of them in a scope of their own; a few of each request's
/// blocks outlive it in a ring of 4,000 (so resources die at random later times).
fn worker(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut ring: Vec<Option<Block>> = (0..4_000).map(|_| None).collect();
    let mut request = 0u64;
    while !STOP.load(Ordering::Relaxed) {
        request += 1;
        let tagged = rng.below(2) == 0;
        let name = format!("request-{seed}-{request}");
        let scope = tagged.then(|| TRACKER.scope(name, "request"));
        let n = 1 + rng.below(32) as usize;
        let mut temp = Vec::with_capacity(n);
        for _ in 0..n {
            let b = Block::new(16 + rng.below(2_048) as usize);
            if rng.below(8) == 0 {
                let slot = rng.below(ring.len() as u64) as usize;
                ring[slot] = Some(b);
            } else {
                temp.push(b);
            }
        }
        drop(temp);
        drop(scope);
        OPS.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut secs = 120u64;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => secs = 10,
            "--secs" => {
                secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(secs);
                i += 1;
            }
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let workers: Vec<_> = (1..=2u64)
        .map(|s| std::thread::spawn(move || worker(s)))
        .collect();
    let start = Instant::now();
    let (mut max_table, mut max_records, mut max_slots, mut max_live_us) = (0, 0, 0, 0f64);
    let mut table_at_10s = None;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let t = Instant::now();
        let live = TRACKER.live();
        let live_us = t.elapsed().as_nanos() as f64 / 1e3;
        let st = leaktracker::stats();
        let elapsed = start.elapsed().as_secs();
        max_table = max_table.max(st.table_bytes);
        max_records = max_records.max(st.records);
        max_slots = max_slots.max(st.resources);
        max_live_us = max_live_us.max(live_us);
        if elapsed >= 10 && table_at_10s.is_none() {
            table_at_10s = Some(st.table_bytes);
        }
        let last = format!(
            "{NAME} t={elapsed}s ops={} live_resources={} live_blocks={} live_us={live_us:.0} \
             records={} table_bytes={} resource_slots={} dropped={} rss_kb={} heap_in_use_kb={}",
            OPS.load(Ordering::Relaxed),
            live.len(),
            live.iter().map(|l| l.allocations).sum::<usize>(),
            st.records,
            st.table_bytes,
            st.resources,
            st.dropped_records,
            leaktracker_bench::rss_kb(),
            heap_in_use_kb(),
        );
        // Every 10 s (and the first report) on stdout; every report on stderr.
        if elapsed.is_multiple_of(10) || elapsed <= 1 {
            println!("{last}");
        } else {
            eprintln!("{last}");
        }
    }
    STOP.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let live = TRACKER.live();
    let st = leaktracker::stats();
    println!(
        "{NAME} summary secs={secs} ops={} max_records={max_records} max_table_bytes={max_table} \
         table_bytes_at_10s={} max_resource_slots={max_slots} max_live_us={max_live_us:.0} \
         after_join: live_resources={} records={} table_bytes={} resource_slots={} maxrss_kb={}",
        OPS.load(Ordering::Relaxed),
        table_at_10s.map_or("-".to_string(), |b| b.to_string()),
        live.len(),
        st.records,
        st.table_bytes,
        st.resources,
        leaktracker_bench::max_rss_kb(),
    );
}

/// Bytes the C heap has handed out and not taken back (glibc's `mallinfo2`), in KiB: what
/// the program holds, as opposed to what the heap keeps resident.
fn heap_in_use_kb() -> usize {
    // SAFETY: `mallinfo2` has no preconditions; it returns a struct by value.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) / 1024
}
