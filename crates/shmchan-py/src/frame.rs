//! The frame of a Python value in a message of an object channel: its pickle (protocol 5)
//! and its out-of-band buffers, laid out so that each buffer is copied once, straight from
//! the value's memory into the ring, and can be lent in place on the way out.
//!
//! ```text
//! offset 0    b"PKL5"
//!        4    u32  the number of buffers, B
//!        8    u64  the pickle's length, P
//!        16   B × (u64 offset, u64 length) of each buffer, from the message's start
//!        16 + 16 B   the pickle's P bytes
//!        then the buffers, each where its offset says (the writer starts each on a
//!        64-byte boundary of the ring, for SIMD loads of the arrays made over it)
//! ```
//!
//! Integers are native-endian, as the channel's own words: a channel is of one machine.
//! Everything in a frame comes from the peer: [`parse`] checks every offset and length
//! against the message, so a garbled frame is an error, never a read outside it.

use std::ops::Range;

/// The first bytes of every frame.
pub(crate) const MAGIC: [u8; 4] = *b"PKL5";

/// Bytes of the fixed part (magic, buffer count, pickle length).
const FIXED: usize = 16;

/// Bytes of one buffer's entry in the table.
const ENTRY: usize = 16;

/// The boundary each buffer starts on, in the ring's address space.
const ALIGN: usize = 64;

/// The most bytes a frame of a `pickle` of `pickle` bytes and `buffers` of these lengths
/// takes (the padding before each buffer is at most `ALIGN - 1`); `None` on overflow.
pub(crate) fn room(pickle: usize, buffers: impl Iterator<Item = usize>) -> Option<usize> {
    let mut n = FIXED.checked_add(pickle)?;
    for b in buffers {
        n = n
            .checked_add(ENTRY)?
            .checked_add(ALIGN - 1)?
            .checked_add(b)?;
    }
    Some(n)
}

/// Writes the frame of `pickle` and `buffers` at the start of `out` (at least [`room`]
/// bytes); returns the bytes it takes. `base`: the address of `out[0]`, from which each
/// buffer's padding to a 64-byte boundary is reckoned.
pub(crate) fn write(out: &mut [u8], base: usize, pickle: &[u8], buffers: &[&[u8]]) -> usize {
    let table = FIXED + ENTRY * buffers.len();
    out[..4].copy_from_slice(&MAGIC);
    // The count fits: `room` took 16 bytes of entry for each, within a ring's length.
    out[4..8].copy_from_slice(&(buffers.len() as u32).to_ne_bytes());
    out[8..16].copy_from_slice(&(pickle.len() as u64).to_ne_bytes());
    let mut at = table;
    out[at..at + pickle.len()].copy_from_slice(pickle);
    at += pickle.len();
    for (i, b) in buffers.iter().enumerate() {
        let pad = (ALIGN - (base.wrapping_add(at) % ALIGN)) % ALIGN;
        out[at..at + pad].fill(0);
        at += pad;
        let entry = FIXED + ENTRY * i;
        out[entry..entry + 8].copy_from_slice(&(at as u64).to_ne_bytes());
        out[entry + 8..entry + 16].copy_from_slice(&(b.len() as u64).to_ne_bytes());
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    }
    at
}

/// Where the pickle and the buffers of the frame `msg` are; a description of what is wrong
/// with it otherwise.
pub(crate) fn parse(msg: &[u8]) -> Result<(Range<usize>, Vec<Range<usize>>), String> {
    let word = |at: usize| -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&msg[at..at + 8]);
        u64::from_ne_bytes(b)
    };
    if msg.len() < FIXED || msg[..4] != MAGIC {
        return Err(format!(
            "a message of {} bytes that is not a pickled value (no PKL5 frame)",
            msg.len()
        ));
    }
    let mut count = [0u8; 4];
    count.copy_from_slice(&msg[4..8]);
    let count = u32::from_ne_bytes(count) as usize;
    // Bounded by the message: no table longer than it is believed (nor allocated).
    let table_end = count
        .checked_mul(ENTRY)
        .and_then(|t| t.checked_add(FIXED))
        .filter(|&t| t <= msg.len())
        .ok_or_else(|| {
            format!(
                "{count} buffers announced in a message of {} bytes",
                msg.len()
            )
        })?;
    let within = |start: u64, len: u64, what: &str| -> Result<Range<usize>, String> {
        let end = start.checked_add(len).filter(|&e| e <= msg.len() as u64);
        match end {
            Some(end) if start >= table_end as u64 => Ok(start as usize..end as usize),
            _ => Err(format!(
                "{what} at {start}, {len} bytes, outside the {} bytes of the message",
                msg.len()
            )),
        }
    };
    let pickle = within(table_end as u64, word(8), "the pickle")?;
    let buffers = (0..count)
        .map(|i| {
            let entry = FIXED + ENTRY * i;
            within(word(entry), word(entry + 8), "a buffer")
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The reader copies each buffer: buffers that overlap (as no writer lays them out) could
    // make it copy far more than the message holds.
    let total = buffers
        .iter()
        .try_fold(0usize, |n, b| n.checked_add(b.len()));
    if total.is_none_or(|t| t > msg.len() - table_end) {
        return Err(format!(
            "buffers of more bytes in all than the {} bytes of the message",
            msg.len()
        ));
    }
    Ok((pickle, buffers))
}
