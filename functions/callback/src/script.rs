//! A step's SQL script turned into one Data API batch: placeholders filled, statements split,
//! and the Data API limits enforced before anything is sent.

use thiserror::Error;

use crate::run_date::RunDate;
use crate::sql::{self, SqlError};
use crate::vars::{self, FillError, PlaceholderError, Values, VarError};

/// The Data API's limit on the SQL text of one request.
pub const MAX_SCRIPT_BYTES: usize = 100 * 1024;
/// The Data API's limit on the statements of one `BatchExecuteStatement`.
pub const MAX_STATEMENTS: usize = 40;
/// The run date's placeholder (the other built-ins and the variables: [`crate::vars`]).
pub const RUN_DATE_PLACEHOLDER: &str = vars::RUN_DATE;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    #[error("script is {bytes} bytes, over the Data API limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("script has {count} statements, over the Data API limit of {limit} per batch")]
    TooManyStatements { count: usize, limit: usize },
    #[error("script has no SQL statements")]
    Empty,
    #[error("script is not valid UTF-8")]
    NotUtf8,
    #[error("script uses the unknown placeholder {{{{{name}}}}}: the placeholders are the built-ins ({}) and the pipeline's [vars]", vars::BUILT_INS.join(", "))]
    UnknownPlaceholder { name: String },
    /// A variable's value cannot stand where the script uses it (inside a literal it could end).
    #[error(transparent)]
    Variable(Box<VarError>),
    #[error("script cannot be split into statements: {0}")]
    Lex(#[from] SqlError),
}

impl ScriptError {
    /// The stable error name Step Functions sees.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "ScriptTooLarge",
            Self::TooManyStatements { .. } => "TooManyStatements",
            Self::Empty => "EmptyScript",
            Self::NotUtf8 | Self::Lex(_) => "InvalidScript",
            Self::UnknownPlaceholder { .. } => "UnknownPlaceholder",
            Self::Variable(_) => "InvalidInput",
        }
    }
}

/// Checks a script's raw size before it is read in full.
pub fn check_size(bytes: usize) -> Result<(), ScriptError> {
    if bytes > MAX_SCRIPT_BYTES {
        return Err(ScriptError::TooLarge {
            bytes,
            limit: MAX_SCRIPT_BYTES,
        });
    }
    Ok(())
}

/// Renders a raw script for one run date (the built-ins only) and splits it into the statements
/// of one batch.
pub fn prepare(raw: &[u8], run_date: RunDate) -> Result<Vec<String>, ScriptError> {
    prepare_with(raw, &Values::new(run_date))
}

/// Renders a raw script with a run's values (built-ins and variables, [`crate::vars`]) and splits
/// it into the statements of one batch.
pub fn prepare_with(raw: &[u8], values: &Values) -> Result<Vec<String>, ScriptError> {
    check_size(raw.len())?;
    let text = std::str::from_utf8(raw).map_err(|_| ScriptError::NotUtf8)?;
    let rendered = vars::fill(text, values).map_err(|e| match e {
        FillError::Placeholder(PlaceholderError::Lex(e)) => ScriptError::Lex(e),
        FillError::Placeholder(PlaceholderError::Malformed(m)) => ScriptError::UnknownPlaceholder {
            name: m.text.trim_end_matches('}').trim().to_owned(),
        },
        FillError::Unknown { name, .. } => ScriptError::UnknownPlaceholder { name },
        FillError::Var(e) => ScriptError::Variable(Box::new(e)),
    })?;
    check_size(rendered.len())?;
    let statements = sql::split_statements(&rendered)?;
    match statements.len() {
        0 => Err(ScriptError::Empty),
        count if count > MAX_STATEMENTS => Err(ScriptError::TooManyStatements {
            count,
            limit: MAX_STATEMENTS,
        }),
        _ => Ok(statements),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> RunDate {
        RunDate::parse("2021-06-26").unwrap()
    }

    #[test]
    fn fills_the_run_date_as_a_literal_and_as_text_inside_literals() {
        let raw =
            b"delete from t where d = {{run_date}}::date; select 's3://b/{{run_date}}/' -- {{run_date}}\n";
        let statements = prepare(raw, date()).unwrap();
        assert_eq!(
            statements,
            vec![
                "delete from t where d = '2021-06-26'::date",
                "select 's3://b/2021-06-26/' -- {{run_date}}"
            ]
        );
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let err = prepare(b"select {{customer}} ;", date()).unwrap_err();
        assert_eq!(
            err,
            ScriptError::UnknownPlaceholder {
                name: "customer".into()
            }
        );
        assert_eq!(err.name(), "UnknownPlaceholder");
        assert_eq!(
            prepare(b"select {{ run_date }}", date())
                .unwrap_err()
                .name(),
            "UnknownPlaceholder"
        );
    }

    #[test]
    fn limits_match_the_data_api() {
        let forty = "select 1;".repeat(40);
        assert_eq!(prepare(forty.as_bytes(), date()).unwrap().len(), 40);
        let forty_one = "select 1;".repeat(41);
        assert_eq!(
            prepare(forty_one.as_bytes(), date()).unwrap_err(),
            ScriptError::TooManyStatements {
                count: 41,
                limit: 40
            }
        );
        let big = format!("select '{}'", "x".repeat(MAX_SCRIPT_BYTES));
        assert_eq!(
            prepare(big.as_bytes(), date()).unwrap_err().name(),
            "ScriptTooLarge"
        );
        assert_eq!(
            prepare(b"-- only a comment\n;", date()).unwrap_err(),
            ScriptError::Empty
        );
        assert_eq!(
            prepare(b"select '\xff'", date()).unwrap_err(),
            ScriptError::NotUtf8
        );
        assert_eq!(
            prepare(b"select 'open", date()).unwrap_err().name(),
            "InvalidScript"
        );
    }
}
