//! A small SOQL parser for the query shapes the connector sends (salesforce-api.md 2):
//! `SELECT f1, f2 FROM Object [WHERE filter] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST],
//! ...] [LIMIT n] [OFFSET n]`. A filter is conditions joined by `AND` or by `OR`, or one
//! condition or parenthesised group negated by `NOT`, with parentheses for grouping. As in
//! Salesforce ("Logical Operators": "AND, OR, and NOT. Parentheses are required whenever you
//! mix the operators"), no operator binds tighter than another: `A OR B AND C` is refused
//! (write `A OR (B AND C)` or `(A OR B) AND C`), and so are `A AND NOT B` and `NOT A OR B`
//! (write `A AND (NOT B)`, the form of Salesforce's own example, and `(NOT A) OR B` or
//! `NOT (A OR B)`). UNCONFIRMED: whether Salesforce lets `A AND NOT B` through anyway is not
//! documented; the documented rule is applied as written. A condition is `Field op literal` with op one of
//! `= != <> < <= > >=`, `Field [NOT] IN (literal, ...)`, or `Field LIKE 'pattern'` (`%` any
//! run of characters, `_` one character, `\%` and `\_` themselves). A literal is a quoted
//! string (with SOQL's escape sequences), a number, `true`, `false`, `null`, a date
//! (`2024-05-01`) or an unquoted dateTime (`2024-05-01T10:00:00Z`, `...+01:00`). Anything
//! else (date functions, semi-joins...) is `MALFORMED_QUERY`; resolving
//! field names against the object is the store's job.

use super::error::ApiError;
use crate::common::parse_timestamp;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A literal on the right of a condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// A date literal, `YYYY-MM-DD`.
    Date(String),
    /// A dateTime literal, as Unix seconds.
    DateTime(i64),
}

/// One element of a `LIKE` pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pat {
    /// `%`: any run of characters, the empty one included.
    Any,
    /// `_`: exactly one character.
    One,
    /// A character standing for itself (compared case-insensitively).
    Char(char),
}

/// What a condition asks of its field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Test {
    /// `op literal`.
    Cmp(Op, Literal),
    /// `IN (...)`, or `NOT IN (...)` when `negated`.
    In { negated: bool, values: Vec<Literal> },
    /// `LIKE 'pattern'`.
    Like(Vec<Pat>),
}

/// `Field test`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    pub field: String,
    pub test: Test,
}

/// A WHERE clause.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    Cond(Condition),
    /// Every one holds.
    And(Vec<Filter>),
    /// At least one holds.
    Or(Vec<Filter>),
    /// The inner filter does not hold (`NOT condition`, `NOT (filter)`).
    Not(Box<Filter>),
}

/// One `ORDER BY` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OrderKey {
    pub field: String,
    pub descending: bool,
    /// Where nulls go; the SOQL default is first for ascending, last for descending.
    pub nulls_first: bool,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Soql {
    pub fields: Vec<String>,
    pub object: String,
    pub filter: Option<Filter>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    /// A quoted string: its value, and the same read as a `LIKE` pattern.
    Text(String, Vec<Pat>),
    Comma,
    Open,
    Close,
    Op(Op),
}

fn tokens(q: &str) -> Result<Vec<Token>, ApiError> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == ',' {
            out.push(Token::Comma);
            i += 1;
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            let mut pat = Vec::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(ApiError::malformed_query("unterminated string literal")),
                    Some('\\') => {
                        let ch = escaped(chars.get(i + 1).copied())?;
                        s.push(ch);
                        pat.push(Pat::Char(ch));
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        pat.push(match ch {
                            '%' => Pat::Any,
                            '_' => Pat::One,
                            c => Pat::Char(*c),
                        });
                        i += 1;
                    }
                }
            }
            out.push(Token::Text(s, pat));
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match two.as_str() {
                "!=" | "<>" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                _ => match c {
                    '=' => (Op::Eq, 1),
                    '<' => (Op::Lt, 1),
                    '>' => (Op::Gt, 1),
                    _ => return Err(ApiError::malformed_query(format!("unexpected token: '{c}'"))),
                },
            };
            out.push(Token::Op(op));
            i += len;
        } else if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':') {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-' | '+' | ':')) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            return Err(ApiError::malformed_query(format!("unexpected token: '{c}'")));
        }
    }
    Ok(out)
}

