//! A variable substituted into any SQL text (`vars::fill`): the first byte picks the type, the bytes
//! up to the first NUL are the value, the rest is the template with one placeholder `{{v}}` put
//! after its first half. Whatever is accepted has exactly the template's significant tokens, with
//! the placeholder's five replaced by the value's own tokens (outside literals), or the literal
//! around it still one string token (inside one); a refusal is a named, expected one.
#![no_main]

use etl_callback::run_date::RunDate;
use etl_callback::sql::{tokenize, TokenKind};
use etl_callback::vars::{fill, FillError, LiteralKind, Value, Values, VarType};
use libfuzzer_sys::fuzz_target;

fn significant(sql: &str) -> Option<Vec<(TokenKind, String)>> {
    Some(
        tokenize(sql)
            .ok()?
            .into_iter()
            .filter(|t| !t.is_trivia())
            .map(|t| (t.kind, t.text.to_owned()))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (value_text, template) = text.split_once('\0').unwrap_or((text, ""));
    let ty = VarType::ALL[usize::from(pick) % 4];
    let json = serde_json::Value::String(value_text.to_owned());
    let Ok(value) = Value::parse("v", ty, &json) else {
        return;
    };
    let mut cut = template.len() / 2;
    while !template.is_char_boundary(cut) {
        cut -= 1;
    }
    let (before, after) = template.split_at(cut);
    if template.contains('{') || template.contains('\u{1}') {
        return; // one placeholder only; U+0001 marks where it goes
    }
    let values = Values::new(RunDate::parse("2024-02-29").unwrap()).with("v", value.clone());
    // The placeholder where the template's lexer puts it: code, or inside a literal or comment.
    let marked = format!("{before}\u{1}{after}");
    let Ok(tokens) = tokenize(&marked) else {
        return;
    };
    let holder = tokens.iter().find(|t| t.text.contains('\u{1}')).unwrap();
    let templated = format!("{before}{{{{v}}}}{after}");
    match (holder.kind, fill(&templated, &values)) {
        (TokenKind::Punct, Ok(filled)) => {
            let mut expected = Vec::new();
            for (kind, text) in significant(&marked).unwrap() {
                if text == "\u{1}" {
                    expected.extend(significant(&value.sql()).unwrap());
                } else {
                    expected.push((kind, text));
                }
            }
            assert_eq!(significant(&filled), Some(expected), "{templated:?} with {value:?}");
        }
        (TokenKind::String, Ok(filled)) => {
            let expected: Vec<_> = significant(&marked)
                .unwrap()
                .into_iter()
                .map(|(k, t)| (k, t.replace('\u{1}', &value.text())))
                .collect();
            assert_eq!(significant(&filled), Some(expected), "{templated:?} with {value:?}");
        }
        (TokenKind::String, Err(FillError::Var(_))) => {
            let kind = if holder.text.starts_with('$') {
                LiteralKind::Dollar
            } else {
                LiteralKind::Quoted
            };
            assert!(kind.refuses(&value.text()).is_some());
        }
        // In a comment or a quoted identifier the placeholder is text and stays.
        (TokenKind::LineComment | TokenKind::BlockComment | TokenKind::QuotedIdent, result) => {
            assert_eq!(result.ok().as_deref(), Some(templated.as_str()));
        }
        (kind, result) => {
            // `{{v}}` can glue onto a word (`x{{v}}` lexes as `x`, `{`, …: still a placeholder) or
            // make the template lex differently; anything accepted must still keep the structure.
            if let Ok(filled) = result {
                assert!(tokenize(&filled).is_ok(), "{kind:?}: {templated:?} -> {filled:?}");
            }
        }
    }
});
