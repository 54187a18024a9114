//! A pipeline's typed variables (`[vars]` in the definition) and the run date's built-ins: what a
//! `{{name}}` placeholder may stand for, each value validated against its type before it can reach
//! any SQL, and rendered so that it cannot change the statement around it.
//!
//! Outside literals a placeholder becomes one SQL token of its type: an identifier a quoted
//! identifier (`"…"`, `"` doubled), a string a quoted literal (`'…'`, `'` and `\` doubled, since a
//! backslash escapes in a Redshift string literal, r_Literals.html), an integer a number (negative
//! ones in parentheses, so `a-{{n}}` never becomes a `--` comment), a date a date literal
//! (`DATE '2024-01-02'`). A space is added where the value would otherwise glue onto a word, a
//! literal or a quoted identifier beside it. Inside a string literal (the S3 paths of COPY and
//! UNLOAD) a placeholder becomes the value's text, and a value whose text could end or escape that
//! literal (`'` or `\` in a quoted literal, `$` in a dollar-quoted one) is refused, never escaped.
//! Placeholders in comments and quoted identifiers are left as they are.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Days, NaiveDate};
use thiserror::Error;

use crate::run_date::RunDate;
use crate::sql::{self, SqlError, Token, TokenKind};

/// Redshift's limit on an identifier, in bytes (r_names.html).
pub const MAX_IDENTIFIER_BYTES: usize = 127;
/// The longest variable name.
pub const MAX_NAME_CHARS: usize = 64;
/// The most variables a pipeline may declare.
pub const MAX_VARS: usize = 50;
/// The longest string value (bytes). A script is at most 100 KB after substitution anyway.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// The built-in placeholders, all from the run date.
pub const RUN_DATE: &str = "run_date";
pub const RUN_DATE_PREV: &str = "run_date_prev";
pub const RUN_DATE_MONTH_START: &str = "run_date_month_start";
pub const RUN_DATE_NODASH: &str = "run_date_nodash";
pub const BUILT_INS: [&str; 4] = [
    RUN_DATE,
    RUN_DATE_PREV,
    RUN_DATE_MONTH_START,
    RUN_DATE_NODASH,
];

/// A variable's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VarType {
    Identifier,
    String,
    Integer,
    Date,
}

impl VarType {
    pub const ALL: [VarType; 4] = [Self::Identifier, Self::String, Self::Integer, Self::Date];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identifier => "identifier",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Date => "date",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated value. Its text can only be what its type allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Identifier(String),
    String(String),
    Integer(i64),
    Date(NaiveDate),
    /// `run_date`: `'YYYY-MM-DD'` outside literals, exactly as before variables existed.
    RunDate(RunDate),
}

/// Why a value is refused. Every message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VarError {
    #[error("variable {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("variable {name} is not declared in the pipeline's [vars] (declared: {declared})")]
    Unknown { name: String, declared: String },
}

/// The first 60 characters of a value for a message, control characters escaped.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(60).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

