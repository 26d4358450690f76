//! Minimal Go `time.Time` support: RFC 3339 parsing (as `json.Unmarshal`
//! does for a `time.Time`), `Time.String()` and RFC3339Nano output.
//!
//! Zones: `Z` (and a zero offset) parse as UTC, printed `+0000 UTC`.
//! A non-zero offset becomes a fixed zone without a name, which Go prints as
//! `+0200 +0200`. (Go would use the CLI machine's local zone name, e.g.
//! `CEST`, when the offset matches the local zone; this port assumes the
//! local zone is UTC.)

/// A point in time with a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoTime {
    /// Seconds since the Unix epoch (UTC).
    pub(crate) unix: i64,
    /// Nanoseconds within the second.
    pub(crate) nanos: u32,
    /// Offset east of UTC, in seconds.
    pub(crate) offset: i32,
}

/// Seconds from 0001-01-01 to 1970-01-01.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down local time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl GoTime {
    /// Go's zero `time.Time` (0001-01-01 00:00:00 UTC).
    pub(crate) const ZERO: GoTime = GoTime {
        unix: -UNIX_TO_INTERNAL,
        nanos: 0,
        offset: 0,
    };

    /// Parses an RFC 3339 timestamp (`2006-01-02T15:04:05.999999999Z07:00`).
    pub(crate) fn parse_rfc3339(s: &str) -> Option<GoTime> {
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let part = b.get(from..from + len)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if b[10] != b'T' && b[10] != b't' {
            return None;
        }
        let year = num(0, 4)?;
        let month = num(5, 2)? as u32;
        let day = num(8, 2)? as u32;
        let hour = num(11, 2)?;
        let minute = num(14, 2)?;
        let second = num(17, 2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            let mut v: u32 = digits.parse().ok()?;
            for _ in digits.len()..9 {
                v *= 10;
            }
            nanos = v;
        }
        let offset: i32 = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = num(i + 1, 2)?;
                let om = num(i + 4, 2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = (oh * 3600 + om * 60) as i32;
                if *sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let local = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(GoTime {
            unix: local - offset as i64,
            nanos,
            offset,
        })
    }

    /// The time's wall clock in its own zone.
    pub(crate) fn civil(&self) -> Civil {
        let local = self.unix + self.offset as i64;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    fn frac(&self) -> String {
        if self.nanos == 0 {
            return String::new();
        }
        let s = format!(".{:09}", self.nanos);
        s.trim_end_matches('0').to_string()
    }

    fn offset_digits(&self, colon: bool) -> String {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let m = self.offset.unsigned_abs() / 60;
        if colon {
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        } else {
            format!("{sign}{:02}{:02}", m / 60, m % 60)
        }
    }

    /// Zone abbreviation as Go prints it for `MST`.
    pub(crate) fn zone_name(&self) -> String {
        if self.offset == 0 {
            "UTC".to_string()
        } else {
            self.offset_digits(false)
        }
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub(crate) fn go_string(&self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{} {} {}",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            self.frac(),
            self.offset_digits(false),
            self.zone_name()
        )
    }

    /// RFC3339Nano, as `Time.MarshalJSON` writes it (without quotes).
    pub(crate) fn rfc3339_nano(&self) -> String {
        let c = self.civil();
        let zone = if self.offset == 0 {
            "Z".to_string()
        } else {
            self.offset_digits(true)
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            self.frac(),
            zone
        )
    }

    /// Go's internal representation `{wall ext loc}` as `%v` prints an
    /// unexported `time.Time` field (no monotonic reading, `loc` nil for UTC).
    pub(crate) fn raw_fields(&self) -> String {
        let loc = if self.offset == 0 {
            "<nil>"
        } else {
            "0xc000010000"
        };
        format!(
            "{{{} {} {}}}",
            self.nanos,
            self.unix + UNIX_TO_INTERNAL,
            loc
        )
    }

    /// Whether this is Go's zero time.
    pub(crate) fn is_zero(&self) -> bool {
        self.unix == -UNIX_TO_INTERNAL && self.nanos == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "2016-01-01T00:00:00Z",
        "2016-01-01 00:00:00 +0000 UTC",
        "2016-01-01T00:00:00Z"
    )]
    #[case(
        "2024-05-06T07:08:09.123456789Z",
        "2024-05-06 07:08:09.123456789 +0000 UTC",
        "2024-05-06T07:08:09.123456789Z"
    )]
    #[case(
        "2024-05-06T07:08:09.1200Z",
        "2024-05-06 07:08:09.12 +0000 UTC",
        "2024-05-06T07:08:09.12Z"
    )]
    #[case(
        "2024-02-29T23:30:00.5+02:00",
        "2024-02-29 23:30:00.5 +0200 +0200",
        "2024-02-29T23:30:00.5+02:00"
    )]
    #[case(
        "2023-12-31T20:00:00-05:30",
        "2023-12-31 20:00:00 -0530 -0530",
        "2023-12-31T20:00:00-05:30"
    )]
    #[case(
        "0001-01-01T00:00:00Z",
        "0001-01-01 00:00:00 +0000 UTC",
        "0001-01-01T00:00:00Z"
    )]
    fn parse_and_print(#[case] input: &str, #[case] string: &str, #[case] nano: &str) {
        let t = GoTime::parse_rfc3339(input).expect("parses");
        assert_eq!(t.go_string(), string);
        assert_eq!(t.rfc3339_nano(), nano);
    }

    #[rstest]
    #[case("")]
    #[case("2016-01-01")]
    #[case("2016-13-01T00:00:00Z")]
    #[case("2015-02-29T00:00:00Z")]
    #[case("2016-01-01T00:00:00")]
    #[case("2016-01-01T00:00:00.Z")]
    #[case("2016-01-01T00:00:00+0100")]
    fn rejects(#[case] input: &str) {
        assert_eq!(GoTime::parse_rfc3339(input), None);
    }

    #[test]
    fn zero_time() {
        assert_eq!(GoTime::ZERO.go_string(), "0001-01-01 00:00:00 +0000 UTC");
        assert!(GoTime::ZERO.is_zero());
        assert_eq!(GoTime::ZERO.raw_fields(), "{0 0 <nil>}");
        let t = GoTime::parse_rfc3339("2016-01-01T00:00:00Z").expect("parses");
        assert_eq!(t.unix, 1_451_606_400);
    }
}
