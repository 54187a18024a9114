//! The emulator's Redshift -> PostgreSQL translation (`translate::to_postgres`): no string
//! literal or comment is lost (every one of the input's is in the output, in order; a literal
//! with a backslash may gain the `E` of a PostgreSQL escape string; the literals the translation
//! adds are its own (`'utc'`, `'second'`, a quoted date part) or copies of the input's; a
//! routine's dollar-quoted body is translated itself, so those are compared by count), every
//! quoted identifier in the output is one of the input's, no statement separator is added or
//! lost, and the output lexes. It fails only where the lexer does, or with a named
//! `NotEmulated` error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redshift_sql::lexer::{tokenize, Token, TokenKind};
use redshift_sql::translate::{to_postgres, TranslateError};

/// The literals the translation itself writes (`sysdate`, `getdate()`).
const ADDED_LITERALS: [&str; 2] = ["'utc'", "'second'"];

/// A literal as Redshift means it: `E'a\\b'` written for the input's `'a\\b'` is the same.
fn normalized(text: &str) -> &str {
    match text.strip_prefix(['E', 'e']) {
        Some(rest) if rest.starts_with('\'') && rest.contains('\\') => rest,
        _ => text,
    }
}

fn protected<'a>(tokens: &[Token<'a>], kinds: &[TokenKind]) -> Vec<&'a str> {
    tokens
        .iter()
        .filter(|t| kinds.contains(&t.kind) && !t.text.starts_with('$'))
        .map(|t| normalized(t.text))
        .collect()
}

fn dollar_quoted(tokens: &[Token<'_>]) -> usize {
    tokens
        .iter()
        .filter(|t| t.kind == TokenKind::String && t.text.starts_with('$'))
        .count()
}

/// Whether `small` is a subsequence of `big`, and `big`'s other items all satisfy `extra`.
fn embeds(small: &[&str], big: &[&str], extra: impl Fn(&str) -> bool) -> bool {
    let mut rest = small.iter().peekable();
    for item in big {
        if rest.peek() == Some(&item) {
            rest.next();
        } else if !extra(item) {
            return false;
        }
    }
    rest.peek().is_none()
}

/// A date part the translation quoted: `'month'`.
fn quoted_word(text: &str) -> bool {
    text.len() > 2
        && text.starts_with('\'')
        && text.ends_with('\'')
        && text[1..text.len() - 1]
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_')
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    match to_postgres(sql) {
        Ok(out) => {
            let before = tokenize(sql).expect("the input lexed");
            let after = tokenize(&out)
                .unwrap_or_else(|e| panic!("the translation does not lex ({e}): {out:?}"));
            let kept = [
                TokenKind::String,
                TokenKind::LineComment,
                TokenKind::BlockComment,
            ];
            let input = protected(&before, &kept);
            assert!(
                embeds(&input, &protected(&after, &kept), |t| {
                    ADDED_LITERALS.contains(&t) || quoted_word(t) || input.contains(&t)
                }),
                "a literal or comment changed: {out:?}"
            );
            assert_eq!(dollar_quoted(&before), dollar_quoted(&after), "{out:?}");
            let quoted = [TokenKind::QuotedIdent];
            let input_quoted = protected(&before, &quoted);
            assert!(
                protected(&after, &quoted)
                    .iter()
                    .all(|q| input_quoted.contains(q)),
                "a quoted identifier changed: {out:?}"
            );
            let separators = |tokens: &[Token<'_>]| {
                tokens
                    .iter()
                    .filter(|t| t.kind == TokenKind::Semicolon)
                    .count()
            };
            assert_eq!(separators(&before), separators(&after), "{out:?}");
        }
        Err(TranslateError::Lex(error)) => {
            assert_eq!(tokenize(sql).err(), Some(error));
        }
        Err(TranslateError::NotEmulated(what)) => {
            assert!(!what.is_empty());
        }
    }
});
