//! The data model templates execute on: a small imitation of Go's
//! `reflect.Value` for the Go types docker's templates see (decoded JSON,
//! the typed `network.Inspect` struct, the `network ls` context).

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use serde_json::Value;

use crate::format::gotime::GoTime;
use crate::format::json;

/// Field types usable in a [`StructDef`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldTy {
    Any,
    Str,
    Bool,
    Int,
    Time,
    Struct(&'static StructDef),
    MapStr,
    MapStruct(&'static StructDef),
    SliceStr,
    SliceStruct(&'static StructDef),
}

impl FieldTy {
    pub(crate) fn go_type(self) -> GoType {
        match self {
            FieldTy::Any => GoType::Any,
            FieldTy::Str => GoType::String,
            FieldTy::Bool => GoType::Bool,
            FieldTy::Int => GoType::Int,
            FieldTy::Time => GoType::Time,
            FieldTy::Struct(d) => GoType::Struct(d),
            FieldTy::MapStr => GoType::Map(Rc::new(GoType::String)),
            FieldTy::MapStruct(d) => GoType::Map(Rc::new(GoType::Struct(d))),
            FieldTy::SliceStr => GoType::Slice(Rc::new(GoType::String)),
            FieldTy::SliceStruct(d) => GoType::Slice(Rc::new(GoType::Struct(d))),
        }
    }
}

/// One exported field of a Go struct, with its `json` tag.
#[derive(Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) json: &'static str,
    pub(crate) omitempty: bool,
    pub(crate) ty: FieldTy,
}

/// A Go struct type (exported fields only).
#[derive(Debug)]
pub(crate) struct StructDef {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [FieldDef],
}

impl PartialEq for StructDef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The Go types the model knows, printed with Go's type syntax.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GoType {
    Any,
    String,
    Bool,
    Int,
    Int64,
    Uint8,
    Float64,
    Number,
    Time,
    Month,
    Weekday,
    Slice(Rc<GoType>),
    Map(Rc<GoType>),
    Struct(&'static StructDef),
    NetCtx,
    HeaderCtx,
}

impl fmt::Display for GoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoType::Any => f.write_str("interface {}"),
            GoType::String => f.write_str("string"),
            GoType::Bool => f.write_str("bool"),
            GoType::Int => f.write_str("int"),
            GoType::Int64 => f.write_str("int64"),
            GoType::Uint8 => f.write_str("uint8"),
            GoType::Float64 => f.write_str("float64"),
            GoType::Number => f.write_str("json.Number"),
            GoType::Time => f.write_str("time.Time"),
            GoType::Month => f.write_str("time.Month"),
            GoType::Weekday => f.write_str("time.Weekday"),
            GoType::Slice(e) => write!(f, "[]{e}"),
            GoType::Map(e) => write!(f, "map[string]{e}"),
            GoType::Struct(d) => f.write_str(d.name),
            GoType::NetCtx => f.write_str("*network.networkContext"),
            GoType::HeaderCtx => f.write_str("formatter.SubHeaderContext"),
        }
    }
}

/// A Go slice value.
#[derive(Debug, Clone)]
pub(crate) struct SliceVal {
    pub(crate) elem: GoType,
    pub(crate) items: Vec<Val>,
    pub(crate) nil: bool,
}

/// A Go `map[string]T` value (keys kept sorted, as Go prints and
/// iterates them in templates).
#[derive(Debug, Clone)]
pub(crate) struct MapVal {
    pub(crate) elem: GoType,
    pub(crate) entries: BTreeMap<String, Val>,
    pub(crate) nil: bool,
}

/// A Go struct value.
#[derive(Debug, Clone)]
pub(crate) struct StructVal {
    pub(crate) def: &'static StructDef,
    pub(crate) fields: Vec<Val>,
}

/// docker's `*network.networkContext` (the `network ls` row context).
#[derive(Debug, Clone)]
pub(crate) struct NetCtx {
    pub(crate) trunc: bool,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) scope: String,
    pub(crate) ipv4: bool,
    pub(crate) ipv6: bool,
    pub(crate) internal: bool,
    /// `None` when the network has no labels map (Go nil map).
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) created: GoTime,
    /// The typed `network.Summary`, for `{{.}}`.
    pub(crate) summary: Val,
}

