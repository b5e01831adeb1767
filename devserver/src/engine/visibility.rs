//! Visibility: the list/count query language the SDKs and the Temporal Web UI speak, typed
//! search attributes, and their registry.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! query   := [expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}] [GROUP BY field]
//! expr    := and {OR and}
//! and     := primary {AND primary}
//! primary := '(' expr ')' | field op value | field [NOT] IN '(' value {, value} ')'
//!          | field [NOT] BETWEEN value AND value | field STARTS_WITH value | field IS [NOT] NULL
//! op      := = | != | <> | > | >= | < | <=
//! ```
//! Keyword values compare exactly, Text values match when every word of the literal occurs,
//! KeywordList `=` means "contains", Datetime literals are RFC 3339 strings (or epoch nanos).

use std::{cmp::Ordering, collections::BTreeMap};

use temporalio_protos::temporal::api::{
    common::v1::{Payload, SearchAttributes},
    enums::v1::{IndexedValueType, WorkflowExecutionStatus},
};

use super::Execution;
use crate::clock::Nanos;

/// System attributes that workers may upsert (the SDKs' patch markers and build ids).
const WORKER_WRITABLE: &[&str] = &["TemporalChangeVersion", "BuildIds"];

/// Attributes every execution has.
pub(crate) const SYSTEM_ATTRIBUTES: &[(&str, IndexedValueType)] = &[
    ("WorkflowId", IndexedValueType::Keyword),
    ("WorkflowType", IndexedValueType::Keyword),
    ("RunId", IndexedValueType::Keyword),
    ("ExecutionStatus", IndexedValueType::Keyword),
    ("StartTime", IndexedValueType::Datetime),
    ("CloseTime", IndexedValueType::Datetime),
    ("ExecutionTime", IndexedValueType::Datetime),
    ("TaskQueue", IndexedValueType::Keyword),
    ("HistoryLength", IndexedValueType::Int),
    ("HistorySizeBytes", IndexedValueType::Int),
    ("ExecutionDuration", IndexedValueType::Int),
    ("TemporalChangeVersion", IndexedValueType::KeywordList),
    ("BuildIds", IndexedValueType::KeywordList),
];

