//! Template execution, following `text/template/exec.go`: the same
//! evaluation order, the same "current node" tracking for error locations,
//! and the same error texts.

use std::rc::Rc;

use super::funcs::{self, ParamTy, Sig};
use super::gofmt;
use super::methods;
use super::parse::{Arg, Branch, Command, Node, Number, Pipe, Variable};
use super::value::{StructDef, StructVal, Val};

/// Options of one execution.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExecOptions {
    /// Use docker's `HeaderFunctions` (table header rendering).
    pub(crate) header: bool,
    /// Go's `missingkey=error` option.
    pub(crate) missing_key_error: bool,
}

/// Non-local exits while walking the tree.
enum Flow {
    Error(String),
    Break,
    Continue,
}

type R<T> = Result<T, Flow>;

/// The node errors are reported at (Go's `state.node`).
#[derive(Clone, Copy)]
enum At<'a> {
    Arg(&'a Arg),
    Cmd(&'a Command),
    Pipe(&'a Pipe),
    Var(&'a Variable),
    Template {
        pos: usize,
        name: &'a str,
        pipe: Option<&'a Pipe>,
    },
}

struct State<'a, 'o> {
    text: &'a str,
    out: &'o mut String,
    vars: Vec<(String, Val)>,
    node: Option<At<'a>>,
    opts: ExecOptions,
}

static HEADER_CONTEXT: StructDef = StructDef {
    name: "formatter.HeaderContext",
    fields: &[super::value::FieldDef {
        name: "Header",
        json: "Header",
        omitempty: false,
        ty: super::value::FieldTy::Any,
    }],
};

/// Runs `root` on `data`, appending output to `out`. Output written before
/// an error stays in `out` (as with Go's writer).
pub(crate) fn execute(
    text: &str,
    root: &[Node],
    out: &mut String,
    data: &Val,
    opts: ExecOptions,
) -> Result<(), String> {
    let mut s = State {
        text,
        out,
        vars: vec![("$".to_string(), data.clone())],
        node: None,
        opts,
    };
    match s.walk_list(data, root) {
        Ok(()) => Ok(()),
        Err(Flow::Error(e)) => Err(e),
        Err(Flow::Break | Flow::Continue) => Ok(()),
    }
}

/// Go's `%.20s...` truncation of the error context.
fn truncate_context(s: String) -> String {
    if s.len() > 20 {
        let head: String = s.chars().take(20).collect();
        format!("{head}...")
    } else {
        s
    }
}

impl<'a> State<'a, '_> {
    fn at(&mut self, node: At<'a>) {
        self.node = Some(node);
    }

    fn errorf<T>(&self, msg: impl AsRef<str>) -> R<T> {
        let msg = msg.as_ref();
        let Some(node) = self.node else {
            return Err(Flow::Error(format!("template: : {msg}")));
        };
        let (pos, context) = match node {
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Var(v) => (v.pos, v.to_string()),
            At::Template { pos, name, pipe } => {
                let mut s = format!("{{{{template {}", gofmt::quote(name));
                if let Some(p) = pipe {
                    s.push_str(&format!(" {p}"));
                }
                s.push_str("}}");
                (pos, s)
            }
        };
        let before = &self.text[..pos.min(self.text.len())];
        let (line, col) = match before.rfind('\n') {
            Some(i) => (1 + before.matches('\n').count(), pos - (i + 1)),
            None => (1, pos),
        };
        Err(Flow::Error(format!(
            "template: :{line}:{col}: executing \"\" at <{}>: {msg}",
            truncate_context(context)
        )))
    }

    fn walk_list(&mut self, dot: &Val, nodes: &'a [Node]) -> R<()> {
        for n in nodes {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Val, node: &'a Node) -> R<()> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.out.push_str(&gofmt::print_value(&v));
                }
            }
            Node::If(b) => self.walk_if_or_with(false, dot, b)?,
            Node::With(b) => self.walk_if_or_with(true, dot, b)?,
            Node::Range(b) => self.walk_range(dot, b)?,
            Node::Break => return Err(Flow::Break),
            Node::Continue => return Err(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                self.at(At::Template {
                    pos: *pos,
                    name,
                    pipe: pipe.as_ref(),
                });
                return self.errorf(format!("template {} not defined", gofmt::quote(name)));
            }
        }
        Ok(())
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Val, b: &'a Branch) -> R<()> {
        let mark = self.vars.len();
        let r = (|| {
            let val = self.eval_pipeline(dot, &b.pipe)?;
            let (truth, _) = funcs::truth(&val);
            if truth {
                if with {
                    self.walk_list(&val, &b.list)
                } else {
                    self.walk_list(dot, &b.list)
                }
            } else if let Some(e) = &b.else_list {
                self.walk_list(dot, e)
            } else {
                Ok(())
            }
        })();
        self.vars.truncate(mark);
        r
    }

    fn set_top_var(&mut self, n: usize, v: Val) {
        let len = self.vars.len();
        self.vars[len - n].1 = v;
    }

    fn one_iteration(&mut self, r: &'a Branch, mark: usize, index: Val, elem: Val) -> R<bool> {
        let decl = &r.pipe.decl;
        if !decl.is_empty() {
            if r.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0].ident[0], index.clone())?;
                } else {
                    self.set_var(&decl[0].ident[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if r.pipe.is_assign {
                self.set_var(&decl[1].ident[0], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let res = self.walk_list(&elem, &r.list);
        self.vars.truncate(mark);
        match res {
            Ok(()) | Err(Flow::Continue) => Ok(true),
            Err(Flow::Break) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn walk_range(&mut self, dot: &Val, r: &'a Branch) -> R<()> {
        let mark0 = self.vars.len();
        let res = self.walk_range_inner(dot, r);
        self.vars.truncate(mark0);
        res
    }

    fn walk_range_inner(&mut self, dot: &Val, r: &'a Branch) -> R<()> {
        let (val, _) = self.eval_pipeline(dot, &r.pipe)?.indirect();
        let mark = self.vars.len();
        let empty = match &val {
            Val::Slice(s) => {
                for (i, item) in s.items.iter().enumerate() {
                    if !self.one_iteration(r, mark, Val::Int(i as i64), item.clone())? {
                        break;
                    }
                }
                s.items.is_empty()
            }
            Val::Map(m) => {
                for (k, item) in &m.entries {
                    if !self.one_iteration(r, mark, Val::str(k.as_str()), item.clone())? {
                        break;
                    }
                }
                m.entries.is_empty()
            }
            Val::HeaderCtx(m) => {
                for (k, item) in m.iter() {
                    let (k, v) = (Val::str(k.as_str()), Val::str(item.as_str()));
                    if !self.one_iteration(r, mark, k, v)? {
                        break;
                    }
                }
                m.is_empty()
            }
            Val::Int(n) | Val::Int64(n) => {
                if r.pipe.decl.len() > 1 {
                    return self.errorf(format!(
                        "can't use {n} to iterate over more than one variable"
                    ));
                }
                for i in 0..*n {
                    if !self.one_iteration(r, mark, Val::Int(i), Val::Int(i))? {
                        break;
                    }
                }
                *n <= 0
            }
            Val::Invalid | Val::Nil => true,
            other => {
                return self.errorf(format!(
                    "range can't iterate over {}",
                    gofmt::print_value(other)
                ));
            }
        };
        if empty && let Some(e) = &r.else_list {
            self.walk_list(dot, e)?;
        }
        Ok(())
    }

    fn var_value(&self, name: &str) -> R<Val> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn set_var(&mut self, name: &str, v: Val) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Val, pipe: &'a Pipe) -> R<Val> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // An interface{} value is replaced by the value inside it.
            value = Some(match v {
                Val::Iface(inner) => (*inner).clone(),
                Val::Nil => Val::Invalid,
                v => v,
            });
        }
        let value = value.unwrap_or(Val::Invalid);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.ident[0], value.clone())?;
            } else {
                self.vars.push((var.ident[0].clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Val>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return self.errorf(format!("can't give argument to non-function {}", args[0]));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val, cmd: &'a Command, fin: Option<Val>) -> R<Val> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { ident, .. } => {
                return self.eval_field_node(dot, first, ident, &cmd.args, fin);
            }
            Arg::Chain { node, field, .. } => {
                return self.eval_chain_node(dot, first, node, field, &cmd.args, fin);
            }
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable(v) => return self.eval_variable_node(dot, v, &cmd.args, fin),
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Val::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => self.errorf("nil is not a command"),
            Arg::Number { num, .. } => self.ideal_constant(num),
            Arg::String { text, .. } => Ok(Val::str(text.as_str())),
            other => self.errorf(format!(
                "can't evaluate command {}",
                gofmt::quote(&other.to_string())
            )),
        }
    }

    fn ideal_constant(&self, num: &Number) -> R<Val> {
        let t = &num.text;
        let is_hex = t.len() > 2 && t.starts_with('0') && (t.as_bytes()[1] | 0x20) == b'x';
        if let Some(f) = num.float
            && !is_hex
            && !t.starts_with('\'')
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Val::Float(f));
        }
        if let Some(i) = num.int {
            return Ok(Val::Int(i));
        }
        if num.uint.is_some() {
            return self.errorf(format!("{t} overflows int"));
        }
        Ok(Val::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Val,
        field: &'a Arg,
        ident: &'a [String],
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at(At::Arg(field));
        self.eval_field_chain(dot, dot.clone(), At::Arg(field), ident, args, fin)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Val,
        chain: &'a Arg,
        node: &'a Arg,
        field: &'a [String],
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at(At::Arg(chain));
        if let Arg::Nil { .. } = node {
            return self.errorf(format!("indirection through explicit nil in {chain}"));
        }
        let pipe = self.eval_arg(dot, ParamTy::Untyped, node)?;
        self.eval_field_chain(dot, pipe, At::Arg(chain), field, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Val,
        v: &'a Variable,
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at(At::Var(v));
        let value = self.var_value(&v.ident[0])?;
        if v.ident.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, At::Var(v), &v.ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Val,
        receiver: Val,
        node: At<'a>,
        ident: &'a [String],
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        let n = ident.len();
        let mut receiver = receiver;
        for id in &ident[..n - 1] {
            receiver = self.eval_field(dot, id, node, &[], None, receiver)?;
        }
        self.eval_field(dot, &ident[n - 1], node, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Val,
        name: &str,
        node: At<'a>,
        args: &'a [Arg],
        fin: Option<Val>,
        receiver: Val,
    ) -> R<Val> {
        if let Val::Invalid = receiver {
            if self.opts.missing_key_error {
                return self.errorf(format!("nil data; no entry for key {}", gofmt::quote(name)));
            }
            return Ok(Val::Invalid);
        }
        let typ = receiver.type_name();
        let (recv, is_nil) = receiver.indirect();
        if is_nil {
            return self.errorf(format!("nil pointer evaluating {typ}.{name}"));
        }
        if let Some(sig) = methods::lookup(&recv, name) {
            return self.eval_call(dot, Callee::Method(&recv, sig), node, name, args, fin);
        }
        let has_args = args.len() > 1 || fin.is_some();
        match &recv {
            Val::Struct(s) => {
                if let Some(i) = s.def.fields.iter().position(|f| f.name == name) {
                    if has_args {
                        return self.errorf(format!(
                            "{name} has arguments but cannot be invoked as function"
                        ));
                    }
                    return Ok(s.fields[i].clone());
                }
            }
            Val::NetCtx(_) => match name {
                "HeaderContext" | "Header" => {
                    if has_args {
                        return self.errorf(format!(
                            "{name} has arguments but cannot be invoked as function"
                        ));
                    }
                    if name == "Header" {
                        return Ok(Val::Nil);
                    }
                    return Ok(Val::Struct(Rc::new(StructVal {
                        def: &HEADER_CONTEXT,
                        fields: vec![Val::Nil],
                    })));
                }
                "trunc" | "n" => {
                    return self.errorf(format!(
                        "{name} is an unexported field of struct type {typ}"
                    ));
                }
                _ => {}
            },
            Val::Map(_) | Val::HeaderCtx(_) => {
                if has_args {
                    return self.errorf(format!("{name} is not a method but has arguments"));
                }
                let found = match &recv {
                    Val::Map(m) => m.entries.get(name).cloned(),
                    Val::HeaderCtx(m) => m.get(name).map(|v| Val::str(v.as_str())),
                    _ => None,
                };
                return match found {
                    Some(v) => Ok(v),
                    None if self.opts.missing_key_error => {
                        self.errorf(format!("map has no entry for key {}", gofmt::quote(name)))
                    }
                    None => Ok(Val::Invalid),
                };
            }
            _ => {}
        }
        self.errorf(format!("can't evaluate field {name} in type {typ}"))
    }

    fn eval_function(
        &mut self,
        dot: &Val,
        ident: &'a Arg,
        name: &str,
        cmd: At<'a>,
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at(At::Arg(ident));
        let Some(sig) = funcs::lookup(name, self.opts.header) else {
            return self.errorf(format!("{} is not a defined function", gofmt::quote(name)));
        };
        self.eval_call(dot, Callee::Func(sig), cmd, name, args, fin)
    }

    fn eval_call(
        &mut self,
        dot: &Val,
        callee: Callee<'_>,
        node: At<'a>,
        name: &str,
        args: &'a [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        let args: &'a [Arg] = if args.is_empty() { args } else { &args[1..] };
        let sig = callee.sig();
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed;
        if sig.variadic.is_some() {
            num_fixed = sig.params.len();
            if num_in < num_fixed {
                return self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    num_fixed,
                    args.len()
                ));
            }
        } else {
            num_fixed = args.len();
            if num_in != sig.params.len() {
                return self.errorf(format!(
                    "wrong number of args for {name}: want {} got {num_in}",
                    sig.params.len()
                ));
            }
        }
        let builtin = matches!(callee, Callee::Func(_));
        if builtin && (name == "and" || name == "or") {
            let mut v = Val::Invalid;
            for a in args {
                v = self.eval_arg(dot, ParamTy::RValue, a)?;
                if funcs::truth(&v).0 == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, sig.params[i], &args[i])?);
            i += 1;
        }
        if let Some(vt) = sig.variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, vt, &args[i])?);
                i += 1;
            }
        }
        if let Some(f) = fin {
            let t = match sig.variadic {
                Some(vt) if num_in > num_fixed => vt,
                Some(_) => sig.params[num_in - 1],
                None => sig.params[sig.params.len() - 1],
            };
            argv.push(self.validate_type(f, t)?);
        }
        let result = if builtin && name == "call" {
            let target = argv[0].indirect_interface();
            if matches!(target, Val::Invalid) {
                Err("call of nil".to_string())
            } else {
                Err(format!(
                    "non-function {} of type {}",
                    args.first().map(|a| a.to_string()).unwrap_or_default(),
                    target.type_name()
                ))
            }
        } else {
            match &callee {
                Callee::Func(_) => funcs::call(name, self.opts.header, &argv),
                Callee::Method(recv, _) => methods::call(recv, name, &argv),
            }
        };
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at(node);
                self.errorf(format!("error calling {name}: {e}"))
            }
        }
    }

    fn validate_type(&self, value: Val, typ: ParamTy) -> R<Val> {
        if let Val::Invalid = value {
            return match typ {
                ParamTy::Untyped => Ok(Val::Invalid),
                t if t.can_be_nil() => Ok(t.zero()),
                t => self.errorf(format!("invalid value; expected {}", t.name())),
            };
        }
        let fits = |v: &Val| match typ {
            ParamTy::Untyped | ParamTy::RValue | ParamTy::Any => true,
            ParamTy::Str => matches!(v, Val::Str(_)),
            ParamTy::Int => matches!(v, Val::Int(_)),
            ParamTy::StrSlice => {
                matches!(v, Val::Slice(s) if s.elem == super::value::GoType::String)
            }
        };
        if fits(&value) {
            return Ok(value);
        }
        let mut value = value;
        if let Val::Iface(inner) = &value {
            let inner = (**inner).clone();
            if fits(&inner) {
                return Ok(inner);
            }
            value = inner;
        }
        self.errorf(format!(
            "wrong type for value; expected {}; got {}",
            typ.name(),
            value.type_name()
        ))
    }

    fn eval_arg(&mut self, dot: &Val, typ: ParamTy, n: &'a Arg) -> R<Val> {
        self.at(At::Arg(n));
        match n {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), typ),
            Arg::Nil { .. } => {
                if typ.can_be_nil() {
                    return Ok(typ.zero());
                }
                return self.errorf(format!("cannot assign nil to {}", typ.name()));
            }
            Arg::Field { ident, .. } => {
                let v = self.eval_field_node(dot, n, ident, std::slice::from_ref(n), None)?;
                return self.validate_type(v, typ);
            }
            Arg::Variable(v) => {
                let v = self.eval_variable_node(dot, v, &[], None)?;
                return self.validate_type(v, typ);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, typ);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, n, name, At::Arg(n), &[], None)?;
                return self.validate_type(v, typ);
            }
            Arg::Chain { node, field, .. } => {
                let v = self.eval_chain_node(dot, n, node, field, &[], None)?;
                return self.validate_type(v, typ);
            }
            _ => {}
        }
        match typ {
            ParamTy::Int => match n {
                Arg::Number { num, .. } if num.int.is_some() => {
                    Ok(Val::Int(num.int.unwrap_or_default()))
                }
                _ => self.errorf(format!("expected integer; found {n}")),
            },
            ParamTy::Str => match n {
                Arg::String { text, .. } => Ok(Val::str(text.as_str())),
                _ => self.errorf(format!("expected string; found {n}")),
            },
            ParamTy::Any | ParamTy::RValue => match n {
                Arg::Bool { val, .. } => Ok(Val::Bool(*val)),
                Arg::Number { num, .. } => self.ideal_constant(num),
                Arg::String { text, .. } => Ok(Val::str(text.as_str())),
                _ => self.errorf(format!(
                    "can't handle assignment of {n} to empty interface argument"
                )),
            },
            ParamTy::StrSlice | ParamTy::Untyped => {
                self.errorf(format!("can't handle {n} for arg of type {}", typ.name()))
            }
        }
    }
}

/// What is being called.
enum Callee<'v> {
    Func(Sig),
    Method(&'v Val, Sig),
}

impl Callee<'_> {
    fn sig(&self) -> Sig {
        match self {
            Callee::Func(s) | Callee::Method(_, s) => *s,
        }
    }
}