impl NetCtx {
    pub(crate) fn id(&self) -> String {
        if !self.trunc {
            return self.id.clone();
        }
        let id = match self.id.find(':') {
            Some(i) => &self.id[i + 1..],
            None => &self.id,
        };
        if id.len() > 12 {
            String::from_utf8_lossy(&id.as_bytes()[..12]).into_owned()
        } else {
            id.to_string()
        }
    }

    /// `k=v` pairs joined by `,` (Go iterates maps randomly; sorted here).
    pub(crate) fn labels(&self) -> String {
        match &self.labels {
            None => String::new(),
            Some(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    pub(crate) fn label(&self, name: &str) -> String {
        self.labels
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or_default()
    }

    /// The methods `formatter.MarshalJSON` collects, in sorted key order.
    pub(crate) fn json_fields(&self) -> Vec<(&'static str, String)> {
        let b = |v: bool| if v { "true" } else { "false" }.to_string();
        vec![
            ("CreatedAt", self.created.go_string()),
            ("Driver", self.driver.clone()),
            ("ID", self.id()),
            ("IPv4", b(self.ipv4)),
            ("IPv6", b(self.ipv6)),
            ("Internal", b(self.internal)),
            ("Labels", self.labels()),
            ("Name", self.name.clone()),
            ("Scope", self.scope.clone()),
        ]
    }
}

/// A value as a template sees it (an imitation of `reflect.Value`).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// The zero `reflect.Value` (e.g. a missing map key).
    Invalid,
    /// A nil `interface{}`.
    Nil,
    /// A non-nil `interface{}` holding a concrete value.
    Iface(Rc<Val>),
    Str(Rc<str>),
    Bool(bool),
    Int(i64),
    Int64(i64),
    Uint8(u8),
    Float(f64),
    /// `json.Number` (decoded with `UseNumber`).
    Number(Rc<str>),
    Time(GoTime),
    Month(u32),
    Weekday(u32),
    Slice(Rc<SliceVal>),
    Map(Rc<MapVal>),
    Struct(Rc<StructVal>),
    NetCtx(Rc<NetCtx>),
    HeaderCtx(Rc<BTreeMap<String, String>>),
}

impl Val {
    pub(crate) fn str(s: impl Into<Rc<str>>) -> Val {
        Val::Str(s.into())
    }

    /// Go type of the value; `None` for `Invalid`.
    pub(crate) fn go_type(&self) -> Option<GoType> {
        Some(match self {
            Val::Invalid => return None,
            Val::Nil | Val::Iface(_) => GoType::Any,
            Val::Str(_) => GoType::String,
            Val::Bool(_) => GoType::Bool,
            Val::Int(_) => GoType::Int,
            Val::Int64(_) => GoType::Int64,
            Val::Uint8(_) => GoType::Uint8,
            Val::Float(_) => GoType::Float64,
            Val::Number(_) => GoType::Number,
            Val::Time(_) => GoType::Time,
            Val::Month(_) => GoType::Month,
            Val::Weekday(_) => GoType::Weekday,
            Val::Slice(s) => GoType::Slice(Rc::new(s.elem.clone())),
            Val::Map(m) => GoType::Map(Rc::new(m.elem.clone())),
            Val::Struct(s) => GoType::Struct(s.def),
            Val::NetCtx(_) => GoType::NetCtx,
            Val::HeaderCtx(_) => GoType::HeaderCtx,
        })
    }

    /// Type name for messages; `<nil>` for an invalid value.
    pub(crate) fn type_name(&self) -> String {
        self.go_type()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "<nil>".into())
    }

    /// Go's `indirectInterface`: the concrete value inside an interface
    /// (`Invalid` for a nil interface).
    pub(crate) fn indirect_interface(&self) -> Val {
        match self {
            Val::Iface(v) => (**v).clone(),
            Val::Nil => Val::Invalid,
            v => v.clone(),
        }
    }

    /// Go's `indirect`: strips interfaces; reports a nil interface.
    pub(crate) fn indirect(&self) -> (Val, bool) {
        match self {
            Val::Iface(v) => v.indirect(),
            Val::Nil => (Val::Nil, true),
            v => (v.clone(), false),
        }
    }

    /// Whether the value is a string kind (`string` or `json.Number`).
    pub(crate) fn as_string_kind(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Number(s) => Some(s),
            _ => None,
        }
    }

    /// Length for `len` and truth (strings, maps, slices).
    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            Val::Str(s) | Val::Number(s) => Some(s.len()),
            Val::Slice(s) => Some(s.items.len()),
            Val::Map(m) => Some(m.entries.len()),
            Val::HeaderCtx(m) => Some(m.len()),
            _ => None,
        }
    }
}

