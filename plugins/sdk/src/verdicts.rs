//! [`Verdicts`]: a filter's verdicts on a batch, packed as the host takes
//! them (contract 0.1.3's `batch.decide`).

use crate::types::Verdict;

/// How many of the latest texts a new drop reason or message is compared
/// with before it is added: a filter's drops in one batch mostly share a
/// handful of reasons.
const RECENT_TEXTS: usize = 8;

/// A filter's verdicts on a batch, one per event, in order: what
/// [`Filter::filter_into`](crate::Filter::filter_into) fills.
///
/// [`drop`](Verdicts::drop) and [`redact`](Verdicts::redact) borrow their
/// text: each distinct text is kept once, and the whole batch goes to the
/// host in one value, so a drop costs no `String`.
///
/// ```
/// use aetherius_sdk::{Verdict, Verdicts};
///
/// let mut verdicts = Verdicts::default();
/// verdicts.keep();
/// verdicts.drop("type Normal not allowed");
/// verdicts.drop("type Normal not allowed");
/// assert_eq!(verdicts.len(), 3);
/// assert_eq!(verdicts.to_vec()[2], Verdict::Drop("type Normal not allowed".into()));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Verdicts {
    /// One per event: 0 keep, 1 drop, 2 redact.
    kinds: Vec<u8>,
    /// One per event not kept: the index of its text.
    text_of: Vec<u32>,
    /// Where each distinct text ends in `text`.
    ends: Vec<u32>,
    text: String,
}

impl Verdicts {
    /// Room for `events` verdicts.
    pub fn with_capacity(events: usize) -> Self {
        Verdicts {
            kinds: Vec::with_capacity(events),
            ..Verdicts::default()
        }
    }

    /// Keeps the next event.
    pub fn keep(&mut self) {
        self.kinds.push(0);
    }

    /// Drops the next event, saying why.
    pub fn drop(&mut self, reason: &str) {
        self.kinds.push(1);
        let index = self.intern(reason);
        self.text_of.push(index);
    }

    /// Keeps the next event with its message replaced by `message`.
    pub fn redact(&mut self, message: &str) {
        self.kinds.push(2);
        let index = self.intern(message);
        self.text_of.push(index);
    }

    /// Adds a [`Verdict`] as the next event's.
    pub fn push(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Keep => self.keep(),
            Verdict::Drop(reason) => self.drop(reason),
            Verdict::Redact(message) => self.redact(message),
        }
    }

    /// How many verdicts there are.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The verdicts as values, in order (for tests).
    pub fn to_vec(&self) -> Vec<Verdict> {
        let mut text_of = self.text_of.iter();
        self.kinds
            .iter()
            .map(|kind| match kind {
                0 => Verdict::Keep,
                1 => Verdict::Drop(self.text(*text_of.next().expect("one per drop")).to_owned()),
                _ => Verdict::Redact(
                    self.text(*text_of.next().expect("one per redaction"))
                        .to_owned(),
                ),
            })
            .collect()
    }

    /// Text `index`.
    fn text(&self, index: u32) -> &str {
        packed_text(&self.ends, &self.text, index)
    }

    /// The index of `text`: one of the latest texts if it is the same, else
    /// a new one added at the end.
    fn intern(&mut self, text: &str) -> u32 {
        let count = self.ends.len();
        for index in (count.saturating_sub(RECENT_TEXTS)..count).rev() {
            if same(self.text(index as u32).as_bytes(), text.as_bytes()) {
                return index as u32;
            }
        }
        self.text.push_str(text);
        self.ends.push(self.text.len() as u32);
        count as u32
    }

    /// Hands the verdicts to the host (`batch.decide`).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn hand_over(self) {
        use crate::bindings::filter::aetherius::plugin::batch::{self, TextColumn, VerdictColumn};
        batch::decide(&VerdictColumn {
            kinds: self.kinds,
            text_of: self.text_of,
            texts: TextColumn {
                ends: self.ends,
                text: self.text,
            },
        });
    }
}

/// Text `index` of texts packed one after the other in `text`, `ends[i]`
/// where text `i` ends (the contract's `text-column`).
pub(crate) fn packed_text<'a>(ends: &[u32], text: &'a str, index: u32) -> &'a str {
    let index = index as usize;
    let start = match index {
        0 => 0,
        _ => ends[index - 1] as usize,
    };
    &text[start..ends[index] as usize]
}

/// `a == b`, eight bytes at a time. A guest's `memcmp` (wasi-libc's)
/// compares a byte per step, and every drop compares its reason here.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
    if !a_words
        .by_ref()
        .zip(b_words.by_ref())
        .all(|(x, y)| word(x) == word(y))
    {
        return false;
    }
    // The last 0-7 bytes, zero-padded into one word.
    let tail = |rest: &[u8]| {
        let mut padded = [0; 8];
        padded[..rest.len()].copy_from_slice(rest);
        u64::from_le_bytes(padded)
    };
    tail(a_words.remainder()) == tail(b_words.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_distinct_text_is_kept_once() {
        let mut verdicts = Verdicts::with_capacity(6);
        verdicts.keep();
        verdicts.drop("a");
        verdicts.redact("secret=[REDACTED]");
        verdicts.drop("a");
        verdicts.push(&Verdict::Drop("b".into()));
        verdicts.push(&Verdict::Keep);
        assert_eq!(verdicts.len(), 6);
        assert_eq!(verdicts.ends.len(), 3);
        assert_eq!(verdicts.text_of, [0, 1, 0, 2]);
        assert_eq!(
            verdicts.to_vec(),
            [
                Verdict::Keep,
                Verdict::Drop("a".into()),
                Verdict::Redact("secret=[REDACTED]".into()),
                Verdict::Drop("a".into()),
                Verdict::Drop("b".into()),
                Verdict::Keep,
            ]
        );
    }

    #[test]
    fn texts_are_the_same_only_byte_for_byte() {
        for (a, b) in [
            ("", ""),
            ("type Normal not allowed", "type Normal not allowed"),
            ("12345678", "12345678"),
        ] {
            assert!(same(a.as_bytes(), b.as_bytes()), "{a} {b}");
        }
        for (a, b) in [
            ("", "a"),
            ("type Normal not allowed", "type Normal not allowee"),
            ("type Normal not allowed", "tYpe Normal not allowed"),
            ("12345678", "1234567"),
            ("a\0", "a"),
        ] {
            assert!(!same(a.as_bytes(), b.as_bytes()), "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_text_older_than_the_latest_few_is_added_again() {
        let mut verdicts = Verdicts::default();
        for reason in ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r0"] {
            verdicts.drop(reason);
        }
        // `r0` is nine texts back: kept a second time, still right.
        assert_eq!(verdicts.ends.len(), 10);
        assert_eq!(verdicts.to_vec()[9], Verdict::Drop("r0".into()));
        verdicts.drop("r8");
        assert_eq!(verdicts.ends.len(), 10);
    }
}