fn system_type(name: &str) -> Option<IndexedValueType> {
    SYSTEM_ATTRIBUTES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Custom attributes registered per namespace.
pub(crate) type Registry = BTreeMap<String, BTreeMap<String, IndexedValueType>>;

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    List(Vec<String>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(Nanos),
}

impl Val {
    fn partial_cmp(&self, other: &Val) -> Option<Ordering> {
        match (self, other) {
            (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
            (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
            (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
            (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b),
            (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Val::Time(a), Val::Time(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Decodes a search attribute payload (JSON data) as `ty`.
pub(crate) fn decode_attribute(ty: IndexedValueType, p: &Payload) -> Result<(), String> {
    typed(ty, p).map(|_| ())
}

fn typed(ty: IndexedValueType, p: &Payload) -> Result<Val, String> {
    let json: serde_json::Value =
        serde_json::from_slice(&p.data).map_err(|e| format!("value is not JSON: {e}"))?;
    let want = |what: &str| format!("value {json} is not a valid {what}");
    Ok(match ty {
        IndexedValueType::Keyword | IndexedValueType::Text => {
            Val::Str(json.as_str().ok_or_else(|| want("string"))?.to_owned())
        }
        IndexedValueType::KeywordList => match &json {
            serde_json::Value::Array(items) => Val::List(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| want("list of strings"))?,
            ),
            serde_json::Value::String(s) => Val::List(vec![s.clone()]),
            _ => return Err(want("list of strings")),
        },
        IndexedValueType::Int => Val::Int(json.as_i64().ok_or_else(|| want("integer"))?),
        IndexedValueType::Double => Val::Float(json.as_f64().ok_or_else(|| want("number"))?),
        IndexedValueType::Bool => Val::Bool(json.as_bool().ok_or_else(|| want("boolean"))?),
        IndexedValueType::Datetime => Val::Time(
            parse_rfc3339(json.as_str().ok_or_else(|| want("RFC 3339 time"))?)
                .ok_or_else(|| want("RFC 3339 time"))?,
        ),
        IndexedValueType::Unspecified => return Err("attribute has no type".into()),
    })
}

/// Checks every attribute against the namespace's registry.
pub(crate) fn validate(
    registry: &Registry,
    namespace: &str,
    attrs: Option<&SearchAttributes>,
) -> Result<(), String> {
    let Some(attrs) = attrs else { return Ok(()) };
    for (name, payload) in &attrs.indexed_fields {
        let ty = match (system_type(name), registry.get(namespace).and_then(|r| r.get(name))) {
            // SDKs record patch ids and build ids themselves; every other system attribute is
            // the server's alone.
            (Some(ty), _) if WORKER_WRITABLE.contains(&name.as_str()) => ty,
            (Some(_), _) => {
                return Err(format!("search attribute {name} is reserved by the system"));
            }
            (None, Some(ty)) => *ty,
            (None, None) => return Err(format!("search attribute {name} is not defined")),
        };
        let ty = &ty;
        let invalid = |e: String| {
            format!("invalid value for search attribute {name} of type {}: {e}", ty.as_str_name())
        };
        match payload.metadata.get("encoding").map(Vec::as_slice) {
            // A nil value (`binary/null`, or JSON `null`) unsets the attribute.
            Some(b"binary/null") => {}
            Some(b"json/plain") if payload.data == b"null" => {}
            Some(_) => decode_attribute(*ty, payload).map_err(invalid)?,
            // The real server cannot decode a payload without an encoding, and fails the
            // workflow task (`BadSearchAttributes`); so does this one.
            None => return Err(invalid("value from <>".into())),
        }
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into epoch nanos.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac = padded.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = (oh * 60 + om) * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    // Past what nanoseconds in an i64 hold (about the year 2262) the time is out of range.
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

// ---- parsing -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' | '"' | '`' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else { return Err("unterminated string".into()) };
                    i += 1;
                    if ch == quote {
                        if chars.get(i) == Some(&quote) {
                            s.push(quote);
                            i += 1;
                            continue;
                        }
                        break;
                    }
                    s.push(ch);
                }
                out.push(if quote == '`' { Tok::Ident(s) } else { Tok::Str(s) });
            }
            '=' => {
                out.push(Tok::Op("="));
                i += 1
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Op("!="));
                i += 2
            }
            '<' if chars.get(i + 1) == Some(&'>') => {
                out.push(Tok::Op("!="));
                i += 2
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Op(match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp { field: String, op: &'static str, value: Lit },
    In { field: String, values: Vec<Lit>, negated: bool },
    Between { field: String, lo: Lit, hi: Lit, negated: bool },
    StartsWith { field: String, value: Lit },
    IsNull { field: String, negated: bool },
}

/// A parsed visibility query.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Query {
    filter: Option<Expr>,
    order: Vec<(String, bool)>,
    pub(crate) group_by: Option<String>,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => Err(format!("expected {t:?}, found {got:?}")),
        }
    }
    fn field(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            got => Err(format!("expected a search attribute name, found {got:?}")),
        }
    }
    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            got => Err(format!("expected a value, found {got:?}")),
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.primary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            self.expect(Tok::RParen)?;
            return Ok(e);
        }
        let field = self.field()?;
        let negated = self.keyword("not");
        if self.keyword("in") {
            self.expect(Tok::LParen)?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Tok::RParen)?;
            return Ok(Expr::In { field, values, negated });
        }
        if self.keyword("between") {
            let lo = self.literal()?;
            if !self.keyword("and") {
                return Err("expected AND in BETWEEN".into());
            }
            let hi = self.literal()?;
            return Ok(Expr::Between { field, lo, hi, negated });
        }
        if negated {
            return Err("NOT must be followed by IN or BETWEEN".into());
        }
        if self.keyword("starts_with") {
            return Ok(Expr::StartsWith { field, value: self.literal()? });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err("expected NULL after IS".into());
            }
            return Ok(Expr::IsNull { field, negated });
        }
        match self.next() {
            Some(Tok::Op(op)) => Ok(Expr::Cmp { field, op, value: self.literal()? }),
            got => Err(format!("expected an operator after {field}, found {got:?}")),
        }
    }
}

/// Parses a query, checking every attribute it names against the namespace's registry.
pub(crate) fn parse(q: &str, registry: &Registry, namespace: &str) -> Result<Query, String> {
    let mut p = Parser { toks: tokenize(q)?, pos: 0 };
    let mut query = Query::default();
    let at_clause = |p: &Parser| matches!(p.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("order") || s.eq_ignore_ascii_case("group"));
    if p.peek().is_some() && !at_clause(&p) {
        query.filter = Some(p.expr()?);
    }
    while p.peek().is_some() {
        if p.keyword("order") {
            if !p.keyword("by") {
                return Err("expected BY after ORDER".into());
            }
            loop {
                let f = p.field()?;
                let desc = if p.keyword("desc") {
                    true
                } else {
                    p.keyword("asc");
                    false
                };
                query.order.push((f, desc));
                if p.peek() != Some(&Tok::Comma) {
                    break;
                }
                p.pos += 1;
            }
        } else if p.keyword("group") {
            if !p.keyword("by") {
                return Err("expected BY after GROUP".into());
            }
            let f = p.field()?;
            if f != "ExecutionStatus" {
                return Err(format!("GROUP BY is only supported on ExecutionStatus, not {f}"));
            }
            query.group_by = Some(f);
        } else {
            return Err(format!("unexpected {:?}", p.peek()));
        }
    }
    let known = |f: &str| {
        system_type(f).or_else(|| registry.get(namespace).and_then(|r| r.get(f)).copied())
    };
    let mut fields = Vec::new();
    if let Some(e) = &query.filter {
        collect_fields(e, &mut fields);
    }
    fields.extend(query.order.iter().map(|(f, _)| f.clone()));
    for f in fields {
        if known(&f).is_none() {
            return Err(format!("unknown search attribute {f}"));
        }
    }
    Ok(query)
}

fn collect_fields(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            collect_fields(a, out);
            collect_fields(b, out);
        }
        Expr::Cmp { field, .. }
        | Expr::In { field, .. }
        | Expr::Between { field, .. }
        | Expr::StartsWith { field, .. }
        | Expr::IsNull { field, .. } => out.push(field.clone()),
    }
}

