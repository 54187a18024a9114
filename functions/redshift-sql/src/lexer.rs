//! A small SQL lexer: just enough of Redshift/PostgreSQL lexical structure to split a script into
//! statements and to rewrite words safely. Semicolons inside string literals (`'…'`, `E'…'`,
//! `$tag$…$tag$`), quoted identifiers (`"…"`) and comments (`-- …`, nested `/* … */`) are not
//! separators, and nothing inside them is ever treated as a word.

use thiserror::Error;

/// What a token is. `Word` is a run of `[A-Za-z0-9_$]` (identifiers, keywords, numbers) that does not
/// start with `$`; `Punct` is any other single character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Whitespace,
    LineComment,
    BlockComment,
    String,
    QuotedIdent,
    Semicolon,
    Word,
    Punct,
}

/// One token: its kind, its exact text and its byte offset in the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    pub offset: usize,
}

impl Token<'_> {
    /// Whitespace and comments: tokens that do not change what a statement means.
    pub fn is_trivia(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SqlError {
    #[error("unterminated string literal starting at byte {offset}")]
    UnterminatedString { offset: usize },
    #[error("unterminated quoted identifier starting at byte {offset}")]
    UnterminatedQuotedIdentifier { offset: usize },
    #[error("unterminated block comment starting at byte {offset}")]
    UnterminatedComment { offset: usize },
}

fn is_word_start(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Splits `sql` into tokens. Concatenating every token's text gives back `sql` exactly.
pub fn tokenize(sql: &str) -> Result<Vec<Token<'_>>, SqlError> {
    let mut tokens = Vec::with_capacity(sql.len() / 4);
    let mut pos = 0;
    while pos < sql.len() {
        let (kind, len) = next_token(&sql[pos..], pos)?;
        tokens.push(Token {
            kind,
            text: &sql[pos..pos + len],
            offset: pos,
        });
        pos += len;
    }
    Ok(tokens)
}

/// The kind and byte length of the token at the start of `rest` (`offset` is only for errors).
fn next_token(rest: &str, offset: usize) -> Result<(TokenKind, usize), SqlError> {
    let mut chars = rest.chars();
    let c = chars
        .next()
        .expect("next_token is called on a non-empty slice");
    let next = chars.next();
    let found = match (c, next) {
        (c, _) if c.is_whitespace() => {
            (TokenKind::Whitespace, take_while(rest, char::is_whitespace))
        }
        ('-', Some('-')) => (
            TokenKind::LineComment,
            rest.find('\n').unwrap_or(rest.len()),
        ),
        ('/', Some('*')) => (TokenKind::BlockComment, block_comment_len(rest, offset)?),
        // Redshift treats a backslash in a string literal as an escape character
        // (r_Literals.html; sqlglot's Redshift tokenizer models it the same way): `'it\'s'` is
        // one literal, and a `;` after `\'` does not end the statement.
        ('\'', _) => (
            TokenKind::String,
            quoted_len(rest, '\'', true).ok_or(SqlError::UnterminatedString { offset })?,
        ),
        ('E' | 'e', Some('\'')) => {
            let len = quoted_len(&rest[1..], '\'', true)
                .ok_or(SqlError::UnterminatedString { offset })?;
            (TokenKind::String, len + 1)
        }
        ('"', _) => (
            TokenKind::QuotedIdent,
            quoted_len(rest, '"', false)
                .ok_or(SqlError::UnterminatedQuotedIdentifier { offset })?,
        ),
        ('$', _) => match dollar_tag_len(rest) {
            Some(tag_len) => {
                let tag = &rest[..tag_len];
                let body = rest[tag_len..]
                    .find(tag)
                    .ok_or(SqlError::UnterminatedString { offset })?;
                (TokenKind::String, tag_len + body + tag_len)
            }
            None => (TokenKind::Punct, 1),
        },
        (';', _) => (TokenKind::Semicolon, 1),
        (c, _) if is_word_start(c) => (TokenKind::Word, take_while(rest, is_word_char)),
        (c, _) => (TokenKind::Punct, c.len_utf8()),
    };
    Ok(found)
}

fn take_while(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(s.len(), |(i, _)| i)
}

/// Length of a quoted run starting at `s[0] == quote`, where a doubled quote is an escaped quote
/// (and, for `E'…'` strings, a backslash escapes the next character). `None` when unterminated.
fn quoted_len(s: &str, quote: char, backslash_escapes: bool) -> Option<usize> {
    let mut iter = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = iter.next() {
        if backslash_escapes && c == '\\' {
            iter.next();
        } else if c == quote {
            match iter.peek() {
                Some(&(_, n)) if n == quote => {
                    iter.next();
                }
                _ => return Some(i + c.len_utf8()),
            }
        }
    }
    None
}

/// Length of a nested `/* … */` comment.
fn block_comment_len(s: &str, offset: usize) -> Result<usize, SqlError> {
    let bytes = s.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(SqlError::UnterminatedComment { offset })
}

/// Length of a dollar-quote opening tag (`$$` or `$tag$`) at the start of `s`, if there is one.
fn dollar_tag_len(s: &str) -> Option<usize> {
    let inner = &s[1..];
    let end = inner.find('$')?;
    let tag = &inner[..end];
    let valid = tag
        .chars()
        .next()
        .is_none_or(|c| c.is_alphabetic() || c == '_')
        && tag.chars().all(|c| c.is_alphanumeric() || c == '_');
    valid.then_some(end + 2)
}

/// Splits a script into its statements: trimmed, without the terminating semicolon, with
/// statements that hold nothing but whitespace and comments left out.
pub fn split_statements(sql: &str) -> Result<Vec<String>, SqlError> {
    let tokens = tokenize(sql)?;
    Ok(tokens
        .split(|t| t.kind == TokenKind::Semicolon)
        .filter(|statement| statement.iter().any(|t| !t.is_trivia()))
        .map(|statement| {
            let text: String = statement.iter().map(|t| t.text).collect();
            text.trim().to_owned()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<TokenKind> {
        tokenize(sql).unwrap().iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_concatenate_back_to_the_input() {
        let sql =
            "select 'a;b', \"c;d\" -- x;y\n/* p; /* q; */ r; */ from t where $$;$$ = $x$;$x$;";
        let tokens = tokenize(sql).unwrap();
        assert_eq!(tokens.iter().map(|t| t.text).collect::<String>(), sql);
        assert_eq!(
            tokens
                .iter()
                .filter(|t| t.kind == TokenKind::Semicolon)
                .count(),
            1
        );
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "insert into t values ('it''s; fine');\n\
                   select \"odd;name\" from t; -- trailing; comment\n\
                   /* block; comment */ update t set a = E'x\\';y' ;";
        let statements = split_statements(sql).unwrap();
        assert_eq!(
            statements,
            vec![
                "insert into t values ('it''s; fine')",
                "select \"odd;name\" from t",
                "-- trailing; comment\n/* block; comment */ update t set a = E'x\\';y'",
            ]
        );
    }

    #[test]
    fn comment_only_and_empty_statements_are_dropped() {
        assert!(split_statements(" ;; -- nothing\n/* here */ ;\n")
            .unwrap()
            .is_empty());
        assert_eq!(split_statements("select 1").unwrap(), vec!["select 1"]);
    }

    #[test]
    fn nested_block_comments_hide_semicolons() {
        assert_eq!(
            split_statements("/* a /* b; */ c; */ select 1; select 2")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_strings() {
        let statements = split_statements(
            "create procedure p() as $body$ begin; end; $body$ language plpgsql; call p()",
        )
        .unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(kinds("$1"), vec![TokenKind::Punct, TokenKind::Word]);
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            kinds("a.b_1::date"),
            vec![
                TokenKind::Word,
                TokenKind::Punct,
                TokenKind::Word,
                TokenKind::Punct,
                TokenKind::Punct,
                TokenKind::Word
            ]
        );
        // A word containing 'e' directly before a quote is not an escape string.
        assert_eq!(kinds("name'x'"), vec![TokenKind::Word, TokenKind::String]);
    }

    #[test]
    fn hostile_inputs_are_named_errors() {
        assert_eq!(
            split_statements("select 'abc"),
            Err(SqlError::UnterminatedString { offset: 7 })
        );
        assert_eq!(
            split_statements("select \"abc"),
            Err(SqlError::UnterminatedQuotedIdentifier { offset: 7 })
        );
        assert_eq!(
            split_statements("select 1 /* /* */"),
            Err(SqlError::UnterminatedComment { offset: 9 })
        );
        assert_eq!(
            split_statements("select $a$ x"),
            Err(SqlError::UnterminatedString { offset: 7 })
        );
        assert_eq!(
            split_statements("select E'\\'"),
            Err(SqlError::UnterminatedString { offset: 7 })
        );
    }

    #[test]
    fn a_backslash_escapes_in_plain_strings_as_on_redshift() {
        assert_eq!(
            split_statements("select 'x\\';y'; select 'a\\\\'; select 2").unwrap(),
            vec!["select 'x\\';y'", "select 'a\\\\'", "select 2"]
        );
        assert_eq!(
            split_statements("select 'C:\\'"),
            Err(SqlError::UnterminatedString { offset: 7 })
        );
    }

    #[test]
    fn multibyte_text_is_kept_intact() {
        let statements = split_statements("select 'café;ü' as «x»; select ñ").unwrap();
        assert_eq!(statements, vec!["select 'café;ü' as «x»", "select ñ"]);
    }
}
