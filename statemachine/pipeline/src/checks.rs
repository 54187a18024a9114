//! `[[check]]`: a data-quality check in the definition, a step whose SQL is one SELECT whose rows
//! are violations ([`etl_callback::check`] runs it and decides the outcome).
//!
//! ```toml
//! [[check]]
//! name = "ValidateSalesData"
//! after = ["LoadStoreSales"]
//! error = "Validation.NoSalesLoaded"           # the error name instead of Check.Failed
//! row_count = { table = "store_sales", min = 1, where = "ss_sold_date_sk = 1" }
//!
//! [[check]]
//! name = "NoNegativePrices"
//! after = ["LoadItem"]
//! severity = "warn"                            # the run goes on; the record is in its output
//! max_rows = 5                                 # rows shown (default 10)
//! sql = "select i_item_id, i_current_price from item where i_current_price < 0"
//! ```
//!
//! Exactly one of `sql` (inline), `script` (a file beside the definition) or a shorthand, which
//! generates the SELECT: `not_null`, `unique`, `accepted_values`, `relationships`, `row_count`,
//! `freshness`. A shorthand's table and column names are identifiers, checked and quoted (a name
//! that is not one is refused, so nothing can be injected through them); its `where` is a SQL
//! condition like any script's text, checked to be one expression (no `;`, balanced parentheses).

use serde::Deserialize;

use etl_callback::check::{Severity, DEFAULT_MAX_ROWS, MAX_MAX_ROWS};
use etl_callback::sql::{self, TokenKind};

