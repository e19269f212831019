//! The mirror mapping of a segment, and the ring's geometry.
//!
//! A segment is mapped as its header, then its data region, then the data region again right
//! after it: any window of up to `capacity` elements that starts in the first copy is then
//! one contiguous range, so a `put` or `get` is one `memcpy` even across the wrap.

use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::Arc;

use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Error, ErrorKind};
use crate::header::MAX_DATA_LEN;

/// One segment's mirror mapping: `header_len` bytes of header, then the `data_len` bytes of
/// the data region twice. Owns the address range and unmaps it on drop (as memmap2's
/// `MmapInner` does).
pub(super) struct Mapping {
    base: NonNull<u8>,
    len: usize,
    header_len: usize,
}

// SAFETY: a `Mapping` is an address range that this value alone owns (no other value unmaps
// or remaps it); the pointer carries no thread affinity. What is done with the memory is the
// business of its users (atomics for the header, slots granted by the ring protocol).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the raw addresses.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `header_len + data_len` bytes of `file`, then the data region a second time right
    /// after it.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `file` is at least `header_len + data_len` bytes long (the
    /// kernel raises SIGBUS on access beyond the end of a file), that both lengths are
    /// non-zero page multiples, and that `header_len + 2 * data_len` fits in `isize`.
    pub(super) unsafe fn mirrored(
        file: &OwnedFd,
        header_len: usize,
        data_len: usize,
    ) -> rustix::io::Result<Mapping> {
        let total = header_len + 2 * data_len;
        // Reserve the whole window first so the two file mappings land back to back and
        // nothing else can be mapped in between.
        // SAFETY: an anonymous PROT_NONE reservation at an address of the kernel's choosing
        // touches no existing mapping.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )?
        };
        let Some(base) = NonNull::new(base.cast::<u8>()) else {
            // mmap never returns null on success; treat it as a failure anyway.
            return Err(rustix::io::Errno::NOMEM);
        };
        // From here on the reservation is owned: an error below unmaps it in `drop`.
        let map = Mapping {
            base,
            len: total,
            header_len,
        };
        let rw = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: `base..base+total` is our own fresh reservation, so MAP_FIXED replaces only
        // pages we own. The file covers `header_len + data_len` bytes (caller's contract).
        unsafe {
            rustix::mm::mmap(
                base.as_ptr().cast(),
                header_len + data_len,
                rw,
                MapFlags::SHARED | MapFlags::FIXED,
                file,
                0,
            )?;
        }
        // SAFETY: as above; the second copy maps file bytes `header_len..header_len+data_len`
        // at the end of the reservation (`header_len + data_len < total`).
        unsafe {
            rustix::mm::mmap(
                base.as_ptr().add(header_len + data_len).cast(),
                data_len,
                rw,
                MapFlags::SHARED | MapFlags::FIXED,
                file,
                header_len as u64,
            )?;
        }
        Ok(map)
    }

    /// Start of the mapping (the header; page aligned).
    #[inline]
    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Start of the first copy of the data region.
    #[inline]
    pub(super) fn data(&self) -> *mut u8 {
        // SAFETY: header_len < len, so the result is inside the mapping.
        unsafe { self.base.as_ptr().add(self.header_len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+len` is the range reserved in `mirrored`, owned by self; users
        // hold the `Segment` (in an Arc) that owns self, or a `KeepMapped` of it, while they
        // touch it, so this runs when nothing can touch it any more.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Keeps a channel's memory mapped in this process, and nothing else; from
/// [`ChannelIo::keep_mapped`](crate::ChannelIo::keep_mapped).
///
/// Memory lent out of the ring can outlive the code that lent it: the Python package hands
/// out a zero-copy view as an array, and a `memoryview` of that array may be kept for as
/// long as its holder likes. The memory must then stay mapped until the last such reference
/// goes, or a stale one would reach an unmapped page. A channel handle (a clone of the
/// [`ChannelIo`](crate::ChannelIo)) would keep it mapped, but it also keeps the channel
/// *open* in this process: the channel is not removed while the handle lives, and a
/// reference kept until the process exits (or never freed) leaves the channel's files
/// behind in the shared-memory directory.
///
/// A `KeepMapped` holds the address range only: no descriptor, no lock. The channel's
/// handles and ends close and drop as if it did not exist; the last handle in the last
/// process removes a finished or unused channel as usual, and its files are unlinked while
/// the memory stays mapped here (unlinking does not unmap). The range is unmapped when the
/// last handle and the last `KeepMapped` of it are gone.
///
/// It promises only that the memory is mapped, not what it holds: while the channel lives
/// its slots are reused as the protocol says (a stale reference reads old or reused
/// values), and after a removal nothing writes them any more.
///
/// ```
/// use shmchan::{ChannelIo, Options};
/// # let name = format!("doc-keep-mapped-{}", std::process::id());
/// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
/// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
/// w.blocking_put(b"abcd")?;
/// let view = r.blocking_peek(4)?;
/// let shown = view.as_ptr();
/// drop(view); // consumes nothing
/// let mapped = chan.keep_mapped();
/// assert!(mapped.contains(shown, 4) && !mapped.contains(b"abcd".as_ptr(), 4));
/// r.close(); // finished: the last handle removes the channel
/// drop((w, chan));
/// assert!(ChannelIo::<u8>::open(&name).is_err());
/// // SAFETY: `mapped` keeps the range `shown` points into mapped; nothing writes it now.
/// let kept = unsafe { std::slice::from_raw_parts(shown, 4) };
/// assert_eq!(kept, b"abcd");
/// drop(mapped);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KeepMapped {
    map: Arc<Mapping>,
}

impl KeepMapped {
    pub(super) fn new(map: Arc<Mapping>) -> KeepMapped {
        KeepMapped { map }
    }

    /// True if `len` bytes from `ptr` lie inside the mapping kept (the header and both
    /// copies of the data region).
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let start = self.map.base.as_ptr() as usize;
        let at = ptr as usize;
        at >= start
            && at
                .checked_add(len)
                .is_some_and(|end| end <= start + self.map.len)
    }
}

impl std::fmt::Debug for KeepMapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepMapped")
            .field("base", &self.map.base)
            .field("len", &self.map.len)
            .finish()
    }
}

