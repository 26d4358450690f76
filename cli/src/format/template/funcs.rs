//! Template functions: docker's `templates.basicFunctions` (and the
//! `HeaderFunctions` overrides used for table headers) plus Go's builtins.

use std::rc::Rc;

use super::gofmt;
use super::value::{GoType, SliceVal, Val, encode_json};

/// Parameter types of the modelled Go functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamTy {
    /// No static type (Go passes `nil` as the type).
    Untyped,
    /// `reflect.Value` (builtins that inspect their arguments).
    RValue,
    /// `interface{}` / `any`.
    Any,
    Str,
    Int,
    StrSlice,
}

impl ParamTy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ParamTy::Untyped => "<nil>",
            ParamTy::RValue => "reflect.Value",
            ParamTy::Any => "interface {}",
            ParamTy::Str => "string",
            ParamTy::Int => "int",
            ParamTy::StrSlice => "[]string",
        }
    }

    pub(crate) fn can_be_nil(self) -> bool {
        matches!(self, ParamTy::RValue | ParamTy::Any | ParamTy::StrSlice)
    }

    /// Go's `reflect.Zero(typ)` as a template value.
    pub(crate) fn zero(self) -> Val {
        match self {
            ParamTy::Untyped | ParamTy::RValue => Val::Invalid,
            ParamTy::Any => Val::Nil,
            ParamTy::Str => Val::str(""),
            ParamTy::Int => Val::Int(0),
            ParamTy::StrSlice => Val::Slice(Rc::new(SliceVal {
                elem: GoType::String,
                items: Vec::new(),
                nil: true,
            })),
        }
    }
}

/// A function signature: fixed parameters plus an optional variadic one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sig {
    pub(crate) params: &'static [ParamTy],
    pub(crate) variadic: Option<ParamTy>,
}

const fn sig(params: &'static [ParamTy]) -> Sig {
    Sig {
        params,
        variadic: None,
    }
}

const fn vsig(params: &'static [ParamTy], v: ParamTy) -> Sig {
    Sig {
        params,
        variadic: Some(v),
    }
}

use ParamTy::{Any, Int, RValue, Str, StrSlice};

/// Looks up a function for execution. `header` selects docker's
/// `HeaderFunctions` overrides (used when rendering table headers).
pub(crate) fn lookup(name: &str, header: bool) -> Option<Sig> {
    if header {
        match name {
            "json" | "title" | "lower" | "upper" => return Some(sig(&[Str])),
            "split" | "join" => return Some(sig(&[Str, Str])),
            "truncate" => return Some(sig(&[Str, Int])),
            _ => {}
        }
    }
    Some(match name {
        "json" => sig(&[Any]),
        "split" => sig(&[Str, Str]),
        "join" => sig(&[StrSlice, Str]),
        "title" | "lower" | "upper" => sig(&[Str]),
        "pad" => sig(&[Str, Int, Int]),
        "truncate" => sig(&[Str, Int]),
        "and" | "or" | "index" | "slice" | "eq" | "call" => vsig(&[RValue], RValue),
        "not" | "len" => sig(&[RValue]),
        "ne" | "lt" | "le" | "gt" | "ge" => sig(&[RValue, RValue]),
        "print" | "println" | "html" | "js" | "urlquery" => vsig(&[], Any),
        "printf" => vsig(&[Str], Any),
        _ => return None,
    })
}

fn s(v: &Val) -> &str {
    v.as_string_kind().unwrap_or("")
}

fn int(v: &Val) -> i64 {
    match v {
        Val::Int(i) | Val::Int64(i) => *i,
        _ => 0,
    }
}

fn map_chars(s: &str, f: impl Fn(char) -> char) -> String {
    s.chars().map(f).collect()
}