/// A check as written in the definition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub name: String,
    #[serde(default)]
    pub after: Vec<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub max_rows: Option<u32>,
    pub error: Option<String>,
    pub heartbeat_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub sql: Option<String>,
    pub script: Option<String>,
    pub not_null: Option<Columns>,
    pub unique: Option<Columns>,
    pub accepted_values: Option<AcceptedValues>,
    pub relationships: Option<Relationships>,
    pub row_count: Option<RowCount>,
    pub freshness: Option<Freshness>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Columns {
    table: String,
    column: Option<String>,
    columns: Option<Vec<String>>,
    #[serde(rename = "where")]
    condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptedValues {
    table: String,
    column: String,
    values: Vec<toml::Value>,
    #[serde(rename = "where")]
    condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Relationships {
    table: String,
    column: Option<String>,
    columns: Option<Vec<String>>,
    /// The referenced table.
    to: String,
    /// The referenced columns, in `columns` order; default: the same names.
    to_column: Option<String>,
    to_columns: Option<Vec<String>>,
    #[serde(rename = "where")]
    condition: Option<String>,
    /// Which rows of `to` count (e.g. the current rows of an SCD type 2 dimension).
    to_where: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowCount {
    table: String,
    min: Option<u64>,
    max: Option<u64>,
    #[serde(rename = "where")]
    condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Freshness {
    table: String,
    column: String,
    /// The newest value of `column` must be no older than this many days before the run date.
    max_age_days: u32,
    #[serde(rename = "where")]
    condition: Option<String>,
}

/// A checked check: how the step runs and what the state machine tells the submitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    pub severity: Severity,
    pub max_rows: u32,
    /// The SELECT the payload carries (`check.sql`); `None` when the step's script is the check.
    pub sql: Option<String>,
    /// `sql`, `script` or the shorthand's name, for the README.
    pub kind: &'static str,
}

impl RawCheck {
    /// The check's settings and its SELECT's source: `Ok((def, Some(script)))` for a script check.
    pub(crate) fn resolve(&self) -> Result<(CheckDef, Option<String>), String> {
        let severity = match self.severity.as_deref() {
            None | Some("error") => Severity::Error,
            Some("warn") => Severity::Warn,
            Some(other) => {
                return Err(format!(
                    "severity = {other:?}: expected \"error\" or \"warn\""
                ))
            }
        };
        let max_rows = self.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
        if !(1..=MAX_MAX_ROWS).contains(&max_rows) {
            return Err(format!(
                "max_rows = {max_rows}: must be 1 to {MAX_MAX_ROWS}"
            ));
        }
        let mut given: Vec<(&'static str, Result<String, String>)> = Vec::new();
        if let Some(sql) = &self.sql {
            given.push(("sql", Ok(sql.clone())));
        }
        if self.script.is_some() {
            given.push(("script", Ok(String::new())));
        }
        if let Some(c) = &self.not_null {
            given.push(("not_null", not_null(c)));
        }
        if let Some(c) = &self.unique {
            given.push(("unique", unique(c)));
        }
        if let Some(c) = &self.accepted_values {
            given.push(("accepted_values", accepted_values(c)));
        }
        if let Some(c) = &self.relationships {
            given.push(("relationships", relationships(c)));
        }
        if let Some(c) = &self.row_count {
            given.push(("row_count", row_count(c)));
        }
        if let Some(c) = &self.freshness {
            given.push(("freshness", freshness(c)));
        }
        let (kind, sql) = match given.len() {
            1 => given.pop().expect("one"),
            0 => return Err("give the check's SELECT: one of sql, script, not_null, unique, accepted_values, relationships, row_count or freshness".into()),
            _ => {
                return Err(format!(
                    "give only one of {}",
                    given.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ))
            }
        };
        let sql = sql.map_err(|reason| format!("{kind}: {reason}"))?;
        let def = CheckDef {
            severity,
            max_rows,
            sql: (kind != "script").then_some(sql),
            kind,
        };
        Ok((def, self.script.clone()))
    }
}

/// A table or column name: letters, digits, `_` and `$`, not starting with a digit or `$`, at most
/// 127 bytes (Redshift's limit), optionally `schema.table`, where the schema may be a variable's
/// `{{name}}` (checked as declared like every placeholder). Quoted in the SQL, in lower case
/// (Redshift folds unquoted names so; the quoting keeps a reserved word a name).
pub fn identifier(name: &str, what: &str, qualified: bool) -> Result<String, String> {
    let parts: Vec<&str> = if qualified {
        name.split('.').collect()
    } else {
        vec![name]
    };
    if parts.len() > 2 {
        return Err(format!("{what} {name:?} has more than schema.table"));
    }
    let schema_of_two = parts.len() == 2;
    let mut quoted = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        // The schema may be a variable (`{{schema}}.store_sales`): the submitter substitutes a
        // declared `identifier` variable as a quoted name, so it stays one name.
        if schema_of_two && i == 0 && is_placeholder(part) {
            quoted.push(part.to_owned());
            continue;
        }
        let ok = !part.is_empty()
            && part.len() <= 127
            && part
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !ok {
            return Err(format!(
                "{what} {name:?} is not a name: use 1-127 of A-Z a-z 0-9 _ $, not starting with a digit or $"
            ));
        }
        quoted.push(format!("\"{}\"", part.to_ascii_lowercase()));
    }
    Ok(quoted.join("."))
}

/// `{{name}}`: a placeholder of a variable, nothing around it.
fn is_placeholder(part: &str) -> bool {
    part.strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .is_some_and(|name| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// A `where` condition: one SQL expression (it lexes, has no `;` and balanced parentheses).
pub fn condition(text: &str, what: &str) -> Result<String, String> {
    let tokens = sql::tokenize(text).map_err(|e| format!("{what} cannot be read: {e}"))?;
    let mut depth = 0i32;
    let mut words = 0;
    for t in &tokens {
        match t.kind {
            TokenKind::Semicolon => return Err(format!("{what} must be one condition, without ;")),
            TokenKind::Punct if t.text == "(" => depth += 1,
            TokenKind::Punct if t.text == ")" => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("{what} closes a parenthesis it did not open"));
                }
            }
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment => continue,
            _ => {}
        }
        words += 1;
    }
    if depth != 0 {
        return Err(format!("{what} leaves a parenthesis open"));
    }
    if words == 0 {
        return Err(format!("{what} is empty"));
    }
    // A line comment at the end cannot swallow what follows: the condition ends its own line.
    Ok(format!("({}\n)", text.trim()))
}

fn columns(
    column: &Option<String>,
    columns: &Option<Vec<String>>,
    what: &str,
) -> Result<Vec<String>, String> {
    let names: Vec<&String> = match (column, columns) {
        (Some(c), None) => vec![c],
        (None, Some(cs)) if !cs.is_empty() => cs.iter().collect(),
        (None, Some(_)) => return Err(format!("{what}s must not be empty")),
        (Some(_), Some(_)) => return Err(format!("give {what} or {what}s, not both")),
        (None, None) => return Err(format!("give {what} or {what}s")),
    };
    let quoted: Vec<String> = names
        .iter()
        .map(|c| identifier(c, what, false))
        .collect::<Result<_, _>>()?;
    let mut unique = quoted.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != quoted.len() {
        return Err(format!("{what}s names a column twice"));
    }
    Ok(quoted)
}

fn and_where(condition_text: &Option<String>) -> Result<String, String> {
    match condition_text {
        None => Ok(String::new()),
        Some(c) => Ok(format!(" and {}", condition(c, "where")?)),
    }
}

/// Rows where any of the columns is null.
fn not_null(c: &Columns) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let cols = columns(&c.column, &c.columns, "column")?;
    let nulls: Vec<String> = cols.iter().map(|c| format!("{c} is null")).collect();
    Ok(format!(
        "select * from {table} where ({}){}",
        nulls.join(" or "),
        and_where(&c.condition)?
    ))
}

/// Each combination of the columns found more than once, with how often.
fn unique(c: &Columns) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let cols = columns(&c.column, &c.columns, "column")?.join(", ");
    Ok(format!(
        "select {cols}, count(*) as occurrences from {table} where true{} group by {cols} having count(*) > 1",
        and_where(&c.condition)?
    ))
}

