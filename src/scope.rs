//! The tag-and-hold protocol, in one place.
//!
//! A resource lives while it has live blocks or holds. The rule every tagging client
//! (scopes, instrumented futures, `LeakCheck`, the tracing layer, `track`) keeps: **the
//! thread's current tag owns one hold on its resource.** Here that rule is made by types:
//!
//! * [`Hold`] is one hold: taken by `acquire` (or adopted from `resource::create`, which
//!   makes a resource with its caller's hold), released when dropped. It cannot be copied.
//! * The thread's tag is changed only by [`swap_tag`] and [`switch_context`], which take the
//!   new tag's `Hold` and give back the previous tag's: a tag installed without a hold, or a
//!   replaced tag whose hold is forgotten, does not compile.
//! * [`TagGuard`] installs a tag and restores exactly the one it replaced when dropped in
//!   the same tagging context (elsewhere it only lets its saved hold go).
//! * [`ContextFrame`] moves a future's tag onto the thread while it is polled or dropped,
//!   and back into the future afterwards.
//!
//! The raw tag word is `guard`'s (one thread-local word the allocator reads); nothing else
//! writes it.

use crate::guard;
use crate::resource::{hot, ResourceId};

/// One hold on a resource: it stays alive (record, name, counters) until this is dropped.
#[must_use = "dropping a hold releases it"]
pub(crate) struct Hold(ResourceId);

impl Hold {
    /// Takes a new hold on `res`, which something else keeps alive while this runs (a
    /// block record read under its shard lock, or another hold).
    #[inline]
    pub(crate) fn acquire(res: ResourceId) -> Hold {
        hot(res).acquire_hold();
        Hold(res)
    }

    /// The hold `resource::create` took for its caller on the resource it made.
    #[inline]
    pub(crate) fn adopt_created(res: ResourceId) -> Hold {
        Hold(res)
    }

    /// The resource held.
    #[inline]
    pub(crate) fn id(&self) -> ResourceId {
        self.0
    }

    /// Gives the hold to the thread's tag word (which owns it from now on).
    #[inline]
    fn into_tag(self) -> u32 {
        let id = self.0;
        std::mem::forget(self);
        id.raw()
    }

    /// Takes back the hold that the tag word owned for tag `raw`.
    #[inline]
    fn from_tag(raw: u32) -> Hold {
        Hold(tag_resource(raw))
    }
}

/// The resource of a tag read from the thread's tag word.
#[inline(always)]
fn tag_resource(raw: u32) -> ResourceId {
    // SAFETY: the tag word is written only by `guard::swap_tag` and
    // `guard::switch_context`, whose contract is that a tag is the `raw()` of a
    // `ResourceId` (this module's callers pass `Hold::into_tag`'s).
    unsafe { ResourceId::from_raw(raw) }
}

/// The resource the thread's state `st` is tagged with, if any (for the allocator).
#[inline(always)]
pub(crate) fn current_tag(st: guard::State) -> Option<ResourceId> {
    st.tag().map(tag_resource)
}

impl Drop for Hold {
    #[inline]
    fn drop(&mut self) {
        hot(self.0).release_hold();
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hold({:?})", self.0)
    }
}

/// Makes `tag` the thread's current tag; returns the previous tag with its hold.
#[inline]
pub(crate) fn swap_tag(tag: Option<Hold>) -> Option<Hold> {
    // The tag word owned the previous tag's hold; it passes to the returned `Hold`.
    // SAFETY: `Hold::into_tag` gives the `raw()` of the held `ResourceId` and its hold to
    // the word (`swap_tag`'s contract).
    unsafe { guard::swap_tag(tag.map(Hold::into_tag)) }.map(Hold::from_tag)
}

/// Makes `tag` the current tag and `ctx` the current tagging context; returns the
/// previous ones (the tag with its hold).
#[inline]
pub(crate) fn switch_context(tag: Option<Hold>, ctx: u32) -> (Option<Hold>, u32) {
    // SAFETY: as in `swap_tag` above.
    let (prev, prev_ctx) = unsafe { guard::switch_context(tag.map(Hold::into_tag), ctx) };
    (prev.map(Hold::from_tag), prev_ctx)
}

/// Makes a resource the current thread's tag and restores the previous tag on drop.
///
/// Installing a tag hands the previous tag's hold to this guard, and dropping the guard
/// releases the current tag's hold and gives the saved one back. So every tag a thread
/// can hold keeps its resource alive, whatever order guards drop in.
///
/// A guard belongs to the tagging context it was opened in: the thread's own, or the
/// instrumented future being polled. Dropped in that context, it restores the tag it
/// replaced there. Dropped anywhere else (a guard that a future returned, or one moved
/// into a future), the tag it replaced belongs to a context that is not running: it
/// changes nothing of the running one and only gives up its hold.
pub(crate) struct TagGuard {
    prev: Option<Hold>,
    ctx: u32,
}

impl TagGuard {
    /// Installs `res` (its hold goes to the thread's tag).
    pub(crate) fn install(res: Option<Hold>) -> TagGuard {
        TagGuard {
            prev: swap_tag(res),
            ctx: guard::context(),
        }
    }

    /// The resource of the tag this guard will restore.
    pub(crate) fn restores(&self) -> Option<ResourceId> {
        self.prev.as_ref().map(Hold::id)
    }
}

impl Drop for TagGuard {
    fn drop(&mut self) {
        if guard::context() == self.ctx {
            // The current tag's hold is released here, as the returned `Hold` drops.
            drop(swap_tag(self.prev.take()));
        }
        // Otherwise (or after the swap) `self.prev` drops with its hold.
    }
}

/// The thread's tag and context while an instrumented future is polled or dropped: put
/// back when it goes (also while unwinding), after taking the future's current tag back
/// into the future.
pub(crate) struct ContextFrame<'a> {
    cur: &'a mut Option<Hold>,
    outer: (Option<Hold>, u32),
}

impl<'a> ContextFrame<'a> {
    /// Moves the future's tag `cur` (and its hold) onto the thread, in context `ctx`; the
    /// thread's tag (and its hold) waits in the frame.
    pub(crate) fn enter(cur: &'a mut Option<Hold>, ctx: u32) -> ContextFrame<'a> {
        let outer = switch_context(cur.take(), ctx);
        ContextFrame { cur, outer }
    }
}

impl Drop for ContextFrame<'_> {
    fn drop(&mut self) {
        *self.cur = switch_context(self.outer.0.take(), self.outer.1).0;
    }
}
