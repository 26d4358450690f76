//! End-to-end tests of `network_ls` and `inspect`, with golden strings from
//! docker's own tests (cli/command/network/formatter_test.go, list_test.go,
//! testdata/*.golden, cli/command/inspect/inspector_test.go) and from real
//! `docker network` output.

use rstest::rstest;
use serde_json::{Value, json};

use super::*;

/// A network object as the daemon returns it.
fn net(id: &str, name: &str, driver: &str, scope: &str, created: &str) -> Value {
    json!({
        "Name": name,
        "Id": id,
        "Created": created,
        "Scope": scope,
        "Driver": driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {}
    })
}

/// The two networks of docker's TestNetworkContextWrite.
fn formatter_test_networks() -> Vec<Value> {
    vec![
        json!({"Id": "networkID1", "Name": "foobar_baz", "Driver": "foo", "Scope": "local",
               "Created": "2016-01-01T00:00:00Z"}),
        json!({"Id": "networkID2", "Name": "foobar_bar", "Driver": "bar", "Scope": "local",
               "Created": "2017-01-01T00:00:00Z"}),
    ]
}

fn mhk_network() -> Value {
    json!({
        "Name": "mhk_network",
        "Id": "0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0",
        "Created": "2025-06-03T09:12:41.123456789Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {}
    })
}

fn tutorial_networks() -> Vec<Value> {
    vec![
        net(
            "0e9f5b0d0b5f8b1f0c2f8a1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e",
            "none",
            "null",
            "local",
            "2025-06-01T08:00:00Z",
        ),
        mhk_network(),
        net(
            "decbc8d10a7d9a6a5a8e0d3f6e1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c",
            "bridge",
            "bridge",
            "local",
            "2025-06-01T08:00:00Z",
        ),
        net(
            "5ae4fa2b7e4c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7081920a1b2",
            "host",
            "host",
            "local",
            "2025-06-01T08:00:00Z",
        ),
    ]
}

// ---------------------------------------------------------------- network ls

// TestNetworkContextWrite (formatter_test.go). docker's FormatWrite does not
// sort (list.go does), so foobar_bar comes first here. The test context
// there does not truncate; the IDs are short anyway.
#[rstest]
#[case::table(
    Some("table"),
    false,
    "NETWORK ID   NAME         DRIVER    SCOPE\n\
     networkID2   foobar_bar   bar       local\n\
     networkID1   foobar_baz   foo       local\n"
)]
#[case::table_quiet(Some("table"), true, "networkID2\nnetworkID1\n")]
#[case::table_name(Some("table {{.Name}}"), false, "NAME\nfoobar_bar\nfoobar_baz\n")]
#[case::table_name_quiet(Some("table {{.Name}}"), true, "NAME\nfoobar_bar\nfoobar_baz\n")]
#[case::raw(
    Some("raw"),
    false,
    "network_id: networkID2\nname: foobar_bar\ndriver: bar\nscope: local\n\n\
     network_id: networkID1\nname: foobar_baz\ndriver: foo\nscope: local\n\n"
)]
#[case::raw_quiet(Some("raw"), true, "network_id: networkID2\nnetwork_id: networkID1\n")]
#[case::custom(Some("{{.Name}}"), false, "foobar_bar\nfoobar_baz\n")]
#[case::created_at(
    Some("{{.Name}} {{.CreatedAt}}"),
    false,
    "foobar_bar 2017-01-01 00:00:00 +0000 UTC\nfoobar_baz 2016-01-01 00:00:00 +0000 UTC\n"
)]
#[case::default_format(
    None,
    false,
    "NETWORK ID   NAME         DRIVER    SCOPE\n\
     networkID2   foobar_bar   bar       local\n\
     networkID1   foobar_baz   foo       local\n"
)]
#[case::empty_format_is_table(Some(""), true, "networkID2\nnetworkID1\n")]
#[case::quiet_ignored_for_custom(Some("{{.Driver}}"), true, "bar\nfoo\n")]
fn ls_docker_formatter_cases(
    #[case] format: Option<&str>,
    #[case] quiet: bool,
    #[case] expected: &str,
) {
    let out = network_ls(&formatter_test_networks(), quiet, false, format).expect("formats");
    assert_eq!(out, expected);
}

#[rstest]
#[case::unknown_function(
    "{{InvalidFunction}}",
    r#"template parsing error: template: :1: function "InvalidFunction" not defined"#
)]
#[case::nil_command(
    "{{nil}}",
    r#"template parsing error: template: :1:2: executing "" at <nil>: nil is not a command"#
)]
#[case::unknown_field("{{.Foo}}",
    r#"template parsing error: template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in type *network.networkContext"#)]
