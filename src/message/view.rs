//! [`Messages`]: every whole message committed at one moment, shown in place by
//! [`MessageReader::peek_some`](super::MessageReader::peek_some).

use super::reader::{extent, read_once};
use crate::error::Error;
use crate::reader::View;

/// Messages committed when the view was made (the first, and those after it within 64 KiB),
/// in place, oldest first.
/// [`consume`](Self::consume) removes a prefix of them; dropping the view removes nothing.
/// What a peer that ignores the protocol can do to them is as for [`View`]: it cannot make
/// the view reach outside the committed words (every length word was checked when the view
/// was made, and each message is sliced with a checked range).
pub struct Messages<'a> {
    view: View<'a, u64>,
    /// The messages shown.
    count: usize,
    /// The words they take.
    words: usize,
}

/// The most words of messages a view shows (64 KiB), beyond its first message: a view
/// walks the length words it shows, so a reader that takes a few at a time from a full
/// ring does not walk the whole ring each time.
const SHOWN_WORDS: usize = 8192;

impl<'a> Messages<'a> {
    /// Shows the whole messages of `view` (the committed words from the head): the first,
    /// and those after it within [`SHOWN_WORDS`], at most `max` (and at least one, if there
    /// is one). A corrupt length word is an error if it is the first; after a message, the
    /// view ends before it (the next view reports it).
    pub(super) fn new(view: View<'a, u64>, name: &str, max: usize) -> Result<Messages<'a>, Error> {
        let (mut at, mut count) = (0, 0);
        while at < view.len() && (count == 0 || count < max) {
            let n = match extent(&view, at, name) {
                Ok((_, n)) => n,
                Err(_) if count > 0 => break,
                Err(e) => return Err(e),
            };
            if count > 0 && at + n > SHOWN_WORDS {
                break;
            }
            at += n;
            count += 1;
        }
        Ok(Messages {
            view,
            count,
            words: at,
        })
    }

    /// The messages shown.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if no message is shown (only from the non-waiting `try_peek_some`).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The messages, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let words: &[u64] = &self.view;
        let mut at = 0;
        std::iter::from_fn(move || {
            let len = usize::try_from(read_once(words.get(at)?)).ok()?;
            let n = super::words(len)?;
            let body = words.get(at + 1..at + n)?;
            at += n;
            bytemuck::cast_slice::<u64, u8>(body).get(..len)
        })
        .take(self.count)
    }

    /// Removes the first `k` messages (at most those shown) and returns how many (0 in a
    /// process that inherited the reader through `fork`, where nothing is removed).
    pub fn consume(self, k: usize) -> usize {
        let k = k.min(self.count);
        let at = if k == self.count {
            self.words
        } else {
            // The length words were checked when the view was made; read again, they are
            // bounded again (a peer that rewrote them garbles what is consumed, nothing
            // more), and never past the messages shown.
            let words: &[u64] = &self.view;
            let mut at = 0usize;
            for _ in 0..k {
                let Some(w) = words.get(at) else { break };
                let n = usize::try_from(read_once(w)).ok().and_then(super::words);
                at = at.saturating_add(n.unwrap_or(usize::MAX));
            }
            at.min(self.words)
        };
        if self.view.consume(at) == 0 && at > 0 {
            return 0;
        }
        k
    }
}

impl std::fmt::Debug for Messages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("count", &self.count)
            .finish()
    }
}
