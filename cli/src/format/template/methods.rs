//! Methods callable on modelled values: the `network ls` context methods,
//! `SubHeaderContext.Label`, and common `time.Time` methods.

use std::rc::Rc;

use super::funcs::{ParamTy, Sig};
use super::value::{GoType, SliceVal, Val, encode_json};
use crate::format::gotime::GoTime;

const NO_ARGS: Sig = Sig {
    params: &[],
    variadic: None,
};
const ONE_STR: Sig = Sig {
    params: &[ParamTy::Str],
    variadic: None,
};

/// Signature of method `name` on `recv`, if it has one.
pub(crate) fn lookup(recv: &Val, name: &str) -> Option<Sig> {
    match recv {
        Val::NetCtx(_) => match name {
            "ID" | "Name" | "Driver" | "Scope" | "IPv4" | "IPv6" | "Internal" | "Labels"
            | "CreatedAt" | "FullHeader" | "MarshalJSON" => Some(NO_ARGS),
            "Label" => Some(ONE_STR),
            _ => None,
        },
        Val::HeaderCtx(_) => (name == "Label").then_some(ONE_STR),
        Val::Time(_) => match name {
            "String" | "Unix" | "UnixNano" | "UnixMilli" | "UnixMicro" | "Year" | "Day"
            | "Hour" | "Minute" | "Second" | "Nanosecond" | "YearDay" | "Month" | "Weekday"
            | "IsZero" | "UTC" => Some(NO_ARGS),
            "Format" => Some(ONE_STR),
            _ => None,
        },
        Val::Month(_) | Val::Weekday(_) => (name == "String").then_some(NO_ARGS),
        _ => None,
    }
}

fn arg_str(args: &[Val]) -> &str {
    args.first().and_then(Val::as_string_kind).unwrap_or("")
}

fn b(v: bool) -> Val {
    Val::str(if v { "true" } else { "false" })
}

/// Calls method `name` on `recv` (which [`lookup`] accepted).
pub(crate) fn call(recv: &Val, name: &str, args: &[Val]) -> Result<Val, String> {
    match recv {
        Val::NetCtx(c) => Ok(match name {
            "ID" => Val::str(c.id()),
            "Name" => Val::str(c.name.as_str()),
            "Driver" => Val::str(c.driver.as_str()),
            "Scope" => Val::str(c.scope.as_str()),
            "IPv4" => b(c.ipv4),
            "IPv6" => b(c.ipv6),
            "Internal" => b(c.internal),
            "Labels" => Val::str(c.labels()),
            "Label" => Val::str(c.label(arg_str(args))),
            "CreatedAt" => Val::str(c.created.go_string()),
            "FullHeader" => Val::Nil,
            "MarshalJSON" => {
                let mut out = String::new();
                encode_json(&mut out, recv, true)?;
                Val::Slice(Rc::new(SliceVal {
                    elem: GoType::Uint8,
                    items: out.bytes().map(Val::Uint8).collect(),
                    nil: false,
                }))
            }
            _ => return Err(format!("no method {name}")),
        }),
        Val::HeaderCtx(_) => {
            // SubHeaderContext.Label: last dot-separated part, with '-' and
            // '_' turned into spaces.
            let n = arg_str(args);
            let last = n.rsplit('.').next().unwrap_or("");
            Ok(Val::str(last.replace(['-', '_'], " ")))
        }
        Val::Time(t) => time_method(t, name, args),
        Val::Month(m) => Ok(Val::str(
            super::gofmt::print_value(&Val::Month(*m)).as_str(),
        )),
        Val::Weekday(d) => Ok(Val::str(
            super::gofmt::print_value(&Val::Weekday(*d)).as_str(),
        )),
        _ => Err(format!("no method {name}")),
    }
}

fn weekday(t: &GoTime) -> u32 {
    let local = t.unix + t.offset as i64;
    // 1970-01-01 was a Thursday (4).
    (local.div_euclid(86_400) + 4).rem_euclid(7) as u32
}

fn year_day(t: &GoTime) -> i64 {
    let c = t.civil();
    let jan1 = GoTime::parse_rfc3339(&format!("{:04}-01-01T00:00:00Z", c.year.clamp(0, 9999)))
        .map(|j| j.unix)
        .unwrap_or(0);
    let local = t.unix + t.offset as i64;
    (local - jan1).div_euclid(86_400) + 1
}

fn time_method(t: &GoTime, name: &str, args: &[Val]) -> Result<Val, String> {
    let c = t.civil();
    Ok(match name {
        "String" => Val::str(t.go_string()),
        "Unix" => Val::Int64(t.unix),
        "UnixMilli" => Val::Int64(t.unix * 1000 + (t.nanos / 1_000_000) as i64),
        "UnixMicro" => Val::Int64(t.unix * 1_000_000 + (t.nanos / 1000) as i64),
        "UnixNano" => Val::Int64(t.unix.wrapping_mul(1_000_000_000) + t.nanos as i64),
        "Year" => Val::Int(c.year),
        "Month" => Val::Month(c.month),
        "Day" => Val::Int(c.day as i64),
        "Hour" => Val::Int(c.hour as i64),
        "Minute" => Val::Int(c.minute as i64),
        "Second" => Val::Int(c.second as i64),
        "Nanosecond" => Val::Int(t.nanos as i64),
        "YearDay" => Val::Int(year_day(t)),
        "Weekday" => Val::Weekday(weekday(t)),
        "IsZero" => Val::Bool(t.is_zero()),
        "UTC" => Val::Time(GoTime { offset: 0, ..*t }),
        "Format" => Val::str(format_layout(t, arg_str(args))),
        _ => return Err(format!("no method {name}")),
    })
}

