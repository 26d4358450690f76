//! Parser for the text/template subset, following
//! `text/template/parse/parse.go` (same tree shape, same error messages).
//! `define` and `block` are not supported; `template` parses but fails at
//! execution time (no associated templates exist).

use super::lex::{Item, ItemKind, lex};

/// Names known at parse time: docker's `templates.basicFunctions` plus Go's
/// builtins.
pub(crate) const FUNCTION_NAMES: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate", "and", "call", "html",
    "index", "slice", "js", "len", "not", "or", "print", "printf", "println", "urlquery", "eq",
    "ge", "gt", "le", "lt", "ne",
];

/// A parse failure: the message without the `template: :LINE: ` prefix,
/// plus the line, or an unsupported construct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    Syntax { line: usize, msg: String },
    Unsupported { line: usize, what: String },
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<Variable>,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub(crate) pos: usize,
    pub(crate) ident: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

/// A parsed number literal (Go's `NumberNode`).
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) uint: Option<u64>,
    pub(crate) float: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        field: Vec<String>,
    },
    Variable(Variable),
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl std::fmt::Display for Arg {
    /// Go's `Node.String()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Field { ident, .. } => {
                for id in ident {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Chain { node, field, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for id in field {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Variable(v) => write!(f, "{v}"),
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { num, .. } => f.write_str(&num.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl std::fmt::Display for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = arg {
                write!(f, "({p})")?;
            } else {
                write!(f, "{arg}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// `else`/`end` markers returned by `item_list`.
enum Marker {
    End,
    Else,
}

enum Parsed {
    Node(Node),
    Marker(Marker),
}

struct Parser {
    items: Vec<Item>,
    idx: usize,
    max_seen: usize,
    vars: Vec<String>,
    range_depth: usize,
    action_line: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser {
    fn item(&self, i: usize) -> &Item {
        let last = self.items.len() - 1;
        &self.items[i.min(last)]
    }

    fn next(&mut self) -> Item {
        let it = self.item(self.idx).clone();
        self.max_seen = self.max_seen.max(self.idx);
        if self.idx < self.items.len() - 1 || it.kind != ItemKind::Eof {
            self.idx += 1;
        }
        it
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn peek(&mut self) -> Item {
        self.max_seen = self.max_seen.max(self.idx);
        self.item(self.idx).clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.kind != ItemKind::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.backup();
        it
    }

    fn line(&self) -> usize {
        self.item(self.max_seen).line
    }

    fn errorf<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError::Syntax {
            line: self.line(),
            msg: msg.into(),
        })
    }

    fn unsupported<T>(&self, what: impl Into<String>) -> PResult<T> {
        Err(ParseError::Unsupported {
            line: self.line(),
            what: what.into(),
        })
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.kind == ItemKind::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at :{}", self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, kind: ItemKind, context: &str) -> PResult<Item> {
        let token = self.next_non_space();
        if token.kind != kind {
            return self.unexpected(&token, context);
        }
        Ok(token)
    }

    fn parse(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().kind != ItemKind::Eof {
            if self.peek().kind == ItemKind::LeftDelim {
                let save = self.idx;
                self.next();
                if self.next_non_space().kind == ItemKind::Define {
                    return self.unsupported("{{define}}");
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::Marker(Marker::End) => return self.errorf("unexpected {{end}}"),
                Parsed::Marker(Marker::Else) => return self.errorf("unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.kind {
            ItemKind::Text => Ok(Parsed::Node(Node::Text(token.val))),
            ItemKind::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Marker)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != ItemKind::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::Marker(m) => return Ok((list, m)),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.kind {
            ItemKind::Block => return self.unsupported("{{block}}"),
            ItemKind::Define => return self.unsupported("{{define}}"),
            ItemKind::Break => {
                let t = self.next_non_space();
                if t.kind != ItemKind::RightDelim {
                    return self.unexpected(&t, "{{break}}");
                }
                if self.range_depth == 0 {
                    return self.errorf("{{break}} outside {{range}}");
                }
                return Ok(Parsed::Node(Node::Break));
            }
            ItemKind::Continue => {
                let t = self.next_non_space();
                if t.kind != ItemKind::RightDelim {
                    return self.unexpected(&t, "{{continue}}");
                }
                if self.range_depth == 0 {
                    return self.errorf("{{continue}} outside {{range}}");
                }
                return Ok(Parsed::Node(Node::Continue));
            }
            ItemKind::Else => {
                let peek = self.peek_non_space();
                if peek.kind == ItemKind::If || peek.kind == ItemKind::With {
                    return Ok(Parsed::Marker(Marker::Else));
                }
                self.expect(ItemKind::RightDelim, "else")?;
                return Ok(Parsed::Marker(Marker::Else));
            }
            ItemKind::End => {
                self.expect(ItemKind::RightDelim, "end")?;
                return Ok(Parsed::Marker(Marker::End));
            }
            ItemKind::If => return Ok(Parsed::Node(Node::If(self.parse_control("if")?))),
            ItemKind::Range => {
                return Ok(Parsed::Node(Node::Range(self.parse_control("range")?)));
            }
            ItemKind::With => return Ok(Parsed::Node(Node::With(self.parse_control("with")?))),
            ItemKind::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", ItemKind::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let token = self.next_non_space();
        let name = match token.kind {
            ItemKind::String | ItemKind::RawString => match unquote(&token.val) {
                Some(s) => s,
                None => return self.errorf("invalid syntax"),
            },
            _ => return self.unexpected(&token, context),
        };
        let mut pipe = None;
        if self.next_non_space().kind != ItemKind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, ItemKind::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        let nvars = self.vars.len();
        let r = self.parse_control_inner(context);
        self.vars.truncate(nvars);
        r
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemKind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = r?;
        let mut else_list = None;
        if let Marker::Else = next {
            let pk = self.peek().kind;
            if context == "if" && pk == ItemKind::If {
                self.next();
                else_list = Some(vec![Node::If(self.parse_control("if")?)]);
            } else if context == "with" && pk == ItemKind::With {
                self.next();
                else_list = Some(vec![Node::With(self.parse_control("with")?)]);
            } else {
                let (l, n) = self.item_list()?;
                if let Marker::Else = n {
                    return self.errorf("expected end; found {{else}}");
                }
                else_list = Some(l);
            }
        }
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: ItemKind) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.kind != ItemKind::Variable {
                break;
            }
            let save = self.idx;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                ItemKind::Assign | ItemKind::Declare => {
                    pipe.is_assign = next.kind == ItemKind::Assign;
                    self.next_non_space();
                    pipe.decl.push(new_variable(v.pos, &v.val));
                    self.vars.push(v.val.clone());
                    break;
                }
                ItemKind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(new_variable(v.pos, &v.val));
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            ItemKind::Variable | ItemKind::RightDelim | ItemKind::RightParen => {
                                continue 'decls;
                            }
                            _ => return self.errorf("range can only initialize variables"),
                        }
                    }
                    return self.errorf(format!("too many declarations in {context}"));
                }
                _ => {
                    self.idx = save;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            match token.kind {
                k if k == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemKind::Bool
                | ItemKind::CharConstant
                | ItemKind::Complex
                | ItemKind::Dot
                | ItemKind::Field
                | ItemKind::Identifier
                | ItemKind::Number
                | ItemKind::Nil
                | ItemKind::RawString
                | ItemKind::String
                | ItemKind::Variable
                | ItemKind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool { .. }
                    | Arg::Dot { .. }
                    | Arg::Nil { .. }
                    | Arg::Number { .. }
                    | Arg::String { .. }
            ) {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let mut cmd = Command {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.kind {
                ItemKind::Space => continue,
                ItemKind::RightDelim | ItemKind::RightParen => self.backup(),
                ItemKind::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != ItemKind::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == ItemKind::Field {
            let t = self.next();
            fields.push(t.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    ident,
                }
            }
            Arg::Variable(mut v) => {
                v.ident.extend(fields);
                v.pos = chain_pos;
                Arg::Variable(v)
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                let q = super::gofmt::quote(&node.to_string());
                return self.errorf(format!("unexpected . after term {q}"));
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                field: fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.kind {
            ItemKind::Identifier => {
                if !FUNCTION_NAMES.contains(&token.val.as_str()) {
                    let q = super::gofmt::quote(&token.val);
                    return self.errorf(format!("function {q} not defined"));
                }
                Arg::Identifier {
                    pos,
                    name: token.val,
                }
            }
            ItemKind::Dot => Arg::Dot { pos },
            ItemKind::Nil => Arg::Nil { pos },
            ItemKind::Variable => {
                let v = new_variable(pos, &token.val);
                if !self.vars.iter().any(|n| *n == v.ident[0]) {
                    let q = super::gofmt::quote(&v.ident[0]);
                    return self.errorf(format!("undefined variable {q}"));
                }
                Arg::Variable(v)
            }
            ItemKind::Field => Arg::Field {
                pos,
                ident: token.val[1..].split('.').map(str::to_string).collect(),
            },
            ItemKind::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemKind::CharConstant | ItemKind::Number => match new_number(&token.val, token.kind) {
                Ok(num) => Arg::Number { pos, num },
                Err(msg) => return self.errorf(msg),
            },
            ItemKind::Complex => return self.unsupported("complex number constants"),
            ItemKind::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", ItemKind::RightParen)?,
            )),
            ItemKind::String | ItemKind::RawString => match unquote(&token.val) {
                Some(text) => Arg::String {
                    pos,
                    quoted: token.val,
                    text,
                },
                None => return self.errorf("invalid syntax"),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn new_variable(pos: usize, name: &str) -> Variable {
    Variable {
        pos,
        ident: name.split('.').map(str::to_string).collect(),
    }
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'.'` literals.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let quote = b[0];
    if b[b.len() - 1] != quote {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if quote == b'`' {
        if inner.contains('`') {
            return None;
        }
        return Some(inner.replace('\r', ""));
    }
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let mut out = String::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, quote as char)?;
        out.push(c);
        rest = tail;
    }
    if quote == b'\'' && out.chars().count() != 1 {
        return None;
    }
    Some(out)
}

/// Go's `strconv.UnquoteChar` (characters only; byte escapes above 0x7F
/// that would form invalid UTF-8 are rejected).
fn unquote_char(s: &str, quote: char) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c, chars.as_str()));
    }
    let e = chars.next()?;
    let rest = chars.as_str();
    let hex = |rest: &str, n: usize| -> Option<(char, usize)> {
        let digits = rest.get(..n)?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        Some((char::from_u32(v)?, n))
    };
    let simple = match e {
        'a' => Some('\u{07}'),
        'b' => Some('\u{08}'),
        'f' => Some('\u{0c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{0b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return None;
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c, rest));
    }
    let (c, n) = match e {
        'x' => {
            let (c, n) = hex(rest, 2)?;
            if c as u32 > 0x7F {
                return None;
            }
            (c, n)
        }
        'u' => hex(rest, 4)?,
        'U' => hex(rest, 8)?,
        '0'..='7' => {
            let digits = format!("{e}{}", rest.get(..2)?);
            let v = u32::from_str_radix(&digits, 8).ok()?;
            if v > 0x7F {
                return None;
            }
            (char::from_u32(v)?, 2)
        }
        _ => return None,
    };
    Some((c, &rest[n..]))
}

fn parse_go_uint(text: &str) -> Option<u64> {
    let t = text.replace('_', "");
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h.to_string(), 16)
    } else if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        (o.to_string(), 8)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b.to_string(), 2)
    } else if t.len() > 1 && t.starts_with('0') {
        (t[1..].to_string(), 8)
    } else {
        (t.clone(), 10)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

/// Go's `Tree.newNumber` for integer, float and character constants.
fn new_number(text: &str, kind: ItemKind) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        int: None,
        uint: None,
        float: None,
    };
    if kind == ItemKind::CharConstant {
        let Some(s) = unquote(text) else {
            return Err("invalid syntax".into());
        };
        let c = s.chars().next().unwrap_or('\0') as u32;
        n.int = Some(c as i64);
        n.uint = Some(c as u64);
        n.float = Some(c as f64);
        return Ok(n);
    }
    if text.ends_with('i') {
        return Err(format!(
            "illegal number syntax: {}",
            super::gofmt::quote(text)
        ));
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let u = parse_go_uint(body);
    if !neg {
        n.uint = u;
    }
    if let Some(u) = u {
        if neg {
            if u <= i64::MAX as u64 + 1 {
                n.int = Some((u as i128).wrapping_neg() as i64);
            }
            if u == 0 {
                n.uint = Some(0);
            }
        } else if u <= i64::MAX as u64 {
            n.int = Some(u as i64);
        }
    }
    if let Some(i) = n.int {
        n.float = Some(i as f64);
    } else if let Some(u) = n.uint {
        n.float = Some(u as f64);
    } else {
        let is_hex = body.starts_with("0x") || body.starts_with("0X");
        let parsed = if is_hex {
            None
        } else {
            text.replace('_', "").parse::<f64>().ok()
        };
        if let Some(f) = parsed.filter(|f| f.is_finite()) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {}", super::gofmt::quote(text)));
            }
            n.float = Some(f);
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                n.int = Some(f as i64);
            }
            if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
                n.uint = Some(f as u64);
            }
        }
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!(
            "illegal number syntax: {}",
            super::gofmt::quote(text)
        ));
    }
    Ok(n)
}

/// Parses `text` into a node list.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser {
        items: lex(text),
        idx: 0,
        max_seen: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        action_line: 0,
    };
    p.parse()
}
