//! The list query language of ConnectWise: `conditions` / `childConditions` (parsed by
//! recursive descent, evaluated against stored JSON records), `customFieldConditions`
//! (the same grammar, evaluated against each entry of a record's `customFields`),
//! `orderBy`, `fields`, and the paging parameters `page`, `pageSize` and `pageId`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::common::{is_canonical_timestamp, parse_timestamp};

/// Records per page when `pageSize` is not given (psa-apis.md 1.5).
pub(crate) const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest page. UNCONFIRMED: what CW does above 1000 is not documented; we clamp to 1000
/// silently rather than answering 400.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// A parsed list request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ListQuery {
    /// `conditions`, `childConditions` and `customFieldConditions`: all must hold.
    pub filters: Vec<Expr>,
    /// `orderBy` keys (path, descending); empty: by id ascending.
    pub order: Vec<(Vec<String>, bool)>,
    /// `fields` paths to keep; `None`: whole records.
    pub fields: Option<Vec<Vec<String>>>,
    /// 1-based page.
    pub page: usize,
    /// Records per page, clamped to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Forward-only paging: only ids above this.
    pub page_id: Option<i64>,
    /// Identifies the selection and order (raw `conditions`, `childConditions`,
    /// `customFieldConditions`, `orderBy`)
    /// so that consecutive pages of one query can share one filter pass.
    pub key: String,
}

/// The value of query parameter `name` (case-insensitive), if given and not blank.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
}

fn positive(params: &[(String, String)], name: &str) -> Result<Option<usize>, ApiError> {
    match param(params, name) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::bad_parameter(name, format!("'{raw}' is not a positive whole number"))),
        },
    }
}

/// Parses the list parameters of one request.
pub(crate) fn parse_list_query(params: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let mut filters = Vec::new();
    for name in ["conditions", "childConditions"] {
        if let Some(raw) = param(params, name) {
            filters.push(parse_conditions(raw).map_err(|e| ApiError::bad_parameter(name, e))?);
        }
    }
    if let Some(raw) = param(params, "customFieldConditions") {
        let inner =
            parse_custom_field_conditions(raw).map_err(|e| ApiError::bad_parameter("customFieldConditions", e))?;
        filters.push(Expr::CustomField(Box::new(inner)));
    }
    let order = match param(params, "orderBy") {
        Some(raw) => parse_order_by(raw).map_err(|e| ApiError::bad_parameter("orderBy", e))?,
        None => Vec::new(),
    };
    let fields = param(params, "fields").map(parse_fields);
    let page = positive(params, "page")?.unwrap_or(1);
    let page_size = positive(params, "pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let page_id = match param(params, "pageId") {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_parameter("pageId", format!("'{raw}' is not a whole number")))?,
        ),
    };
    let key = ["conditions", "childConditions", "customFieldConditions", "orderBy"]
        .map(|n| param(params, n).unwrap_or_default())
        .join("\u{1}");
    Ok(ListQuery { filters, order, fields, page, page_size, page_id, key })
}

// ---------------------------------------------------------------- conditions

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    Contains,
    NotContains,
    In,
    NotIn,
}

/// A literal on the right of an operator.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    /// Text, kept as given and lower-cased (comparisons ignore case).
    Str {
        lower: String,
    },
    Num(f64),
    Bool(bool),
    Null,
    /// `[2024-01-01T00:00:00Z]`: Unix seconds and the canonical text.
    Date {
        secs: i64,
        canonical: String,
    },
}

/// A parsed condition expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        path: Vec<String>,
        op: Op,
        values: Vec<Literal>,
    },
    /// A `customFieldConditions` expression: true when one entry of the record's
    /// `customFields` satisfies it.
    CustomField(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Date(String),
    Num(f64),
    Op(String),
    LParen,
    RParen,
    Comma,
}