impl Value {
    /// Checks `json` (from the definition, the deployment's `PipelineVars` or the run's input)
    /// against `ty`. Integers are JSON integers or decimal strings (within i64); dates
    /// `YYYY-MM-DD` strings (years 1900-9999); identifiers and strings JSON strings.
    pub fn parse(name: &str, ty: VarType, json: &serde_json::Value) -> Result<Self, VarError> {
        let invalid = |reason: String| VarError::Invalid {
            name: name.to_owned(),
            reason,
        };
        let text = json.as_str();
        match ty {
            VarType::Identifier => {
                let text = text.ok_or_else(|| {
                    invalid(format!(
                        "must be a string (type identifier), not {}",
                        json_kind(json)
                    ))
                })?;
                check_identifier(text).map_err(invalid)?;
                Ok(Self::Identifier(text.to_owned()))
            }
            VarType::String => {
                let text = text.ok_or_else(|| {
                    invalid(format!(
                        "must be a string (type string), not {}",
                        json_kind(json)
                    ))
                })?;
                if text.contains('\0') {
                    return Err(invalid(
                        "contains U+0000, which a Redshift string cannot hold".into(),
                    ));
                }
                if text.len() > MAX_STRING_BYTES {
                    return Err(invalid(format!(
                        "is {} bytes long; at most {MAX_STRING_BYTES} are allowed",
                        text.len()
                    )));
                }
                Ok(Self::String(text.to_owned()))
            }
            VarType::Integer => {
                let parsed = match json {
                    serde_json::Value::Number(n) => n.as_i64(),
                    serde_json::Value::String(s) => {
                        let digits = s.strip_prefix('-').unwrap_or(s);
                        (!digits.is_empty()
                            && digits.len() <= 19
                            && digits.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<i64>().ok())
                        .flatten()
                    }
                    _ => None,
                };
                parsed.map(Self::Integer).ok_or_else(|| {
                    let value = match json {
                        serde_json::Value::String(s) => shown(s),
                        other => truncated_json(other),
                    };
                    invalid(format!(
                        "{value} is not an integer from {} to {} (type integer)",
                        i64::MIN,
                        i64::MAX
                    ))
                })
            }
            VarType::Date => {
                let text = text.ok_or_else(|| {
                    invalid(format!(
                        "must be a string YYYY-MM-DD (type date), not {}",
                        json_kind(json)
                    ))
                })?;
                let date = RunDate::parse(text).map_err(|_| {
                    invalid(format!(
                        "{} is not a calendar date YYYY-MM-DD from 1900 to 9999 (type date)",
                        shown(text)
                    ))
                })?;
                let day = NaiveDate::parse_from_str(&date.to_string(), "%Y-%m-%d")
                    .expect("a run date is a calendar date");
                Ok(Self::Date(day))
            }
        }
    }

    /// The value as JSON, in the form [`Value::parse`] reads back.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Identifier(s) | Self::String(s) => serde_json::Value::String(s.clone()),
            Self::Integer(n) => serde_json::Value::from(*n),
            Self::Date(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
            Self::RunDate(d) => serde_json::Value::String(d.to_string()),
        }
    }

    /// The SQL a placeholder outside literals becomes: one token of the value's type.
    pub fn sql(&self) -> String {
        match self {
            Self::Identifier(s) => format!("\"{}\"", s.replace('"', "\"\"")),
            Self::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            Self::Integer(n) if *n < 0 => format!("({n})"),
            Self::Integer(n) => n.to_string(),
            Self::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Self::RunDate(d) => d.sql_literal(),
        }
    }

    /// The value's text, what a placeholder inside a string literal becomes.
    pub fn text(&self) -> String {
        match self {
            Self::Identifier(s) | Self::String(s) => s.clone(),
            Self::Integer(n) => n.to_string(),
            Self::Date(d) => d.format("%Y-%m-%d").to_string(),
            Self::RunDate(d) => d.to_string(),
        }
    }
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn truncated_json(json: &serde_json::Value) -> String {
    let text = json.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// Redshift's rules for a (delimited) identifier (r_names.html): 1-127 bytes of UTF-8, no
/// control character (U+0000 included). Any other character, `"` too, is allowed: the value is
/// always emitted double-quoted with `"` doubled.
pub fn check_identifier(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty (type identifier)".into());
    }
    if text.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "is {} bytes long; a Redshift identifier has at most {MAX_IDENTIFIER_BYTES} bytes",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character {:?}, which a Redshift identifier cannot hold",
            c
        ));
    }
    Ok(())
}

/// A variable name: 1-64 of `a-z 0-9 _`, starting with a letter or `_`, not a built-in.
pub fn check_name(name: &str) -> Result<(), String> {
    let shaped = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !shaped {
        return Err(format!(
            "variable name {:?} must be 1-{MAX_NAME_CHARS} characters of a-z 0-9 _, not starting with a digit",
            name
        ));
    }
    if BUILT_INS.contains(&name) {
        return Err(format!(
            "variable name {name} is a built-in ({}); choose another",
            BUILT_INS.join(", ")
        ));
    }
    Ok(())
}

/// Where a variable may appear: inside a quoted (`'…'`, `E'…'`) or dollar-quoted literal, whose
/// end a value's text must not contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    Quoted,
    Dollar,
}

impl LiteralKind {
    fn of(token: &str) -> Self {
        if token.starts_with('$') {
            Self::Dollar
        } else {
            Self::Quoted
        }
    }

