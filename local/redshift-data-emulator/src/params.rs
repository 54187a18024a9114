//! Named SQL parameters (`Parameters: [{name, value}]`, referenced as `:name` in the SQL).
//!
//! The service converts each value implicitly to the type the context needs; here each reference
//! becomes a quoted string literal, which PostgreSQL coerces the same way. Casts (`x::date`),
//! strings, quoted identifiers and comments are recognised by the shared lexer and left alone.

use std::collections::HashMap;

use redshift_sql::lexer::{tokenize, SqlError, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("cannot parse SQL: {0}")]
    Lex(#[from] SqlError),
    #[error("invalid parameter name {0:?}: use letters, digits and underscores")]
    InvalidName(String),
    #[error("parameter {0:?} is given more than once")]
    Duplicate(String),
    #[error("the SQL references parameter :{0} but no value was given for it")]
    Missing(String),
}

/// Checks names: non-empty `[0-9A-Za-z_]+`, no duplicates.
pub fn validate(params: &[(String, String)]) -> Result<HashMap<&str, &str>, ParamError> {
    let mut map = HashMap::new();
    for (name, value) in params {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ParamError::InvalidName(name.clone()));
        }
        if map.insert(name.as_str(), value.as_str()).is_some() {
            return Err(ParamError::Duplicate(name.clone()));
        }
    }
    Ok(map)
}

/// A Redshift string literal holding exactly `value`: quotes doubled and, since a backslash
/// escapes in Redshift literals (r_Literals.html), backslashes doubled too.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Replaces every `:name` reference with its value as a string literal.
pub fn bind(sql: &str, params: &[(String, String)]) -> Result<String, ParamError> {
    let values = validate(params)?;
    let tokens = tokenize(sql)?;
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let is_colon = token.kind == TokenKind::Punct && token.text == ":";
        let prev_colon =
            i > 0 && tokens[i - 1].kind == TokenKind::Punct && tokens[i - 1].text == ":";
        let next_word = tokens
            .get(i + 1)
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text);
        match (is_colon && !prev_colon, next_word) {
            (true, Some(name)) => {
                let value = values
                    .get(name)
                    .ok_or_else(|| ParamError::Missing(name.to_string()))?;
                out.push_str(&literal(value));
                i += 2;
            }
            _ => {
                out.push_str(token.text);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn backslashes_in_values_stay_literal() {
        let sql = bind("select :path", &p(&[("path", "C:\\dir\\")])).unwrap();
        assert_eq!(sql, "select 'C:\\\\dir\\\\'");
        // It lexes as one literal, and the translation keeps its value: E'C:\\dir\\'.
        assert_eq!(
            crate::translate::to_postgres(&sql).unwrap(),
            "select E'C:\\\\dir\\\\'"
        );
    }

    #[test]
    fn replaces_references_with_quoted_literals() {
        assert_eq!(
            bind(
                "select * from t where d = :day::date and n = :name",
                &p(&[("day", "2024-01-02"), ("name", "O'Brien")])
            )
            .expect("binds"),
            "select * from t where d = '2024-01-02'::date and n = 'O''Brien'"
        );
    }

    #[test]
    fn leaves_casts_strings_and_comments_alone() {
        let sql = "select x::int, ':day', \":day\" -- :day\n from t";
        assert_eq!(bind(sql, &p(&[("day", "1")])).expect("binds"), sql);
    }

    #[test]
    fn missing_invalid_and_duplicate_parameters_are_errors() {
        assert_eq!(bind("select :x", &[]), Err(ParamError::Missing("x".into())));
        assert!(matches!(
            bind("select 1", &p(&[("bad-name", "1")])),
            Err(ParamError::InvalidName(_))
        ));
        assert!(matches!(
            bind("select 1", &p(&[("a", "1"), ("a", "2")])),
            Err(ParamError::Duplicate(_))
        ));
    }
}