impl Tok {
    fn show(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Date(d) => format!("[{d}]"),
            Tok::Num(n) => format!("{n}"),
            Tok::Op(o) => format!("'{o}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
        }
    }
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let pos = at + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, pos));
                i += 1;
            }
            // Strings in double or single quotes: psa-apis.md 1.4 shows double quotes, and
            // working clients send single ones to ConnectWise as well (e.g. the Gravity Forms
            // add-on's `conditions=identifier='...'`, and `customFieldConditions=caption='...'`
            // in several scripts), so both are read alike.
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' if j + 1 < chars.len() => {
                            s.push(chars[j + 1].1);
                            j += 2;
                        }
                        q if q == quote => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        other => {
                            s.push(other);
                            j += 1;
                        }
                    }
                }
                if !closed {
                    return Err(format!("unterminated string starting at position {pos}"));
                }
                out.push((Tok::Str(s), pos));
                i = j;
            }
            '[' => {
                let mut j = i + 1;
                let mut s = String::new();
                while j < chars.len() && chars[j].1 != ']' {
                    s.push(chars[j].1);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unterminated date starting at position {pos} (missing ']')"));
                }
                out.push((Tok::Date(s.trim().to_string()), pos));
                i = j + 1;
            }
            '=' | '!' | '<' | '>' | '~' | '&' | '|' | '^' => {
                let mut j = i;
                let mut op = String::new();
                while j < chars.len() && matches!(chars[j].1, '=' | '!' | '<' | '>' | '~' | '&' | '|' | '^') {
                    op.push(chars[j].1);
                    j += 1;
                }
                out.push((Tok::Op(op), pos));
                i = j;
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|(_, d)| d.is_ascii_digit())) => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].1.is_ascii_digit() || chars[j].1 == '.') {
                    j += 1;
                }
                let text: String = chars[i..j].iter().map(|(_, c)| c).collect();
                let n = text.parse::<f64>().map_err(|_| format!("'{text}' at position {pos} is not a number"))?;
                out.push((Tok::Num(n), pos));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].1.is_alphanumeric() || matches!(chars[j].1, '_' | '/' | '.')) {
                    j += 1;
                }
                out.push((Tok::Word(chars[i..j].iter().map(|(_, c)| c).collect()), pos));
                i = j;
            }
            other => return Err(format!("unexpected character '{other}' at position {pos}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.at += 1;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            let open = self.pos();
            self.at += 1;
            let inner = self.or_expr()?;
            return match self.next() {
                Some((Tok::RParen, _)) => Ok(inner),
                Some((t, p)) => Err(format!("expected ')' at position {p} but found {}", t.show())),
                None => Err(format!("missing ')' for the '(' at position {open}")),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let path = match self.next() {
            Some((Tok::Word(w), p)) => {
                let segs: Vec<String> = w.split('/').map(str::to_string).collect();
                if segs.iter().any(String::is_empty) {
                    return Err(format!("'{w}' at position {p} is not a valid field path"));
                }
                segs
            }
            Some((t, p)) => return Err(format!("expected a field name at position {p} but found {}", t.show())),
            None => return Err(format!("expected a field name at position {}", self.end)),
        };
        let field = path.join("/");
        let op = match self.next() {
            Some((Tok::Op(o), p)) => match o.as_str() {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                other => return Err(format!("unknown operator '{other}' at position {p}")),
            },
            Some((Tok::Word(w), p)) => match w.to_ascii_lowercase().as_str() {
                "like" => Op::Like,
                "contains" => Op::Contains,
                "in" => Op::In,
                "not" => match self.next() {
                    Some((Tok::Word(w2), _)) if w2.eq_ignore_ascii_case("like") => Op::NotLike,
                    Some((Tok::Word(w2), _)) if w2.eq_ignore_ascii_case("in") => Op::NotIn,
                    Some((Tok::Word(w2), _)) if w2.eq_ignore_ascii_case("contains") => Op::NotContains,
                    _ => return Err(format!("unknown operator 'not' at position {p} (expected not like, not in)")),
                },
                _ => return Err(format!("unknown operator '{w}' at position {p}")),
            },
            Some((t, p)) => {
                return Err(format!("expected an operator after '{field}' at position {p} but found {}", t.show()));
            }
            None => return Err(format!("expected an operator after '{field}' at position {}", self.end)),
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            match self.next() {
                Some((Tok::LParen, _)) => {}
                Some((t, p)) => return Err(format!("expected '(' after 'in' at position {p} but found {}", t.show())),
                None => return Err(format!("expected '(' after 'in' at position {}", self.end)),
            }
            let mut list = vec![self.literal(&field)?];
            loop {
                match self.next() {
                    Some((Tok::Comma, _)) => list.push(self.literal(&field)?),
                    Some((Tok::RParen, _)) => break,
                    Some((t, p)) => return Err(format!("expected ',' or ')' at position {p} but found {}", t.show())),
                    None => return Err(format!("missing ')' to close the 'in' list of '{field}'")),
                }
            }
            list
        } else {
            vec![self.literal(&field)?]
        };
        if matches!(op, Op::Like | Op::NotLike | Op::Contains | Op::NotContains)
            && !matches!(values.first(), Some(Literal::Str { .. }))
        {
            return Err(format!("the value compared with '{field}' by like/contains must be a quoted string"));
        }
        Ok(Expr::Cmp { path, op, values })
    }

    fn literal(&mut self, field: &str) -> Result<Literal, String> {
        match self.next() {
            Some((Tok::Str(s), _)) => Ok(Literal::Str { lower: s.to_lowercase() }),
            Some((Tok::Num(n), _)) => Ok(Literal::Num(n)),
            Some((Tok::Date(d), p)) => match parse_timestamp(&d) {
                Some(secs) => Ok(Literal::Date { secs, canonical: crate::common::format_unix(secs) }),
                None => Err(format!("[{d}] at position {p} is not a valid date (use [YYYY-MM-DDTHH:MM:SSZ])")),
            },
            Some((Tok::Word(w), p)) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => {
                    Err(format!("expected a value for '{field}' at position {p} but found '{w}' (strings need quotes)"))
                }
            },
            Some((t, p)) => Err(format!("expected a value for '{field}' at position {p} but found {}", t.show())),
            None => Err(format!("expected a value for '{field}' at the end of the conditions")),
        }
    }
}