/// The character a quoted-string escape sequence stands for (SOQL "Quoted String Escape
/// Sequences": `\n \r \t \b \f \" \' \\`, plus `\_` and `\%`, which LIKE uses); any
/// other sequence is an illegal one, as Salesforce refuses it.
fn escaped(next: Option<char>) -> Result<char, ApiError> {
    Ok(match next {
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('b') => '\u{8}',
        Some('f') => '\u{c}',
        Some(c @ ('"' | '\'' | '\\' | '_' | '%')) => c,
        Some(c) => {
            return Err(ApiError::malformed_query(format!("Illegal character sequence '\\{c}' in string literal")));
        }
        None => return Err(ApiError::malformed_query("unterminated string literal")),
    })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), ApiError> {
        if self.peek_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ApiError::malformed_query(format!("expecting '{kw}', found {}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.toks.get(self.pos) {
            None => "end of query".into(),
            Some(Token::Word(w)) => format!("'{w}'"),
            Some(Token::Text(t, _)) => format!("'{t}'"),
            Some(Token::Comma) => "','".into(),
            Some(Token::Open) => "'('".into(),
            Some(Token::Close) => "')'".into(),
            Some(Token::Op(_)) => "an operator".into(),
        }
    }

    fn ident(&mut self) -> Result<String, ApiError> {
        match self.toks.get(self.pos) {
            Some(Token::Word(w)) if is_ident(w) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(ApiError::malformed_query(format!("expecting a field or object name, found {}", self.found()))),
        }
    }

    fn number(&mut self) -> Result<usize, ApiError> {
        match self.toks.get(self.pos) {
            Some(Token::Word(w)) => {
                let n = w
                    .parse::<usize>()
                    .map_err(|_| ApiError::malformed_query(format!("expecting a number, found '{w}'")))?;
                self.pos += 1;
                Ok(n)
            }
            _ => Err(ApiError::malformed_query(format!("expecting a number, found {}", self.found()))),
        }
    }

    fn literal(&mut self) -> Result<Literal, ApiError> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Token::Text(s, _)) => Ok(Literal::Str(s)),
            Some(Token::Word(w)) => word_literal(&w),
            _ => Err(ApiError::malformed_query("expecting a literal value after the operator".to_string())),
        }
    }

    fn eat(&mut self, tok: &Token) -> bool {
        if self.toks.get(self.pos) == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Token, what: &str) -> Result<(), ApiError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(ApiError::malformed_query(format!("expecting '{what}', found {}", self.found())))
        }
    }

    /// `NOT term`, `term (AND term)*` or `term (OR term)*`: one logical operator per
    /// level, as SOQL requires parentheses whenever AND, OR and NOT are mixed.
    fn filter(&mut self) -> Result<Filter, ApiError> {
        if self.peek_keyword("NOT") {
            self.pos += 1;
            let negated = Filter::Not(Box::new(self.term()?));
            if let Some(joiner) = ["AND", "OR"].into_iter().find(|k| self.peek_keyword(k)) {
                return Err(mixed_not(joiner));
            }
            return Ok(negated);
        }
        let first = self.term()?;
        let joiner = if self.peek_keyword("AND") {
            "AND"
        } else if self.peek_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut terms = vec![first];
        while self.peek_keyword(joiner) {
            self.pos += 1;
            if self.peek_keyword("NOT") {
                return Err(mixed_not(joiner));
            }
            terms.push(self.term()?);
        }
        let other = if joiner == "AND" { "OR" } else { "AND" };
        if self.peek_keyword(other) {
            return Err(ApiError::malformed_query(format!(
                "unexpected token: '{other}' (use parentheses when mixing AND and OR)"
            )));
        }
        Ok(if joiner == "AND" { Filter::And(terms) } else { Filter::Or(terms) })
    }

    /// `( filter )` or one condition.
    fn term(&mut self) -> Result<Filter, ApiError> {
        if self.eat(&Token::Open) {
            let inner = self.filter()?;
            self.expect(&Token::Close, ")")?;
            return Ok(inner);
        }
        self.condition().map(Filter::Cond)
    }

    fn condition(&mut self) -> Result<Condition, ApiError> {
        let field = self.ident()?;
        let test = if let Some(Token::Op(op)) = self.toks.get(self.pos) {
            let op = *op;
            self.pos += 1;
            Test::Cmp(op, self.literal()?)
        } else if self.peek_keyword("LIKE") {
            self.pos += 1;
            match self.toks.get(self.pos).cloned() {
                Some(Token::Text(_, pat)) => {
                    self.pos += 1;
                    Test::Like(pat)
                }
                _ => {
                    return Err(ApiError::malformed_query(format!(
                        "expecting a quoted pattern after LIKE, found {}",
                        self.found()
                    )));
                }
            }
        } else if self.peek_keyword("IN") || self.peek_keyword("NOT") {
            let negated = self.peek_keyword("NOT");
            if negated {
                self.pos += 1;
            }
            self.keyword("IN")?;
            self.expect(&Token::Open, "(")?;
            let mut values = vec![self.literal()?];
            while self.eat(&Token::Comma) {
                values.push(self.literal()?);
            }
            self.expect(&Token::Close, ")")?;
            Test::In { negated, values }
        } else {
            return Err(ApiError::malformed_query(format!("expecting an operator, found {}", self.found())));
        };
        Ok(Condition { field, test })
    }
}

