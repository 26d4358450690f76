//! Natural string ordering, matching `github.com/fvbommel/sortorder`'s
//! `NaturalLess` (v1.1.0), which `docker network ls` uses to sort by name.
//!
//! Non-digit runs compare bytewise; runs of ASCII digits compare
//! numerically, and when two numbers are equal the one with fewer leading
//! zeros sorts first (`"2" < "02"`). Digits sort before non-digits.

use std::cmp::Ordering;

/// Returns true when `a` sorts strictly before `b` in natural order.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (s1, s2) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while i < s1.len() && j < s2.len() {
        let (c1, c2) = (s1[i], s2[j]);
        let (d1, d2) = (c1.is_ascii_digit(), c2.is_ascii_digit());
        if d1 != d2 {
            // A digit sorts before any other byte.
            return d1;
        }
        if !d1 {
            if c1 != c2 {
                return c1 < c2;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Both sides start a number: skip leading zeros, then take the digits.
        while i < s1.len() && s1[i] == b'0' {
            i += 1;
        }
        while j < s2.len() && s2[j] == b'0' {
            j += 1;
        }
        let (start1, start2) = (i, j);
        while i < s1.len() && s1[i].is_ascii_digit() {
            i += 1;
        }
        while j < s2.len() && s2[j].is_ascii_digit() {
            j += 1;
        }
        let (n1, n2) = (&s1[start1..i], &s2[start2..j]);
        if n1.len() != n2.len() {
            return n1.len() < n2.len();
        }
        if n1 != n2 {
            return n1 < n2;
        }
        // Same value: fewer leading zeros first. Everything before the
        // number was equal, so the position after the zeros decides.
        if start1 != start2 {
            return start1 < start2;
        }
    }
    s1.len() < s2.len()
}

/// Total-order comparator built on [`natural_less`], for `sort_by`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    if natural_less(a, b) {
        Ordering::Less
    } else if natural_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    // The test table of fvbommel/sortorder's natsort_test.go.
    #[rstest]
    #[case("0", "00", true)]
    #[case("00", "0", false)]
    #[case("aa", "ab", true)]
    #[case("ab", "abc", true)]
    #[case("abc", "ad", true)]
    #[case("ab1", "ab2", true)]
    #[case("ab1c", "ab1c", false)]
    #[case("ab12", "abc", true)]
    #[case("ab2a", "ab10", true)]
    #[case("a0001", "a0000001", true)]
    #[case("a10", "abcdefgh2", true)]
    #[case("аб2аб", "аб10аб", true)]
    #[case("2аб", "3аб", true)]
    #[case("a1b", "a01b", true)]
    #[case("a01b", "a1b", false)]
    #[case("ab01b", "ab010b", true)]
    #[case("ab010b", "ab01b", false)]
    #[case("a01b001", "a001b01", true)]
    #[case("a001b01", "a01b001", false)]
    #[case("a1", "a1x", true)]
    #[case("1ax", "1b", true)]
    #[case("1b", "1ax", false)]
    #[case("082", "83", true)]
    #[case("083a", "9a", false)]
    #[case("9a", "083a", true)]
    #[case("", "", false)]
    #[case("", "a", true)]
    #[case("a", "", false)]
    fn natural_less_table(#[case] a: &str, #[case] b: &str, #[case] less: bool) {
        assert_eq!(natural_less(a, b), less, "natural_less({a:?}, {b:?})");
    }

    #[test]
    fn sorts_like_sortorder() {
        let mut v = vec!["abc5", "abc1", "abc01", "ab", "abc10", "abc2"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["ab", "abc1", "abc01", "abc2", "abc5", "abc10"]);
    }

    #[test]
    fn docker_list_sort_golden() {
        // cli/command/network/testdata/network-list-sort.golden
        let mut v = vec!["network-2-foo", "network-1-foo", "network-10-foo"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["network-1-foo", "network-2-foo", "network-10-foo"]);
    }
}