/// Parses a `conditions` string; the error names the problem and its position.
pub(crate) fn parse_conditions(src: &str) -> Result<Expr, String> {
    let toks = tokenize(src)?;
    let end = src.len() + 1;
    let mut p = Parser { toks, at: 0, end };
    let e = p.or_expr()?;
    match p.next() {
        None => Ok(e),
        Some((t, pos)) => Err(format!("unexpected {} at position {pos} (missing 'and' / 'or'?)", t.show())),
    }
}

/// The properties of one `customFields` entry (S2 `CustomFieldValue`) a
/// `customFieldConditions` expression may compare.
const CUSTOM_FIELD_PROPERTIES: &[&str] = &["id", "caption", "type", "entryMethod", "numberOfDecimals", "value"];

/// Parses `customFieldConditions`: the `conditions` grammar over the properties of one
/// custom-field entry, as working clients send it (`caption="Outage ID" AND value = 42`,
/// `caption='Netsuite ID' AND value != null`, `caption='Barcodes' and value contains '...'`).
/// The record matches when one of its entries satisfies the whole expression, so caption
/// and value are tested on the same entry. UNCONFIRMED: `id = 7` in place of the caption is
/// accepted because the entry carries an `id` (no client seen sends it), and a name that is
/// no property of an entry is refused with a 400 (what ConnectWise answers is not known).
pub(crate) fn parse_custom_field_conditions(src: &str) -> Result<Expr, String> {
    fn check(e: &Expr) -> Result<(), String> {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => check(a).and_then(|()| check(b)),
            Expr::Not(e) | Expr::CustomField(e) => check(e),
            Expr::Cmp { path, .. } => match path.as_slice() {
                [one] if CUSTOM_FIELD_PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(one)) => Ok(()),
                _ => Err(format!(
                    "'{}' is not a property of a custom field (use {})",
                    path.join("/"),
                    CUSTOM_FIELD_PROPERTIES.join(", ")
                )),
            },
        }
    }
    let e = parse_conditions(src)?;
    check(&e)?;
    Ok(e)
}