/// The refusal of `NOT` beside `joiner` without parentheses.
fn mixed_not(joiner: &str) -> ApiError {
    ApiError::malformed_query(format!(
        "unexpected token: '{joiner}' beside 'NOT' (use parentheses when mixing NOT with AND or OR, e.g. \
         A AND (NOT B))"
    ))
}

fn is_ident(w: &str) -> bool {
    w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn word_literal(w: &str) -> Result<Literal, ApiError> {
    if w.eq_ignore_ascii_case("null") {
        return Ok(Literal::Null);
    }
    if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") {
        return Ok(Literal::Bool(w.eq_ignore_ascii_case("true")));
    }
    let b = w.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return parse_timestamp(w)
            .map(|_| Literal::Date(w.to_string()))
            .ok_or_else(|| ApiError::malformed_query(format!("'{w}' is not a valid date")));
    }
    if b.len() > 10 && b[4] == b'-' && (b[10] == b'T' || b[10] == b't') {
        return parse_timestamp(w)
            .map(Literal::DateTime)
            .ok_or_else(|| ApiError::malformed_query(format!("'{w}' is not a valid value for the type xsd:dateTime")));
    }
    w.parse::<f64>()
        .map(Literal::Num)
        .map_err(|_| ApiError::malformed_query(format!("unexpected token: '{w}' (strings must be in single quotes)")))
}

