//! Display width of text, following `github.com/mattn/go-runewidth` v0.0.16
//! (non East-Asian mode), which docker's fork of text/tabwriter uses to
//! measure cells.
//!
//! go-runewidth measures grapheme clusters (via `rivo/uniseg`): a cluster is
//! as wide as its first rune of non-zero width. Cluster boundaries are
//! approximated here (extending marks, ZWJ sequences, regional-indicator
//! pairs, Hangul jamo); this is exact for ASCII and common text.

use super::width_tables::{COMBINING, DOUBLEWIDTH, GRAPHEME_EXTEND, NARROW};

const NONPRINT: &[(u32, u32)] = &[
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x070F, 0x070F),
    (0x180B, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x206A, 0x206F),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xFFFE, 0xFFFF),
];

fn in_table(c: u32, table: &[(u32, u32)]) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Width of a single character in terminal cells (0, 1 or 2).
pub(crate) fn char_width(ch: char) -> usize {
    let c = ch as u32;
    if c < 0x20 || (0x7F..=0x9F).contains(&c) || c == 0xAD {
        0
    } else if c < 0x300 || in_table(c, NARROW) {
        1
    } else if in_table(c, NONPRINT) || in_table(c, COMBINING) {
        0
    } else if in_table(c, DOUBLEWIDTH) {
        2
    } else {
        1
    }
}

fn is_regional_indicator(c: u32) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&c)
}

fn hangul_kind(c: u32) -> u8 {
    match c {
        0x1100..=0x115F | 0xA960..=0xA97C => b'L',
        0x1160..=0x11A7 | 0xD7B0..=0xD7C6 => b'V',
        0x11A8..=0x11FF | 0xD7CB..=0xD7FB => b'T',
        0xAC00..=0xD7A3 => {
            if (c - 0xAC00).is_multiple_of(28) {
                b'2' // LV syllable
            } else {
                b'3' // LVT syllable
            }
        }
        _ => 0,
    }
}

/// Whether `next` continues the grapheme cluster whose previous char is `prev`.
fn continues_cluster(prev: char, next: char, ri_count: usize) -> bool {
    let (p, n) = (prev as u32, next as u32);
    if p == 0x0D && n == 0x0A {
        return true;
    }
    if prev.is_control() || next.is_control() {
        return false;
    }
    if in_table(n, GRAPHEME_EXTEND) || n == 0x200D || (0xFE00..=0xFE0F).contains(&n) {
        return true;
    }
    if p == 0x200D {
        return true;
    }
    if is_regional_indicator(p) && is_regional_indicator(n) {
        return ri_count % 2 == 1;
    }
    matches!(
        (hangul_kind(p), hangul_kind(n)),
        (b'L', b'L' | b'V' | b'2' | b'3') | (b'V' | b'2', b'V' | b'T') | (b'T' | b'3', b'T')
    )
}

/// Display width of `s`, as go-runewidth's `StringWidth` computes it.
pub(crate) fn str_width(s: &str) -> usize {
    let mut width = 0;
    let mut cluster_width = 0;
    let mut prev: Option<char> = None;
    let mut ri_count = 0;
    for ch in s.chars() {
        let joins = prev.is_some_and(|p| continues_cluster(p, ch, ri_count));
        if !joins {
            width += cluster_width;
            cluster_width = 0;
            ri_count = 0;
        }
        if is_regional_indicator(ch as u32) {
            ri_count += 1;
        }
        if cluster_width == 0 {
            cluster_width = char_width(ch);
        }
        prev = Some(ch);
    }
    width + cluster_width
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("", 0)]
    #[case("bridge", 6)]
    #[case("NETWORK ID", 10)]
    #[case("■㈱の世界①", 10)]
    #[case("スター☆", 7)]
    #[case("つのだ☆HIRO", 11)]
    #[case("e\u{301}", 1)]
    #[case("\u{1F1EF}\u{1F1F5}", 1)]
    #[case("\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", 2)]
    #[case("a\tb", 2)]
    #[case("한국어", 6)]
    fn widths(#[case] s: &str, #[case] w: usize) {
        assert_eq!(str_width(s), w, "{s:?}");
    }
}