fn literal(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "values: {other:?} is not a string, an integer or a boolean"
        )),
    }
}

/// Each value of the column outside the list, with how often (nulls are not checked: `not_null`).
fn accepted_values(c: &AcceptedValues) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let column = identifier(&c.column, "column", false)?;
    if c.values.is_empty() {
        return Err("values must not be empty".into());
    }
    let values: Vec<String> = c.values.iter().map(literal).collect::<Result<_, _>>()?;
    Ok(format!(
        "select {column}, count(*) as occurrences from {table} where {column} not in ({}){} group by {column}",
        values.join(", "),
        and_where(&c.condition)?
    ))
}

/// Rows whose (non-null) columns match no row of the referenced table.
fn relationships(c: &Relationships) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let to = identifier(&c.to, "to", true)?;
    let cols = columns(&c.column, &c.columns, "column")?;
    let to_cols = match (&c.to_column, &c.to_columns) {
        (None, None) => cols.clone(),
        _ => columns(&c.to_column, &c.to_columns, "to_column")?,
    };
    if to_cols.len() != cols.len() {
        return Err(format!(
            "{} columns refer to {} to_columns",
            cols.len(),
            to_cols.len()
        ));
    }
    let present: Vec<String> = cols.iter().map(|c| format!("_c.{c} is not null")).collect();
    let matches: Vec<String> = cols
        .iter()
        .zip(&to_cols)
        .map(|(c, t)| format!("_p.{t} = _c.{c}"))
        .collect();
    let to_where = match &c.to_where {
        None => String::new(),
        Some(w) => format!(" and {}", condition(w, "to_where")?),
    };
    Ok(format!(
        "select _c.* from {table} as _c where {} and not exists (select 1 from {to} as _p where {}{to_where}){}",
        present.join(" and "),
        matches.join(" and "),
        and_where(&c.condition)?
    ))
}

/// One row (the count) when the table's (matching) rows are fewer than `min` or more than `max`.
fn row_count(c: &RowCount) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let mut bounds = Vec::new();
    if let Some(min) = c.min {
        bounds.push(format!("row_count < {min}"));
    }
    if let Some(max) = c.max {
        bounds.push(format!("row_count > {max}"));
    }
    if bounds.is_empty() {
        return Err("give min, max or both".into());
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            return Err(format!("min = {min} is above max = {max}"));
        }
    }
    Ok(format!(
        "select row_count from (select count(*) as row_count from {table} where true{}) as _n where {}",
        and_where(&c.condition)?,
        bounds.join(" or ")
    ))
}