#[case::field_of_string("table {{.Name.Foo}}",
    r#"template parsing error: template: :1:7: executing "" at <.Name.Foo>: can't evaluate field Foo in type string"#)]
#[case::label_needs_arg("{{.Label}}",
    r#"template parsing error: template: :1:2: executing "" at <.Label>: wrong number of args for Label: want 1 got 0"#)]
#[case::label_arg_type(
    "{{.Label 1}}",
    r#"template parsing error: template: :1:9: executing "" at <1>: expected string; found 1"#
)]
#[case::unexported("{{.trunc}}",
    r#"template parsing error: template: :1:2: executing "" at <.trunc>: trunc is an unexported field of struct type *network.networkContext"#)]
#[case::unclosed("{{.Name", "template parsing error: template: :1: unclosed action")]
fn ls_errors(#[case] format: &str, #[case] expected: &str) {
    let err =
        network_ls(&formatter_test_networks(), false, false, Some(format)).expect_err("fails");
    assert_eq!(err.to_string(), expected);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.stdout(), "");
}

// TestNetworkContextWriteJSON / TestNetworkContextWriteJSONField.
#[test]
fn ls_json() {
    let networks = vec![
        json!({"Id": "networkID1", "Name": "foobar_baz"}),
        json!({"Id": "networkID2", "Name": "foobar_bar"}),
    ];
    let expected = "{\"CreatedAt\":\"0001-01-01 00:00:00 +0000 UTC\",\"Driver\":\"\",\"ID\":\"networkID2\",\"IPv4\":\"false\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"\",\"Name\":\"foobar_bar\",\"Scope\":\"\"}\n\
                    {\"CreatedAt\":\"0001-01-01 00:00:00 +0000 UTC\",\"Driver\":\"\",\"ID\":\"networkID1\",\"IPv4\":\"false\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"\",\"Name\":\"foobar_baz\",\"Scope\":\"\"}\n";
    assert_eq!(
        network_ls(&networks, false, false, Some("{{json .}}")).expect("ok"),
        expected
    );
    assert_eq!(
        network_ls(&networks, false, false, Some("json")).expect("ok"),
        expected
    );
    assert_eq!(
        network_ls(&networks, false, false, Some("{{json .ID}}")).expect("ok"),
        "\"networkID2\"\n\"networkID1\"\n"
    );
}

// list_test.go: network-list.golden and network-list-sort.golden.
#[test]
fn ls_list_goldens() {
    let one = vec![
        json!({"Id": "123454321", "Name": "network_1", "Driver": "09.7.01",
                          "Scope": "global"}),
    ];
    assert_eq!(
        network_ls(&one, false, false, None).expect("ok"),
        "NETWORK ID   NAME        DRIVER    SCOPE\n123454321    network_1   09.7.01   global\n"
    );
    let three = vec![
        json!({"Name": "network-2-foo"}),
        json!({"Name": "network-1-foo"}),
        json!({"Name": "network-10-foo"}),
    ];
    assert_eq!(
        network_ls(&three, false, false, Some("{{ .Name }}")).expect("ok"),
        "network-1-foo\nnetwork-2-foo\nnetwork-10-foo\n"
    );
}

#[test]
fn ls_tutorial_default() {
    assert_eq!(
        network_ls(&tutorial_networks(), false, false, None).expect("ok"),
        "NETWORK ID     NAME          DRIVER    SCOPE\n\
         decbc8d10a7d   bridge        bridge    local\n\
         5ae4fa2b7e4c   host          host      local\n\
         0cdec720eeca   mhk_network   bridge    local\n\
         0e9f5b0d0b5f   none          null      local\n"
    );
    assert_eq!(
        network_ls(&tutorial_networks()[..1], false, false, None).expect("ok"),
        "NETWORK ID     NAME      DRIVER    SCOPE\n0e9f5b0d0b5f   none      null      local\n"
    );
    assert_eq!(
        network_ls(&[], false, false, None).expect("ok"),
        "NETWORK ID   NAME      DRIVER    SCOPE\n"
    );
}

