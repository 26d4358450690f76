//! A sparse, chunked bitmap over the offsets of a subnet, built for "lowest free offset in a
//! range" queries.
//!
//! Layout: offsets are grouped in chunks of 4096 (64 words of 64 bits, 512 bytes). A chunk
//! exists only while at least one of its bits is set, and keeps a 64-bit summary of which of
//! its words are full. So:
//! - memory follows the number of addresses in use, not the subnet size: an empty /8 costs
//!   nothing, a /16 with every address taken about 8 KiB, a full /8 about 2 MiB (a dense
//!   bitmap would cost 2 MiB for a /8 and 512 MiB for a /0 from the start);
//! - the lowest-free scan skips a full chunk after one summary test and a full word after one
//!   bit test, and an absent chunk is free at once: in a nearly full /16 an allocation looks at
//!   16 summaries and a handful of words.
//!
//! Chunks live in a `BTreeMap` so that a scan walks only the chunks that exist, in order.

use std::collections::BTreeMap;

const WORD_BITS: u32 = 64;
const WORDS_PER_CHUNK: usize = 64;
const CHUNK_SHIFT: u32 = 12;
const CHUNK_BITS: u64 = 1 << CHUNK_SHIFT;

#[derive(Clone, Debug)]
struct Chunk {
    words: [u64; WORDS_PER_CHUNK],
    /// Bit `i` is set when `words[i]` is all ones.
    full_words: u64,
    ones: u32,
}

impl Chunk {
    const EMPTY: Self = Self {
        words: [0; WORDS_PER_CHUNK],
        full_words: 0,
        ones: 0,
    };

    /// Lowest clear bit in `[lo, hi)`, with `lo < hi <= CHUNK_BITS`.
    fn first_clear(&self, lo: u32, hi: u32) -> Option<u32> {
        let (first_word, last_word) = (lo / WORD_BITS, (hi - 1) / WORD_BITS);
        let in_range = (u64::MAX >> (WORD_BITS - 1 - last_word)) & (u64::MAX << first_word);
        let mut candidates = !self.full_words & in_range;
        while candidates != 0 {
            let w = candidates.trailing_zeros();
            let mut free = !self.words[w as usize];
            if w == first_word {
                free &= u64::MAX << (lo % WORD_BITS);
            }
            if w == last_word {
                free &= u64::MAX >> (WORD_BITS - 1 - (hi - 1) % WORD_BITS);
            }
            if free != 0 {
                return Some(w * WORD_BITS + free.trailing_zeros());
            }
            candidates &= candidates - 1;
        }
        None
    }
}

/// A set of `u32` offsets; see the module documentation for the layout and its costs.
#[derive(Clone, Debug, Default)]
pub(crate) struct SparseBitmap {
    chunks: BTreeMap<u32, Box<Chunk>>,
}

fn split(bit: u32) -> (u32, usize, u64) {
    let within = bit & (CHUNK_BITS as u32 - 1);
    (
        bit >> CHUNK_SHIFT,
        (within / WORD_BITS) as usize,
        1u64 << (within % WORD_BITS),
    )
}

impl SparseBitmap {
    pub(crate) fn contains(&self, bit: u32) -> bool {
        let (chunk, word, mask) = split(bit);
        self.chunks
            .get(&chunk)
            .is_some_and(|c| c.words[word] & mask != 0)
    }

    /// Sets `bit`; returns false if it was already set.
    pub(crate) fn insert(&mut self, bit: u32) -> bool {
        let (chunk, word, mask) = split(bit);
        let c = self
            .chunks
            .entry(chunk)
            .or_insert_with(|| Box::new(Chunk::EMPTY));
        if c.words[word] & mask != 0 {
            return false;
        }
        c.words[word] |= mask;
        c.ones += 1;
        if c.words[word] == u64::MAX {
            c.full_words |= 1 << word;
        }
        true
    }

