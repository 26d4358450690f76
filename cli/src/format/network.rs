//! `docker network ls` rendering (cli/command/network/formatter.go and
//! list.go, cli/command/formatter/formatter.go) and the typed
//! `network.Inspect` model used by `network inspect` templates.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use super::FormatError;
use super::gotime::GoTime;
use super::natsort::natural_cmp;
use super::template::value::{FieldDef, FieldTy, NetCtx, StructDef, Val, struct_from_json};
use super::template::{ExecOptions, Template};

const fn field(name: &'static str, ty: FieldTy) -> FieldDef {
    FieldDef {
        name,
        json: name,
        omitempty: false,
        ty,
    }
}

const fn omit(name: &'static str, json: &'static str, ty: FieldTy) -> FieldDef {
    FieldDef {
        name,
        json,
        omitempty: true,
        ty,
    }
}

static IPAM_CONFIG: StructDef = StructDef {
    name: "network.IPAMConfig",
    fields: &[
        omit("Subnet", "Subnet", FieldTy::Str),
        omit("IPRange", "IPRange", FieldTy::Str),
        omit("Gateway", "Gateway", FieldTy::Str),
        omit("AuxAddress", "AuxiliaryAddresses", FieldTy::MapStr),
    ],
};

static IPAM: StructDef = StructDef {
    name: "network.IPAM",
    fields: &[
        field("Driver", FieldTy::Str),
        field("Options", FieldTy::MapStr),
        field("Config", FieldTy::SliceStruct(&IPAM_CONFIG)),
    ],
};

static CONFIG_REFERENCE: StructDef = StructDef {
    name: "network.ConfigReference",
    fields: &[field("Network", FieldTy::Str)],
};

static ENDPOINT_RESOURCE: StructDef = StructDef {
    name: "network.EndpointResource",
    fields: &[
        field("Name", FieldTy::Str),
        field("EndpointID", FieldTy::Str),
        field("MacAddress", FieldTy::Str),
        field("IPv4Address", FieldTy::Str),
        field("IPv6Address", FieldTy::Str),
    ],
};

static PEER_INFO: StructDef = StructDef {
    name: "network.PeerInfo",
    fields: &[field("Name", FieldTy::Str), field("IP", FieldTy::Str)],
};

static TASK: StructDef = StructDef {
    name: "network.Task",
    fields: &[
        field("Name", FieldTy::Str),
        field("EndpointID", FieldTy::Str),
        field("EndpointIP", FieldTy::Str),
        field("Info", FieldTy::MapStr),
    ],
};

static SERVICE_INFO: StructDef = StructDef {
    name: "network.ServiceInfo",
    fields: &[
        field("VIP", FieldTy::Str),
        field("Ports", FieldTy::SliceStr),
        field("LocalLBIndex", FieldTy::Int),
        field("Tasks", FieldTy::SliceStruct(&TASK)),
    ],
};

/// `network.Inspect` (= `network.Summary`) of the Docker API v28.
pub(crate) static NETWORK_INSPECT: StructDef = StructDef {
    name: "network.Inspect",
    fields: &[
        field("Name", FieldTy::Str),
        FieldDef {
            name: "ID",
            json: "Id",
            omitempty: false,
            ty: FieldTy::Str,
        },
        field("Created", FieldTy::Time),
        field("Scope", FieldTy::Str),
        field("Driver", FieldTy::Str),
        field("EnableIPv4", FieldTy::Bool),
        field("EnableIPv6", FieldTy::Bool),
        field("IPAM", FieldTy::Struct(&IPAM)),
        field("Internal", FieldTy::Bool),
        field("Attachable", FieldTy::Bool),
        field("Ingress", FieldTy::Bool),
        field("ConfigFrom", FieldTy::Struct(&CONFIG_REFERENCE)),
        field("ConfigOnly", FieldTy::Bool),
        field("Containers", FieldTy::MapStruct(&ENDPOINT_RESOURCE)),
        field("Options", FieldTy::MapStr),
        field("Labels", FieldTy::MapStr),
        omit("Peers", "Peers", FieldTy::SliceStruct(&PEER_INFO)),
        omit("Services", "Services", FieldTy::MapStruct(&SERVICE_INFO)),
    ],
};

/// The typed view of a network object (what `json.Unmarshal` into
/// `network.Inspect` yields).
pub(crate) fn typed_network(v: &Value) -> Val {
    struct_from_json(&NETWORK_INSPECT, v)
}

/// Puts the object in the order the daemon's Go encoder produces: keys of
/// map-typed fields (`Labels`, `Options`, `Containers`, `IPAM.Options`,
/// `AuxiliaryAddresses`, `Services`, task `Info`) sorted, struct fields
/// kept in the order given, unknown keys left untouched.
pub(crate) fn daemon_order(v: &Value) -> Value {
    normalize(FieldTy::Struct(&NETWORK_INSPECT), v)
}