fn single_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn single_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn to_title(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        c => single_upper(c),
    }
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's (deprecated) `strings.Title`.
pub(crate) fn title(s: &str) -> String {
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) { to_title(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// Go's `strings.Split`.
pub(crate) fn split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

fn str_slice(items: Vec<String>) -> Val {
    Val::Slice(Rc::new(SliceVal {
        elem: GoType::String,
        items: items.into_iter().map(|i| Val::str(i.as_str())).collect(),
        nil: false,
    }))
}

fn byte_slice(s: &str, from: usize, to: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn basic_kind(v: &Val) -> Kind {
    match v {
        Val::Bool(_) => Kind::Bool,
        Val::Int(_) | Val::Int64(_) | Val::Month(_) | Val::Weekday(_) => Kind::Int,
        Val::Uint8(_) => Kind::Uint,
        Val::Float(_) => Kind::Float,
        Val::Str(_) | Val::Number(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn int_of(v: &Val) -> i128 {
    match v {
        Val::Int(i) | Val::Int64(i) => *i as i128,
        Val::Month(u) | Val::Weekday(u) => *u as i128,
        Val::Uint8(u) => *u as i128,
        _ => 0,
    }
}

fn float_of(v: &Val) -> f64 {
    match v {
        Val::Float(f) => *f,
        _ => 0.0,
    }
}

const ERR_BAD_COMPARISON_TYPE: &str = "invalid type for comparison";
const ERR_BAD_COMPARISON: &str = "incompatible types for comparison";
const ERR_NO_COMPARISON: &str = "missing argument for comparison";

fn eq(arg1: &Val, rest: &[Val]) -> Result<bool, String> {
    let a = arg1.indirect_interface();
    if rest.is_empty() {
        return Err(ERR_NO_COMPARISON.into());
    }
    let k1 = basic_kind(&a);
    for b in rest {
        let b = b.indirect_interface();
        let k2 = basic_kind(&b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => int_of(&a) == int_of(&b),
                _ => {
                    if !matches!(a, Val::Invalid) && !matches!(b, Val::Invalid) {
                        return Err(ERR_BAD_COMPARISON.into());
                    }
                    false
                }
            }
        } else {
            match k1 {
                Kind::Bool => matches!((&a, &b), (Val::Bool(x), Val::Bool(y)) if x == y),
                Kind::Int | Kind::Uint => int_of(&a) == int_of(&b),
                Kind::Float => float_of(&a) == float_of(&b),
                Kind::Str => s(&a) == s(&b),
                Kind::Invalid => match (&a, &b) {
                    (Val::Invalid, Val::Invalid) => true,
                    (Val::Time(x), Val::Time(y)) => x == y,
                    (Val::Invalid, _) | (_, Val::Invalid) => false,
                    _ => {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            gofmt::print_value(&a),
                            a.type_name(),
                            b.type_name(),
                            gofmt::print_value(&b)
                        ));
                    }
                },
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Val, b: &Val) -> Result<bool, String> {
    let a = a.indirect_interface();
    let k1 = basic_kind(&a);
    if k1 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.into());
    }
    let b = b.indirect_interface();
    let k2 = basic_kind(&b);
    if k2 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.into());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(int_of(&a) < int_of(&b)),
            _ => Err(ERR_BAD_COMPARISON.into()),
        };
    }
    match k1 {
        Kind::Bool | Kind::Invalid => Err(ERR_BAD_COMPARISON_TYPE.into()),
        Kind::Int | Kind::Uint => Ok(int_of(&a) < int_of(&b)),
        Kind::Float => Ok(float_of(&a) < float_of(&b)),
        Kind::Str => Ok(s(&a) < s(&b)),
    }
}

/// Go's template truth (`isTrue` after `indirectInterface`).
pub(crate) fn truth(v: &Val) -> (bool, bool) {
    let v = v.indirect_interface();
    let t = match &v {
        Val::Invalid | Val::Nil => false,
        Val::Bool(b) => *b,
        Val::Int(i) | Val::Int64(i) => *i != 0,
        Val::Uint8(u) => *u != 0,
        Val::Month(u) | Val::Weekday(u) => *u != 0,
        Val::Float(f) => *f != 0.0,
        Val::Str(_) | Val::Number(_) | Val::Slice(_) | Val::Map(_) | Val::HeaderCtx(_) => {
            v.len().unwrap_or(0) > 0
        }
        Val::Time(_) | Val::Struct(_) | Val::NetCtx(_) => true,
        Val::Iface(_) => true,
    };
    (t, true)
}

fn index_arg(index: &Val, cap: usize) -> Result<usize, String> {
    let x: i128 = match index {
        Val::Int(_) | Val::Int64(_) | Val::Uint8(_) | Val::Month(_) | Val::Weekday(_) => {
            int_of(index)
        }
        Val::Invalid | Val::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: &Val, indexes: &[Val]) -> Result<Val, String> {
    let mut item = item.indirect_interface();
    if matches!(item, Val::Invalid) {
        return Err("index of untyped nil".into());
    }
    for idx in indexes {
        let idx = idx.indirect_interface();
        let (it, is_nil) = item.indirect();
        if is_nil {
            return Err("index of nil pointer".into());
        }
        item = match &it {
            Val::Slice(sl) => {
                let x = index_arg(&idx, sl.items.len())?;
                match sl.items.get(x) {
                    Some(v) => v.clone(),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Val::Str(st) | Val::Number(st) => {
                let x = index_arg(&idx, st.len())?;
                match st.as_bytes().get(x) {
                    Some(b) => Val::Uint8(*b),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Val::Map(_) | Val::HeaderCtx(_) => {
                let key = match &idx {
                    Val::Str(k) => k.to_string(),
                    Val::Invalid | Val::Nil => {
                        return Err("value is nil; should be of type string".into());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ));
                    }
                };
                match &it {
                    Val::Map(m) => m
                        .entries
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| super::value::zero_of(&m.elem)),
                    Val::HeaderCtx(m) => Val::str(m.get(&key).map(String::as_str).unwrap_or("")),
                    _ => unreachable!("matched above"),
                }
            }
            other => {
                return Err(format!("can't index item of type {}", other.type_name()));
            }
        };
    }
    Ok(item)
}

fn slice(item: &Val, indexes: &[Val]) -> Result<Val, String> {
    let item = item.indirect_interface();
    if matches!(item, Val::Invalid) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let (len, cap) = match &item {
        Val::Str(st) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            (st.len(), st.len())
        }
        Val::Slice(sl) => (sl.items.len(), sl.items.len()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, cap];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_arg(&x.indirect_interface(), cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match &item {
        Val::Str(st) => Val::str(byte_slice(st, idx[0], idx[1]).as_str()),
        Val::Slice(sl) => Val::Slice(Rc::new(SliceVal {
            elem: sl.elem.clone(),
            items: sl.items[idx[0]..idx[1]].to_vec(),
            nil: false,
        })),
        _ => unreachable!("checked above"),
    })
}

fn length(item: &Val) -> Result<Val, String> {
    let (it, is_nil) = item.indirect();
    if is_nil {
        return Err("len of nil pointer".into());
    }
    if matches!(it, Val::Invalid) {
        return Err("reflect: call of reflect.Value.Type on zero Value".into());
    }
    match it.len() {
        Some(n) => Ok(Val::Int(n as i64)),
        None => Err(format!("len of type {}", it.type_name())),
    }
}

/// `evalArgs` of html/js/urlquery: like `fmt.Sprint` after `printableValue`.
fn eval_args(args: &[Val]) -> String {
    if let [Val::Str(s)] = args {
        return s.to_string();
    }
    let args: Vec<Val> = args
        .iter()
        .map(|a| match a.indirect_interface() {
            Val::Invalid | Val::Nil => Val::str("<no value>"),
            v => v,
        })
        .collect();
    gofmt::sprint(&args)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() || gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

fn url_query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn repeat(n: i64) -> Result<String, String> {
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    Ok(" ".repeat(n as usize))
}

/// Calls function `name` with already-converted arguments.
pub(crate) fn call(name: &str, header: bool, args: &[Val]) -> Result<Val, String> {
    if header
        && matches!(
            name,
            "json" | "title" | "lower" | "upper" | "split" | "join" | "truncate"
        )
    {
        return Ok(Val::str(s(&args[0])));
    }
    Ok(match name {
        "json" => {
            let mut out = String::new();
            encode_json(&mut out, &args[0], false)?;
            Val::str(out.trim())
        }
        "split" => str_slice(split(s(&args[0]), s(&args[1]))),
        "join" => {
            let items: Vec<&str> = match &args[0] {
                Val::Slice(sl) => sl.items.iter().map(s).collect(),
                _ => Vec::new(),
            };
            Val::str(items.join(s(&args[1])))
        }
        "title" => Val::str(title(s(&args[0]))),
        "lower" => Val::str(map_chars(s(&args[0]), single_lower)),
        "upper" => Val::str(map_chars(s(&args[0]), single_upper)),
        "pad" => {
            let src = s(&args[0]);
            if src.is_empty() {
                Val::str("")
            } else {
                let pre = repeat(int(&args[1]))?;
                let post = repeat(int(&args[2]))?;
                Val::str(format!("{pre}{src}{post}"))
            }
        }
        "truncate" => {
            let src = s(&args[0]);
            let n = int(&args[1]);
            if (src.len() as i64) < n {
                Val::str(src)
            } else if n < 0 {
                return Err(format!("runtime error: slice bounds out of range [:{n}]"));
            } else {
                Val::str(byte_slice(src, 0, n as usize).as_str())
            }
        }
        "not" => Val::Bool(!truth(&args[0]).0),
        "len" => length(&args[0])?,
        "index" => index(&args[0], &args[1..])?,
        "slice" => slice(&args[0], &args[1..])?,
        "eq" => Val::Bool(eq(&args[0], &args[1..])?),
        "ne" => Val::Bool(!eq(&args[0], &args[1..])?),
        "lt" => Val::Bool(lt(&args[0], &args[1])?),
        "le" => Val::Bool(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?),
        "gt" => Val::Bool(!(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?)),
        "ge" => Val::Bool(!lt(&args[0], &args[1])?),
        "print" => Val::str(gofmt::sprint(args)),
        "println" => Val::str(gofmt::sprintln(args)),
        "printf" => Val::str(gofmt::sprintf(s(&args[0]), &args[1..])),
        "html" => Val::str(html_escape(&eval_args(args))),
        "js" => Val::str(js_escape(&eval_args(args))),
        "urlquery" => Val::str(url_query_escape(&eval_args(args))),
        other => return Err(format!("function {other} is not implemented")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("hello world", "Hello World")]
    #[case("hello_world-foo.bar", "Hello_world-Foo.Bar")]
    #[case("ǆemal", "ǅemal")]
    #[case("", "")]
    fn titles(#[case] s: &str, #[case] expected: &str) {
        assert_eq!(title(s), expected);
    }

    #[rstest]
    #[case("a,b,c", ",", vec!["a", "b", "c"])]
    #[case("", ",", vec![""])]
    #[case("abc", "", vec!["a", "b", "c"])]
    #[case("a,,b", ",", vec!["a", "", "b"])]
    fn splits(#[case] s: &str, #[case] sep: &str, #[case] expected: Vec<&str>) {
        assert_eq!(split(s, sep), expected);
    }

    #[test]
    fn escapers() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"<=>\n"),
            "a\\'b\\\"\\u003C\\u003D\\u003E\\u000A"
        );
        assert_eq!(url_query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
