//! Go `encoding/json` compatible output.
//!
//! * [`encode`] writes a `serde_json::Value` the way the Docker daemon's
//!   encoder (`json.NewEncoder` + `SetEscapeHTML(false)`) writes the Go value
//!   it came from: compact, object keys in the given order, Go's string
//!   escaping and Go's float formatting.
//! * [`indent`] and [`compact`] port `json.Indent` / `json.Compact`, which
//!   the docker CLI applies to the raw bytes it received.

use serde_json::Value;

/// Appends `s` as a Go-encoded JSON string literal.
///
/// Go escapes `"`, `\\`, the control characters (`\b`, `\f`, `\n`, `\r`,
/// `\t` in short form, others as `\u00XX` with lower-case hex), U+2028 and
/// U+2029, and, when `escape_html` is set, `<`, `>` and `&` as `\u003c`,
/// `\u003e`, `\u0026`.
pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let b = ch as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a float64 like Go's JSON encoder: shortest round-trip digits,
/// plain decimal for `1e-6 <= |f| < 1e21`, exponent form (`1e+21`,
/// `1e-7`) otherwise.
pub fn format_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if exp < 0 {
            format!("{mant}e-{}", -exp)
        } else {
            format!("{mant}e+{exp:02}")
        }
    } else {
        format!("{f}")
    }
}

/// Text of a JSON number as a Go server would have encoded it.
pub fn number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        format_float(n.as_f64().unwrap_or(0.0))
    }
}

/// Encodes `v` compactly with Go's escaping rules (see [`write_string`]).
pub fn encode(v: &Value, escape_html: bool) -> String {
    let mut out = String::new();
    encode_into(&mut out, v, escape_html);
    out
}

fn encode_into(out: &mut String, v: &Value, escape_html: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => write_string(out, s, escape_html),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_into(out, item, escape_html);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, escape_html);
                out.push(':');
                encode_into(out, item, escape_html);
            }
            out.push('}');
        }
    }
}

fn push_newline(out: &mut String, prefix: &str, indent: &str, depth: usize) {
    out.push('\n');
    out.push_str(prefix);
    for _ in 0..depth {
        out.push_str(indent);
    }
}

/// Port of Go's `json.Indent` for valid JSON input: whitespace outside
/// strings is dropped, each element goes on its own line, `"key": value`
/// gets one space after the colon, and empty objects and arrays stay `{}`
/// and `[]`. String contents are copied unchanged.
pub fn indent(src: &str, prefix: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut need_indent = false;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for ch in src.chars() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            continue;
        }
        if matches!(ch, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if need_indent && ch != '}' && ch != ']' {
            need_indent = false;
            depth += 1;
            push_newline(&mut out, prefix, indent, depth);
        }
        match ch {
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '{' | '[' => {
                need_indent = true;
                out.push(ch);
            }
            ',' => {
                out.push(ch);
                push_newline(&mut out, prefix, indent, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    push_newline(&mut out, prefix, indent, depth);
                }
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

/// Port of Go's `json.Compact` (without HTML escaping) for valid JSON input.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_string = false;
    let mut escaped = false;
    for ch in src.chars() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
        } else if !matches!(ch, ' ' | '\t' | '\n' | '\r') {
            if ch == '"' {
                in_string = true;
            }
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case("plain", false, r#""plain""#)]
    #[case("a<b>&c", false, r#""a<b>&c""#)]
    #[case("a<b>&c", true, r#""a\u003cb\u003e\u0026c""#)]
    #[case("q\"b\\s/", false, r#""q\"b\\s/""#)]
    #[case(
        "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}",
        false,
        r#""\n\r\t\b\f\u0001\u001f""#
    )]
    #[case("\u{2028}\u{2029}é☃", false, r#""\u2028\u2029é☃""#)]
    fn strings(#[case] s: &str, #[case] html: bool, #[case] expected: &str) {
        let mut expected = expected.to_string();
        if s.contains('\u{7f}') {
            // DEL is passed through unescaped by Go.
            expected.insert(expected.len() - 1, '\u{7f}');
        }
        let mut out = String::new();
        write_string(&mut out, s, html);
        assert_eq!(out, expected);
    }

    #[rstest]
    #[case(0.0, "0")]
    #[case(1.0, "1")]
    #[case(-1.5, "-1.5")]
    #[case(53317.102, "53317.102")]
    #[case(1e6, "1000000")]
    #[case(1e20, "100000000000000000000")]
    #[case(1e21, "1e+21")]
    #[case(1.5e300, "1.5e+300")]
    #[case(1e-6, "0.000001")]
    #[case(1e-7, "1e-7")]
    #[case(1.25e-10, "1.25e-10")]
    fn floats(#[case] f: f64, #[case] expected: &str) {
        assert_eq!(format_float(f), expected);
    }

    #[test]
    fn encode_keeps_key_order() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {}, "d": []});
        assert_eq!(
            encode(&v, false),
            r#"{"b":1,"a":[true,null,"x"],"c":{},"d":[]}"#
        );
    }

    // Cases from Go's encoding/json indent tests (scanner_test.go).
    #[rstest]
    #[case("1", "1")]
    #[case("{}", "{}")]
    #[case("[]", "[]")]
    #[case(r#"{"":2}"#, "{\n\t\"\": 2\n}")]
    #[case("[3]", "[\n\t3\n]")]
    #[case("[1,2,3]", "[\n\t1,\n\t2,\n\t3\n]")]
    #[case(r#"{"x":1}"#, "{\n\t\"x\": 1\n}")]
    #[case(
        r#"[true,false,null,"x",1,1.5,0,-5e+2]"#,
        "[\n\ttrue,\n\tfalse,\n\tnull,\n\t\"x\",\n\t1,\n\t1.5,\n\t0,\n\t-5e+2\n]"
    )]
    #[case("{ \"a\" : [ ] , \"b\" : { } }", "{\n\t\"a\": [],\n\t\"b\": {}\n}")]
    #[case(r#"["a\"b, [c]: {d}"]"#, "[\n\t\"a\\\"b, [c]: {d}\"\n]")]
    fn indent_go(#[case] src: &str, #[case] expected: &str) {
        assert_eq!(indent(src, "", "\t"), expected);
        assert_eq!(compact(expected), compact(src));
    }

    #[test]
    fn indent_docker_style() {
        let src =
            "[{\"Dns\": \"0.0.0.0\", \"Node\": \"0\"}\n,{\"Dns\": \"1.1.1.1\", \"Node\": \"1\"}\n]";
        let expected = "[\n    {\n        \"Dns\": \"0.0.0.0\",\n        \"Node\": \"0\"\n    },\n    {\n        \"Dns\": \"1.1.1.1\",\n        \"Node\": \"1\"\n    }\n]";
        assert_eq!(indent(src, "", "    "), expected);
        assert_eq!(
            compact(src),
            r#"[{"Dns":"0.0.0.0","Node":"0"},{"Dns":"1.1.1.1","Node":"1"}]"#
        );
    }
}
