//! The SQL lexer's split (`sql::split_statements`): statements are non-empty, trimmed, in the
//! script's order and verbatim from it; each splits to itself; joining them with `;` on lines of
//! its own and splitting again gives them back; and no significant token is lost or added. A
//! rejection is one of the lexer's named errors at a byte offset inside the script.
#![no_main]

use etl_callback::sql::{split_statements, tokenize, SqlError, TokenKind};
use libfuzzer_sys::fuzz_target;

/// The number of tokens that are neither trivia nor a separator.
fn significant(sql: &str) -> usize {
    tokenize(sql)
        .expect("a statement of a script that split lexes on its own")
        .iter()
        .filter(|t| !t.is_trivia() && t.kind != TokenKind::Semicolon)
        .count()
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    match split_statements(sql) {
        Ok(statements) => {
            let mut from = 0;
            for statement in &statements {
                assert!(!statement.is_empty());
                assert_eq!(statement.trim(), statement);
                let at = sql[from..].find(statement.as_str()).unwrap_or_else(|| {
                    panic!("{statement:?} is not verbatim from the script, in order")
                });
                from += at + statement.len();
                assert_eq!(
                    split_statements(statement).as_ref(),
                    Ok(&vec![statement.clone()])
                );
            }
            let joined = statements.join("\n;\n");
            assert_eq!(split_statements(&joined).as_ref(), Ok(&statements));
            let in_statements: usize = statements.iter().map(|s| significant(s)).sum();
            assert_eq!(in_statements, significant(sql), "a token was lost or added");
        }
        Err(error) => {
            let offset = match error {
                SqlError::UnterminatedString { offset }
                | SqlError::UnterminatedQuotedIdentifier { offset }
                | SqlError::UnterminatedComment { offset } => offset,
            };
            assert!(
                offset < sql.len() && sql.is_char_boundary(offset),
                "{error}"
            );
            assert_eq!(tokenize(sql).err(), Some(error));
        }
    }
});