    /// Clears `bit`; returns false if it was not set.
    pub(crate) fn remove(&mut self, bit: u32) -> bool {
        let (chunk, word, mask) = split(bit);
        let Some(c) = self.chunks.get_mut(&chunk) else {
            return false;
        };
        if c.words[word] & mask == 0 {
            return false;
        }
        c.words[word] &= !mask;
        c.full_words &= !(1 << word);
        c.ones -= 1;
        if c.ones == 0 {
            self.chunks.remove(&chunk);
        }
        true
    }

    /// Lowest clear offset in `[lo, hi)` (`hi` may be 2^32).
    pub(crate) fn first_clear(&self, lo: u64, hi: u64) -> Option<u32> {
        if lo >= hi {
            return None;
        }
        let first = u32::try_from(lo >> CHUNK_SHIFT).ok()?;
        let last = u32::try_from((hi - 1) >> CHUNK_SHIFT).ok()?;
        let start_of = |chunk: u32| (u64::from(chunk) << CHUNK_SHIFT).max(lo);
        let mut next = first;
        for (&index, chunk) in self.chunks.range(first..=last) {
            if index > next {
                // Chunk `next` holds no set bit at all.
                return u32::try_from(start_of(next)).ok();
            }
            let base = u64::from(index) << CHUNK_SHIFT;
            let local_lo = lo.saturating_sub(base) as u32;
            let local_hi = (hi - base).min(CHUNK_BITS) as u32;
            if let Some(bit) = chunk.first_clear(local_lo, local_hi) {
                return u32::try_from(base + u64::from(bit)).ok();
            }
            next = index + 1;
        }
        (next <= last)
            .then(|| u32::try_from(start_of(next)).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn empty_bitmap_is_free_everywhere() {
        let b = SparseBitmap::default();
        assert_eq!(b.first_clear(0, 1), Some(0));
        assert_eq!(b.first_clear(5000, 1 << 32), Some(5000));
        assert_eq!(b.first_clear(7, 7), None);
    }

    #[test]
    fn skips_full_words_and_chunks() {
        let mut b = SparseBitmap::default();
        for bit in 0..(3 * CHUNK_BITS as u32 + 70) {
            assert!(b.insert(bit));
        }
        assert_eq!(b.first_clear(0, 1 << 16), Some(3 * CHUNK_BITS as u32 + 70));
        assert_eq!(b.first_clear(0, 3 * CHUNK_BITS + 70), None);
        assert!(b.remove(4096 + 65));
        assert_eq!(b.first_clear(0, 1 << 16), Some(4096 + 65));
        assert_eq!(b.first_clear(4096 + 66, 1 << 16), Some(3 * 4096 + 70));
        assert!(!b.remove(4096 + 65));
        assert!(!b.insert(0));
    }

    #[test]
    fn top_of_a_slash_zero_is_reachable() {
        let mut b = SparseBitmap::default();
        let top = u32::MAX;
        assert_eq!(b.first_clear(u64::from(top), 1 << 32), Some(top));
        assert!(b.insert(top));
        assert!(b.contains(top));
        assert_eq!(b.first_clear(u64::from(top), 1 << 32), None);
    }

    proptest! {
        #[test]
        fn matches_a_set_model(
            ops in proptest::collection::vec((any::<bool>(), 0u32..20_000), 0..300),
            lo in 0u64..20_000,
            len in 0u64..20_000,
        ) {
            let mut bitmap = SparseBitmap::default();
            let mut model = BTreeSet::new();
            for (set, bit) in ops {
                if set {
                    prop_assert_eq!(bitmap.insert(bit), model.insert(bit));
                } else {
                    prop_assert_eq!(bitmap.remove(bit), model.remove(&bit));
                }
            }
            let hi = lo + len;
            let expected = (lo..hi).map(|b| b as u32).find(|b| !model.contains(b));
            prop_assert_eq!(bitmap.first_clear(lo, hi), expected);
            for bit in &model {
                prop_assert!(bitmap.contains(*bit));
            }
        }
    }
}