// ---- evaluation -----------------------------------------------------------------------------

fn status_name(s: WorkflowExecutionStatus) -> &'static str {
    match s {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        _ => "Unspecified",
    }
}

/// The typed value of `field` for `e`, and the field's type.
fn field_value(
    e: &Execution,
    field: &str,
    registry: &Registry,
) -> Option<(IndexedValueType, Option<Val>)> {
    if let Some(ty) = system_type(field) {
        let v = match field {
            "WorkflowId" => Some(Val::Str(e.workflow_id.to_string())),
            "WorkflowType" => Some(Val::Str(e.workflow_type.to_string())),
            "RunId" => Some(Val::Str(e.run_id.to_string())),
            "ExecutionStatus" => Some(Val::Str(status_name(e.status).to_owned())),
            "StartTime" | "ExecutionTime" => Some(Val::Time(e.start_time)),
            "CloseTime" => e.close_time.map(Val::Time),
            "TaskQueue" => Some(Val::Str(e.task_queue.to_string())),
            "HistoryLength" => Some(Val::Int(e.history.len() as i64)),
            "HistorySizeBytes" => Some(Val::Int(e.history.bytes())),
            "ExecutionDuration" => e.close_time.map(|c| Val::Int(c - e.start_time)),
            other => e
                .search_attributes
                .as_ref()
                .and_then(|sa| sa.indexed_fields.get(other))
                .and_then(|p| typed(ty, p).ok()),
        };
        return Some((ty, v));
    }
    let ty = *registry.get(&*e.namespace)?.get(field)?;
    let v = e
        .search_attributes
        .as_ref()
        .and_then(|sa| sa.indexed_fields.get(field))
        .and_then(|p| typed(ty, p).ok());
    Some((ty, v))
}

