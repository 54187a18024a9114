//! Data-quality checks: a step whose SQL is one `SELECT` whose rows are violations.
//!
//! The state machine hands the submitter a check's settings in the task payload (`check`: severity,
//! rows shown, and the SELECT itself unless the step names a script). The submitter runs the
//! SELECT wrapped by [`wrap`], one statement, through the same callback path as any step; whichever
//! function closes the task (completer, reconciler, the submitter's wait) reads the wrapped
//! statement's result with `GetStatementResult` and turns it into the task's outcome here, once:
//! [`CheckRecord::from_result`] and [`outcome`].
//!
//! The wrap counts every violating row and returns only the first `max_rows`:
//!
//! ```sql
//! select count(*) over () as _violations, * from (<check>) as _check limit <max_rows>
//! ```
//!
//! The check's rows are computed once (no second run for the count); the window count is taken
//! over all of them before the `LIMIT`, so the count is exact while at most `max_rows` rows
//! leave the warehouse. A check with no violations returns no row: 0.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::sql::{self, TokenKind};
use crate::task::truncate;

/// The error name a failing check (severity `error`, violations above 0) fails its task with,
/// unless the step's `errors` mapping renames it.
pub const CHECK_FAILED: &str = "Check.Failed";
/// The error name of a check whose result cannot be read (gone from the Data API, or not the
/// wrapped statement's shape): the check cannot say whether the data is good, so the task fails.
pub const CHECK_RESULT_UNAVAILABLE: &str = "Check.ResultUnavailable";
/// The column [`wrap`] adds: the count of every violating row.
pub const VIOLATIONS_COLUMN: &str = "_violations";
/// Rows shown when the definition does not say.
pub const DEFAULT_MAX_ROWS: u32 = 10;
/// The most rows a check may show (the cause is cut to Step Functions' limit anyway).
pub const MAX_MAX_ROWS: u32 = 1000;
/// Step Functions' limit on a `SendTaskFailure` cause.
pub const MAX_CAUSE_CHARS: usize = 32_768;

/// What a check's violations do to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The task fails with `Check.Failed` (or its mapping) and the record as the cause.
    Error,
    /// The task succeeds with the record in its output, and a `CheckWarnings` metric.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
        }
    }
}

/// A check's settings as the task payload carries them (`check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSpec {
    pub severity: Severity,
    pub max_rows: u32,
    /// The check's SELECT (with `{{run_date}}` placeholders), when the step names no script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// What the closer needs of a check, stored with the token in the rendezvous item (`check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCheck {
    pub severity: Severity,
    pub max_rows: u32,
    /// The check's SELECT as it ran (run date filled in), for the record.
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckError {
    #[error("task input field check is invalid: {0}")]
    InvalidSpec(String),
    #[error("a check must be exactly one SELECT statement (or WITH … SELECT); {0}")]
    NotOneSelect(String),
}

impl CheckError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "InvalidInput",
            Self::NotOneSelect(_) => "InvalidCheck",
        }
    }
}

impl CheckSpec {
    /// The payload's `check` object, checked: `maxRows` 1 to [`MAX_MAX_ROWS`], `sql` not empty.
    pub fn parse(value: &serde_json::Value) -> Result<Self, CheckError> {
        let spec: CheckSpec = serde_json::from_value(value.clone())
            .map_err(|e| CheckError::InvalidSpec(e.to_string()))?;
        if !(1..=MAX_MAX_ROWS).contains(&spec.max_rows) {
            return Err(CheckError::InvalidSpec(format!(
                "maxRows must be 1 to {MAX_MAX_ROWS}"
            )));
        }
        if spec.sql.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(CheckError::InvalidSpec("sql must not be empty".into()));
        }
        Ok(spec)
    }
}

