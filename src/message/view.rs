//! [`Messages`]: every whole message committed at one moment, shown in place by
//! [`MessageReader::peek_some`](super::MessageReader::peek_some).

use super::reader::extent;
use crate::error::Error;
use crate::reader::View;

/// The messages committed when the view was made, in place, oldest first.
/// [`consume`](Self::consume) removes a prefix of them; dropping the view removes nothing.
/// What a peer that ignores the protocol can do to them is as for [`View`]: it cannot make
/// the view reach outside the committed words (every length word was checked when the view
/// was made, and each message is sliced with a checked range).
pub struct Messages<'a> {
    view: View<'a, u64>,
    /// The messages shown.
    count: usize,
}

impl<'a> Messages<'a> {
    /// Shows every whole message of `view` (the committed words from the head).
    pub(super) fn new(view: View<'a, u64>, name: &str) -> Result<Messages<'a>, Error> {
        let (mut at, mut count) = (0, 0);
        while at < view.len() {
            at += extent(&view, at, name)?.1;
            count += 1;
        }
        Ok(Messages { view, count })
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
            let len = usize::try_from(*words.get(at)?).ok()?;
            let n = super::words(len)?;
            let body = words.get(at + 1..at + n)?;
            at += n;
            bytemuck::cast_slice::<u64, u8>(body).get(..len)
        })
        .take(self.count)
    }

    /// Removes the first `k` messages (at most those shown) and returns how many.
    pub fn consume(self, k: usize) -> usize {
        let k = k.min(self.count);
        let words: &[u64] = &self.view;
        let mut at = 0;
        // The length words were checked when the view was made; read again, they are
        // bounded again (a peer that rewrote them garbles what is consumed, nothing more).
        for _ in 0..k {
            let Some(&len) = words.get(at) else { break };
            let n = usize::try_from(len).ok().and_then(super::words);
            at = at.saturating_add(n.unwrap_or(usize::MAX));
        }
        let at = at.min(words.len());
        self.view.consume(at);
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