/// Zero value of a type (`Invalid` stands for a nil interface's zero
/// `reflect.Value` only where Go would produce one).
pub(crate) fn zero_of(t: &GoType) -> Val {
    match t {
        GoType::Any => Val::Nil,
        GoType::String => Val::str(""),
        GoType::Bool => Val::Bool(false),
        GoType::Int => Val::Int(0),
        GoType::Int64 => Val::Int64(0),
        GoType::Uint8 => Val::Uint8(0),
        GoType::Float64 => Val::Float(0.0),
        GoType::Number => Val::Number("".into()),
        GoType::Time => Val::Time(GoTime::ZERO),
        GoType::Month => Val::Month(0),
        GoType::Weekday => Val::Weekday(0),
        GoType::Slice(e) => Val::Slice(Rc::new(SliceVal {
            elem: (**e).clone(),
            items: Vec::new(),
            nil: true,
        })),
        GoType::Map(e) => Val::Map(Rc::new(MapVal {
            elem: (**e).clone(),
            entries: BTreeMap::new(),
            nil: true,
        })),
        GoType::Struct(d) => Val::Struct(Rc::new(StructVal {
            def: d,
            fields: d.fields.iter().map(|f| zero_of(&f.ty.go_type())).collect(),
        })),
        GoType::NetCtx | GoType::HeaderCtx => Val::Invalid,
    }
}

/// Decodes JSON the way `json.Decoder` with `UseNumber` decodes into an
/// `interface{}`: objects become `map[string]interface {}`, arrays
/// `[]interface {}`, numbers `json.Number`. The result is the concrete top
/// value (not wrapped in an interface).
pub(crate) fn from_json_raw(v: &Value) -> Val {
    match v {
        Value::Null => Val::Nil,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Number(json::number_text(n).into()),
        Value::String(s) => Val::str(s.as_str()),
        Value::Array(items) => Val::Slice(Rc::new(SliceVal {
            elem: GoType::Any,
            items: items.iter().map(wrap_any).collect(),
            nil: false,
        })),
        Value::Object(map) => Val::Map(Rc::new(MapVal {
            elem: GoType::Any,
            entries: map.iter().map(|(k, v)| (k.clone(), wrap_any(v))).collect(),
            nil: false,
        })),
    }
}

fn wrap_any(v: &Value) -> Val {
    match v {
        Value::Null => Val::Nil,
        other => Val::Iface(Rc::new(from_json_raw(other))),
    }
}

/// Decodes JSON into a value of the given field type, like
/// `json.Unmarshal` into a Go value of that type. Mismatching JSON leaves
/// the zero value (Go would report an error).
pub(crate) fn from_json_typed(ty: FieldTy, v: &Value) -> Val {
    match (ty, v) {
        (FieldTy::Any, v) => wrap_any(v),
        (FieldTy::Str, Value::String(s)) => Val::str(s.as_str()),
        (FieldTy::Bool, Value::Bool(b)) => Val::Bool(*b),
        (FieldTy::Int, Value::Number(n)) => Val::Int(n.as_i64().unwrap_or(0)),
        (FieldTy::Time, Value::String(s)) => {
            Val::Time(GoTime::parse_rfc3339(s).unwrap_or(GoTime::ZERO))
        }
        (FieldTy::Struct(d), Value::Object(_)) => struct_from_json(d, v),
        (FieldTy::MapStr, Value::Object(m)) => Val::Map(Rc::new(MapVal {
            elem: GoType::String,
            entries: m
                .iter()
                .map(|(k, v)| (k.clone(), from_json_typed(FieldTy::Str, v)))
                .collect(),
            nil: false,
        })),
        (FieldTy::MapStruct(d), Value::Object(m)) => Val::Map(Rc::new(MapVal {
            elem: GoType::Struct(d),
            entries: m
                .iter()
                .map(|(k, v)| (k.clone(), from_json_typed(FieldTy::Struct(d), v)))
                .collect(),
            nil: false,
        })),
        (FieldTy::SliceStr, Value::Array(items)) => Val::Slice(Rc::new(SliceVal {
            elem: GoType::String,
            items: items
                .iter()
                .map(|v| from_json_typed(FieldTy::Str, v))
                .collect(),
            nil: false,
        })),
        (FieldTy::SliceStruct(d), Value::Array(items)) => Val::Slice(Rc::new(SliceVal {
            elem: GoType::Struct(d),
            items: items
                .iter()
                .map(|v| from_json_typed(FieldTy::Struct(d), v))
                .collect(),
            nil: false,
        })),
        (ty, _) => zero_of(&ty.go_type()),
    }
}