/// Whether `statements` (a prepared script) is one SELECT: one statement starting with `SELECT`,
/// `WITH` or `(`.
pub fn check_select(statements: &[String]) -> Result<&str, CheckError> {
    let [statement] = statements else {
        return Err(CheckError::NotOneSelect(format!(
            "it has {} statements",
            statements.len()
        )));
    };
    let tokens = sql::tokenize(statement)
        .map_err(|e| CheckError::NotOneSelect(format!("it cannot be read: {e}")))?;
    let first = tokens.iter().find(|t| {
        !matches!(
            t.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        )
    });
    match first {
        Some(t) if t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case("select") => {}
        Some(t) if t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case("with") => {}
        Some(t) if t.kind == TokenKind::Punct && t.text == "(" => {}
        Some(t) => {
            return Err(CheckError::NotOneSelect(format!(
                "it starts with {:?}",
                truncate(t.text, 40)
            )))
        }
        None => return Err(CheckError::NotOneSelect("it is empty".into())),
    }
    Ok(statement)
}

/// The statement the submitter runs for a check: every violating row counted, the first
/// `max_rows` returned (see the module's documentation).
pub fn wrap(select: &str, max_rows: u32) -> String {
    let select = select.trim().trim_end_matches(';').trim_end();
    format!(
        "select count(*) over () as {VIOLATIONS_COLUMN}, * from (\n{select}\n) as _check limit {max_rows}"
    )
}

/// One page of `GetStatementResult`: column names and records, each field as JSON (a string,
/// a number, a boolean or null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultPage {
    pub columns: Vec<String>,
    pub records: Vec<Vec<serde_json::Value>>,
}

/// What a check found: sent as the failure's cause (severity error) or in the task's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRecord {
    pub check: String,
    pub severity: Severity,
    /// Every violating row, counted by the warehouse.
    pub violations: u64,
    /// The check's own columns (without the count).
    pub columns: Vec<String>,
    /// The first rows (at most the check's `max_rows`), in `columns` order.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The SELECT that found them, as it ran.
    pub sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_date: Option<String>,
    /// Present when rows or the SQL were cut to fit Step Functions' limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResultError {
    #[error("the check's result has no {VIOLATIONS_COLUMN} column first")]
    NoCountColumn,
    #[error("the check's result has a {VIOLATIONS_COLUMN} value that is not a count: {0}")]
    BadCount(String),
}

impl CheckRecord {
    /// The record of check `check` from every page of its wrapped statement's result: the count
    /// from the first record's `_violations` (0 without records), the first `max_rows` records
    /// without it.
    pub fn from_result(
        check: &str,
        stored: &StoredCheck,
        pages: &[ResultPage],
    ) -> Result<Self, ResultError> {
        let columns = pages
            .iter()
            .find(|p| !p.columns.is_empty())
            .map(|p| p.columns.clone())
            .unwrap_or_default();
        let mut records = pages.iter().flat_map(|p| p.records.iter());
        let first = records.next();
        let violations = match first {
            None => 0,
            Some(record) => {
                if columns.first().map(String::as_str) != Some(VIOLATIONS_COLUMN) {
                    return Err(ResultError::NoCountColumn);
                }
                let value = record.first().ok_or(ResultError::NoCountColumn)?;
                count(value).ok_or_else(|| ResultError::BadCount(value.to_string()))?
            }
        };
        let rows = first
            .into_iter()
            .chain(records)
            .take(stored.max_rows as usize)
            .map(|r| r.iter().skip(1).cloned().collect())
            .collect();
        Ok(Self {
            check: check.to_owned(),
            severity: stored.severity,
            violations,
            columns: columns.into_iter().skip(1).collect(),
            rows,
            sql: stored.sql.clone(),
            statement_id: None,
            run_date: None,
            note: None,
        })
    }

    /// The record as JSON within `limit` characters: rows dropped from the end, then the SQL
    /// halved, each time with a note saying what was cut.
    pub fn to_json_within(&self, limit: usize) -> String {
        let mut record = self.clone();
        let total_rows = record.rows.len();
        loop {
            let text = serde_json::to_string(&record).expect("a check record serializes");
            if text.chars().count() <= limit {
                return text;
            }
            if !record.rows.is_empty() {
                record.rows.pop();
            } else {
                let len = record.sql.chars().count();
                if len == 0 {
                    return truncate(&text, limit);
                }
                record.sql = truncate(&record.sql, len / 2);
            }
            record.note = Some(format!(
                "cut to Step Functions' {limit}-character limit: {} of {total_rows} rows read shown{}",
                record.rows.len(),
                if record.sql == self.sql { "" } else { ", SQL shortened" }
            ));
        }
    }
}

