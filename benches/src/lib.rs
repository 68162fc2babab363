//! Shared workloads of the allocator benchmarks.
//!
//! Every binary in `src/bin/` installs one global allocator and calls [`bench_main`] with
//! [`Hooks`] that say how a worker thread enters that allocator's tagging (a leaktracker
//! scope, a tracking-allocator group, nothing). The workloads are deterministic and print a
//! checksum, so the compiler cannot drop the allocations and two allocators can be checked
//! to have done the same work.
//!
//! Output: one line of `key=value` pairs:
//! `alloc=NAME workload=NAME scale=PCT checksum=N ns=N cpu_ns=N maxrss_kb=N [info...]`
//! (`ns`: wall time of the workload; `cpu_ns`: user + system CPU time it used).
//!
//! `BENCH_SCALE` (percent, default 100) shrinks every workload, for runs under callgrind.
//! Only the body of each workload runs inside [`measured`], so callgrind's
//! `--toggle-collect=*measured*` counts the workload alone (not start-up or exit).

pub mod service;

use std::alloc::{alloc, dealloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

/// How a binary's allocator takes part in a run.
pub struct Hooks {
    /// Runs one worker's whole workload (on each worker thread, the main thread included
    /// for single-threaded workloads), inside whatever tagging this allocator uses.
    pub on_thread: fn(&mut dyn FnMut()),
    /// Extra `key=value` text printed at the end of the line (after the run).
    pub info: fn() -> String,
}

impl Hooks {
    /// No tagging, no extra information.
    pub const PLAIN: Hooks = Hooks {
        on_thread: run_plain,
        info: String::new,
    };
}

fn run_plain(f: &mut dyn FnMut()) {
    f()
}

/// The workloads, by name.
pub const WORKLOADS: [&str; 4] = ["churn", "threads", "realloc", "app"];

/// Scale of the workloads in percent (`BENCH_SCALE`, default 100, at least 1).
pub fn scale_pct() -> u64 {
    std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000)
}

fn scaled(n: u64) -> u64 {
    (n * scale_pct() / 100).max(1)
}

/// Peak resident set size of this process in KiB (`getrusage`, `ru_maxrss`).
pub fn max_rss_kb() -> u64 {
    // SAFETY: `getrusage` fills the zeroed struct we pass; RUSAGE_SELF is always valid.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_maxrss as u64
    }
}

/// CPU time (user + system) of this process so far, in ns (`getrusage`).
pub fn cpu_ns() -> u128 {
    // SAFETY: as in `max_rss_kb`.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Current resident set size in KiB (`/proc/self/statm`).
pub fn rss_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

/// A small deterministic generator (SplitMix64).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Runs `f`: the one function whose instructions callgrind collects
/// (`--collect-atstart=no --toggle-collect=*measured*`).
#[inline(never)]
pub fn measured<R>(f: impl FnOnce() -> R) -> R {
    black_box(f())
}

/// A raw block of the global allocator, freed on drop.
struct Block {
    ptr: *mut u8,
    layout: Layout,
}

impl Block {
    #[inline]
    fn new(size: usize, fill: u8) -> Block {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        // SAFETY: `layout` has a non-zero size (callers pass size >= 8).
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null(), "out of memory");
        // Touch the first and the last byte: the block is really used.
        // SAFETY: `ptr` is a live block of `size` bytes.
        unsafe {
            ptr.write(fill);
            ptr.add(size - 1).write(fill);
        }
        Block {
            ptr: black_box(ptr),
            layout,
        }
    }

    #[inline]
    fn first(&self) -> u8 {
        // SAFETY: the block is live and its first byte was written.
        unsafe { self.ptr.read() }
    }
}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by `alloc` with `layout` and is freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// Alloc/free pairs of the `churn` workload (per thread in `threads`).
pub const CHURN_PAIRS: u64 = 2_000_000;
/// Live blocks of the ring in `churn`.
pub const CHURN_RING: usize = 1_000;

/// `pairs` alloc/free pairs of 8–4096 bytes; a ring of 1,000 live blocks, replaced at
/// random positions, so blocks are freed in another order than they were allocated.
pub fn churn_body(seed: u64, pairs: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut ring: Vec<Option<Block>> = (0..CHURN_RING).map(|_| None).collect();
    let mut sum = 0u64;
    for _ in 0..pairs {
        let size = 8 + rng.below(4089) as usize;
        let b = Block::new(size, size as u8);
        let slot = rng.below(CHURN_RING as u64) as usize;
        if let Some(old) = ring[slot].replace(b) {
            sum = sum
                .wrapping_add(u64::from(old.first()))
                .wrapping_add(old.layout.size() as u64);
        }
    }
    for b in ring.into_iter().flatten() {
        sum = sum.wrapping_add(u64::from(b.first()));
    }
    sum
}