#[test]
fn ls_quiet_and_no_trunc() {
    let nets = tutorial_networks();
    assert_eq!(
        network_ls(&nets, true, false, None).expect("ok"),
        "decbc8d10a7d\n5ae4fa2b7e4c\n0cdec720eeca\n0e9f5b0d0b5f\n"
    );
    let full = network_ls(&nets, true, true, None).expect("ok");
    assert_eq!(
        full.lines().nth(2),
        Some(nets[1]["Id"].as_str().expect("id"))
    );
    let out = network_ls(&nets[1..2], false, true, None).expect("ok");
    assert_eq!(
        out,
        "NETWORK ID                                                         NAME          DRIVER    SCOPE\n\
         0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0   mhk_network   bridge    local\n"
    );
    // stringid.TruncateID drops an algorithm prefix.
    let prefixed = vec![json!({"Id": "sha256:0123456789abcdef", "Name": "x"})];
    assert_eq!(
        network_ls(&prefixed, true, false, None).expect("ok"),
        "0123456789ab\n"
    );
}

#[test]
fn ls_custom_tables_and_headers() {
    let mut nets = tutorial_networks();
    nets[1]["Labels"] = json!({"com.example.team_name": "net", "a": "1"});
    nets[1]["Internal"] = json!(true);
    let two = &nets[1..3];
    assert_eq!(
        network_ls(
            two,
            false,
            false,
            Some("table {{.Name}}\\t{{.IPv4}}\\t{{.IPv6}}\\t{{.Internal}}")
        )
        .expect("ok"),
        "NAME          IPV4      IPV6      INTERNAL\n\
         bridge        true      false     false\n\
         mhk_network   true      false     true\n"
    );
    assert_eq!(
        network_ls(two, false, false, Some("table {{.Name}}\t{{.Labels}}")).expect("ok"),
        "NAME          LABELS\nbridge        \nmhk_network   a=1,com.example.team_name=net\n"
    );
    assert_eq!(
        network_ls(
            two,
            false,
            false,
            Some(r#"table {{.Name}}\t{{.Label "com.example.team_name"}}"#)
        )
        .expect("ok"),
        "NAME          team name\nbridge        \nmhk_network   net\n"
    );
    // Header functions leave the column names alone; pad still applies.
    assert_eq!(
        network_ls(
            two,
            false,
            false,
            Some("table {{upper .Name}}|{{pad .Driver 1 1}}|")
        )
        .expect("ok"),
        "NAME| DRIVER |\nBRIDGE| bridge |\nMHK_NETWORK| bridge |\n"
    );
    assert_eq!(
        network_ls(two, false, false, Some("table {{.CreatedAt}}")).expect("ok"),
        "CREATED AT\n2025-06-01 08:00:00 +0000 UTC\n2025-06-03 09:12:41.123456789 +0000 UTC\n"
    );
    // `table {{json .}}`: the header execution fails, leaving an empty line.
    let out = network_ls(&nets[..1], false, false, Some("table {{json .Name}}")).expect("ok");
    assert_eq!(out, "NAME\n\"none\"\n");
    let out = network_ls(&nets[..1], false, false, Some("table {{json .}}")).expect("ok");
    assert!(
        out.starts_with("\n{\"CreatedAt\":\"2025-06-01 08:00:00 +0000 UTC\","),
        "{out}"
    );
    // Unknown fields only show up in the header when there are no rows.
    assert_eq!(
        network_ls(&[], false, false, Some("table {{.Foo}}")).expect("ok"),
        "<no value>\n"
    );
}

#[test]
fn ls_escapes_and_trimming() {
    let nets = &tutorial_networks()[1..3];
    // Literal backslash-t / backslash-n sequences become tab and newline.
    assert_eq!(
        network_ls(nets, false, false, Some(r"{{.Name}}\t{{.Driver}}\n")).expect("ok"),
        "bridge\tbridge\n\nmhk_network\tbridge\n\n"
    );
    assert_eq!(
        network_ls(nets, false, false, Some("   {{.Name}}  ")).expect("ok"),
        "bridge\nmhk_network\n"
    );
    assert_eq!(
        network_ls(nets, false, false, Some("table   {{.Name}}")).expect("ok"),
        "NAME\nbridge\nmhk_network\n"
    );
}

#[test]
fn ls_json_escapes_html_but_json_func_does_not() {
    let nets = vec![json!({"Id": "x", "Name": "a<b>&c"})];
    assert_eq!(
        network_ls(&nets, false, false, Some("{{json .Name}}")).expect("ok"),
        "\"a<b>&c\"\n"
    );
    let out = network_ls(&nets, false, false, Some("json")).expect("ok");
    assert!(out.contains(r#""Name":"a\u003cb\u003e\u0026c""#), "{out}");
}

#[test]
fn ls_dot_prints_context_struct() {
    let nets = vec![
        json!({"Name": "n", "Id": "i", "Created": "2016-01-01T00:00:00Z",
                           "Scope": "local", "Driver": "bridge"}),
    ];
    assert_eq!(
        network_ls(&nets, false, false, Some("{{.}}")).expect("ok"),
        "{{<nil>} true {n i {0 63587203200 <nil>} local bridge false false { map[] []} false false false {} false map[] map[] map[] [] map[]}}\n"
    );
    assert_eq!(
        network_ls(
            &nets,
            false,
            false,
            Some("{{.Header}}|{{.FullHeader}}|{{.HeaderContext}}")
        )
        .expect("ok"),
        "<no value>|<no value>|{<nil>}\n"
    );
}

// ------------------------------------------------------------------- inspect

const MHK_INSPECT: &str = r#"[
    {
        "Name": "mhk_network",
        "Id": "0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0",
        "Created": "2025-06-03T09:12:41.123456789Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "172.18.0.0/16",
                    "Gateway": "172.18.0.1"
                }
            ]
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {
            "Network": ""
        },
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {}
    }
]
"#;