    /// Why `text` cannot stand inside this kind of literal, if it cannot.
    pub fn refuses(self, text: &str) -> Option<&'static str> {
        match self {
            Self::Quoted if text.contains('\'') => {
                Some("contains ', which would end the string literal it is used in")
            }
            Self::Quoted if text.contains('\\') => Some(
                "contains \\, which would escape a character of the string literal it is used in",
            ),
            Self::Dollar if text.contains('$') => {
                Some("contains $, which could end the dollar-quoted string it is used in")
            }
            _ => None,
        }
    }
}

/// A validated value and the literals it may stand in.
impl Value {
    pub fn check_in_literal(&self, name: &str, kind: LiteralKind) -> Result<(), VarError> {
        match kind.refuses(&self.text()) {
            Some(reason) => Err(VarError::Invalid {
                name: name.to_owned(),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// One `{{name}}` in a script: its name, 1-based line, and whether it stands in a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub line: usize,
    pub offset: usize,
    /// `Some` inside a string literal: the placeholder is replaced by the value's text.
    pub literal: Option<LiteralKind>,
}

/// A `{{` outside literals and comments that is not a placeholder (`{{ name }}`, `{{1x}}`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {{{{{text}… is not a placeholder {{{{name}}}} (a-z 0-9 _, no spaces)")]
pub struct MalformedPlaceholder {
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlaceholderError {
    #[error(transparent)]
    Lex(#[from] SqlError),
    #[error(transparent)]
    Malformed(#[from] MalformedPlaceholder),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The `{{name}}` occurrences inside a string literal's text: `(start, end, name)` in the token.
fn in_literal(text: &str) -> Vec<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("{{") {
        let start = i + at;
        let name_start = start + 2;
        let mut end = name_start;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        if end > name_start && text[end..].starts_with("}}") {
            found.push((start, end + 2, &text[name_start..end]));
            i = end + 2;
        } else {
            i = start + 1;
        }
    }
    found
}

/// A template: the script's tokens, with each placeholder found. The one lexer
/// ([`crate::sql::tokenize`]) says what is a literal, a comment or code.
struct Scan<'a> {
    tokens: Vec<Token<'a>>,
    /// Index of the first of the five tokens `{ { name } }` outside literals -> the name.
    outside: BTreeMap<usize, &'a str>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

fn scan(text: &str) -> Result<Scan<'_>, PlaceholderError> {
    let tokens = sql::tokenize(text)?;
    let punct = |j: usize, p: &str| {
        tokens
            .get(j)
            .is_some_and(|t| t.kind == TokenKind::Punct && t.text == p)
    };
    let mut outside = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        if punct(i, "{") && punct(i + 1, "{") {
            let name = tokens
                .get(i + 2)
                .filter(|t| t.kind == TokenKind::Word && t.text.bytes().all(is_name_byte))
                .map(|t| t.text);
            match name {
                Some(name) if punct(i + 3, "}") && punct(i + 4, "}") => {
                    outside.insert(i, name);
                    i += 5;
                    continue;
                }
                _ => {
                    let snippet: String = tokens[i + 2..].iter().take(3).map(|t| t.text).collect();
                    return Err(MalformedPlaceholder {
                        line: line_of(text, tokens[i].offset),
                        text: snippet.chars().take(40).collect(),
                    }
                    .into());
                }
            }
        }
        i += 1;
    }
    Ok(Scan { tokens, outside })
}

/// Every placeholder of `text`, in order: outside literals (`{{name}}` as five tokens) and inside
/// string literals (`{{name}}` in the literal's text). Comments and quoted identifiers hold none.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder>, PlaceholderError> {
    let scan = scan(text)?;
    let mut found = Vec::new();
    for (i, token) in scan.tokens.iter().enumerate() {
        if let Some(name) = scan.outside.get(&i) {
            found.push(Placeholder {
                name: (*name).to_owned(),
                line: line_of(text, token.offset),
                offset: token.offset,
                literal: None,
            });
        } else if token.kind == TokenKind::String {
            for (start, _, name) in in_literal(token.text) {
                found.push(Placeholder {
                    name: name.to_owned(),
                    line: line_of(text, token.offset + start),
                    offset: token.offset + start,
                    literal: Some(LiteralKind::of(token.text)),
                });
            }
        }
    }
    Ok(found)
}

/// A `{{name}}` that names neither a built-in nor a declared variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {name}")]
pub struct Undeclared {
    pub line: usize,
    pub name: String,
}

/// The refusal of an undeclared `{{name}}` in any SQL text (a step's script, a check's SQL): the
/// first placeholder that is neither a built-in nor in `declared`.
pub fn check_declared<'a>(
    text: &str,
    mut declared: impl FnMut(&str) -> bool + 'a,
) -> Result<Vec<Placeholder>, UndeclaredError> {
    let found = placeholders(text)?;
    if let Some(p) = found
        .iter()
        .find(|p| !BUILT_INS.contains(&p.name.as_str()) && !declared(&p.name))
    {
        return Err(UndeclaredError::Undeclared(Undeclared {
            line: p.line,
            name: p.name.clone(),
        }));
    }
    Ok(found)
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UndeclaredError {
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    #[error(transparent)]
    Undeclared(Undeclared),
}

/// The values one run substitutes: the built-ins from its run date and its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values(BTreeMap<String, Value>);

impl Values {
    /// The built-ins of `run_date`: `run_date`, `run_date_prev` (the day before),
    /// `run_date_month_start` (the first day of its month), `run_date_nodash` (`YYYYMMDD`).
    pub fn new(run_date: RunDate) -> Self {
        let day = NaiveDate::parse_from_str(&run_date.to_string(), "%Y-%m-%d")
            .expect("a run date is a calendar date");
        let mut values = BTreeMap::new();
        values.insert(RUN_DATE.to_owned(), Value::RunDate(run_date));
        // 1900-01-01's day before is 1899-12-31: still a date Redshift holds.
        let prev = day.checked_sub_days(Days::new(1)).unwrap_or(day);
        values.insert(RUN_DATE_PREV.to_owned(), Value::Date(prev));
        values.insert(
            RUN_DATE_MONTH_START.to_owned(),
            Value::Date(day.with_day(1).expect("every month has a first day")),
        );
        values.insert(
            RUN_DATE_NODASH.to_owned(),
            Value::String(day.format("%Y%m%d").to_string()),
        );
        Self(values)
    }

    /// Adds a validated variable (a built-in's name cannot be declared: [`check_name`]).
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.0.insert(name.to_owned(), value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// Why a script cannot be filled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FillError {
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    #[error("script uses the unknown placeholder {{{{{name}}}}} (line {line})")]
    Unknown { name: String, line: usize },
    #[error(transparent)]
    Var(#[from] VarError),
}

/// Whether the junction of `a` (the end of what is before) and `b` (the start of what follows)
/// could glue two tokens into one: a word onto a word or number, a literal onto a literal, a
/// quoted identifier onto one, `E`/`U&` prefixes onto a literal.
fn glues(a: Option<char>, b: Option<char>) -> bool {
    let sticky = |c: char| c.is_alphanumeric() || matches!(c, '_' | '$' | '\'' | '"' | '&');
    matches!((a, b), (Some(a), Some(b)) if sticky(a) && sticky(b))
}

/// Replaces every placeholder: outside literals with the value's SQL ([`Value::sql`]), inside
/// string literals with its text ([`Value::text`], refused when it could end the literal).
pub fn fill(text: &str, values: &Values) -> Result<String, FillError> {
    let scan = scan(text)?;
    let mut out = String::with_capacity(text.len() + 64);
    let mut i = 0;
    while i < scan.tokens.len() {
        let token = scan.tokens[i];
        if let Some(&name) = scan.outside.get(&i) {
            let value = values.get(name).ok_or_else(|| FillError::Unknown {
                name: name.to_owned(),
                line: line_of(text, token.offset),
            })?;
            let sql = value.sql();
            if glues(out.chars().next_back(), sql.chars().next()) {
                out.push(' ');
            }
            out.push_str(&sql);
            let after = scan.tokens.get(i + 5).and_then(|t| t.text.chars().next());
            if glues(sql.chars().next_back(), after) {
                out.push(' ');
            }
            i += 5;
            continue;
        }
        if token.kind == TokenKind::String {
            let mut last = 0;
            for (start, end, name) in in_literal(token.text) {
                let value = values.get(name).ok_or_else(|| FillError::Unknown {
                    name: name.to_owned(),
                    line: line_of(text, token.offset + start),
                })?;
                value.check_in_literal(name, LiteralKind::of(token.text))?;
                out.push_str(&token.text[last..start]);
                out.push_str(&value.text());
                last = end;
            }
            out.push_str(&token.text[last..]);
        } else {
            out.push_str(token.text);
        }
        i += 1;
    }
    Ok(out)
}

/// A pipeline's declarations as the state machine passes them: name -> type (and, for the
/// resolver, the default and whether the variable stands inside a literal somewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub ty: VarType,
    pub default: serde_json::Value,
    /// The literal kinds the variable appears in, in any script of the pipeline.
    pub in_literals: Vec<LiteralKind>,
}

/// Reads the declarations the generator put into the state machine:
/// `{"name": {"type": "identifier", "default": "public", "inLiteral": ["quoted"]}}`.
pub fn parse_declared(json: &serde_json::Value) -> Result<BTreeMap<String, Declared>, String> {
    let entries = json
        .as_object()
        .ok_or("the declarations must be an object")?;
    let mut out = BTreeMap::new();
    for (name, decl) in entries {
        check_name(name)?;
        let ty = decl
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(VarType::parse)
            .ok_or_else(|| {
                format!("variable {name}: type must be one of identifier, string, integer, date")
            })?;
        let default = decl
            .get("default")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let in_literals = match decl.get("inLiteral") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(kinds)) => kinds
                .iter()
                .map(|k| match k.as_str() {
                    Some("quoted") => Ok(LiteralKind::Quoted),
                    Some("dollar") => Ok(LiteralKind::Dollar),
                    _ => Err(format!(
                        "variable {name}: inLiteral entries are \"quoted\" or \"dollar\""
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("variable {name}: inLiteral must be an array")),
        };
        out.insert(
            name.clone(),
            Declared {
                ty,
                default,
                in_literals,
            },
        );
    }
    Ok(out)
}

/// The name of a declaration's literal kind, as [`parse_declared`] reads it.
pub fn literal_kind_name(kind: LiteralKind) -> &'static str {
    match kind {
        LiteralKind::Quoted => "quoted",
        LiteralKind::Dollar => "dollar",
    }
}

/// Validates one value of a declared variable: its type, and the literals it stands in.
pub fn validate(name: &str, decl: &Declared, json: &serde_json::Value) -> Result<Value, VarError> {
    let value = Value::parse(name, decl.ty, json)?;
    for &kind in &decl.in_literals {
        value.check_in_literal(name, kind)?;
    }
    Ok(value)
}

/// The values of one run, each layer over the one before: the declared defaults, the
/// deployment's (`PipelineVars`), the run's (the execution input's `vars`). Only declared names,
/// each valid for its type. `layers` are `(where, JSON)`: `where` names the layer in errors.
pub fn resolve(
    declared: &BTreeMap<String, Declared>,
    layers: &[(&str, Option<&serde_json::Value>)],
) -> Result<BTreeMap<String, Value>, ResolveError> {
    let mut values = BTreeMap::new();
    for (name, decl) in declared {
        let value = validate(name, decl, &decl.default).map_err(|error| ResolveError {
            layer: "the definition's default".into(),
            error,
        })?;
        values.insert(name.clone(), value);
    }
    for (layer, json) in layers {
        let entries = match json {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::Object(entries)) => entries,
            Some(other) => {
                return Err(ResolveError {
                    layer: (*layer).to_owned(),
                    error: VarError::Invalid {
                        name: "vars".into(),
                        reason: format!(
                            "must be an object of variable names to values, not {}",
                            json_kind(other)
                        ),
                    },
                })
            }
        };
        for (name, json) in entries {
            let Some(decl) = declared.get(name) else {
                return Err(ResolveError {
                    layer: (*layer).to_owned(),
                    error: VarError::Unknown {
                        name: shown(name),
                        declared: if declared.is_empty() {
                            "none".into()
                        } else {
                            declared.keys().cloned().collect::<Vec<_>>().join(", ")
                        },
                    },
                });
            };
            let value = validate(name, decl, json).map_err(|error| ResolveError {
                layer: (*layer).to_owned(),
                error,
            })?;
            values.insert(name.clone(), value);
        }
    }
    Ok(values)
}

/// A refused value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{error} (in {layer})")]
pub struct ResolveError {
    pub layer: String,
    pub error: VarError,
}

#[cfg(test)]
mod tests;
