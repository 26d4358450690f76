//! The parts of Go's `fmt` and `strconv` that template output relies on:
//! `%v` printing of values, `fmt.Sprint`/`Sprintln`/`Sprintf` and
//! `strconv.Quote`.

use super::value::Val;

/// Approximation of Go's `unicode.IsPrint` (letters, marks, numbers,
/// punctuation, symbols and the ASCII space).
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF
        | 0xE0001 | 0xE0020..=0xE007F)
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"')
}

fn quote_with(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            c if c == q || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(q);
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `%v` prints.
pub(crate) fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

fn go_exp(s: String) -> String {
    // Rust writes `1.5e3`; Go writes `1.5e+03`.
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn month_name(m: u32) -> String {
    match super::methods::LONG_MONTHS.get((m as usize).wrapping_sub(1)) {
        Some(n) => (*n).to_string(),
        None => format!("%!Month({m})"),
    }
}

fn weekday_name(d: u32) -> String {
    const NAMES: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    match NAMES.get(d as usize) {
        Some(n) => (*n).to_string(),
        None => format!("%!Weekday({d})"),
    }
}

/// Formatting flags of one `%` directive.
#[derive(Debug, Clone, Copy, Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    fn pad(&self, out: &mut String, s: &str, numeric: bool) {
        let width = self.width.unwrap_or(0);
        let n = s.chars().count();
        if n >= width {
            out.push_str(s);
            return;
        }
        let fill = width - n;
        if self.minus {
            out.push_str(s);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if self.zero && numeric {
            let (sign, digits) = match s.strip_prefix(['-', '+']) {
                Some(d) => (&s[..1], d),
                None => ("", s),
            };
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(s);
        }
    }
}

struct Printer {
    out: String,
}

impl Printer {
    fn bad_verb(&mut self, verb: char, v: &Val) {
        self.out.push_str("%!");
        self.out.push(verb);
        self.out.push('(');
        match v {
            Val::Invalid | Val::Nil => self.out.push_str("<nil>"),
            v => {
                self.out.push_str(&v.type_name());
                self.out.push('=');
                self.print(v, 'v', &Spec::default(), 0, false);
            }
        }
        self.out.push(')');
    }

    fn fmt_str(&mut self, s: &str, verb: char, spec: &Spec, v: &Val) {
        match verb {
            'v' | 's' => {
                let s: String = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.to_string(),
                };
                spec.pad(&mut self.out, &s, false);
            }
            'q' => spec.pad(&mut self.out, &quote(s), false),
            'x' | 'X' => {
                let mut h = String::new();
                for b in s.bytes() {
                    if verb == 'x' {
                        h.push_str(&format!("{b:02x}"));
                    } else {
                        h.push_str(&format!("{b:02X}"));
                    }
                }
                spec.pad(&mut self.out, &h, false);
            }
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_int(&mut self, i: i128, verb: char, spec: &Spec, v: &Val) {
        let sign = if i < 0 {
            "-"
        } else if spec.plus {
            "+"
        } else if spec.space {
            " "
        } else {
            ""
        };
        let a = i.unsigned_abs();
        let body = match verb {
            'v' | 'd' => a.to_string(),
            'x' => format!("{a:x}"),
            'X' => format!("{a:X}"),
            'o' => format!("{a:o}"),
            'b' => format!("{a:b}"),
            'c' => {
                let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
                spec.pad(&mut self.out, &c.to_string(), false);
                return;
            }
            'q' => {
                let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
                spec.pad(&mut self.out, &quote_with(&c.to_string(), '\''), false);
                return;
            }
            _ => {
                self.bad_verb(verb, v);
                return;
            }
        };
        spec.pad(&mut self.out, &format!("{sign}{body}"), true);
    }

    fn fmt_float(&mut self, f: f64, verb: char, spec: &Spec, v: &Val) {
        let mut s = match verb {
            'v' | 'g' | 'G' => format_float_g(f),
            'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
            'e' | 'E' => go_exp(format!("{:.*e}", spec.prec.unwrap_or(6), f)),
            _ => {
                self.bad_verb(verb, v);
                return;
            }
        };
        if verb == 'E' || verb == 'G' {
            s = s.to_uppercase();
        }
        if spec.plus && !s.starts_with('-') {
            s.insert(0, '+');
        }
        spec.pad(&mut self.out, &s, true);
    }

    /// `p.printValue`: prints `v` with `verb`; `depth` > 0 inside
    /// containers; `hidden` marks values reached through unexported fields
    /// (their methods, e.g. `Time.String`, are not used).
    fn print(&mut self, v: &Val, verb: char, spec: &Spec, depth: usize, hidden: bool) {
        match v {
            Val::Invalid => {
                if depth == 0 {
                    self.out.push_str("<invalid reflect.Value>");
                } else {
                    self.out.push_str("<nil>");
                }
            }
            Val::Nil => match verb {
                'v' => spec.pad(&mut self.out, "<nil>", false),
                _ => self.bad_verb(verb, v),
            },
            Val::Iface(inner) => self.print(inner, verb, spec, depth + 1, hidden),
            Val::Str(s) | Val::Number(s) => self.fmt_str(s, verb, spec, v),
            Val::Bool(b) => match verb {
                'v' | 't' => spec.pad(&mut self.out, if *b { "true" } else { "false" }, false),
                _ => self.bad_verb(verb, v),
            },
            Val::Int(i) | Val::Int64(i) => self.fmt_int(*i as i128, verb, spec, v),
            Val::Uint8(u) => self.fmt_int(*u as i128, verb, spec, v),
            Val::Float(f) => self.fmt_float(*f, verb, spec, v),
            Val::Time(t) => {
                if hidden {
                    self.out.push_str(&t.raw_fields());
                } else if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') {
                    self.fmt_str(&t.go_string(), verb, spec, v);
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Val::Month(m) => {
                if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') && !hidden {
                    self.fmt_str(&month_name(*m), verb, spec, v);
                } else {
                    self.fmt_int(*m as i128, verb, spec, v);
                }
            }
            Val::Weekday(d) => {
                if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') && !hidden {
                    self.fmt_str(&weekday_name(*d), verb, spec, v);
                } else {
                    self.fmt_int(*d as i128, verb, spec, v);
                }
            }
            Val::Slice(s) => {
                self.out.push('[');
                for (i, item) in s.items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.print(item, verb, spec, depth + 1, hidden);
                }
                self.out.push(']');
            }
            Val::Map(m) => {
                self.out.push_str("map[");
                for (i, (k, item)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.fmt_str(k, verb, spec, &Val::str(k.as_str()));
                    self.out.push(':');
                    self.print(item, verb, spec, depth + 1, hidden);
                }
                self.out.push(']');
            }
            Val::HeaderCtx(m) => {
                self.out.push_str("map[");
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.fmt_str(k, verb, spec, &Val::str(k.as_str()));
                    self.out.push(':');
                    self.fmt_str(item, verb, spec, &Val::str(item.as_str()));
                }
                self.out.push(']');
            }
            Val::Struct(s) => {
                self.out.push('{');
                for (i, item) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.print(item, verb, spec, depth + 1, hidden);
                }
                self.out.push('}');
            }
            Val::NetCtx(c) => {
                // A networkContext struct: {HeaderContext trunc n}; `n`
                // (the network.Summary) is unexported.
                if depth == 0 {
                    self.out.push('&');
                }
                self.out.push_str("{{<nil>} ");
                self.print(&Val::Bool(c.trunc), verb, spec, depth + 1, true);
                self.out.push(' ');
                self.print(&c.summary, verb, spec, depth + 1, true);
                self.out.push('}');
            }
        }
    }
}

