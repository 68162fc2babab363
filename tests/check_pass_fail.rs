//! LeakCheck: passes when the test frees what it allocated; fails with the report of what
//! is still live otherwise (sizes, names); `finish` returns the report; filters apply.

use leaktracker::{LeakCheck, TrackingAllocator};
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    // Passes: everything freed.
    let check = LeakCheck::start("frees_everything");
    let v: Vec<u64> = black_box((0..1000).collect());
    let s = black_box(format!("{}", v.len()));
    drop((v, s));
    check.assert_no_leaks();

    // Fails: one block of 4096 bytes is still live.
    let mut kept = Vec::with_capacity(1);
    let check = LeakCheck::start("keeps_a_buffer");
    kept.push(black_box(vec![0u8; 4096]));
    let err = catch_unwind(AssertUnwindSafe(|| check.assert_no_leaks())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.starts_with(
            "leak check `keeps_a_buffer` failed: 1 block (4.0 KiB) allocated since the check started is still live\n"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("kind leak-check: 1 resource, 1 block, 4.0 KiB"),
        "{msg}"
    );
    assert!(msg.contains("  keeps_a_buffer  age "), "{msg}");
    // The block is no longer tagged once the check has ended.
    let check = LeakCheck::start("after");
    check.assert_no_leaks();
    drop(kept);

    // Blocks made by other threads are not the check's.
    let check = LeakCheck::start("other_thread");
    let h = std::thread::spawn(|| Box::leak(Box::new([0u8; 32])).len());
    assert_eq!(h.join().unwrap(), 32);
    check.assert_no_leaks();

    // `finish` and `report` give the report without panicking; filters.
    let mut check = LeakCheck::start("with_filters");
    let leaked = black_box(vec![1u8; 10]);
    assert_eq!(check.report().leaks().len(), 1);
    check.min_age(Duration::from_secs(3600));
    let r = check.finish();
    assert!(r.is_empty());
    assert_eq!(r.younger().resources, 1);
    assert_eq!(r.younger().bytes, 10);
    let mut check = LeakCheck::start("ignored");
    check.ignore("kind:leak-check".parse().unwrap());
    let leaked2 = black_box(vec![1u8; 10]);
    check.assert_no_leaks();
    drop((leaked, leaked2));

    // A check dropped without an assertion ends quietly.
    {
        let _check = LeakCheck::start("dropped");
        std::mem::forget(black_box(vec![0u8; 8]));
    }
    let check = LeakCheck::start("clean_after_drop");
    check.assert_no_leaks();
}