#[test]
fn inspect_tutorial_default() {
    assert_eq!(inspect(&[mhk_network()], None).expect("ok"), MHK_INSPECT);
    assert_eq!(
        inspect(&[mhk_network()], Some("")).expect("ok"),
        MHK_INSPECT
    );
}

// inspector_test.go: TestIndentedInspector*, TestNewTemplateInspectorFromString.
#[rstest]
#[case::default(vec![json!({"Dns": "0.0.0.0"})], None,
    "[\n    {\n        \"Dns\": \"0.0.0.0\"\n    }\n]\n")]
#[case::multiple(vec![json!({"Dns": "0.0.0.0"}), json!({"Dns": "1.1.1.1"})], None,
    "[\n    {\n        \"Dns\": \"0.0.0.0\"\n    },\n    {\n        \"Dns\": \"1.1.1.1\"\n    }\n]\n")]
#[case::empty(vec![], None, "[]\n")]
#[case::raw_elements(
    vec![json!({"Dns": "0.0.0.0", "Node": "0"}), json!({"Dns": "1.1.1.1", "Node": "1"})], None,
    "[\n    {\n        \"Dns\": \"0.0.0.0\",\n        \"Node\": \"0\"\n    },\n    {\n        \"Dns\": \"1.1.1.1\",\n        \"Node\": \"1\"\n    }\n]\n")]
#[case::json(vec![json!({"Name": "test"})], Some("json"), "[{\"Name\":\"test\"}]\n")]
#[case::json_empty(vec![], Some("json"), "[]\n")]
#[case::template(vec![json!({"Name": "test"})], Some("{{.Name}}"), "test\n")]
#[case::template_empty(vec![], Some("{{.DNS}}"), "\n")]
#[case::raw_fallback(vec![json!({"Dns": "0.0.0.0"})], Some("{{.Dns}}"), "0.0.0.0\n")]
#[case::template_multiple(vec![json!({"Name": "0.0.0.0"}), json!({"Name": "1.1.1.1"})],
    Some("{{.Name}}"), "0.0.0.0\n1.1.1.1\n")]
// TestTemplateInspectorRawFallbackNumber (a Value's number prints as the
// daemon's Go encoder would have written it).
#[case::number_int(vec![json!({"Id": "ad3", "Size": 53317})], Some("{{.Size}} {{.Id}}"), "53317 ad3\n")]
#[case::number_float(vec![json!({"Id": "ad3", "Size": 53317.102})], Some("{{.Size}} {{.Id}}"),
    "53317.102 ad3\n")]
#[case::no_unescaping(vec![json!({"Name": "n"})], Some(r"{{.Name}}\t"), "n\\t\n")]
#[case::table_is_literal(vec![json!({"Name": "n"})], Some("table {{.Name}}"), "table n\n")]
fn inspect_docker_cases(
    #[case] objects: Vec<Value>,
    #[case] format: Option<&str>,
    #[case] expected: &str,
) {
    assert_eq!(inspect(&objects, format).expect("ok"), expected);
}