/// What `{{.X}}` writes for a value (text/template's `printableValue`
/// followed by `fmt.Fprint`).
pub(crate) fn print_value(v: &Val) -> String {
    match v {
        Val::Invalid => "<no value>".to_string(),
        // printableValue dereferences a pointer before printing.
        Val::NetCtx(c) => {
            let mut p = Printer { out: String::new() };
            p.out.push_str("{{<nil>} ");
            p.print(&Val::Bool(c.trunc), 'v', &Spec::default(), 1, true);
            p.out.push(' ');
            p.print(&c.summary, 'v', &Spec::default(), 1, true);
            p.out.push('}');
            p.out
        }
        v => sprint(std::slice::from_ref(v)),
    }
}

fn is_string_arg(v: &Val) -> bool {
    match v {
        Val::Iface(inner) => is_string_arg(inner),
        v => v.as_string_kind().is_some(),
    }
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Val]) -> String {
    let mut p = Printer { out: String::new() };
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = is_string_arg(a);
        if i > 0 && !is_string && !prev_string {
            p.out.push(' ');
        }
        p.print(&arg_value(a), 'v', &Spec::default(), 0, false);
        prev_string = is_string;
    }
    p.out
}

/// `fmt.Sprintln`: operands separated by spaces, newline appended.
pub(crate) fn sprintln(args: &[Val]) -> String {
    let mut p = Printer { out: String::new() };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.out.push(' ');
        }
        p.print(&arg_value(a), 'v', &Spec::default(), 0, false);
    }
    p.out.push('\n');
    p.out
}