fn sorted_object(m: &serde_json::Map<String, Value>, elem: Option<FieldTy>) -> Value {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| {
                let v = match elem {
                    Some(ty) => normalize(ty, v),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

fn normalize(ty: FieldTy, v: &Value) -> Value {
    match (ty, v) {
        (FieldTy::Struct(def), Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, item)| {
                    let f = def
                        .fields
                        .iter()
                        .find(|f| f.json == k)
                        .or_else(|| def.fields.iter().find(|f| f.json.eq_ignore_ascii_case(k)));
                    let item = match f {
                        Some(f) => normalize(f.ty, item),
                        None => item.clone(),
                    };
                    (k.clone(), item)
                })
                .collect(),
        ),
        (FieldTy::MapStr, Value::Object(m)) => sorted_object(m, None),
        (FieldTy::MapStruct(d), Value::Object(m)) => sorted_object(m, Some(FieldTy::Struct(d))),
        (FieldTy::SliceStruct(d), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|i| normalize(FieldTy::Struct(d), i))
                .collect(),
        ),
        (_, v) => v.clone(),
    }
}

fn field_of<'v>(s: &'v Val, name: &str) -> Option<&'v Val> {
    match s {
        Val::Struct(st) => st
            .def
            .fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| &st.fields[i]),
        _ => None,
    }
}

fn str_field(s: &Val, name: &str) -> String {
    match field_of(s, name) {
        Some(Val::Str(v)) => v.to_string(),
        _ => String::new(),
    }
}

fn bool_field(s: &Val, name: &str) -> bool {
    matches!(field_of(s, name), Some(Val::Bool(true)))
}

fn network_context(v: &Value, trunc: bool) -> NetCtx {
    let summary = typed_network(v);
    let labels = match field_of(&summary, "Labels") {
        Some(Val::Map(m)) if !m.nil => Some(
            m.entries
                .iter()
                .map(|(k, v)| (k.clone(), v.as_string_kind().unwrap_or("").to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        _ => None,
    };
    let created = match field_of(&summary, "Created") {
        Some(Val::Time(t)) => *t,
        _ => GoTime::ZERO,
    };
    NetCtx {
        trunc,
        id: str_field(&summary, "ID"),
        name: str_field(&summary, "Name"),
        driver: str_field(&summary, "Driver"),
        scope: str_field(&summary, "Scope"),
        ipv4: bool_field(&summary, "EnableIPv4"),
        ipv6: bool_field(&summary, "EnableIPv6"),
        internal: bool_field(&summary, "Internal"),
        labels,
        created,
        summary,
    }
}

/// The header row data: `SubHeaderContext` of the network formatter.
fn header_context() -> Val {
    let pairs = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ];
    Val::HeaderCtx(Rc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

const DEFAULT_TABLE_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// docker's `network.NewFormat`: resolves the `table`/`raw` keywords.
fn resolve_format(source: &str, quiet: bool) -> String {
    match source {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" => DEFAULT_TABLE_FORMAT.to_string(),
        "raw" if quiet => "network_id: {{.ID}}".to_string(),
        "raw" => {
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// Renders `docker network ls` output.
///
/// * `networks`: network objects in Engine API shape (`Name`, `Id`,
///   `Created`, `Scope`, `Driver`, `EnableIPv4`, `EnableIPv6`, `Internal`,
///   `Labels`, ...), in any order: they are sorted by name in natural
///   order (fvbommel/sortorder), as docker does.
/// * `quiet`: `-q` (only applies to the `table`/`raw` formats, as in
///   docker: an explicit custom `--format` wins).
/// * `no_trunc`: `--no-trunc` (IDs are otherwise cut to 12 characters).
/// * `format`: the `--format` value; `None` or `Some("")` means `table`.
///   (docker also consults `networksFormat` from its config file when
///   `--format` is empty and `-q` is not given; pass that value here.)
///
/// Formats: `table` (default columns), `table <template>` (header row from
/// the column names, then one row per network, aligned by the tabwriter),
/// `raw`, `json` (one JSON object per line, keys sorted), or any template
/// (one line per network). As in docker, the literal two-character
/// sequences `\t` and `\n` in the format are turned into a tab and a
/// newline, and leading/trailing spaces are trimmed.
///
/// Errors: a template that fails to parse or execute gives
/// [`FormatError::Parse`]/[`FormatError::Exec`]; docker then prints
/// nothing on stdout and exits with status 1.
pub fn network_ls(
    networks: &[Value],
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> Result<String, FormatError> {
    let source = match format {
        Some(f) if !f.is_empty() => f,
        _ => "table",
    };
    let format = resolve_format(source, quiet);
    let is_table = format.starts_with("table");
    let mut fin: &str = &format;
    if is_table {
        fin = &fin["table".len()..];
    } else if format == "json" {
        fin = "{{json .}}";
    }
    let fin = fin
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let tmpl = Template::parse(&fin)?;

    let mut sorted: Vec<&Value> = networks.iter().collect();
    sorted.sort_by(|a, b| {
        let name = |v: &Value| {
            v.get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        natural_cmp(&name(a), &name(b))
    });

    let mut body = String::new();
    for nw in sorted {
        let ctx = Val::NetCtx(Rc::new(network_context(nw, !no_trunc)));
        tmpl.execute_val(&mut body, &ctx, ExecOptions::default())
            .map_err(FormatError::Exec)?;
        body.push('\n');
    }
    if !is_table {
        return Ok(body);
    }
    Ok(super::table_with_header(&tmpl, &header_context(), &body))
}
