//! Template tests on decoded JSON (Go's `interface{}` model).

use rstest::rstest;
use serde_json::{Value, json};

use super::Template;
use crate::format::FormatError;

fn data() -> Value {
    json!({
        "S": "str",
        "Name": "mhk_network",
        "N": 1500,
        "F": 53317.102,
        "Big": 3983636,
        "T": true,
        "Fa": false,
        "Z": null,
        "Empty": "",
        "L": ["a", "b", "c"],
        "Mixed": [1, null, "x", true],
        "M": {"b": "2", "a": "1", "c": {"d": "deep"}},
        "EM": {},
        "EL": [],
        "Html": "<a&b>",
        "Csv": "x,y,z",
        "Objs": [{"Subnet": "10.0.0.0/8"}, {"Subnet": "fd00::/64"}]
    })
}

fn run(t: &str) -> Result<String, FormatError> {
    Template::parse(t)?.execute_json(&data(), false)
}

#[rstest]
#[case::text("plain text", "plain text")]
#[case::field("{{.S}}", "str")]
#[case::nested("{{.M.c.d}}", "deep")]
#[case::missing("{{.Nope}}", "<no value>")]
#[case::missing_nested("{{.Nope.Deeper}}", "<no value>")]
#[case::null("{{.Z}}", "<no value>")]
#[case::number("{{.N}} {{.F}} {{.Big}}", "1500 53317.102 3983636")]
#[case::bools("{{.T}} {{.Fa}}", "true false")]
#[case::map("{{.M}}", "map[a:1 b:2 c:map[d:deep]]")]
#[case::list("{{.L}}", "[a b c]")]
#[case::mixed("{{.Mixed}}", "[1 <nil> x true]")]
#[case::empty_containers("{{.EM}} {{.EL}}", "map[] []")]
#[case::dot_map("{{.EM}}", "map[]")]
#[case::json_dot("{{json .M}}", r#"{"a":"1","b":"2","c":{"d":"deep"}}"#)]
#[case::json_no_html_escape("{{json .Html}}", r#""<a&b>""#)]
#[case::json_number(
    "{{json .F}} {{json .N}} {{json .Z}} {{json .Nope}}",
    "53317.102 1500 null null"
)]
#[case::json_pipe("{{.L | json}}", r#"["a","b","c"]"#)]
#[case::join_split(r#"{{join (split .Csv ",") " | "}}"#, "x | y | z")]
#[case::split_print(r#"{{split .Csv ","}}"#, "[x y z]")]
#[case::upper_lower_title(
    "{{upper .S}} {{lower \"ABC\"}} {{title \"hello world\"}}",
    "STR abc Hello World"
)]
#[case::pad_truncate(
    "[{{pad .S 2 1}}][{{pad .Empty 2 2}}][{{truncate .Name 3}}][{{truncate .S 10}}]",
    "[  str ][][mhk][str]"
)]
#[case::println("{{println .S}}", "str\n")]
#[case::println_empty("a{{println}}b", "a\nb")]
#[case::print("{{print .S 1 2 .T}}", "str1 2 true")]
#[case::printf(r#"{{printf "%s=%v" .S .N}}"#, "str=1500")]
#[case::printf_pipe(r#"{{.S | printf "%q"}}"#, r#""str""#)]
#[case::range_list("{{range .L}}[{{.}}]{{end}}", "[a][b][c]")]
#[case::range_index("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", "0=a 1=b 2=c ")]
#[case::range_map("{{range $k, $v := .M}}{{$k}};{{end}}", "a;b;c;")]
#[case::range_map_values("{{range .M}}{{.}},{{end}}", "1,2,map[d:deep],")]
#[case::range_objects("{{range .Objs}}{{.Subnet}} {{end}}", "10.0.0.0/8 fd00::/64 ")]
#[case::range_else("{{range .EL}}x{{else}}empty{{end}}", "empty")]
#[case::range_missing("{{range .Nope}}x{{else}}none{{end}}", "none")]
#[case::range_break("{{range .L}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a")]
#[case::range_continue("{{range .L}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac")]
#[case::range_int("{{range 3}}{{.}}{{end}}", "012")]
#[case::range_dollar("{{range .L}}{{$.S}}{{end}}", "strstrstr")]
#[case::if_else(
    "{{if .T}}yes{{else}}no{{end}} {{if .Fa}}yes{{else}}no{{end}}",
    "yes no"
)]
#[case::if_missing("{{if .Nope}}yes{{else}}no{{end}}", "no")]
#[case::if_empty_string("{{if .Empty}}yes{{else}}no{{end}}", "no")]
#[case::if_else_if("{{if .Fa}}a{{else if .T}}b{{else}}c{{end}}", "b")]
#[case::with("{{with .M.c}}{{.d}}{{end}}{{with .Nope}}x{{else}}y{{end}}", "deepy")]
#[case::index_map(r#"{{index .M "b"}}"#, "2")]
#[case::index_missing(r#"{{index .M "zz"}}"#, "<no value>")]
#[case::index_list("{{index .L 1}}", "b")]
#[case::index_nested(r#"{{index .Objs 1 "Subnet"}}"#, "fd00::/64")]
#[case::index_string("{{index .S 0}}", "115")]
#[case::slice("{{slice .L 1}} {{slice .S 1 2}}", "[b c] t")]
#[case::len("{{len .L}} {{len .M}} {{len .S}}", "3 3 3")]
#[case::variables("{{$x := .S}}{{$x}}{{$x = .Name}}-{{$x}}", "str-mhk_network")]
#[case::dollar("{{$.S}}", "str")]
#[case::trim("a  {{- .S -}}  b", "astrb")]
#[case::trim_newlines("a\n\n{{- .S}}\n", "astr\n")]
#[case::comment("a{{/* hidden */}}b{{- /* x */ -}} c", "abc")]
#[case::and_or(
    "{{and .T .S}} {{or .Fa .Empty \"dflt\"}} {{not .T}}",
    "str dflt false"
)]
#[case::compare(
    r#"{{eq .S "str"}} {{ne .S "x"}} {{eq .N "1500"}} {{lt 1 2}} {{ge "b" "a"}}"#,
    "true true true true true"
)]
#[case::eq_multi(r#"{{eq .S "a" "str"}}"#, "true")]
#[case::eq_missing(r#"{{eq .Nope "x"}}"#, "false")]
#[case::parens("{{(index .Objs 0).Subnet}}", "10.0.0.0/8")]
#[case::literal_string(r#"{{"lit"}} {{`raw\n`}}"#, r"lit raw\n")]
#[case::literal_numbers("{{1}} {{1.5}} {{0x10}} {{'a'}} {{1e6}}", "1 1.5 16 97 1e+06")]
#[case::html_js_urlquery(
    r#"{{html .Html}} {{js "a'b"}} {{urlquery "a b&c"}}"#,
    r"&lt;a&amp;b&gt; a\'b a+b%26c"
)]
#[case::html_missing("{{html .Nope}}", "&lt;no value&gt;")]
#[case::multiline("line1\n{{.S}}\nline3", "line1\nstr\nline3")]
fn execute_ok(#[case] t: &str, #[case] expected: &str) {
    assert_eq!(run(t).expect("executes"), expected);
}

