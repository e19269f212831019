//! Channel names no other test uses.

use std::sync::atomic::{AtomicU32, Ordering};

/// A channel name (also good as a file name) that no other call in this process and no other
/// live process returns: `t<pid>-<tag>-<n>`, with `n` counting the calls in this process.
/// `tag` says which test made the name; it must itself be a valid name part (A-Z a-z 0-9 _ . -).
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