fn count(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What a finished check does to its task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No violations, or severity warn: the task succeeds with the record in its output.
    Pass { record: CheckRecord },
    /// Severity error with violations: the task fails with [`CHECK_FAILED`] (mapped) and this cause.
    Fail { record: CheckRecord, cause: String },
}

/// The outcome of a finished check from its record.
pub fn outcome(record: CheckRecord) -> Outcome {
    if record.violations > 0 && record.severity == Severity::Error {
        let cause = record.to_json_within(MAX_CAUSE_CHARS);
        Outcome::Fail { record, cause }
    } else {
        Outcome::Pass { record }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(severity: Severity, max_rows: u32) -> StoredCheck {
        StoredCheck {
            severity,
            max_rows,
            sql: "select ss_item_sk from store_sales where ss_item_sk is null".into(),
        }
    }

    fn page(rows: &[(u64, i64)]) -> ResultPage {
        ResultPage {
            columns: vec![VIOLATIONS_COLUMN.into(), "ss_item_sk".into()],
            records: rows.iter().map(|(n, v)| vec![json!(n), json!(v)]).collect(),
        }
    }

    #[test]
    fn the_wrap_counts_everything_and_keeps_max_rows() {
        assert_eq!(
            wrap("select a from t where a is null;\n", 10),
            "select count(*) over () as _violations, * from (\nselect a from t where a is null\n) as _check limit 10"
        );
        // A trailing line comment cannot swallow the closing parenthesis.
        assert!(wrap("select 1 -- note", 5).contains("-- note\n) as _check limit 5"));
    }

    #[test]
    fn only_one_select_is_a_check() {
        let one = |s: &str| vec![s.to_owned()];
        assert!(check_select(&one("select 1")).is_ok());
        assert!(check_select(&one("  -- c\n WITH x as (select 1) select * from x")).is_ok());
        assert!(check_select(&one("(select 1)")).is_ok());
        for bad in ["delete from t", "insert into t select 1", "drop table t"] {
            let err = check_select(&one(bad)).unwrap_err();
            assert_eq!(err.name(), "InvalidCheck");
        }
        let err = check_select(&["select 1".into(), "select 2".into()]).unwrap_err();
        assert!(err.to_string().contains("2 statements"), "{err}");
    }

    #[test]
    fn the_count_comes_from_the_first_record_across_pages() {
        let pages = [page(&[(25, 1), (25, 2)]), page(&[(25, 3)])];
        let record = CheckRecord::from_result("C", &stored(Severity::Error, 2), &pages).unwrap();
        assert_eq!(record.violations, 25);
        assert_eq!(record.columns, ["ss_item_sk"]);
        assert_eq!(record.rows, [vec![json!(1)], vec![json!(2)]]);
        let record = CheckRecord::from_result("C", &stored(Severity::Error, 10), &pages).unwrap();
        assert_eq!(record.rows.len(), 3, "rows of every page");
        // A count the Data API sends as a string (a long as stringValue) still counts.
        let text = ResultPage {
            columns: vec![VIOLATIONS_COLUMN.into()],
            records: vec![vec![json!("7")]],
        };
        let record = CheckRecord::from_result("C", &stored(Severity::Warn, 1), &[text]).unwrap();
        assert_eq!(record.violations, 7);
    }

    #[test]
    fn no_record_is_zero_violations_and_passes() {
        let record =
            CheckRecord::from_result("C", &stored(Severity::Error, 10), &[page(&[])]).unwrap();
        assert_eq!(record.violations, 0);
        assert!(matches!(outcome(record), Outcome::Pass { .. }));
        assert_eq!(
            CheckRecord::from_result("C", &stored(Severity::Error, 10), &[]).map(|r| r.violations),
            Ok(0)
        );
    }

    #[test]
    fn a_result_without_the_count_is_an_error_not_a_pass() {
        let bad = ResultPage {
            columns: vec!["a".into()],
            records: vec![vec![json!(1)]],
        };
        assert_eq!(
            CheckRecord::from_result("C", &stored(Severity::Error, 1), &[bad]),
            Err(ResultError::NoCountColumn)
        );
        let bad = ResultPage {
            columns: vec![VIOLATIONS_COLUMN.into()],
            records: vec![vec![json!(null)]],
        };
        assert!(matches!(
            CheckRecord::from_result("C", &stored(Severity::Error, 1), &[bad]),
            Err(ResultError::BadCount(_))
        ));
    }

    #[test]
    fn severity_decides_between_failure_and_warning() {
        let pages = [page(&[(3, 1)])];
        let error = CheckRecord::from_result("C", &stored(Severity::Error, 10), &pages).unwrap();
        let Outcome::Fail { cause, .. } = outcome(error) else {
            panic!("an error check with violations fails")
        };
        let parsed: serde_json::Value = serde_json::from_str(&cause).unwrap();
        assert_eq!(parsed["check"], "C");
        assert_eq!(parsed["violations"], 3);
        assert_eq!(parsed["columns"], json!(["ss_item_sk"]));
        assert_eq!(parsed["rows"], json!([[1]]));
        assert!(parsed["sql"].as_str().unwrap().contains("is null"));
        assert!(parsed.get("note").is_none());
        let warn = CheckRecord::from_result("C", &stored(Severity::Warn, 10), &pages).unwrap();
        assert!(matches!(outcome(warn), Outcome::Pass { record } if record.violations == 3));
    }

    #[test]
    fn a_cause_over_the_limit_drops_rows_then_shortens_the_sql_and_says_so() {
        let big = "x".repeat(1000);
        let mut record = CheckRecord::from_result(
            "C",
            &stored(Severity::Error, 1000),
            &[ResultPage {
                columns: vec![VIOLATIONS_COLUMN.into(), "v".into()],
                records: (0..100).map(|_| vec![json!(5000), json!(big)]).collect(),
            }],
        )
        .unwrap();
        assert_eq!(record.rows.len(), 100);
        let text = record.to_json_within(MAX_CAUSE_CHARS);
        assert!(text.chars().count() <= MAX_CAUSE_CHARS);
        let parsed: CheckRecord = serde_json::from_str(&text).unwrap();
        assert!(parsed.rows.len() < 100 && parsed.rows.len() > 20);
        assert_eq!(parsed.violations, 5000, "the count is never cut");
        let note = parsed.note.unwrap();
        assert!(
            note.contains(&format!("{} of 100 rows", parsed.rows.len())),
            "{note}"
        );
        // The SQL itself over the limit: no row fits, the SQL is halved until the record fits.
        record.sql = "é".repeat(100_000);
        let text = record.to_json_within(MAX_CAUSE_CHARS);
        assert!(text.chars().count() <= MAX_CAUSE_CHARS);
        let parsed: CheckRecord = serde_json::from_str(&text).unwrap();
        assert!(parsed.rows.is_empty() && parsed.sql.ends_with('…'));
        assert!(parsed.note.unwrap().contains("SQL shortened"));
        // Within the limit: exactly the serialized record.
        let small = CheckRecord {
            sql: "select 1".into(),
            rows: vec![],
            ..record
        };
        assert_eq!(
            small.to_json_within(MAX_CAUSE_CHARS),
            serde_json::to_string(&small).unwrap()
        );
    }

    #[test]
    fn a_spec_is_checked() {
        let ok = CheckSpec::parse(&json!({"severity": "warn", "maxRows": 5})).unwrap();
        assert_eq!(
            (ok.severity, ok.max_rows, ok.sql),
            (Severity::Warn, 5, None)
        );
        for bad in [
            json!({"severity": "fatal", "maxRows": 5}),
            json!({"severity": "error", "maxRows": 0}),
            json!({"severity": "error", "maxRows": 1001}),
            json!({"severity": "error", "maxRows": 1, "sql": " "}),
            json!({"severity": "error", "maxRows": 1, "other": 1}),
            json!("select 1"),
        ] {
            let err = CheckSpec::parse(&bad).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad}");
        }
    }
}