fn child<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Calls `f` on every value at `path` under `v` (arrays on the way fan out) until it
/// answers true; answers whether it did.
fn visit<'a>(v: &'a Value, path: &[String], f: &mut dyn FnMut(&'a Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|it| visit(it, path, f)),
        _ if path.is_empty() => f(v),
        Value::Object(m) => child(m, &path[0]).is_some_and(|c| visit(c, &path[1..], f)),
        _ => false,
    }
}

/// The path to read in `rec`: a top-level `lastUpdated` is an alias of
/// `_info/lastUpdated` (both forms appear in working clients) unless the record has one.
fn effective<'p>(rec: &Value, path: &'p [String]) -> &'p [String] {
    if path.len() == 1 && path[0].eq_ignore_ascii_case("lastUpdated") && rec.get(&path[0]).is_none() {
        &LAST_UPDATED_ALIAS[..]
    } else {
        path
    }
}

static LAST_UPDATED_ALIAS: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| ["_info".to_string(), "lastUpdated".to_string()]);

/// Every value at `path` in `rec` (arrays on the way fan out), honouring the
/// `lastUpdated` alias.
pub(crate) fn resolve<'a>(rec: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    visit(rec, effective(rec, path), &mut |v| {
        out.push(v);
        false
    });
    out
}

fn compare(v: &Value, lit: &Literal) -> Option<Ordering> {
    match (v, lit) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (_, Literal::Null) | (Value::Null, _) => None,
        (Value::Number(n), Literal::Num(x)) => n.as_f64()?.partial_cmp(x),
        (Value::String(s), Literal::Num(x)) => s.trim().parse::<f64>().ok()?.partial_cmp(x),
        (Value::Number(n), Literal::Str { lower }) => n.as_f64()?.partial_cmp(&lower.trim().parse::<f64>().ok()?),
        (Value::String(s), Literal::Str { lower }) => Some(cmp_ignore_case(s, lower)),
        (Value::Bool(b), Literal::Bool(x)) => Some(b.cmp(x)),
        (Value::String(s), Literal::Bool(x)) => s.parse::<bool>().ok().map(|b| b.cmp(x)),
        (Value::Bool(b), Literal::Str { lower }) => lower.parse::<bool>().ok().map(|x| b.cmp(&x)),
        (Value::String(s), Literal::Date { secs, canonical }) => {
            if is_canonical_timestamp(s) {
                Some(s.as_str().cmp(canonical.as_str()))
            } else {
                parse_timestamp(s).map(|t| t.cmp(secs))
            }
        }
        _ => None,
    }
}

/// Compares `s` (any case) with an already lower-cased `lower`. UNCONFIRMED: text
/// comparisons (`=`, `<`, `in`, ...) ignore letter case, as CW's SQL Server collation is
/// assumed to be case-insensitive.
fn cmp_ignore_case(s: &str, lower: &str) -> Ordering {
    let mut a = s.chars().flat_map(char::to_lowercase);
    let mut b = lower.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(&y),
            _ => {}
        }
    }
}

