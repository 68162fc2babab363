//! Built by `tests/backtrace_profiles.rs` (and `backtrace_profiles_lto.rs`) in one build
//! profile after another: allocates from known user functions (directly, through
//! `Vec` growth, through a `OnceLock` initialiser, on a spawned thread) inside a scope with
//! backtraces on, then prints each stack group of the report, one frame a line:
//! `G <blocks>` opens a group, `F <frame>` follows, innermost first.

use std::hint::black_box;
use std::sync::OnceLock;

use leaktracker::report::LeakReport;
use leaktracker::{Backtraces, LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

pub mod service {
    use super::*;

    pub struct Order {
        pub id: u64,
        pub lines: Vec<u64>,
    }

    /// Allocates the order itself (a `Box`) and its lines (a `Vec` that grows).
    #[inline(never)]
    pub fn create_order(id: u64) -> Box<Order> {
        let mut order = black_box(Box::new(Order {
            id,
            lines: Vec::new(),
        }));
        add_lines(&mut order, black_box(3));
        order
    }

    #[inline(never)]
    pub fn add_lines(order: &mut Order, n: u64) {
        for i in 0..n {
            order.lines.push(black_box(i * order.id));
        }
    }
}

pub mod config {
    use super::*;

    static TABLE: OnceLock<Box<[u32; 32]>> = OnceLock::new();

    #[inline(never)]
    pub fn load_table() -> Box<[u32; 32]> {
        black_box(Box::new([9u32; 32]))
    }

    /// First use fills the static: the allocation's stack passes through `Once`.
    #[inline(never)]
    pub fn table() -> &'static [u32; 32] {
        TABLE.get_or_init(load_table)
    }
}

pub mod worker {
    use super::*;

    #[inline(never)]
    pub fn handle(job: u32) -> Box<[u32; 16]> {
        black_box(Box::new([job; 16]))
    }

    /// Runs `handle` on a new thread with its own scope.
    #[inline(never)]
    pub fn start(tracker: &'static LeakTracker) -> std::thread::JoinHandle<Box<[u32; 16]>> {
        std::thread::spawn(move || {
            let _s = tracker.scope("job-1", "worker");
            handle(black_box(5))
        })
    }
}

static TRACKER: LeakTracker = LeakTracker::new();

fn main() {
    TRACKER.set_backtraces(Some(Backtraces::All));
    let kept = {
        let _s = TRACKER.scope("orders", "service");
        let order = service::create_order(black_box(7));
        let table = config::table();
        (order, table)
    };
    let job = worker::start(&TRACKER).join().unwrap();
    // Every block, one-time ones included: this checks stacks, not the verdict.
    let report = LeakReport::of(&TRACKER).verdict(leaktracker::Verdict::Strict);
    let mut out = String::new();
    for e in report.leaks() {
        for g in &e.stacks {
            out.push_str(&format!("G {}\n", g.blocks));
            for f in &g.frames {
                out.push_str(&format!("F {f}\n"));
            }
        }
    }
    print!("{out}");
    eprint!("{report}");
    drop(black_box((kept, job)));
}
