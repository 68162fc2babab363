//! `LeakLayer`: a `tracing-subscriber` layer that tags the allocations made inside spans
//! (feature `tracing`). The per-thread list of entered spans restores tags on exit.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::clock::Timestamp;
use crate::guard::Reentrancy;
use crate::resource::{self, Origin, ResourceId};
use crate::scope::{swap_tag, Hold};
use crate::LeakTracker;

/// Tells layers apart in the per-thread list of entered spans (span ids are only unique
/// within one subscriber).
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// The tracker a layer tags for.
enum TrackerRef {
    Static(&'static LeakTracker),
    Shared(Arc<LeakTracker>),
}

impl TrackerRef {
    fn get(&self) -> &LeakTracker {
        match self {
            TrackerRef::Static(t) => t,
            TrackerRef::Shared(t) => t,
        }
    }
}

/// A [`tracing_subscriber::Layer`] that tags the allocations made inside spans, one
/// resource per span (feature `tracing`).
///
/// Each span becomes one resource of a [`LeakTracker`], created when the span is created:
/// named by the span's name and kinded by its target, or by fields you pick. While a
/// thread is inside the span (between `on_enter` and `on_exit`), everything it allocates
/// is tagged with that resource, exactly as inside a [`LeakTracker::scope`]; blocks that
/// outlive the span stay listed by [`LeakTracker::live`] under the span's name.
///
/// ```
/// # #[global_allocator]
/// # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
/// use leaktracker::{LeakLayer, LeakTracker};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// static TRACKER: LeakTracker = LeakTracker::new();
///
/// # fn main() {
/// let subscriber = tracing_subscriber::registry().with(LeakLayer::new(&TRACKER).name_field("conn"));
/// let leaked = tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!(target: "db", "connection", conn = "conn-7");
///     let _entered = span.enter();
///     Box::leak(Box::new([0u8; 64]))
/// });
/// let live = TRACKER.live();
/// assert_eq!((live[0].name.as_str(), live[0].kind.as_str()), ("conn-7", "db"));
/// assert_eq!((live[0].allocations, live[0].bytes), (1, 64));
/// # let _ = leaked;
/// # }
/// ```
///
/// Entering a span tags like opening a scope: spans nest (the innermost entered span wins),
/// and exiting restores the tag the thread had before, also when spans are exited out of
/// order. A span entered on several threads tags on each of them. A span's resource lives
/// while the span is open or any of its blocks is live.
///
/// Limits, the same as for a scope: what `tracing` itself allocates while a span is entered
/// is tagged too. Most of it is freed with the span (fields other layers format); but
/// `tracing-subscriber`'s registry grows its span storage lazily, one page per thread at a
/// time, and a page that grows while a span is entered (a child span created on a thread
/// that has not created spans before, or more spans open at once on a thread than ever
/// before) stays tagged with that span. Creating a span once on each thread at start-up, or
/// creating child spans before entering the parent, avoids it.
///
/// By default a span's resource is named by the span's name and kinded by its target;
/// [`name_field`](Self::name_field) and [`kind_field`](Self::kind_field) pick a field of
/// the span instead (its value, `Display`ed for strings and `%` values, `Debug`ged
/// otherwise), falling back to the default when the span has no such field. A field
/// recorded later (`span.record(...)` of a field declared `Empty`) renames the resource.
pub struct LeakLayer {
    tracker: TrackerRef,
    name_field: Option<&'static str>,
    kind_field: Option<&'static str>,
    id: u64,
}

impl fmt::Debug for LeakLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakLayer")
            .field("tracker", self.tracker.get())
            .field("name_field", &self.name_field)
            .field("kind_field", &self.kind_field)
            .finish()
    }
}