/// An argument passed as `interface{}`: its dynamic value (nil → `<nil>`).
fn arg_value(v: &Val) -> Val {
    match v {
        Val::Iface(inner) => arg_value(inner),
        Val::Invalid => Val::Nil,
        v => v.clone(),
    }
}

/// `fmt.Sprintf` for the common verbs (`v s q d t x X o b c f e g`), flags
/// `- + 0 space #`, width and precision.
pub(crate) fn sprintf(format: &str, args: &[Val]) -> String {
    let mut p = Printer { out: String::new() };
    let args: Vec<Val> = args.iter().map(arg_value).collect();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            p.out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            p.out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            p.out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            p.out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        p.print(arg, verb, &spec, 0, false);
    }
    if argi < args.len() {
        p.out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                p.out.push_str(", ");
            }
            match a {
                Val::Nil | Val::Invalid => p.out.push_str("<nil>"),
                a => {
                    p.out.push_str(&a.type_name());
                    p.out.push('=');
                    p.print(a, 'v', &Spec::default(), 0, false);
                }
            }
        }
        p.out.push(')');
    }
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(1500.0, "1500")]
    #[case(53317.102, "53317.102")]
    #[case(1e6, "1e+06")]
    #[case(3983636.0, "3.983636e+06")]
    #[case(123456789.0, "1.23456789e+08")]
    #[case(999999.0, "999999")]
    #[case(0.0001, "0.0001")]
    #[case(0.00001, "1e-05")]
    #[case(-2.5, "-2.5")]
    #[case(1e21, "1e+21")]
    fn float_v(#[case] f: f64, #[case] expected: &str) {
        assert_eq!(format_float_g(f), expected);
    }

    #[rstest]
    #[case("abc", "\"abc\"")]
    #[case("a\"b\\c", "\"a\\\"b\\\\c\"")]
    #[case("\n\t\u{7}", "\"\\n\\t\\a\"")]
    #[case("\u{1}", "\"\\x01\"")]
    #[case("☺", "\"☺\"")]
    #[case("\u{200b}", "\"\\u200b\"")]
    fn quoting(#[case] s: &str, #[case] expected: &str) {
        assert_eq!(quote(s), expected);
    }

    #[test]
    fn sprint_spacing() {
        let s = |x: &str| Val::str(x);
        assert_eq!(sprint(&[s("a"), s("b")]), "ab");
        assert_eq!(sprint(&[Val::Int(1), Val::Int(2)]), "1 2");
        assert_eq!(sprint(&[s("a"), Val::Int(2), Val::Int(3)]), "a2 3");
        assert_eq!(sprintln(&[s("a"), s("b")]), "a b\n");
        assert_eq!(sprintln(&[]), "\n");
        assert_eq!(sprint(&[Val::Invalid]), "<nil>");
    }

    #[rstest]
    #[case("%s-%d", vec![Val::str("x"), Val::Int(3)], "x-3")]
    #[case("%5s|%-5s|", vec![Val::str("ab"), Val::str("cd")], "   ab|cd   |")]
    #[case("%05d", vec![Val::Int(-42)], "-0042")]
    #[case("%q", vec![Val::str("a b")], "\"a b\"")]
    #[case("%d", vec![Val::str("x")], "%!d(string=x)")]
    #[case("%s %s", vec![Val::str("x")], "x %!s(MISSING)")]
    #[case("%s", vec![Val::str("x"), Val::Int(1)], "x%!(EXTRA int=1)")]
    #[case("%.2s", vec![Val::str("xyz")], "xy")]
    #[case("%t", vec![Val::Bool(true)], "true")]
    #[case("%x", vec![Val::Int(255)], "ff")]
    #[case("%.3f", vec![Val::Float(1.5)], "1.500")]
    #[case("%e", vec![Val::Float(1500.0)], "1.500000e+03")]
    #[case("100%%", vec![], "100%")]
    fn printf(#[case] f: &str, #[case] args: Vec<Val>, #[case] expected: &str) {
        assert_eq!(sprintf(f, &args), expected);
    }
}