/// Decodes a JSON object into a struct: keys match the field's JSON name
/// exactly, or else case-insensitively; unknown keys are ignored.
pub(crate) fn struct_from_json(def: &'static StructDef, v: &Value) -> Val {
    let mut fields: Vec<Val> = def
        .fields
        .iter()
        .map(|f| zero_of(&f.ty.go_type()))
        .collect();
    if let Value::Object(map) = v {
        for (k, item) in map {
            let idx = def.fields.iter().position(|f| f.json == k).or_else(|| {
                def.fields
                    .iter()
                    .position(|f| f.json.eq_ignore_ascii_case(k))
            });
            if let Some(i) = idx {
                if item.is_null() {
                    continue;
                }
                fields[i] = from_json_typed(def.fields[i].ty, item);
            }
        }
    }
    Val::Struct(Rc::new(StructVal { def, fields }))
}

fn is_empty_for_omit(v: &Val) -> bool {
    match v {
        Val::Invalid | Val::Nil => true,
        Val::Str(s) | Val::Number(s) => s.is_empty(),
        Val::Bool(b) => !b,
        Val::Int(i) | Val::Int64(i) => *i == 0,
        Val::Uint8(u) => *u == 0,
        Val::Float(f) => *f == 0.0,
        Val::Slice(s) => s.items.is_empty(),
        Val::Map(m) => m.entries.is_empty(),
        _ => false,
    }
}

fn is_valid_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    i == b.len()
}

/// Encodes a value like Go's `json.Marshal` (maps with sorted keys, struct
/// fields in declaration order with their JSON names and `omitempty`).
pub(crate) fn encode_json(out: &mut String, v: &Val, escape_html: bool) -> Result<(), String> {
    match v {
        Val::Invalid | Val::Nil => out.push_str("null"),
        Val::Iface(inner) => encode_json(out, inner, escape_html)?,
        Val::Str(s) => json::write_string(out, s, escape_html),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Int(i) | Val::Int64(i) => out.push_str(&i.to_string()),
        Val::Uint8(u) => out.push_str(&u.to_string()),
        Val::Month(u) | Val::Weekday(u) => out.push_str(&u.to_string()),
        Val::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    super::gofmt::format_float_g(*f)
                ));
            }
            out.push_str(&json::format_float(*f));
        }
        Val::Number(s) => {
            if s.is_empty() {
                out.push('0');
            } else if is_valid_json_number(s) {
                out.push_str(s);
            } else {
                return Err(format!(
                    "json: invalid number literal {}",
                    super::gofmt::quote(s)
                ));
            }
        }
        Val::Time(t) => {
            out.push('"');
            out.push_str(&t.rfc3339_nano());
            out.push('"');
        }
        Val::Slice(s) => {
            if s.nil {
                out.push_str("null");
                return Ok(());
            }
            out.push('[');
            for (i, item) in s.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_json(out, item, escape_html)?;
            }
            out.push(']');
        }
        Val::Map(m) => {
            if m.nil {
                out.push_str("null");
                return Ok(());
            }
            out.push('{');
            for (i, (k, item)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_string(out, k, escape_html);
                out.push(':');
                encode_json(out, item, escape_html)?;
            }
            out.push('}');
        }
        Val::HeaderCtx(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_string(out, k, escape_html);
                out.push(':');
                json::write_string(out, item, escape_html);
            }
            out.push('}');
        }
        Val::Struct(s) => {
            out.push('{');
            let mut first = true;
            for (f, item) in s.def.fields.iter().zip(&s.fields) {
                if f.omitempty && is_empty_for_omit(item) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json::write_string(out, f.json, escape_html);
                out.push(':');
                encode_json(out, item, escape_html)?;
            }
            out.push('}');
        }
        Val::NetCtx(c) => {
            // networkContext.MarshalJSON: json.Marshal of a map, which
            // always escapes HTML characters.
            out.push('{');
            for (i, (k, item)) in c.json_fields().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_string(out, k, true);
                out.push(':');
                json::write_string(out, item, true);
            }
            out.push('}');
        }
    }
    Ok(())
}
