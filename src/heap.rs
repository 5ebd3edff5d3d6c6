//! What `dnsq serve` and `dnsq ingest` ask of the process's allocator
//! (mimalloc, the global allocator `main.rs` sets).
//!
//! **serve.** mimalloc hands memory that is freed back to the kernel a second later
//! (mimalloc 3's `purge_delay`, 1000 ms). A panel's query frees its working
//! memory when it ends, so the next view, a few seconds later as an operator
//! reads the page, had the kernel map and zero those pages again: a change
//! of bucket spent 0.41-0.51 s of its 1.1-1.25 s of CPU in the kernel (10
//! million transactions; docs/DESIGN.md has the figures). The server keeps freed
//! memory for its next queries instead, and hands back only what loading a
//! snapshot freed (Parquet's decoding buffers, the snapshot it replaced).
//!
//! **ingest.** The other way round: an ingest frees a spool's rows and a
//! file's encoders as it writes them, while its other shards fill, and
//! what it frees waits a second before it leaves. Handing it back after
//! 100 ms instead took the peak RSS of a 20 M-packet ingest from 558-575
//! MiB to 523-527 (2 rounds, interleaved), in the same time (41.5-45.5 s
//! against 44.0-44.6 in a noisy spell); at 10 ms, 508-514 MiB but 5-25%
//! slower.
//!
//! `MIMALLOC_PURGE_DELAY` in the environment is the operator's choice and
//! is left alone. In a process whose allocator is not mimalloc (the tests
//! that call the library), these calls touch only mimalloc's own idle
//! state.

use libmimalloc_sys as mi;

/// `mi_option_purge_delay`'s place in mimalloc 3's `mi_option_t`
/// (libmimalloc-sys names no constant for it); a test checks it against
/// the option's documented default.
const PURGE_DELAY: mi::mi_option_t = 15;
/// mimalloc 3's default `purge_delay`, in milliseconds.
const DEFAULT_PURGE_DELAY_MS: std::os::raw::c_long = 1000;

/// How long an ingest lets freed memory wait before handing it back.
const INGEST_PURGE_DELAY_MS: std::os::raw::c_long = 100;

fn operator_chose() -> bool {
    std::env::var_os("MIMALLOC_PURGE_DELAY").is_some()
}

/// Sets the purge delay (-1: never), unless the operator chose one.
fn set_purge_delay(ms: std::os::raw::c_long) {
    if operator_chose() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: sets one of mimalloc's options, as its API allows at any time.
    unsafe {
        mi::mi_option_set(PURGE_DELAY, ms)
    };
}

/// Freed memory goes back to the kernel after [`INGEST_PURGE_DELAY_MS`]:
/// call when an ingest starts.
pub fn release_freed_soon() {
    set_purge_delay(INGEST_PURGE_DELAY_MS);
}

/// Freed memory is handed back to the kernel again, as mimalloc does by
/// default: call before a load whose buffers and predecessor should not
/// stay with the process.
pub fn release_freed() {
    set_purge_delay(DEFAULT_PURGE_DELAY_MS);
}

/// Hands back now what was freed since [`release_freed`], then keeps what
/// is freed from here on for the process to reuse.
pub fn keep_freed() {
    if operator_chose() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: mi_collect is mimalloc's public API, safe to call from any
    // thread at any time.
    unsafe {
        mi::mi_collect(true)
    };
    set_purge_delay(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option at [`PURGE_DELAY`] holds the purge delay: the operator's
    /// value, or mimalloc's default (1000; -1 once a server here kept freed
    /// memory, 100 once an ingest started). Its neighbours' defaults are 0
    /// and 1.
    #[test]
    fn the_purge_delay_option_is_the_one_named() {
        #[allow(unsafe_code)]
        // SAFETY: reads one of mimalloc's options.
        let value = unsafe { mi::mi_option_get(PURGE_DELAY) };
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(chosen) => assert_eq!(value.to_string(), chosen.trim()),
            Err(_) => assert!(
                [DEFAULT_PURGE_DELAY_MS, -1, INGEST_PURGE_DELAY_MS].contains(&value),
                "option {PURGE_DELAY} is {value}: not the purge delay"
            ),
        }
    }
}
