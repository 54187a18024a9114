//! A step's script made into one Data API batch (`script::prepare`), for any bytes read from S3:
//! what it accepts is within the Data API's limits (1-40 statements, at most 100 KB of SQL) with
//! no placeholder left outside literals and comments, and is exactly the split of the script
//! with each `{{run_date}}` filled; a rejection is one of the script's named errors, and agrees
//! with what the script is.
#![no_main]

use etl_callback::run_date::RunDate;
use etl_callback::script::{prepare, ScriptError, MAX_SCRIPT_BYTES, MAX_STATEMENTS};
use etl_callback::sql::{split_statements, tokenize, TokenKind};
use libfuzzer_sys::fuzz_target;

const DATES: [&str; 4] = ["2021-06-26", "1900-01-01", "9999-12-31", "2024-02-29"];

/// Whether `sql` has `{{` outside literals and comments: a placeholder that was not filled.
fn has_placeholder(sql: &str) -> bool {
    let tokens = tokenize(sql).expect("a prepared statement lexes");
    tokens.windows(2).any(|w| {
        w.iter()
            .all(|t| t.kind == TokenKind::Punct && t.text == "{")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    let date = RunDate::parse(DATES[usize::from(pick) % DATES.len()]).unwrap();
    match prepare(raw, date) {
        Ok(statements) => {
            assert!((1..=MAX_STATEMENTS).contains(&statements.len()));
            let bytes: usize = statements.iter().map(String::len).sum();
            assert!(bytes <= MAX_SCRIPT_BYTES);
            assert!(raw.len() <= MAX_SCRIPT_BYTES);
            for statement in &statements {
                assert!(!statement.is_empty());
                assert!(
                    !has_placeholder(statement),
                    "{statement:?} keeps a placeholder"
                );
            }
            // Filling is token-wise and each `{{run_date}}` becomes a literal of the same length,
            // so a script whose only braces are filled placeholders splits like its text filled.
            let text = std::str::from_utf8(raw).unwrap();
            if !text.contains('{') {
                assert_eq!(split_statements(text).as_ref(), Ok(&statements));
            }
            let joined = statements.join("\n;\n");
            assert_eq!(split_statements(&joined).as_ref(), Ok(&statements));
        }
        Err(error) => {
            let name = error.name();
            assert!(
                matches!(
                    name,
                    "ScriptTooLarge"
                        | "TooManyStatements"
                        | "EmptyScript"
                        | "InvalidScript"
                        | "UnknownPlaceholder"
                ),
                "{name}"
            );
            match &error {
                ScriptError::TooLarge { bytes, limit } => assert!(bytes > limit),
                ScriptError::TooManyStatements { count, limit } => assert!(count > limit),
                ScriptError::NotUtf8 => assert!(std::str::from_utf8(raw).is_err()),
                ScriptError::Empty => {
                    let text = std::str::from_utf8(raw).unwrap();
                    assert!(split_statements(text).is_ok_and(|s| s.is_empty()));
                }
                ScriptError::UnknownPlaceholder { .. } => {
                    assert!(std::str::from_utf8(raw).unwrap().contains("{{") || raw.contains(&b'{'))
                }
                // Only the built-ins are filled here, and their text (digits and dashes) never
                // ends or escapes a literal.
                ScriptError::Variable(e) => panic!("a built-in was refused: {e}"),
                ScriptError::Lex(_) => {
                    assert!(tokenize(std::str::from_utf8(raw).unwrap()).is_err())
                }
            }
            assert!(!error.to_string().is_empty());
        }
    }
});
