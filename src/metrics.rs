//! Feature `metrics`: the live tagged resources as gauges through the [`metrics`] crate's
//! facade, so that whatever recorder the program installed (a Prometheus exporter, StatsD,
//! OpenTelemetry) publishes them beside its own.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `leaktracker_live_resources` | gauge | `kind` |
//! | `leaktracker_live_bytes` | gauge | `kind` |
//! | `leaktracker_oldest_resource_age_seconds` | gauge | `kind` |
//! | `leaktracker_dropped_records_total` | counter | none |
//! | `leaktracker_dropped_resources_total` | counter | none |
//!
//! Values are set by [`publish`] — call it from a `/metrics` handler before rendering, or
//! let a [`Publisher`] thread call it every interval — never from the allocator path. One
//! call is one pass over the resources (O(resources), no walk over blocks), the same pass
//! as [`LeakTracker::live`](crate::LeakTracker::live), over every tracker.
//!
//! # Bounded labels
//!
//! Only kinds are labels (names are unbounded: one per request or connection). The first
//! [`max_kinds`] kinds seen keep a label of their own for the life of the process; kinds
//! seen after that are added up under `kind="other"`. A kind that has no live resource any
//! more is published as 0 rather than left at its last value, so a series never goes
//! stale and the set of series never shrinks or grows past the cap plus one.
//!
//! What the recorder allocates for a new series is not tagged, even when `publish` runs
//! inside a scope or an instrumented request: it belongs to the recorder, not the request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::guard::Reentrancy;
use crate::resource;

/// The label value for kinds past the cap.
pub const OTHER_KIND: &str = "other";

/// Default of [`max_kinds`].
pub const DEFAULT_MAX_KINDS: usize = 32;

static MAX_KINDS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_KINDS);

/// Kinds with a label of their own, in the order first seen (at most the cap), and
/// whether `other` has been published yet.
static KINDS: Mutex<Labelled> = Mutex::new(Labelled {
    kinds: Vec::new(),
    other: false,
});

struct Labelled {
    kinds: Vec<String>,
    other: bool,
}

/// How many kinds get a label of their own (the rest go to `kind="other"`).
pub fn max_kinds() -> usize {
    MAX_KINDS.load(Ordering::Relaxed)
}

/// Sets [`max_kinds`]. Kinds that already have a label keep it; the cap limits new ones.
pub fn set_max_kinds(n: usize) {
    MAX_KINDS.store(n, Ordering::Relaxed);
}

/// Per kind: live resources, their bytes, the oldest one's age.
#[derive(Default, Clone, Copy)]
struct KindTotals {
    resources: usize,
    bytes: usize,
    oldest: Duration,
}

impl KindTotals {
    fn add(&mut self, o: KindTotals) {
        self.resources = self.resources.saturating_add(o.resources);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.oldest = self.oldest.max(o.oldest);
    }
}

/// Sets every leaktracker metric from the live resources of all trackers, through the
/// recorder installed with the `metrics` crate (nothing happens without one).
pub fn publish() {
    // Nothing allocated here is tagged: the snapshot's strings, the recorder's new series.
    let r = Reentrancy::enter();
    let now = Instant::now();
    let mut per_kind: HashMap<String, KindTotals> = HashMap::new();
    for s in resource::snapshot(&r, None) {
        per_kind.entry(s.kind).or_default().add(KindTotals {
            resources: 1,
            bytes: s.bytes,
            oldest: s.created.age_at(now),
        });
    }
    let cap = max_kinds();
    let mut labelled = KINDS.lock().unwrap_or_else(PoisonError::into_inner);
    // New kinds, oldest resource first among them, take the free label places.
    let mut new: Vec<(&String, &KindTotals)> = per_kind
        .iter()
        .filter(|(k, _)| !labelled.kinds.contains(k))
        .collect();
    new.sort_by(|a, b| b.1.oldest.cmp(&a.1.oldest).then(a.0.cmp(b.0)));
    let mut other = KindTotals::default();
    let mut any_other = false;
    for (kind, t) in new {
        if labelled.kinds.len() < cap && kind != OTHER_KIND {
            labelled.kinds.push(kind.clone());
        } else {
            other.add(*t);
            any_other = true;
        }
    }
    for kind in &labelled.kinds {
        set_kind(kind, per_kind.get(kind).copied().unwrap_or_default());
    }
    if any_other || labelled.other {
        labelled.other = true;
        set_kind(OTHER_KIND, other);
    }
    drop(labelled);
    let st = crate::stats();
    ::metrics::counter!("leaktracker_dropped_records_total").absolute(st.dropped_records);
    ::metrics::counter!("leaktracker_dropped_resources_total").absolute(st.dropped_resources);
}

fn set_kind(kind: &str, t: KindTotals) {
    ::metrics::gauge!("leaktracker_live_resources", "kind" => kind.to_owned())
        .set(t.resources as f64);
    ::metrics::gauge!("leaktracker_live_bytes", "kind" => kind.to_owned()).set(t.bytes as f64);
    ::metrics::gauge!("leaktracker_oldest_resource_age_seconds", "kind" => kind.to_owned())
        .set(t.oldest.as_secs_f64());
}

/// Describes the metrics to the recorder (units and help texts). [`Publisher::start`]
/// calls it; call it yourself before the first [`publish`] otherwise.
pub fn describe() {
    let _r = Reentrancy::enter();
    ::metrics::describe_gauge!(
        "leaktracker_live_resources",
        ::metrics::Unit::Count,
        "Tagged resources that still hold live heap blocks, per kind"
    );
    ::metrics::describe_gauge!(
        "leaktracker_live_bytes",
        ::metrics::Unit::Bytes,
        "Bytes of the live heap blocks of tagged resources, per kind"
    );
    ::metrics::describe_gauge!(
        "leaktracker_oldest_resource_age_seconds",
        ::metrics::Unit::Seconds,
        "Age of the oldest live tagged resource, per kind"
    );
    ::metrics::describe_counter!(
        "leaktracker_dropped_records_total",
        ::metrics::Unit::Count,
        "Block records the record table could not take (their blocks are missing from the counts)"
    );
    ::metrics::describe_counter!(
        "leaktracker_dropped_resources_total",
        ::metrics::Unit::Count,
        "Resources that could not be created (the scopes and tasks behind them tagged nothing)"
    );
}

/// A thread that calls [`publish`] every interval until it is dropped (or
/// [`stop`](Self::stop)ped).
#[derive(Debug)]
pub struct Publisher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Describes the metrics, publishes once now, then every `every` on a thread named
    /// `leaktracker-metrics`.
    ///
    /// # Errors
    /// When the thread cannot be spawned, or `every` is zero
    /// ([`std::io::ErrorKind::InvalidInput`]).
    pub fn start(every: Duration) -> std::io::Result<Publisher> {
        if every.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "leaktracker metrics: the publishing interval must be above zero",
            ));
        }
        describe();
        publish();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("leaktracker-metrics".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let deadline = Instant::now() + every;
                    while !*stopped {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        stopped = cv
                            .wait_timeout(stopped, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    publish();
                    stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                }
            })?;
        Ok(Publisher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (what dropping does).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.halt();
    }
}