/// SQL `like` with `%` wildcards, on lower-cased text. `_` is literal (UNCONFIRMED: CW's
/// SQL back end probably treats it as one-character wildcard; identifiers contain `_`).
fn like(text: &str, pattern: &str) -> bool {
    let text = text.to_lowercase();
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Expr {
    /// True when `rec` satisfies the expression.
    pub(crate) fn matches(&self, rec: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(rec) && b.matches(rec),
            Expr::Or(a, b) => a.matches(rec) || b.matches(rec),
            Expr::Not(e) => !e.matches(rec),
            Expr::CustomField(e) => {
                let entries = rec.as_object().and_then(|m| child(m, "customFields")).and_then(Value::as_array);
                entries.is_some_and(|list| list.iter().any(|entry| e.matches(entry)))
            }
            Expr::Cmp { path, op, values } => {
                let path = effective(rec, path);
                let any = |f: &mut dyn FnMut(&Value) -> bool| visit(rec, path, f);
                let eq = |lit: &Literal| {
                    if *lit == Literal::Null {
                        !any(&mut |_| true) || any(&mut |v| v.is_null())
                    } else {
                        any(&mut |v| compare(v, lit) == Some(Ordering::Equal))
                    }
                };
                let first = &values[0];
                match op {
                    Op::Eq => eq(first),
                    Op::Ne => !eq(first),
                    Op::Lt => any(&mut |v| compare(v, first) == Some(Ordering::Less)),
                    Op::Le => any(&mut |v| matches!(compare(v, first), Some(Ordering::Less | Ordering::Equal))),
                    Op::Gt => any(&mut |v| compare(v, first) == Some(Ordering::Greater)),
                    Op::Ge => any(&mut |v| matches!(compare(v, first), Some(Ordering::Greater | Ordering::Equal))),
                    Op::In => values.iter().any(eq),
                    Op::NotIn => !values.iter().any(eq),
                    Op::Like | Op::NotLike | Op::Contains | Op::NotContains => {
                        let Literal::Str { lower } = first else { return false };
                        let is_like = matches!(op, Op::Like | Op::NotLike);
                        let hit = any(&mut |v| {
                            v.as_str().is_some_and(|s| {
                                if is_like { like(s, lower) } else { s.to_lowercase().contains(lower.as_str()) }
                            })
                        });
                        if matches!(op, Op::Like | Op::Contains) { hit } else { !hit }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- orderBy / fields

/// Parses `orderBy`: comma list of `path [asc|desc]`.
pub(crate) fn parse_order_by(raw: &str) -> Result<Vec<(Vec<String>, bool)>, String> {
    let mut keys = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let path = words.next().unwrap_or_default();
        if path.split('/').any(|s| s.is_empty() || !s.chars().all(|c| c.is_alphanumeric() || c == '_')) {
            return Err(format!("'{path}' is not a valid field path"));
        }
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("'{other}' after '{path}' is not asc or desc")),
        };
        if let Some(extra) = words.next() {
            return Err(format!("unexpected '{extra}' in '{part}'"));
        }
        keys.push((path.split('/').map(str::to_string).collect(), desc));
    }
    Ok(keys)
}

/// A sortable form of one value.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub(crate) enum SortKey {
    Missing,
    Bool(bool),
    Num(f64),
    Text(String),
}

/// The sort key of `rec` at `path` (its first value).
pub(crate) fn sort_key(rec: &Value, path: &[String]) -> SortKey {
    match resolve(rec, path).first() {
        None | Some(Value::Null) => SortKey::Missing,
        Some(Value::Bool(b)) => SortKey::Bool(*b),
        Some(Value::Number(n)) => n.as_f64().map_or(SortKey::Missing, SortKey::Num),
        Some(Value::String(s)) => SortKey::Text(s.to_lowercase()),
        Some(other) => SortKey::Text(other.to_string()),
    }
}

/// Orders two key lists by the `orderBy` directions.
pub(crate) fn compare_keys(a: &[SortKey], b: &[SortKey], order: &[(Vec<String>, bool)]) -> Ordering {
    for ((x, y), (_, desc)) in a.iter().zip(b).zip(order) {
        let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Parses `fields`: comma list of paths.
pub(crate) fn parse_fields(raw: &str) -> Vec<Vec<String>> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .filter(|p| !p.is_empty())
        .collect()
}

fn project_path(v: &Value, path: &[String]) -> Option<Value> {
    if path.is_empty() {
        return Some(v.clone());
    }
    match v {
        Value::Object(m) => {
            let (key, c) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case(&path[0]))?;
            let inner = project_path(c, &path[1..])?;
            let mut out = Map::new();
            out.insert(key.clone(), inner);
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            Some(Value::Array(items.iter().map(|it| project_path(it, path).unwrap_or(Value::Null)).collect()))
        }
        _ => None,
    }
}

fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(s)) if d.len() == s.len() => {
            for (x, y) in d.iter_mut().zip(s) {
                merge(x, y);
            }
        }
        (_, Value::Null) => {}
        (d, s) => *d = s,
    }
}