/// Parses one query.
pub(crate) fn parse(q: &str) -> Result<Soql, ApiError> {
    let mut p = Parser { toks: tokens(q)?, pos: 0 };
    p.keyword("SELECT")?;
    let mut fields = vec![p.ident()?];
    while matches!(p.toks.get(p.pos), Some(Token::Comma)) {
        p.pos += 1;
        fields.push(p.ident()?);
    }
    p.keyword("FROM")?;
    let object = p.ident()?;
    let mut filter = None;
    if p.peek_keyword("WHERE") {
        p.pos += 1;
        filter = Some(p.filter()?);
    }
    let mut order = Vec::new();
    if p.peek_keyword("ORDER") {
        p.pos += 1;
        p.keyword("BY")?;
        loop {
            let field = p.ident()?;
            let mut descending = false;
            if p.peek_keyword("ASC") {
                p.pos += 1;
            } else if p.peek_keyword("DESC") {
                p.pos += 1;
                descending = true;
            }
            let mut nulls_first = !descending;
            if p.peek_keyword("NULLS") {
                p.pos += 1;
                if p.peek_keyword("FIRST") {
                    nulls_first = true;
                } else if p.peek_keyword("LAST") {
                    nulls_first = false;
                } else {
                    return Err(ApiError::malformed_query(format!("expecting FIRST or LAST, found {}", p.found())));
                }
                p.pos += 1;
            }
            order.push(OrderKey { field, descending, nulls_first });
            if matches!(p.toks.get(p.pos), Some(Token::Comma)) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    if p.peek_keyword("LIMIT") {
        p.pos += 1;
        limit = Some(p.number()?);
    }
    let mut offset = 0;
    if p.peek_keyword("OFFSET") {
        p.pos += 1;
        offset = p.number()?;
    }
    if p.pos < p.toks.len() {
        return Err(ApiError::malformed_query(format!("unexpected token: {}", p.found())));
    }
    Ok(Soql { fields, object, filter, order, limit, offset })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The conditions of a query's filter, left to right.
    fn conditions(q: &Soql) -> Vec<Condition> {
        fn walk(f: &Filter, out: &mut Vec<Condition>) {
            match f {
                Filter::Cond(c) => out.push(c.clone()),
                Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| walk(f, out)),
                Filter::Not(f) => walk(f, out),
            }
        }
        let mut out = Vec::new();
        if let Some(f) = &q.filter {
            walk(f, &mut out);
        }
        out
    }

    /// The value a `Field op literal` condition compares with.
    fn value(c: &Condition) -> Literal {
        match &c.test {
            Test::Cmp(_, v) => v.clone(),
            other => panic!("not a comparison: {other:?}"),
        }
    }

    #[test]
    fn the_incremental_read_the_connector_sends_parses() {
        let q = parse(
            "SELECT Id, Name, Type FROM Account WHERE LastModifiedDate >= 2024-05-01T10:00:00Z AND Id > '001A' ORDER BY Id ASC LIMIT 50",
        )
        .unwrap();
        assert_eq!(q.fields, ["Id", "Name", "Type"]);
        assert_eq!(q.object, "Account");
        let c = conditions(&q);
        assert_eq!(c.len(), 2);
        assert_eq!(value(&c[0]), Literal::DateTime(1_714_557_600));
        assert_eq!(c[1], Condition { field: "Id".into(), test: Test::Cmp(Op::Gt, Literal::Str("001A".into())) });
        assert_eq!(q.order, [OrderKey { field: "Id".into(), descending: false, nulls_first: true }]);
        assert_eq!(q.limit, Some(50));
    }

    #[test]
    fn keywords_are_case_insensitive_and_offsets_dates_and_booleans_read() {
        let q = parse("select id from contact where isdeleted = false and CloseDate < 2024-01-31 and X__c != null order by name desc nulls first offset 5").unwrap();
        let c = conditions(&q);
        assert_eq!(value(&c[0]), Literal::Bool(false));
        assert_eq!(value(&c[1]), Literal::Date("2024-01-31".into()));
        assert_eq!(c[2].test, Test::Cmp(Op::Ne, Literal::Null));
        assert!(q.order[0].descending && q.order[0].nulls_first);
        assert_eq!(q.offset, 5);
        assert_eq!(
            value(&conditions(&parse("SELECT Id FROM X WHERE D > 2024-05-01T10:00:00+01:00").unwrap())[0]),
            Literal::DateTime(1_714_554_000)
        );
    }

    #[test]
    fn escape_sequences_in_string_literals_stand_for_their_characters() {
        let q = parse(r#"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ \"Sons\"\n\t'"#).unwrap();
        assert_eq!(value(&conditions(&q)[0]), Literal::Str("O'Brien \\ \"Sons\"\n\t".into()));
        let quoted = parse(r"SELECT Id FROM Account WHERE Name = 'x\' OR Name = \'y'").unwrap();
        assert_eq!(conditions(&quoted).len(), 1, "an escaped quote does not end the literal");
        assert_eq!(value(&conditions(&quoted)[0]), Literal::Str("x' OR Name = 'y".into()));
        assert_eq!(parse(r"SELECT Id FROM Account WHERE Name = 'a\qb'").unwrap_err().code, "MALFORMED_QUERY");
    }

    #[test]
    fn broken_queries_are_malformed() {
        for q in [
            "",
            "SELECT FROM Account",
            "SELECT Id Account",
            "SELECT Id FROM Account WHERE",
            "SELECT Id FROM Account WHERE Name = 'x",
            "SELECT Id FROM Account WHERE Name = bare",
            "SELECT Id FROM Account LIMIT many",
            "SELECT Id FROM Account ORDER Id",
            "SELECT Id FROM Account trailing",
            "SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Type = 'c'",
            "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Type = 'c'",
            "SELECT Id FROM Account WHERE (Name = 'a' OR Name = 'b'",
            "SELECT Id FROM Account WHERE Name = 'a')",
            "SELECT Id FROM Account WHERE ()",
            "SELECT Id FROM Account WHERE Name IN ()",
            "SELECT Id FROM Account WHERE Name IN 'a'",
            "SELECT Id FROM Account WHERE Name IN ('a',)",
            "SELECT Id FROM Account WHERE Name NOT = 'a'",
            "SELECT Id FROM Account WHERE NOT",
            "SELECT Id FROM Account WHERE NOT NOT Name = 'a'",
            "SELECT Id FROM Account WHERE Name LIKE a%",
            "SELECT Id FROM Account WHERE Name LIKE 5",
        ] {
            assert_eq!(parse(q).unwrap_err().code, "MALFORMED_QUERY", "{q}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod filter_tests {
    use super::*;

    #[test]
    fn like_patterns_keep_escaped_wildcards_as_characters() {
        let q = parse(r"SELECT Id FROM Account WHERE Name LIKE 'a\%b%c_\_'").unwrap();
        let Some(Filter::Cond(c)) = q.filter else { panic!("one condition") };
        use Pat::{Any, Char, One};
        assert_eq!(c.test, Test::Like(vec![Char('a'), Char('%'), Char('b'), Any, Char('c'), One, Char('_')]));
    }

    #[test]
    fn or_and_and_nest_only_through_parentheses() {
        let q = parse("SELECT Id FROM A WHERE X = 'a' OR (Y = 'b' AND Z NOT IN ('c', null))").unwrap();
        let cond = |f: &str, t: Test| Filter::Cond(Condition { field: f.into(), test: t });
        assert_eq!(
            q.filter,
            Some(Filter::Or(vec![
                cond("X", Test::Cmp(Op::Eq, Literal::Str("a".into()))),
                Filter::And(vec![
                    cond("Y", Test::Cmp(Op::Eq, Literal::Str("b".into()))),
                    cond("Z", Test::In { negated: true, values: vec![Literal::Str("c".into()), Literal::Null] }),
                ]),
            ]))
        );
    }

    fn eq(field: &str, text: &str) -> Filter {
        Filter::Cond(Condition { field: field.into(), test: Test::Cmp(Op::Eq, Literal::Str(text.into())) })
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    #[test]
    fn not_negates_one_condition_or_a_parenthesised_group() {
        let filter = |q: &str| parse(q).unwrap().filter.unwrap();
        assert_eq!(filter("SELECT Id FROM Account WHERE NOT Name = 'x'"), not(eq("Name", "x")));
        assert_eq!(
            filter("SELECT Id FROM Account WHERE not (Name = 'a' OR Name = 'b')"),
            not(Filter::Or(vec![eq("Name", "a"), eq("Name", "b")]))
        );
        assert_eq!(
            filter("SELECT Name FROM Account WHERE Type = 'Customer' AND (NOT Type = 'Prospect')"),
            Filter::And(vec![eq("Type", "Customer"), not(eq("Type", "Prospect"))]),
            "the form of Salesforce's own example"
        );
        assert_eq!(
            filter("SELECT Id FROM A WHERE (NOT X = 'a') OR (NOT (Y = 'b' AND Z = 'c'))"),
            Filter::Or(vec![not(eq("X", "a")), not(Filter::And(vec![eq("Y", "b"), eq("Z", "c")]))])
        );
        let q = parse("SELECT Id FROM A WHERE NOT Name NOT IN ('a') ORDER BY Id").unwrap();
        assert!(matches!(q.filter, Some(Filter::Not(_))), "the logical NOT and the NOT IN operator side by side");
    }

    #[test]
    fn not_mixed_with_and_or_or_without_parentheses_is_malformed() {
        for q in [
            "SELECT Id FROM A WHERE NOT Name = 'a' AND Type = 'b'",
            "SELECT Id FROM A WHERE NOT Name = 'a' OR Type = 'b'",
            "SELECT Id FROM A WHERE Type = 'b' AND NOT Name = 'a'",
            "SELECT Id FROM A WHERE Type = 'b' OR NOT (Name = 'a')",
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.code, "MALFORMED_QUERY", "{q}");
            assert!(e.message.contains("parentheses"), "{q}: {}", e.message);
        }
    }
}
