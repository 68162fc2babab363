//! Fork safety: every lock of the tracker is taken before `fork()` and released after it,
//! in the parent and in the child, so a child never inherits a lock held by a thread that
//! does not exist in it.
//!
//! The lock order, which every path keeps and the prepare handler follows (so it cannot
//! deadlock): the registry lock (`resource.rs`, tracker code only), then a record shard
//! (`records.rs`, which keeps the blocks' stacks beside their records under the same lock;
//! the allocator path holds at most one record shard, and never allocates under it), then
//! a stack-table shard (`stack`, taken with none of the others held). The handler runs
//! before libc takes its own malloc locks
//! for the fork (glibc's come after every handler), and before the prepare handler of an
//! inner allocator that registers its own (jemalloc's): see [`register_once`].

use std::sync::Once;

use crate::resource::{force_unlock_registry, lock_registry_for_fork};

static REGISTER: Once = Once::new();

/// Registers the `pthread_atfork` handlers, once per process. Called by the start-up
/// hook (`exit.rs`), which runs before `main`, before any resource exists and before any
/// tracker lock is taken, but after the inner allocator's first allocation (see there);
/// and, should the hook not have run (a linker that dropped it), by a tracker's first
/// use. (Registering from the top rather than from the registry's lock keeps the modules
/// that own the locks free of this one.)
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
    crate::records::lock_for_fork();
    crate::stack::lock_for_fork();
}

extern "C" fn after() {
    // SAFETY: `prepare` took the registry lock, every record shard lock
    // and the stack-table locks, and forgot the guards; this runs once after the fork, in
    // the parent and in the child.
    unsafe {
        crate::stack::force_unlock_for_fork();
        crate::records::force_unlock_for_fork();
        force_unlock_registry();
    }
}