impl LeakLayer {
    fn with(tracker: TrackerRef) -> LeakLayer {
        LeakLayer {
            tracker,
            name_field: None,
            kind_field: None,
            id: NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A layer that tags for `tracker` (a `static LeakTracker`, or
    /// [`LeakTracker::global`]).
    pub fn new(tracker: &'static LeakTracker) -> LeakLayer {
        LeakLayer::with(TrackerRef::Static(tracker))
    }

    /// A layer that tags for the process-wide tracker, [`LeakTracker::global`].
    pub fn global() -> LeakLayer {
        LeakLayer::new(LeakTracker::global())
    }

    /// A layer that tags for a shared tracker.
    pub fn shared(tracker: Arc<LeakTracker>) -> LeakLayer {
        LeakLayer::with(TrackerRef::Shared(tracker))
    }

    /// Names each span's resource by the value of its field `field` (when it has one)
    /// instead of by the span's name.
    #[must_use]
    pub fn name_field(mut self, field: &'static str) -> LeakLayer {
        self.name_field = Some(field);
        self
    }

    /// Kinds each span's resource by the value of its field `field` (when it has one)
    /// instead of by the span's target.
    #[must_use]
    pub fn kind_field(mut self, field: &'static str) -> LeakLayer {
        self.kind_field = Some(field);
        self
    }

    /// The tracker this layer tags for.
    pub fn tracker(&self) -> &LeakTracker {
        self.tracker.get()
    }

    /// Reads the picked fields out of a span's values. Runs under the reentrancy guard.
    fn pick(&self, record: impl FnOnce(&mut dyn Visit)) -> Picked {
        let mut picked = Picked {
            name_field: self.name_field,
            kind_field: self.kind_field,
            name: None,
            kind: None,
        };
        if self.name_field.is_some() || self.kind_field.is_some() {
            record(&mut picked);
        }
        picked
    }
}

/// The values of the fields a layer names and kinds resources by.
struct Picked {
    name_field: Option<&'static str>,
    kind_field: Option<&'static str>,
    name: Option<String>,
    kind: Option<String>,
}

impl Picked {
    fn set(&mut self, field: &Field, value: impl FnOnce() -> String) {
        let is_name = self.name_field == Some(field.name());
        let is_kind = self.kind_field == Some(field.name());
        if !is_name && !is_kind {
            return;
        }
        let value = value();
        if value.is_empty() {
            return; // an empty name or kind falls back to the default
        }
        match (is_name, is_kind) {
            (true, true) => {
                self.kind = Some(value.clone());
                self.name = Some(value);
            }
            (true, false) => self.name = Some(value),
            _ => self.kind = Some(value),
        }
    }
}

impl Visit for Picked {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, || value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, || format!("{value:?}"));
    }
}

/// What a layer keeps in a span's extensions: the span's resource and the hold that keeps
/// it alive while the span is open (released when the extension is dropped, on close).
struct SpanResource {
    layer: u64,
    res: ResourceId,
    /// The span's hold: the resource stays while the span is open.
    _hold: Hold,
    name: Cow<'static, str>,
    kind: Cow<'static, str>,
    created: Timestamp,
}

impl Drop for SpanResource {
    fn drop(&mut self) {
        // Then the hold goes, as the field drops.
        crate::resource::mark_ended(self.res);
    }
}

/// One span entered on this thread: the tag it replaced, whose hold it keeps, and the
/// span's own resource (the thread's tag holds it while it is the current tag).
struct Entered {
    layer: u64,
    span: u64,
    prev: Option<Hold>,
}

thread_local! {
    /// Spans entered on this thread and not yet exited, innermost last. Grown under the
    /// reentrancy guard, so its buffer is never tagged.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// Makes `res` the current thread's tag, and remembers the tag it replaces for [`leave`].
/// The caller hands over a hold on `res`: the thread's tag owns it from now on.
fn enter(layer: u64, span: u64, res: Hold) {
    let _r = Reentrancy::enter();
    // If the thread is being torn down, nothing is tagged and the hold just goes.
    let _ = ENTERED.try_with(|stack| {
        let prev = swap_tag(Some(res));
        stack.borrow_mut().push(Entered { layer, span, prev });
    });
}

/// Undoes the innermost [`enter`] of `span` on this thread. When it is the innermost entry,
/// the tag it replaced comes back; when spans entered after it are still entered (exited
/// out of order), the next entry will restore that tag instead of this span's.
fn leave(layer: u64, span: u64) {
    let _ = ENTERED.try_with(|stack| {
        let mut stack = stack.borrow_mut();
        let Some(pos) = stack
            .iter()
            .rposition(|e| e.layer == layer && e.span == span)
        else {
            return;
        };
        let gone = stack.remove(pos);
        // The span's tag (or, out of order, the tag the next entry saved: the span's
        // too) is released as it drops here.
        let released = if pos == stack.len() {
            swap_tag(gone.prev)
        } else {
            std::mem::replace(&mut stack[pos].prev, gone.prev)
        };
        drop(released);
    });
}

impl<S> Layer<S> for LeakLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !crate::is_installed() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let _r = Reentrancy::enter();
        let meta = attrs.metadata();
        let picked = self.pick(|v| attrs.record(v));
        let name = picked.name.map_or(Cow::Borrowed(meta.name()), Cow::Owned);
        let kind = picked.kind.map_or(Cow::Borrowed(meta.target()), Cow::Owned);
        let created = Timestamp::now();
        let Some(hold) =
            self.tracker
                .get()
                .new_resource(name.clone(), kind.clone(), Origin::Span, created)
        else {
            return; // no room for another resource: the span tags nothing
        };
        let mut ext = span.extensions_mut();
        if ext.get_mut::<SpanResource>().is_some() {
            // Another `LeakLayer` in the same subscriber tags this span already (the
            // new resource goes with its hold).
            return;
        }
        ext.insert(SpanResource {
            layer: self.id,
            res: hold.id(),
            _hold: hold,
            name,
            kind,
            created,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.name_field.is_none() && self.kind_field.is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let _r = Reentrancy::enter();
        let picked = self.pick(|v| values.record(v));
        if picked.name.is_none() && picked.kind.is_none() {
            return;
        }
        let mut ext = span.extensions_mut();
        let Some(sr) = ext.get_mut::<SpanResource>() else {
            return;
        };
        if sr.layer != self.id {
            return;
        }
        if let Some(n) = picked.name {
            sr.name = Cow::Owned(n);
        }
        if let Some(k) = picked.kind {
            sr.kind = Cow::Owned(k);
        }
        // The span's hold keeps the resource alive; its creation time stays.
        resource::update(sr.res, sr.name.clone(), sr.kind.clone(), sr.created);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let res = {
            let ext = span.extensions();
            let Some(sr) = ext.get::<SpanResource>().filter(|sr| sr.layer == self.id) else {
                return;
            };
            // Alive: the extension holds it (and cannot go while we read it).
            Hold::acquire(sr.res)
        };
        enter(self.id, id.into_u64(), res);
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        leave(self.id, id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut ext = span.extensions_mut();
        if ext
            .get_mut::<SpanResource>()
            .is_some_and(|sr| sr.layer == self.id)
        {
            // Dropping it releases the span's hold; blocks still live keep the resource.
            drop(ext.remove::<SpanResource>());
        }
    }
}