/// The page size, in bytes.
pub(crate) fn page_size() -> u64 {
    // From libc, not rustix: rustix's own backend finds the page size in the auxiliary
    // vector, and its check of the vDSO's ELF base crashes under valgrind (rustix #1559),
    // which would keep users from memchecking or profiling programs that use shmchan.
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(4096)
}

/// Rounds a requested capacity up so the ring's byte size is a multiple of both the page size
/// and the element size (the mirror mapping needs whole pages; slots must not straddle the
/// wrap). Returns (capacity in elements, bytes).
pub(crate) fn ring_geometry(
    name: &str,
    requested: usize,
    elem: u64,
    page: u64,
) -> Result<(u64, u64), Error> {
    let bad = |reason: String| Error::invalid(ErrorKind::InvalidCapacity, name, requested, reason);
    if requested == 0 {
        return Err(bad("a channel holds at least one element".into()));
    }
    let unit = lcm(page, elem).ok_or_else(|| bad("element size too large".into()))?;
    let bytes = (requested as u64)
        .checked_mul(elem)
        .and_then(|b| b.checked_next_multiple_of(unit))
        .filter(|b| *b <= MAX_DATA_LEN)
        .ok_or_else(|| {
            bad(format!(
                "the ring would exceed {MAX_DATA_LEN} bytes (elements of {elem} bytes)"
            ))
        })?;
    if (bytes as u128) * 2 + (1u128 << 20) > isize::MAX as u128 {
        return Err(bad("the ring does not fit in this address space".into()));
    }
    Ok((bytes / elem, bytes))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: u64, b: u64) -> Option<u64> {
    (a / gcd(a, b)).checked_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rounds_to_pages_and_elements() {
        assert_eq!(ring_geometry("t", 1, 4, 4096).unwrap(), (1024, 4096));
        assert_eq!(ring_geometry("t", 1025, 4, 4096).unwrap(), (2048, 8192));
        // 24-byte elements: lcm(4096, 24) = 12288.
        assert_eq!(ring_geometry("t", 1, 24, 4096).unwrap(), (512, 12288));
        assert!(ring_geometry("t", 0, 4, 4096).is_err());
        assert!(ring_geometry("t", usize::MAX, 4, 4096).is_err());
        assert!(ring_geometry("t", (1 << 40) / 4 + 1, 4, 4096).is_err());
    }
}
