//! The emulator's Redshift -> PostgreSQL translation (`translate::to_postgres`): string
//! literals, quoted identifiers and comments never change (the output has the input's, in order;
//! the only literals added are those of the `sysdate`/`getdate()` replacements, and only quoted
//! identifiers of a removed `DISTKEY(...)`/`SORTKEY(...)` column list may go), no statement
//! separator is added or lost, and the output lexes. It fails only where the lexer does.
#![no_main]

use redshift_sql::lexer::{tokenize, Token, TokenKind};
use libfuzzer_sys::fuzz_target;
use redshift_sql::translate::{to_postgres, TranslateError};

/// The literals the translation itself writes (`sysdate`, `getdate()`).
const ADDED_LITERALS: [&str; 2] = ["'utc'", "'second'"];

fn protected<'a>(tokens: &[Token<'a>], kinds: &[TokenKind]) -> Vec<&'a str> {
    tokens
        .iter()
        .filter(|t| kinds.contains(&t.kind))
        .map(|t| t.text)
        .collect()
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
            assert!(
                embeds(&protected(&before, &kept), &protected(&after, &kept), |t| {
                    ADDED_LITERALS.contains(&t)
                }),
                "a literal or comment changed: {out:?}"
            );
            let quoted = [TokenKind::QuotedIdent];
            assert!(
                embeds(
                    &protected(&after, &quoted),
                    &protected(&before, &quoted),
                    |_| true
                ),
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
    }
});
