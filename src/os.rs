//! The OS calls the tracker makes itself: memory straight from the OS for its own tables
//! (never through the global allocator, so the allocator path can grow them without
//! reentering itself), its warnings on stderr, and the immediate exit.

/// Maps `bytes` of zeroed, private, read-write memory; null when the OS refuses.
pub(crate) fn map_zeroed(bytes: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory;
    // mmap has no other preconditions.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Returns memory from [`map_zeroed`] to the OS.
///
/// # Safety
/// * `ptr` and `bytes` must be exactly a mapping returned by [`map_zeroed`], not yet unmapped,
///   and nothing may use the memory afterwards.
pub(crate) unsafe fn unmap(ptr: *mut u8, bytes: usize) {
    // SAFETY: the caller promises this is a whole live mapping of ours that nobody uses again.
    unsafe { libc::munmap(ptr.cast(), bytes) };
}

/// Writes `bytes` to stderr with `write(2)`: no allocation, no lock, so the allocator
/// path may call it (a closed or failing stderr loses the text).
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live buffer of `bytes.len()` bytes; write has no other
        // preconditions (a closed fd 2 makes it fail).
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            // `last_os_error` reads errno into a code: no allocation.
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Writes `leaktracker: <msg>` as one line on stderr, straight to the file descriptor
/// (no lock, no thread-local: this also runs before `main` and during exit).
pub(crate) fn warn(msg: &str) {
    let _r = crate::guard::Reentrancy::enter();
    write_stderr(format!("leaktracker: {msg}\n").as_bytes());
}

/// Flushes stdio and ends the process with `code` at once (no more exit handlers).
pub(crate) fn exit_now(code: i32) -> ! {
    let _ = std::io::Write::flush(&mut std::io::stderr());
    // SAFETY: fflush(NULL) flushes every C stream; `_exit` ends the process at once.
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(code)
    }
}