#[rstest]
#[case::unclosed("{{.Name", "template: :1: unclosed action")]
#[case::unclosed_line2("a\n{{.Name", "template: :2: unclosed action")]
#[case::unknown_func("{{foo .S}}", r#"template: :1: function "foo" not defined"#)]
#[case::end("{{end}}", "template: :1: unexpected {{end}}")]
#[case::else_("{{else}}", "template: :1: unexpected {{else}}")]
#[case::eof("{{if .A}}", "template: :1: unexpected EOF")]
#[case::bad_char("{{.A!}}", "template: :1: bad character U+0021 '!'")]
#[case::undefined_var("{{$x}}", r#"template: :1: undefined variable "$x""#)]
#[case::range_empty("{{range}}{{end}}", "template: :1: missing value for range")]
#[case::if_empty("{{if}}{{end}}", "template: :1: missing value for if")]
#[case::empty_action("{{}}", "template: :1: missing value for command")]
#[case::break_outside("{{break}}", "template: :1: {{break}} outside {{range}}")]
#[case::non_exec(
    "{{.A | 3}}",
    "template: :1: non executable command in pipeline stage 2"
)]
#[case::dot_after_literal(r#"{{"abc".X}}"#, r#"template: :1: unexpected . after term "\"abc\"""#)]
#[case::unclosed_paren("{{(.A}}", "template: :1: unclosed left paren")]
#[case::extra_paren("{{.A)}}", "template: :1: unexpected right paren")]
#[case::unterminated_string(r#"{{"abc}}"#, "template: :1: unterminated quoted string")]
#[case::bad_number("{{3k}}", r#"template: :1: bad number syntax: "3k""#)]
#[case::unexpected_in_operand("{{.A =}}", r#"template: :1: unexpected "=" in operand"#)]
#[case::too_many_decls("{{$a, $b := .A}}", "template: :1: too many declarations in command")]
#[case::end_args("{{if .A}}{{end .B}}", r#"template: :1: unexpected ".B" in end"#)]
#[case::unclosed_comment("{{/* x", "template: :1: unclosed comment")]
#[case::bad_escape(r#"{{"\q"}}"#, "template: :1: invalid syntax")]
fn parse_errors(#[case] t: &str, #[case] expected: &str) {
    match Template::parse(t) {
        Err(FormatError::Parse(msg)) => assert_eq!(msg, expected),
        other => panic!("expected parse error, got {other:?}"),
    }
}