/// Keeps only `fields` of `rec` (nested paths keep their parents).
pub(crate) fn project(rec: &Value, fields: &[Vec<String>]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in fields {
        if let Some(part) = project_path(rec, path) {
            merge(&mut out, part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(cond: &str, rec: &Value) -> bool {
        parse_conditions(cond).unwrap_or_else(|e| panic!("{cond}: {e}")).matches(rec)
    }

    #[test]
    fn conditions_combine_with_and_or_and_parentheses() {
        let r = json!({"id": 5, "name": "Acme Inc", "status": {"name": "Active"}, "inactiveFlag": false});
        assert!(hit("id=5 and name=\"acme inc\"", &r));
        assert!(hit("id = 6 OR (status/name = \"Active\" and inactiveFlag = false)", &r));
        assert!(!hit("id = 6 or (status/name = \"Active\" and inactiveFlag = true)", &r));
        assert!(hit("not id = 6", &r));
        assert!(hit("id in (1, 5, 9) and id not in (2)", &r));
        assert!(hit("name like \"ac%inc\" and name contains \"ME I\"", &r));
        assert!(!hit("name like \"acme\"", &r));
    }

    #[test]
    fn array_paths_match_when_any_element_matches() {
        let r = json!({"types": [{"id": 1, "name": "Client"}, {"id": 5, "name": "Vendor"}]});
        assert!(hit("types/id = 5", &r));
        assert!(hit("types/name = \"client\"", &r));
        assert!(!hit("types/id = 3", &r));
    }

    #[test]
    fn dates_compare_as_instants_and_last_updated_is_an_alias() {
        let r = json!({"_info": {"lastUpdated": "2024-03-01T10:00:00Z"}});
        assert!(hit("lastUpdated > [2024-01-01T00:00:00Z]", &r));
        assert!(hit("_info/lastUpdated >= [2024-03-01T10:00:00Z]", &r));
        assert!(!hit("_info/lastUpdated > [2024-03-01T10:00:00Z]", &r));
        assert!(hit("lastUpdated < [2024-03-01T11:00:00+00:00]", &r));
    }

    #[test]
    fn null_matches_missing_fields() {
        let r = json!({"id": 1, "company": null});
        assert!(hit("company = null", &r));
        assert!(hit("contact = null", &r));
        assert!(hit("id != null", &r));
    }

    #[test]
    fn malformed_conditions_name_the_problem() {
        let err = |c: &str| parse_conditions(c).err().unwrap_or_default();
        assert!(err("name = ").contains("expected a value"), "{}", err("name = "));
        assert!(err("name == \"x\"").contains("unknown operator '=='"));
        assert!(err("name equals \"x\"").contains("unknown operator 'equals'"));
        assert!(err("name = \"x").contains("unterminated string"));
        assert!(err("(id = 1").contains("missing ')'"));
        assert!(err("id = 1 id = 2").contains("unexpected"));
        assert!(err("status/name = Active").contains("need quotes"));
        assert!(err("name = 'x").contains("unterminated string"));
        assert!(err("lastUpdated > [yesterday]").contains("not a valid date"));
    }

    #[test]
    fn strings_may_be_in_single_quotes_as_working_clients_send_them() {
        let r = json!({"identifier": "BusComInc", "name": "Bob's \"Best\""});
        assert!(hit("identifier='buscominc'", &r));
        assert!(hit("name = 'Bob\\'s \"Best\"'", &r));
        assert!(hit("name = \"Bob's \\\"Best\\\"\"", &r));
    }

    fn with_custom_fields() -> Value {
        json!({"id": 9, "name": "Acme", "customFields": [
            {"id": 1, "caption": "Account Tier", "type": "Text", "entryMethod": "List", "numberOfDecimals": 0, "value": "Gold"},
            {"id": 2, "caption": "Seats", "type": "Number", "entryMethod": "EntryField", "numberOfDecimals": 0, "value": 40},
            {"id": 3, "caption": "Netsuite ID", "type": "Text", "entryMethod": "EntryField", "numberOfDecimals": 0, "value": null}
        ]})
    }

    fn custom(cond: &str, rec: &Value) -> bool {
        let e = parse_custom_field_conditions(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
        Expr::CustomField(Box::new(e)).matches(rec)
    }

    #[test]
    fn custom_field_conditions_test_caption_and_value_on_the_same_entry() {
        let r = with_custom_fields();
        assert!(custom("caption=\"Account Tier\" AND value=\"gold\"", &r));
        assert!(custom("caption='Seats' and value >= 40", &r));
        assert!(custom("caption = \"Seats\" AND value = \"40\"", &r));
        assert!(custom("caption='Account Tier' and value contains 'ol'", &r));
        assert!(custom("id = 1 and value = \"Gold\"", &r), "an entry's id stands in for its caption");
        assert!(!custom("caption=\"Account Tier\" AND value=40", &r), "40 is the Seats entry's value");
        assert!(!custom("caption='Netsuite ID' AND value != null", &r));
        assert!(custom("caption='Account Tier' AND value != null", &r));
        assert!(!custom("caption='Region' AND value = 'EU'", &r), "no such entry");
        assert!(!custom("caption='Seats' AND value = 40", &json!({"id": 1})), "no custom fields at all");
    }

    #[test]
    fn custom_field_conditions_combine_with_conditions_by_and() {
        let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let q = parse_list_query(&params(&[
            ("conditions", "name = \"Acme\""),
            ("customfieldconditions", "caption=\"Account Tier\" AND value=\"Gold\""),
        ]))
        .unwrap();
        assert_eq!(q.filters.len(), 2);
        assert!(q.filters.iter().all(|f| f.matches(&with_custom_fields())));
        let other = json!({"name": "Other", "customFields": with_custom_fields()["customFields"].clone()});
        assert!(!q.filters.iter().all(|f| f.matches(&other)));
        assert!(q.key.contains("Account Tier"), "pages of another custom-field query are not shared");
    }

    #[test]
    fn malformed_custom_field_conditions_are_bad_parameters() {
        let err = |c: &str| parse_custom_field_conditions(c).err().unwrap_or_default();
        assert!(err("caption = ").contains("expected a value"));
        assert!(err("label = \"Tier\"").contains("not a property of a custom field"));
        assert!(err("customFields/caption = \"Tier\"").contains("not a property"));
        let bad = vec![("customFieldConditions".to_string(), "caption = Tier".to_string())];
        let e = parse_list_query(&bad).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn fields_keep_nested_paths() {
        let r = json!({"id": 1, "name": "x", "company": {"id": 2, "name": "y"}, "types": [{"id": 1, "name": "a"}]});
        let p = project(&r, &parse_fields("id,company/name,types/id"));
        assert_eq!(p, json!({"id": 1, "company": {"name": "y"}, "types": [{"id": 1}]}));
    }

    #[test]
    fn order_by_parses_directions() {
        let o = parse_order_by("name desc, id").unwrap();
        assert_eq!(o, vec![(vec!["name".to_string()], true), (vec!["id".to_string()], false)]);
        assert!(parse_order_by("name sideways").is_err());
    }
}
