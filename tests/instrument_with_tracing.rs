//! `LeakTracker::instrument(fut, name, kind)` with `tracing::Instrument` in scope. The trait
//! has a by-value `instrument(self, span)` for every sized type, so on a receiver that is
//! a `LeakTracker` place (an owned tracker, a `static`), an `Arc` or a `Box`, method
//! resolution picks the trait's method before the inherent `&self` one.
//!
//! 1. The forms whose receiver is already a `&LeakTracker` compile and tag as they should:
//!    `LeakTracker::global().instrument(..)`, `(&tracker).instrument(..)`,
//!    `LeakTracker::instrument(&tracker, ..)`, a `&'static LeakTracker`, `(&*arc).instrument`
//!    and `arc.as_ref().instrument`.
//! 2. The plain call on an owned tracker, a `static` tracker, an `Arc` and a `Box` cannot
//!    compile while the trait is in scope: method resolution tries the by-value receiver
//!    (where the trait's method is) before the `&self` one (where the inherent method is),
//!    and no change of ours can reorder that without renaming the API's method. The crate
//!    documents the forms of 1; this test proves the limitation is exactly what the docs
//!    say (each of the four calls fails with E0061, the trait's one-argument method), so
//!    the docs are revisited the day it changes.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;
use std::sync::Arc;
#[allow(unused_imports)]
use tracing::Instrument;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// A future that leaks one block of `size` bytes when polled.
async fn leak(size: usize) {
    black_box(Box::leak(black_box(vec![1u8; size]).into_boxed_slice()));
}

fn entry(name: &str, size: usize) -> (String, String, usize, usize) {
    (name.to_owned(), "task".to_owned(), 1, size)
}

const OWNED_FORMS: &str = r#"
use leaktracker::LeakTracker;
use std::sync::Arc;
#[allow(unused_imports)]
use tracing::Instrument;

static TRACKER: LeakTracker = LeakTracker::new();

fn main() {
    let owned = LeakTracker::new();
    let _a = owned.instrument(async { 1 }, "owned", "task");
    let _b = TRACKER.instrument(async { 2 }, "static", "task");
    let arc = Arc::new(LeakTracker::new());
    let _c = arc.instrument(async { 3 }, "arc", "task");
    let boxed = Box::new(LeakTracker::new());
    let _d = boxed.instrument(async { 4 }, "box", "task");
}
"#;

/// The `tracing` rlib cargo built for this test, for the fixture program.
fn tracing_rlib() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libtracing-") && n.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("the tracing rlib next to the test binary")
        .path()
}

#[test]
// The explicit borrows are the point: without them `tracing::Instrument::instrument` is
// picked (clippy does not see the trait in scope).
#[allow(clippy::needless_borrow, clippy::explicit_auto_deref)]
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    // 1. The forms that compile today, each tagging what its future allocates.
    let global = LeakTracker::global();
    rt.block_on(global.instrument(leak(101), "global", "task"));
    rt.block_on(LeakTracker::global().instrument(leak(102), "global-call", "task"));
    let global_live = counts_with_kind(global);
    assert!(
        global_live.contains(&entry("global", 101)),
        "{global_live:?}"
    );
    assert!(
        global_live.contains(&entry("global-call", 102)),
        "{global_live:?}"
    );

    let tracker = LeakTracker::new();
    rt.block_on((&tracker).instrument(leak(103), "by-ref", "task"));
    rt.block_on(LeakTracker::instrument(&tracker, leak(104), "path", "task"));
    assert_eq!(
        counts_with_kind(&tracker),
        vec![entry("by-ref", 103), entry("path", 104)]
    );

    let leaked: &'static LeakTracker = Box::leak(Box::new(LeakTracker::new()));
    rt.block_on(leaked.instrument(leak(105), "static-ref", "task"));
    assert_eq!(counts_with_kind(leaked), vec![entry("static-ref", 105)]);

    let arc = Arc::new(LeakTracker::new());
    rt.block_on((&*arc).instrument(leak(106), "arc-deref", "task"));
    rt.block_on(arc.as_ref().instrument(leak(107), "arc-as-ref", "task"));
    assert_eq!(
        counts_with_kind(&arc),
        vec![entry("arc-deref", 106), entry("arc-as-ref", 107)]
    );

    // The tracing span of `tracing::Instrument` still works beside it.
    let span = tracing::info_span!("beside");
    assert_eq!(rt.block_on(async { 5 }.instrument(span)), 5);

    // 2. The plain call on an owned tracker, a static one, an Arc and a Box: the trait's
    // method is picked, as documented.
    let tracing = tracing_rlib();
    let arg = format!("tracing={}", tracing.display());
    let (o, _) = try_build_fixture_with("instrument_owned_forms", OWNED_FORMS, &["--extern", &arg]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "the owned forms compiled: update the docs\n{err}"
    );
    assert_eq!(
        err.matches("error[E0061]: this method takes 1 argument but 3 arguments were supplied")
            .count(),
        4,
        "{err}"
    );
    assert!(err.contains("expected `Span`"), "{err}");
}