#[test]
fn unsupported_constructs() {
    for t in [
        r#"{{define "x"}}a{{end}}"#,
        r#"{{block "x" .}}a{{end}}"#,
        "{{1+2i}}",
    ] {
        match Template::parse(t) {
            Err(e @ FormatError::Unsupported(_)) => {
                assert!(
                    e.to_string()
                        .starts_with("template parsing error: template: :1: ")
                );
            }
            other => panic!("{t}: expected Unsupported, got {other:?}"),
        }
    }
}

#[rstest]
#[case::missingkey(
    "{{.Missing}}",
    true,
    r#"template: :1:2: executing "" at <.Missing>: map has no entry for key "Missing""#
)]
#[case::field_of_string(
    "{{.S.X}}",
    false,
    r#"template: :1:4: executing "" at <.S.X>: can't evaluate field X in type interface {}"#
)]
#[case::field_of_null(
    "{{.Z.X}}",
    false,
    r#"template: :1:4: executing "" at <.Z.X>: nil pointer evaluating interface {}.X"#
)]
#[case::nil_data(
    "{{.Nope.X}}",
    true,
    r#"template: :1:7: executing "" at <.Nope.X>: map has no entry for key "Nope""#
)]
#[case::join_wrong_type(r#"{{join .L ", "}}"#, false,
    r#"template: :1:7: executing "" at <.L>: wrong type for value; expected []string; got []interface {}"#)]
#[case::upper_number("{{upper .N}}", false,
    r#"template: :1:8: executing "" at <.N>: wrong type for value; expected string; got json.Number"#)]
#[case::upper_missing(
    "{{upper .Nope}}",
    false,
    r#"template: :1:8: executing "" at <.Nope>: invalid value; expected string"#
)]
#[case::wrong_arg_count(
    "{{json}}",
    false,
    r#"template: :1:2: executing "" at <json>: wrong number of args for json: want 1 got 0"#
)]
#[case::index_out_of_range(
    "{{index .L 5}}",
    false,
    r#"template: :1:2: executing "" at <index .L 5>: error calling index: index out of range: 5"#
)]
#[case::index_at_len("{{index .L 3}}", false,
    r#"template: :1:2: executing "" at <index .L 3>: error calling index: reflect: slice index out of range"#)]
#[case::index_key_type("{{index .M 1}}", false,
    r#"template: :1:2: executing "" at <index .M 1>: error calling index: value has type int; should be string"#)]
#[case::compare_types(r#"{{lt .S 1}}"#, false,
    r#"template: :1:2: executing "" at <lt .S 1>: error calling lt: incompatible types for comparison"#)]
#[case::len_of_bool(
    "{{len .T}}",
    false,
    r#"template: :1:2: executing "" at <len .T>: error calling len: len of type bool"#
)]
#[case::nil_command(
    "{{nil}}",
    false,
    r#"template: :1:2: executing "" at <nil>: nil is not a command"#
)]
#[case::arg_to_non_function(
    "{{.S | .T}}",
    false,
    r#"template: :1:7: executing "" at <.T>: T is not a method but has arguments"#
)]
#[case::range_over_bool(
    "{{range .T}}{{end}}",
    false,
    r#"template: :1:8: executing "" at <.T>: range can't iterate over true"#
)]
#[case::template_call(
    r#"{{template "x"}}"#,
    false,
    r#"template: :1:11: executing "" at <{{template "x"}}>: template "x" not defined"#
)]
#[case::second_line(
    "a\n b {{.S.X}}",
    false,
    r#"template: :2:7: executing "" at <.S.X>: can't evaluate field X in type interface {}"#
)]
#[case::long_context(r#"{{index .L 1 2 3 4 5 6 7 8}}"#, false,
    r#"template: :1:2: executing "" at <index .L 1 2 3 4 5 6...>: error calling index: index out of range: 2"#)]
fn exec_errors(#[case] t: &str, #[case] missing_key_error: bool, #[case] expected: &str) {
    let tmpl = Template::parse(t).expect("parses");
    match tmpl.execute_json(&data(), missing_key_error) {
        Err(FormatError::Exec(msg)) => assert_eq!(msg, expected),
        other => panic!("expected exec error, got {other:?}"),
    }
}