fn literal_as(ty: IndexedValueType, lit: &Lit) -> Result<Val, String> {
    let bad = || format!("value {lit:?} does not fit an attribute of type {}", ty.as_str_name());
    Ok(match (ty, lit) {
        (
            IndexedValueType::Keyword | IndexedValueType::Text | IndexedValueType::KeywordList,
            Lit::Str(s),
        ) => Val::Str(s.clone()),
        (IndexedValueType::Int, Lit::Num(n)) => Val::Int(n.parse().map_err(|_| bad())?),
        (IndexedValueType::Double, Lit::Num(n)) => Val::Float(n.parse().map_err(|_| bad())?),
        (IndexedValueType::Bool, Lit::Bool(b)) => Val::Bool(*b),
        (IndexedValueType::Bool, Lit::Str(s)) => Val::Bool(s.eq_ignore_ascii_case("true")),
        (IndexedValueType::Datetime, Lit::Str(s)) => Val::Time(parse_rfc3339(s).ok_or_else(bad)?),
        (IndexedValueType::Datetime, Lit::Num(n)) => Val::Time(n.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

fn text_matches(haystack: &str, needle: &str) -> bool {
    let hay = haystack.to_lowercase();
    needle.split_whitespace().all(|w| hay.contains(&w.to_lowercase()))
}

fn eval(e: &Execution, expr: &Expr, registry: &Registry) -> Result<bool, String> {
    Ok(match expr {
        Expr::And(a, b) => eval(e, a, registry)? && eval(e, b, registry)?,
        Expr::Or(a, b) => eval(e, a, registry)? || eval(e, b, registry)?,
        Expr::IsNull { field, negated } => {
            let (_, v) = field_value(e, field, registry)
                .ok_or_else(|| format!("unknown search attribute {field}"))?;
            v.is_none() != *negated
        }
        Expr::Cmp { field, op, value } => {
            let (ty, v) = field_value(e, field, registry)
                .ok_or_else(|| format!("unknown search attribute {field}"))?;
            let lit = literal_as(ty, value)?;
            let Some(v) = v else { return Ok(*op == "!=") };
            match (&v, &lit) {
                (Val::List(items), Val::Str(s)) => match *op {
                    "=" => items.contains(s),
                    "!=" => !items.contains(s),
                    _ => {
                        return Err(format!(
                            "operator {op} is not supported on KeywordList {field}"
                        ));
                    }
                },
                (Val::Str(s), Val::Str(l)) if ty == IndexedValueType::Text => match *op {
                    "=" => text_matches(s, l),
                    "!=" => !text_matches(s, l),
                    _ => return Err(format!("operator {op} is not supported on Text {field}")),
                },
                _ => {
                    let ord = v.partial_cmp(&lit);
                    match *op {
                        "=" => ord == Some(Ordering::Equal),
                        "!=" => ord != Some(Ordering::Equal),
                        ">" => ord == Some(Ordering::Greater),
                        ">=" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                        "<" => ord == Some(Ordering::Less),
                        "<=" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                        _ => false,
                    }
                }
            }
        }
        Expr::In { field, values, negated } => {
            let (ty, v) = field_value(e, field, registry)
                .ok_or_else(|| format!("unknown search attribute {field}"))?;
            let lits = values.iter().map(|l| literal_as(ty, l)).collect::<Result<Vec<_>, _>>()?;
            let hit = match &v {
                Some(Val::List(items)) => {
                    lits.iter().any(|l| matches!(l, Val::Str(s) if items.contains(s)))
                }
                Some(v) => lits.iter().any(|l| v.partial_cmp(l) == Some(Ordering::Equal)),
                None => false,
            };
            hit != *negated
        }
        Expr::Between { field, lo, hi, negated } => {
            let (ty, v) = field_value(e, field, registry)
                .ok_or_else(|| format!("unknown search attribute {field}"))?;
            let (lo, hi) = (literal_as(ty, lo)?, literal_as(ty, hi)?);
            let inside = v.is_some_and(|v| {
                matches!(v.partial_cmp(&lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(v.partial_cmp(&hi), Some(Ordering::Less | Ordering::Equal))
            });
            inside != *negated
        }
        Expr::StartsWith { field, value } => {
            let (ty, v) = field_value(e, field, registry)
                .ok_or_else(|| format!("unknown search attribute {field}"))?;
            let Val::Str(prefix) = literal_as(ty, value)? else {
                return Err("STARTS_WITH needs a string".into());
            };
            matches!(v, Some(Val::Str(s)) if s.starts_with(&prefix))
        }
    })
}

impl Query {
    /// Whether `e` matches the filter.
    pub(crate) fn matches(&self, e: &Execution, registry: &Registry) -> Result<bool, String> {
        match &self.filter {
            None => Ok(true),
            Some(f) => eval(e, f, registry),
        }
    }

    /// What ordering needs of a match, taken once so the run need not be held.
    pub(crate) fn sort_row(&self, e: &Execution, registry: &Registry) -> SortRow {
        SortRow {
            keys: self
                .order
                .iter()
                .map(|(f, _)| field_value(e, f, registry).and_then(|(_, v)| v))
                .collect(),
            start_time: e.start_time,
            run_id: e.run_id,
        }
    }

    /// Orders matches: by the ORDER BY fields, else newest start first (then run id, so
    /// paging is stable).
    pub(crate) fn sort(&self, rows: &mut [SortRow]) {
        rows.sort_by(|a, b| {
            for (i, (_, desc)) in self.order.iter().enumerate() {
                let ord = match (&a.keys[i], &b.keys[i]) {
                    (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            if self.order.is_empty() {
                b.start_time.cmp(&a.start_time).then_with(|| a.run_id.cmp(&b.run_id))
            } else {
                a.run_id.cmp(&b.run_id)
            }
        });
    }
}

/// A matching run as ordering sees it.
pub(crate) struct SortRow {
    keys: Vec<Option<Val>>,
    start_time: Nanos,
    pub(crate) run_id: super::RunId,
}

/// The status name used in GROUP BY results.
pub(crate) fn group_key(e: &Execution) -> &'static str {
    status_name(e.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_queries_sdks_and_the_ui_send() {
        let mut reg = Registry::new();
        reg.entry("default".into())
            .or_default()
            .insert("CustomKeywordField".into(), IndexedValueType::Keyword);
        for q in [
            "",
            "WorkflowId = 'x'",
            "WorkflowType = \"A\" AND ExecutionStatus = 'Running'",
            "(WorkflowId = 'a' OR WorkflowId = 'b') AND StartTime > '2026-01-01T00:00:00Z' ORDER BY StartTime DESC",
            "ExecutionStatus IN ('Running', 'Completed')",
            "CustomKeywordField = 'v' ORDER BY CustomKeywordField ASC, RunId",
            "`WorkflowId` STARTS_WITH 'ses'",
            "CloseTime IS NULL",
            "HistoryLength BETWEEN 1 AND 10",
            "ExecutionStatus = 'Running' GROUP BY ExecutionStatus",
        ] {
            parse(q, &reg, "default").unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        for bad in [
            "WorkflowId =",
            "Nope = 'x'",
            "WorkflowId = 'x' ORDER",
            "WorkflowId = 'x",
            "(WorkflowId = 'x'",
        ] {
            assert!(parse(bad, &reg, "default").is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-21T02:15:01Z"), Some(1_795_227_301 * 1_000_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(500_000_000));
        assert_eq!(parse_rfc3339("not a time"), None);
        // Found by the visibility_query fuzz target: a year past 2262 overflowed the
        // nanoseconds; it is out of range, not a panic.
        assert_eq!(parse_rfc3339("7026-11-21T02:15:01.5+011-21@02:1:5+"), None);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), None);
    }

    /// As on the real server: a nil value unsets, a value without an encoding is refused (the
    /// Rust SDK 1.1 sends one for an unset, and the real server fails the task on it).
    #[test]
    fn an_attribute_payload_needs_an_encoding() {
        let mut reg = Registry::new();
        reg.entry("default".into()).or_default().insert("K".into(), IndexedValueType::Keyword);
        let payload = |encoding: Option<&str>, data: &[u8]| Payload {
            metadata: encoding
                .map(|e| [("encoding".to_owned(), e.as_bytes().to_vec())].into())
                .unwrap_or_default(),
            data: data.to_vec(),
            ..Default::default()
        };
        let attrs = |p: Payload| SearchAttributes { indexed_fields: [("K".to_owned(), p)].into() };
        let check = |p: Payload| validate(&reg, "default", Some(&attrs(p)));
        assert_eq!(check(payload(Some("json/plain"), b"\"v\"")), Ok(()));
        assert_eq!(check(payload(Some("binary/null"), b"")), Ok(()));
        assert_eq!(check(payload(Some("json/plain"), b"null")), Ok(()));
        assert_eq!(
            check(payload(None, b"")),
            Err("invalid value for search attribute K of type INDEXED_VALUE_TYPE_KEYWORD: value \
                 from <>"
                .to_owned())
        );
        assert!(check(payload(Some("json/plain"), b"1")).is_err());
    }
}
