//! Peer: `tracking-allocator`, with an allocation group entered on each worker thread and a
//! tracker that keeps live blocks and bytes per group (what its docs suggest doing with the
//! events: "track the real-time usage of different allocation groups"). It keeps no
//! per-block records: the group id travels in a header it adds to every block.

use std::sync::atomic::{AtomicIsize, Ordering};

use tracking_allocator::{
    AllocationGroupId, AllocationGroupToken, AllocationRegistry, AllocationTracker, Allocator,
};

#[global_allocator]
static ALLOC: Allocator<std::alloc::System> = Allocator::system();

/// Live blocks and bytes of one group, on a cache line of its own.
#[repr(align(64))]
struct GroupCounters {
    blocks: AtomicIsize,
    bytes: AtomicIsize,
}

const GROUPS: usize = 64;
static COUNTERS: [GroupCounters; GROUPS] = [const {
    GroupCounters {
        blocks: AtomicIsize::new(0),
        bytes: AtomicIsize::new(0),
    }
}; GROUPS];

fn counters(id: &AllocationGroupId) -> &'static GroupCounters {
    &COUNTERS[id.as_usize().get() % GROUPS]
}

struct GroupUsage;

impl AllocationTracker for GroupUsage {
    fn allocated(
        &self,
        _addr: usize,
        object_size: usize,
        _wrapped: usize,
        group: AllocationGroupId,
    ) {
        let c = counters(&group);
        c.blocks.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(object_size as isize, Ordering::Relaxed);
    }

    fn deallocated(
        &self,
        _addr: usize,
        object_size: usize,
        _wrapped: usize,
        source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
        let c = counters(&source);
        c.blocks.fetch_sub(1, Ordering::Relaxed);
        c.bytes.fetch_sub(object_size as isize, Ordering::Relaxed);
    }
}

fn on_thread(f: &mut dyn FnMut()) {
    let mut token = AllocationGroupToken::register().expect("register a group");
    let _guard = token.enter();
    f()
}

fn info() -> String {
    let live: isize = COUNTERS
        .iter()
        .map(|c| c.blocks.load(Ordering::Relaxed))
        .sum();
    format!("group_live_blocks={live}")
}

fn main() {
    AllocationRegistry::set_global_tracker(GroupUsage).expect("first tracker");
    AllocationRegistry::enable_tracking();
    leaktracker_bench::bench_main(
        "tracking-allocator",
        leaktracker_bench::Hooks { on_thread, info },
    );
}
