//! Giving freed heap memory back to the operating system.
//!
//! Sessions free their traffic buffers once quiet (see `proto::tunnel`), but glibc's allocator
//! keeps freed memory in its arenas, so the process RSS would stay at its traffic peak. The event
//! loop calls [`give_back`] (at most once a second, only after something was freed) to return
//! free pages: `malloc_trim(0)` on glibc; elsewhere the allocator decides on its own.

/// Returns free heap pages to the OS where the allocator supports it.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; it takes no
    // pointers from us and is safe to call from the thread that owns the event loop.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