/// Go's month names (`time.Month.String`), shared with the `%v` printer.
pub(super) const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `Time.Format` layout handling (the reference-time tokens).
pub(crate) fn format_layout(t: &GoTime, layout: &str) -> String {
    let c = t.civil();
    let mut out = String::new();
    let mut rest = layout;
    let zone = |colon: bool, seconds: bool, hours_only: bool, z: bool| -> String {
        if z && t.offset == 0 {
            return "Z".into();
        }
        let sign = if t.offset < 0 { '-' } else { '+' };
        let a = t.offset.unsigned_abs();
        let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
        let mut r = format!("{sign}{h:02}");
        if !hours_only {
            if colon {
                r.push(':');
            }
            r.push_str(&format!("{m:02}"));
            if seconds {
                if colon {
                    r.push(':');
                }
                r.push_str(&format!("{s:02}"));
            }
        }
        r
    };
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    while !rest.is_empty() {
        let tokens: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| LONG_MONTHS[c.month as usize - 1].to_string()),
            ("Jan", &|| {
                LONG_MONTHS[c.month as usize - 1][..3].to_string()
            }),
            ("Monday", &|| LONG_DAYS[weekday(t) as usize].to_string()),
            ("Mon", &|| LONG_DAYS[weekday(t) as usize][..3].to_string()),
            ("MST", &|| t.zone_name()),
            ("2006", &|| format!("{:04}", c.year)),
            ("-070000", &|| zone(false, true, false, false)),
            ("-07:00:00", &|| zone(true, true, false, false)),
            ("-0700", &|| zone(false, false, false, false)),
            ("-07:00", &|| zone(true, false, false, false)),
            ("-07", &|| zone(false, false, true, false)),
            ("Z070000", &|| zone(false, true, false, true)),
            ("Z07:00:00", &|| zone(true, true, false, true)),
            ("Z0700", &|| zone(false, false, false, true)),
            ("Z07:00", &|| zone(true, false, false, true)),
            ("Z07", &|| zone(false, false, true, true)),
            ("002", &|| format!("{:03}", year_day(t))),
            ("01", &|| format!("{:02}", c.month)),
            ("02", &|| format!("{:02}", c.day)),
            ("03", &|| format!("{:02}", hour12(c.hour))),
            ("04", &|| format!("{:02}", c.minute)),
            ("05", &|| format!("{:02}", c.second)),
            ("06", &|| format!("{:02}", c.year.rem_euclid(100))),
            ("_2", &|| format!("{:>2}", c.day)),
            ("15", &|| format!("{:02}", c.hour)),
            ("1", &|| c.month.to_string()),
            ("2", &|| c.day.to_string()),
            ("3", &|| hour12(c.hour).to_string()),
            ("4", &|| c.minute.to_string()),
            ("5", &|| c.second.to_string()),
            ("PM", &|| if c.hour >= 12 { "PM" } else { "AM" }.to_string()),
            ("pm", &|| if c.hour >= 12 { "pm" } else { "am" }.to_string()),
        ];
        // Fractional seconds: .000 / .999 (or with a comma).
        let rb = rest.as_bytes();
        if (rb[0] == b'.' || rb[0] == b',') && rb.len() > 1 && (rb[1] == b'0' || rb[1] == b'9') {
            let digit = rb[1];
            let n = rb[1..].iter().take_while(|&&x| x == digit).count();
            let next_is_digit = rb.get(1 + n).is_some_and(u8::is_ascii_digit);
            if !next_is_digit {
                let digits = format!("{:09}", t.nanos);
                let mut frac = digits[..n.min(9)].to_string();
                if digit == b'9' {
                    frac = frac.trim_end_matches('0').to_string();
                    if !frac.is_empty() {
                        out.push(rb[0] as char);
                        out.push_str(&frac);
                    }
                } else {
                    out.push(rb[0] as char);
                    out.push_str(&frac);
                }
                rest = &rest[1 + n..];
                continue;
            }
        }
        if let Some((tok, f)) = tokens.iter().find(|(tok, _)| rest.starts_with(tok)) {
            out.push_str(&f());
            rest = &rest[tok.len()..];
            continue;
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = GoTime::parse_rfc3339("2024-03-09T07:05:04.120Z").expect("parses");
        assert_eq!(format_layout(&t, "2006-01-02"), "2024-03-09");
        assert_eq!(
            format_layout(&t, "Mon Jan _2 15:04:05.000 MST 2006"),
            "Sat Mar  9 07:05:04.120 UTC 2024"
        );
        assert_eq!(format_layout(&t, "3:04PM .999"), "7:05AM .12");
        assert_eq!(
            format_layout(&t, "2006-01-02T15:04:05Z07:00"),
            "2024-03-09T07:05:04Z"
        );
        let t = GoTime::parse_rfc3339("2024-12-31T23:00:00-05:30").expect("parses");
        assert_eq!(format_layout(&t, "002 -0700 -07:00"), "366 -0530 -05:30");
    }
}
