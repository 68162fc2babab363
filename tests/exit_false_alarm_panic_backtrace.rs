//! A panic with RUST_BACKTRACE=1 inside a scope: the hook symbolises a backtrace and
//! caches debug info for good; nothing a panic hook allocates is tagged, so the exit
//! report lists nothing. Also for a hook set by the program and protected again.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    for bt in ["1", "full"] {
        let o = run_fixture(
            &exe,
            "panic_backtrace",
            &[
                ("LEAKTRACKER_REPORT", "stderr"),
                ("LEAKTRACKER_EXIT_CODE", "9"),
                ("RUST_BACKTRACE", bt),
            ],
        );
        let (_, err) = text(&o);
        assert!(err.contains("expected panic"), "{err}");
        assert!(
            err.contains("stack backtrace:"),
            "the backtrace was printed: {err}"
        );
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(err.trim_end().ends_with("): no leaks"), "{err}");
    }
}
