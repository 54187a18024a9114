//! A step's SQL script turned into one Data API batch: placeholders filled, statements split,
//! and the Data API limits enforced before anything is sent.

use thiserror::Error;

use crate::run_date::RunDate;
use crate::sql::{self, SqlError, TokenKind};

/// The Data API's limit on the SQL text of one request.
pub const MAX_SCRIPT_BYTES: usize = 100 * 1024;
/// The Data API's limit on the statements of one `BatchExecuteStatement`.
pub const MAX_STATEMENTS: usize = 40;
/// The only placeholder a script may use.
pub const RUN_DATE_PLACEHOLDER: &str = "run_date";

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
    #[error("script uses the unknown placeholder {{{{{name}}}}}; the only placeholder is {{{{run_date}}}}")]
    UnknownPlaceholder { name: String },
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

/// Renders a raw script for one run date and splits it into the statements of one batch.
pub fn prepare(raw: &[u8], run_date: RunDate) -> Result<Vec<String>, ScriptError> {
    check_size(raw.len())?;
    let text = std::str::from_utf8(raw).map_err(|_| ScriptError::NotUtf8)?;
    let rendered = fill_placeholders(text, run_date)?;
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

/// Replaces each `{{run_date}}` outside literals and comments with the date's SQL literal.
fn fill_placeholders(text: &str, run_date: RunDate) -> Result<String, ScriptError> {
    let tokens = sql::tokenize(text)?;
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < tokens.len() {
        let opens = |j: usize| {
            tokens
                .get(j)
                .is_some_and(|t| t.kind == TokenKind::Punct && t.text == "{")
        };
        if opens(i) && opens(i + 1) {
            let name = tokens
                .get(i + 2)
                .filter(|t| t.kind == TokenKind::Word)
                .map(|t| t.text);
            let closes = |j: usize| {
                tokens
                    .get(j)
                    .is_some_and(|t| t.kind == TokenKind::Punct && t.text == "}")
            };
            match name {
                Some(RUN_DATE_PLACEHOLDER) if closes(i + 3) && closes(i + 4) => {
                    out.push_str(&run_date.sql_literal());
                    i += 5;
                    continue;
                }
                _ => {
                    let snippet: String = tokens[i + 2..].iter().take(3).map(|t| t.text).collect();
                    return Err(ScriptError::UnknownPlaceholder {
                        name: snippet.trim_end_matches('}').trim().to_owned(),
                    });
                }
            }
        }
        out.push_str(tokens[i].text);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> RunDate {
        RunDate::parse("2021-06-26").unwrap()
    }

    #[test]
    fn fills_the_run_date_outside_literals_only() {
        let raw =
            b"delete from t where d = {{run_date}}::date; select '{{run_date}}' -- {{run_date}}\n";
        let statements = prepare(raw, date()).unwrap();
        assert_eq!(
            statements,
            vec![
                "delete from t where d = '2021-06-26'::date",
                "select '{{run_date}}' -- {{run_date}}"
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