/// One row (the newest value) when the newest value of the column is older than `max_age_days`
/// before the run date, or there is none.
fn freshness(c: &Freshness) -> Result<String, String> {
    let table = identifier(&c.table, "table", true)?;
    let column = identifier(&c.column, "column", false)?;
    Ok(format!(
        "select newest, dateadd(day, -{days}, {{{{run_date}}}}) as oldest_allowed from (select max({column}) as newest from {table} where true{}) as _f where newest is null or newest < dateadd(day, -{days}, {{{{run_date}}}})",
        and_where(&c.condition)?,
        days = c.max_age_days
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawCheck {
        toml::from_str(&format!("name = \"C\"\n{toml_text}")).unwrap()
    }

    fn sql_of(toml_text: &str) -> Result<String, String> {
        raw(toml_text)
            .resolve()
            .map(|(def, _)| def.sql.unwrap_or_default())
    }

    #[test]
    fn shorthands_generate_quoted_sql() {
        assert_eq!(
            sql_of(r#"not_null = { table = "public.Item", columns = ["i_item_id", "i_rec_start_date"] }"#).unwrap(),
            r#"select * from "public"."item" where ("i_item_id" is null or "i_rec_start_date" is null)"#
        );
        assert_eq!(
            sql_of(r#"unique = { table = "store_sales", columns = ["ss_item_sk", "ss_ticket_number"], where = "ss_sold_date_sk = 1" }"#).unwrap(),
            "select \"ss_item_sk\", \"ss_ticket_number\", count(*) as occurrences from \"store_sales\" where true and (ss_sold_date_sk = 1\n) group by \"ss_item_sk\", \"ss_ticket_number\" having count(*) > 1"
        );
        assert_eq!(
            sql_of(r#"accepted_values = { table = "t", column = "state", values = ["CA", "O'Hare", 3] }"#).unwrap(),
            r#"select "state", count(*) as occurrences from "t" where "state" not in ('CA', 'O''Hare', 3) group by "state""#
        );
        assert_eq!(
            sql_of(r#"relationships = { table = "store_sales", column = "ss_item_sk", to = "item", to_column = "i_item_sk", to_where = "i_rec_end_date is null" }"#).unwrap(),
            "select _c.* from \"store_sales\" as _c where _c.\"ss_item_sk\" is not null and not exists (select 1 from \"item\" as _p where _p.\"i_item_sk\" = _c.\"ss_item_sk\" and (i_rec_end_date is null\n))"
        );
        assert_eq!(
            sql_of(r#"row_count = { table = "store_sales", min = 1, max = 5 }"#).unwrap(),
            r#"select row_count from (select count(*) as row_count from "store_sales" where true) as _n where row_count < 1 or row_count > 5"#
        );
        let fresh =
            sql_of(r#"freshness = { table = "t", column = "loaded_at", max_age_days = 2 }"#)
                .unwrap();
        assert!(
            fresh.contains("max(\"loaded_at\")")
                && fresh.contains("dateadd(day, -2, {{run_date}})"),
            "{fresh}"
        );
    }

    #[test]
    fn every_generated_select_is_one_select_the_submitter_accepts() {
        let date = etl_callback::run_date::RunDate::parse("2021-06-26").unwrap();
        for text in [
            r#"not_null = { table = "t", column = "a", where = "b > 0 -- positive" }"#,
            r#"unique = { table = "s.t", column = "a" }"#,
            r#"accepted_values = { table = "t", column = "a", values = [true] }"#,
            r#"relationships = { table = "t", columns = ["a", "b"], to = "u" }"#,
            r#"row_count = { table = "t", max = 0 }"#,
            r#"freshness = { table = "t", column = "a", max_age_days = 0 }"#,
        ] {
            let sql = sql_of(text).unwrap();
            let statements = etl_callback::script::prepare(sql.as_bytes(), date).unwrap();
            etl_callback::check::check_select(&statements).unwrap();
        }
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        for (text, expected) in [
            (
                r#"not_null = { table = "x; drop table y", column = "a" }"#,
                "table \"x; drop table y\" is not a name",
            ),
            (
                r#"unique = { table = "t", column = "a\" or 1=1 --" }"#,
                "is not a name",
            ),
            (
                r#"unique = { table = "a.b.c", column = "a" }"#,
                "more than schema.table",
            ),
            (
                r#"unique = { table = "t", column = "1a" }"#,
                "is not a name",
            ),
            (
                r#"unique = { table = "t", columns = [] }"#,
                "must not be empty",
            ),
            (r#"unique = { table = "t", columns = ["a", "A"] }"#, "twice"),
            (
                r#"relationships = { table = "t", column = "a", to = "u;", to_column = "b" }"#,
                "to \"u;\" is not a name",
            ),
            (
                r#"relationships = { table = "t", columns = ["a", "b"], to = "u", to_column = "b" }"#,
                "2 columns refer to 1",
            ),
            (r#"row_count = { table = "t" }"#, "give min, max"),
            (
                r#"row_count = { table = "t", min = 5, max = 1 }"#,
                "above max",
            ),
            (
                r#"not_null = { table = "t", column = "a", where = "true; drop table t" }"#,
                "without ;",
            ),
            (
                r#"not_null = { table = "t", column = "a", where = "a) or (1=1" }"#,
                "did not open",
            ),
            (
                r#"not_null = { table = "t", column = "a", where = "(a" }"#,
                "open",
            ),
            (
                r#"not_null = { table = "t", column = "a", where = " " }"#,
                "empty",
            ),
            (
                r#"accepted_values = { table = "t", column = "a", values = [] }"#,
                "must not be empty",
            ),
            (
                r#"accepted_values = { table = "t", column = "a", values = [1.5] }"#,
                "not a string",
            ),
        ] {
            let err = sql_of(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn exactly_one_source_and_sane_settings() {
        assert!(sql_of("").unwrap_err().contains("give the check's SELECT"));
        let err = sql_of("sql = \"select 1\"\nscript = \"c.sql\"").unwrap_err();
        assert!(err.contains("only one of sql, script"), "{err}");
        let (def, script) = raw("script = \"c.sql\"\nseverity = \"warn\"\nmax_rows = 3")
            .resolve()
            .unwrap();
        assert_eq!(
            (def.severity, def.max_rows, def.sql, script.as_deref()),
            (Severity::Warn, 3, None, Some("c.sql"))
        );
        assert!(raw("sql = \"select 1\"\nseverity = \"fatal\"")
            .resolve()
            .unwrap_err()
            .contains("severity"));
        assert!(raw("sql = \"select 1\"\nmax_rows = 0")
            .resolve()
            .unwrap_err()
            .contains("max_rows"));
        let (def, _) = raw("sql = \"select 1\"").resolve().unwrap();
        assert_eq!((def.severity, def.max_rows), (Severity::Error, 10));
    }
}
