//! Fork safety: every lock of the tracker is taken before `fork()` and released after it,
//! in the parent and in the child, so a child never inherits a lock held by a thread that
//! does not exist in it.
//!
//! The allocator path holds at most one shard lock at a time and never allocates under
//! it; tracker code takes the registry lock before a shard lock, never the reverse. The
//! prepare handler takes them in that order too, so it cannot deadlock, and it runs before
//! libc takes its own malloc locks for the fork.

use std::sync::Once;

use crate::resource::{force_unlock_registry, lock_registry_for_fork, RECORDS};

static REGISTER: Once = Once::new();

/// Registers the `pthread_atfork` handlers, once per process. Called by tracker code
/// (never by the allocator path) before the first resource exists.
pub(crate) fn register_once() {
    REGISTER.call_once(|| {
        // SAFETY: the three handlers are `extern "C"` functions that never unwind; they
        // stay valid for the life of the process.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(after), Some(after));
        }
    });
}

extern "C" fn prepare() {
    lock_registry_for_fork();
    RECORDS.lock_all();
    crate::stack::lock_for_fork();
}

extern "C" fn after() {
    // SAFETY: `prepare` took every shard lock, the stack-table locks and the registry lock and forgot the guards;
    // this runs once after the fork, in the parent and in the child.
    unsafe {
        crate::stack::force_unlock_for_fork();
        RECORDS.force_unlock_all();
        force_unlock_registry();
    }
}