#[test]
fn inspect_json_keeps_daemon_escaping() {
    let o =
        json!({"Name": "a<b>&\"c\"\u{2028}", "Labels": {"z": "1", "a": "2"}, "N": 1.5, "E": []});
    assert_eq!(
        inspect(std::slice::from_ref(&o), Some("json")).expect("ok"),
        "[{\"Name\":\"a<b>&\\\"c\\\"\\u2028\",\"Labels\":{\"a\":\"2\",\"z\":\"1\"},\"N\":1.5,\"E\":[]}]\n"
    );
    assert_eq!(
        inspect(&[o], None).expect("ok"),
        "[\n    {\n        \"Name\": \"a<b>&\\\"c\\\"\\u2028\",\n        \"Labels\": {\n            \"a\": \"2\",\n            \"z\": \"1\"\n        },\n        \"N\": 1.5,\n        \"E\": []\n    }\n]\n"
    );
}

fn mhk_with_container() -> Value {
    let mut n = mhk_network();
    n["Containers"] = json!({
        "f2a4c7d1e0b9": {
            "Name": "web",
            "EndpointID": "ep1",
            "MacAddress": "02:42:ac:12:00:02",
            "IPv4Address": "172.18.0.2/16",
            "IPv6Address": ""
        }
    });
    n["Labels"] = json!({"b": "2", "a": "<1>"});
    n["Options"] = json!({"com.docker.network.bridge.name": "br-mhk"});
    n
}

#[rstest]
#[case::name("{{.Name}}", "mhk_network")]
#[case::typed_id(
    "{{.ID}}",
    "0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0"
)]
#[case::raw_id(
    "{{.Id}}",
    "0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0"
)]
#[case::created_is_time("{{.Created}}", "2025-06-03 09:12:41.123456789 +0000 UTC")]
#[case::created_format(
    r#"{{.Created.Format "2006-01-02"}} {{.Created.Year}}"#,
    "2025-06-03 2025"
)]
#[case::ipam_struct("{{.IPAM}}", "{default map[] [{172.18.0.0/16  172.18.0.1 map[]}]}")]
#[case::ipam_config("{{.IPAM.Config}}", "[{172.18.0.0/16  172.18.0.1 map[]}]")]
#[case::ipam_json("{{json .IPAM}}",
    r#"{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]}"#)]
#[case::subnets(
    "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    "172.18.0.0/16 172.18.0.1"
)]
#[case::containers(
    "{{.Containers}}",
    "map[f2a4c7d1e0b9:{web ep1 02:42:ac:12:00:02 172.18.0.2/16 }]"
)]
#[case::containers_range(
    "{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}",
    "f2a4c7d1e0b9 web 172.18.0.2/16"
)]
#[case::containers_json("{{json .Containers}}",
    r#"{"f2a4c7d1e0b9":{"Name":"web","EndpointID":"ep1","MacAddress":"02:42:ac:12:00:02","IPv4Address":"172.18.0.2/16","IPv6Address":""}}"#)]
#[case::labels("{{.Labels}}", "map[a:<1> b:2]")]
#[case::labels_json("{{json .Labels}}", r#"{"a":"<1>","b":"2"}"#)]
#[case::option_index(r#"{{index .Options "com.docker.network.bridge.name"}}"#, "br-mhk")]
#[case::missing_index(r#"[{{index .Options "nope"}}]"#, "[]")]
#[case::missing_label("{{.Labels.nope}}", "<no value>")]
#[case::config_from("{{.ConfigFrom}}|{{.ConfigFrom.Network}}|", "{}||")]
#[case::peers_nil("{{.Peers}} {{.Services}} {{len .Peers}}", "[] map[] 0")]
#[case::bools(
    "{{.EnableIPv4}} {{if .Internal}}internal{{else}}external{{end}}",
    "true external"
)]
#[case::whole_json("{{json .}}",
    r#"{"Name":"mhk_network","Id":"0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0","Created":"2025-06-03T09:12:41.123456789Z","Scope":"local","Driver":"bridge","EnableIPv4":true,"EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{"f2a4c7d1e0b9":{"Name":"web","EndpointID":"ep1","MacAddress":"02:42:ac:12:00:02","IPv4Address":"172.18.0.2/16","IPv6Address":""}},"Options":{"com.docker.network.bridge.name":"br-mhk"},"Labels":{"a":"<1>","b":"2"}}"#)]
// Raw fallback (field names as in the JSON, maps of interface{}).
#[case::raw_ipam(
    "{{.Id}} {{.IPAM}}",
    "0cdec720eeca373fbbec8e4d62d6170edf1ab0c5b70c0366df8926fd142477b0 map[Config:[map[Gateway:172.18.0.1 Subnet:172.18.0.0/16]] Driver:default Options:map[]]"
)]
#[case::raw_json("{{.Id | len}} {{json .ConfigFrom}}", r#"64 {"Network":""}"#)]
fn inspect_templates(#[case] format: &str, #[case] expected: &str) {
    let out = inspect(&[mhk_with_container()], Some(format)).expect("ok");
    assert_eq!(out, format!("{expected}\n"));
}