/// Thousands of `Vec`s grown by `push`, interleaved so that no two grow in a row.
pub fn realloc_body(seed: u64, rounds: u64) -> u64 {
    const VECS: usize = 4_000;
    let mut rng = Rng::new(seed);
    let mut sum = 0u64;
    for _ in 0..rounds {
        let targets: Vec<usize> = (0..VECS).map(|_| 1 + rng.below(1_024) as usize).collect();
        let mut vecs: Vec<Vec<u32>> = (0..VECS).map(|_| Vec::new()).collect();
        let max = *targets.iter().max().unwrap_or(&0);
        // Grow all vectors a step at a time; 16 pushes per visit keep the push loop short
        // next to the reallocations.
        let mut len = 0;
        while len < max {
            len += 16;
            for (v, &t) in vecs.iter_mut().zip(&targets) {
                while v.len() < len.min(t) {
                    v.push(v.len() as u32);
                }
            }
        }
        for v in &vecs {
            sum = sum
                .wrapping_add(v.len() as u64)
                .wrapping_add(v.capacity() as u64);
        }
    }
    sum
}

/// A map of `n` formatted strings, serialised to JSON and parsed back.
pub fn app_body(n: u64) -> u64 {
    let mut map = BTreeMap::new();
    for i in 0..n {
        map.insert(
            format!("key-{i:08}"),
            format!("value {} of {} ({:x})", i, n, i.wrapping_mul(0x9E37_79B9)),
        );
    }
    let json = serde_json::to_string(&map).expect("serialise");
    drop(map);
    let back: BTreeMap<String, String> = serde_json::from_str(&json).expect("parse");
    let mut sum = json.len() as u64;
    for (k, v) in &back {
        sum = sum.wrapping_add((k.len() * 31 + v.len()) as u64);
    }
    sum
}

/// Runs workload `name` with `hooks`; returns (checksum, elapsed ns, CPU ns).
pub fn run_workload(name: &str, hooks: &Hooks) -> (u64, u128, u128) {
    let mut sum = 0u64;
    let cpu_start = cpu_ns();
    let start = Instant::now();
    match name {
        "churn" => {
            let pairs = scaled(CHURN_PAIRS);
            (hooks.on_thread)(&mut || sum = measured(|| churn_body(1, pairs)));
        }
        "threads" => {
            let pairs = scaled(CHURN_PAIRS);
            let on_thread = hooks.on_thread;
            let workers: Vec<_> = (0..2u64)
                .map(|t| {
                    std::thread::spawn(move || {
                        let mut s = 0;
                        on_thread(&mut || s = measured(|| churn_body(1 + t, pairs)));
                        s
                    })
                })
                .collect();
            for w in workers {
                sum = sum.wrapping_add(w.join().expect("worker"));
            }
        }
        "realloc" => {
            let rounds = scaled(20);
            (hooks.on_thread)(&mut || sum = measured(|| realloc_body(2, rounds)));
        }
        "app" => {
            let n = scaled(200_000);
            (hooks.on_thread)(&mut || sum = measured(|| app_body(n)));
        }
        other => {
            eprintln!("unknown workload {other:?}; known: {WORKLOADS:?}");
            std::process::exit(2);
        }
    }
    (sum, start.elapsed().as_nanos(), cpu_ns() - cpu_start)
}

/// The `main` of every allocator binary: `BIN WORKLOAD`.
pub fn bench_main(alloc_name: &str, hooks: Hooks) {
    let args: Vec<String> = std::env::args().collect();
    let Some(workload) = args.get(1) else {
        eprintln!("usage: {alloc_name} WORKLOAD   (one of {WORKLOADS:?})");
        std::process::exit(2);
    };
    let (checksum, ns, cpu) = run_workload(workload, &hooks);
    let info = (hooks.info)();
    println!(
        "alloc={alloc_name} workload={workload} scale={} checksum={checksum} ns={ns} cpu_ns={cpu} maxrss_kb={}{}{}",
        scale_pct(),
        max_rss_kb(),
        if info.is_empty() { "" } else { " " },
        info
    );
}
