//! `LeakCheck`: a leak assertion for tests.
//!
//! A check started at the top of a test tags everything the test's thread allocates (a
//! scope on a private tracker); asserting it at the end panics with the report of what is
//! still live, or passes.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::guard::Reentrancy;
use crate::report::{IgnorePattern, LeakReport};
use crate::tracker::OpenScope;
use crate::LeakTracker;

/// Checks that a test frees what it allocates on its thread.
///
/// ```
/// # #[global_allocator]
/// # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
/// use leaktracker::LeakCheck;
/// # fn main() {
/// let check = LeakCheck::start("parses_config");
/// let v: Vec<u64> = (0..100).collect();
/// assert_eq!(v.len(), 100);
/// drop(v);
/// check.assert_no_leaks(); // panics with a report if a block made above is still live
/// # }
/// ```
///
/// Only the current thread's allocations are tagged (other threads', and blocks that a
/// nested scope of another tracker takes, are not). The check's resource is named after
/// the test, of kind `leak-check`. Avoid false alarms (see "False alarms" in
/// [`crate::report`]): fill thread-locals before the check starts, join the threads you
/// spawn inside it, and in tests run with libtest's output capture, print something
/// before the check starts (the capture buffer is allocated by the first print).
#[must_use = "assert the check at the end of the test with `assert_no_leaks`"]
pub struct LeakCheck {
    /// The check's scope (`None` once ended); dropped before the tracker (field order).
    scope: Option<OpenScope>,
    /// The check's private tracker.
    tracker: LeakTracker,
    name: Cow<'static, str>,
    ignore: Vec<IgnorePattern>,
    min_age: Duration,
}

impl fmt::Debug for LeakCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LeakCheck {
    /// Starts tagging what this thread allocates, as one resource named `name`.
    pub fn start(name: impl Into<Cow<'static, str>>) -> LeakCheck {
        let (tracker, name) = {
            let _r = Reentrancy::enter();
            // Allocations std makes once, done now so that they are not tagged: the
            // stdout buffer and the thread's handle; and the panic hook wrapper.
            let _ = std::io::stdout();
            let _ = std::thread::current();
            crate::exit::protect_panic_hook();
            let name: Cow<'static, str> = match name.into() {
                Cow::Owned(s) => Cow::Owned(String::from(s.as_str())),
                b => b,
            };
            (LeakTracker::new(), name)
        };
        let scope = tracker.open_scope(name.clone(), Cow::Borrowed("leak-check"));
        LeakCheck {
            scope: Some(scope),
            tracker,
            name,
            ignore: Vec::new(),
            min_age: Duration::ZERO,
        }
    }

    /// Does not fail on resources this pattern matches (`kind:…` / `name:…`).
    pub fn ignore(&mut self, pattern: IgnorePattern) -> &mut LeakCheck {
        let _r = Reentrancy::enter();
        self.ignore.push(pattern);
        self
    }

    /// Fails only on resources older than `age`.
    pub fn min_age(&mut self, age: Duration) -> &mut LeakCheck {
        self.min_age = age;
        self
    }

    /// What the check has tagged that is still live, now (the check goes on). Judged as
    /// at the end of the check: what its open scope holds is listed.
    pub fn report(&self) -> LeakReport {
        LeakReport::of(&self.tracker)
            .at_exit(true)
            .min_age(self.min_age)
            .ignore_all(self.ignore.iter().cloned())
    }

    /// Ends the check and returns the report of what is still live.
    pub fn finish(mut self) -> LeakReport {
        drop(self.scope.take());
        self.report()
    }

    /// Ends the check; panics with the report when a block allocated since
    /// [`start`](Self::start) on this thread is still live.
    #[track_caller]
    pub fn assert_no_leaks(self) {
        let name = {
            let _r = Reentrancy::enter();
            self.name.to_string()
        };
        let report = self.finish();
        if !report.is_empty() {
            let msg = {
                let _r = Reentrancy::enter();
                let t = report.totals();
                format!(
                    "leak check `{name}` failed: {} block{} ({}) allocated since the check started {} still live\n{report}",
                    t.allocations,
                    if t.allocations == 1 { "" } else { "s" },
                    crate::units::Bytes(t.bytes),
                    if t.allocations == 1 { "is" } else { "are" },
                )
            };
            panic!("{msg}");
        }
    }
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        drop(self.scope.take());
        // The tracker goes next (clearing its tags), under the guard: its own frees are
        // not the test's.
        let _r = Reentrancy::enter();
        drop(std::mem::take(&mut self.tracker));
    }
}