#[test]
fn inspect_template_errors() {
    let err = inspect(&[mhk_network()], Some("{{.Foo}}")).expect_err("fails");
    assert_eq!(
        err.to_string(),
        r#"template parsing error: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#
    );
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.stdout(), "\n");

    let err = inspect(&[mhk_network()], Some("{{foo}}")).expect_err("fails");
    assert_eq!(
        err.to_string(),
        r#"template parsing error: template: :1: function "foo" not defined"#
    );
    assert_eq!(err.exit_code(), 64);
    assert_eq!(err.stdout(), "");

    // One good and one bad object: the good output is still printed, and
    // each failure is reported on its own line.
    let good = json!({"Name": "a", "Extra": "x"});
    let bad = json!({"Name": "b"});
    let err = inspect(&[good, bad.clone(), bad], Some("{{.Extra}}")).expect_err("fails");
    assert_eq!(err.stdout(), "x\n");
    assert_eq!(
        err.to_string(),
        "template parsing error: template: :1:2: executing \"\" at <.Extra>: map has no entry for key \"Extra\"\n\
         template parsing error: template: :1:2: executing \"\" at <.Extra>: map has no entry for key \"Extra\""
    );
}

#[test]
fn inspect_missingkey_error_is_sticky() {
    let t = r#"{{.Labels.x}}{{if eq .Name "a"}}{{.Extra}}{{end}}"#;
    let a = json!({"Name": "a", "Labels": {"x": "1"}, "Extra": "e"});
    let b = json!({"Name": "b", "Labels": {}});
    // Alone, b renders with the typed struct (missing key: <no value>).
    assert_eq!(
        inspect(std::slice::from_ref(&b), Some(t)).expect("ok"),
        "<no value>\n"
    );
    // After a needed the raw fallback, missingkey=error stays on.
    let err = inspect(&[a, b], Some(t)).expect_err("fails");
    assert_eq!(err.stdout(), "1e\n");
    assert_eq!(
        err.to_string(),
        r#"template parsing error: template: :1:9: executing "" at <.Labels.x>: map has no entry for key "x""#
    );
}

#[test]
fn inspector_interleaves_lookup_errors() {
    let mut i = Inspector::new(None).expect("ok");
    i.add(&json!({"Name": "a"}));
    i.add_error("Error: No such network: nope");
    let err = i.finish().expect_err("fails");
    assert_eq!(
        err.stdout(),
        "[\n    {\n        \"Name\": \"a\"\n    }\n]\n"
    );
    assert_eq!(err.to_string(), "Error: No such network: nope");
    assert_eq!(err.exit_code(), 1);

    let mut i = Inspector::new(None).expect("ok");
    i.add_error("Error: No such network: nope");
    assert_eq!(i.finish().expect_err("fails").stdout(), "[]\n");
}

#[test]
fn inspect_sorts_go_map_fields_like_the_daemon() {
    let mut n = mhk_with_container();
    n["Options"] = json!({"z.opt": "1", "a.opt": "2"});
    n["IPAM"]["Options"] = json!({"y": "1", "b": "2"});
    n["IPAM"]["Config"][0]["AuxiliaryAddresses"] =
        json!({"host2": "10.0.0.3", "host1": "10.0.0.2"});
    let out = inspect(&[n], Some("json")).expect("ok");
    assert!(out.contains(r#""IPAM":{"Driver":"default","Options":{"b":"2","y":"1"},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1","AuxiliaryAddresses":{"host1":"10.0.0.2","host2":"10.0.0.3"}}]}"#), "{out}");
    assert!(
        out.contains(r#""Options":{"a.opt":"2","z.opt":"1"},"Labels":{"a":"<1>","b":"2"}}]"#),
        "{out}"
    );
}

#[test]
fn ls_wide_characters_align_by_display_width() {
    let nets = vec![
        json!({"Id": "1", "Name": "a", "Labels": {"k": "日本語"}}),
        json!({"Id": "2", "Name": "b", "Labels": {"k": "x"}}),
    ];
    assert_eq!(
        network_ls(
            &nets,
            false,
            false,
            Some(r#"table {{.Label "k"}}\t{{.Name}}"#)
        )
        .expect("ok"),
        "k         NAME\n日本語    a\nx         b\n"
    );
}
