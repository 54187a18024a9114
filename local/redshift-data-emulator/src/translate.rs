//! Redshift → PostgreSQL translation: the ONLY place where Redshift-only syntax is rewritten.
//!
//! Just enough for the project's scripts (`scripts/README.md` lists the Redshift-only syntax they use):
//! - in `CREATE TABLE` / `ALTER TABLE` statements: column `ENCODE <encoding>`, column
//!   `DISTKEY` / `SORTKEY`, table attributes `DISTSTYLE ALL|EVEN|KEY|AUTO`, `DISTKEY(col)`,
//!   `[COMPOUND|INTERLEAVED] SORTKEY(cols)`, `SORTKEY AUTO`, `BACKUP NO|YES` are removed;
//! - everywhere: `sysdate` becomes `(now() at time zone 'utc')` (transaction start, UTC, like
//!   Redshift) and `getdate()` becomes the statement's start, UTC, truncated to seconds.
//!
//! It works on the shared lexer's tokens (`etl_callback::sql`), so text inside string literals,
//! quoted identifiers and comments is never touched.

use etl_callback::sql::{tokenize, SqlError, Token, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot parse SQL: {0}")]
    Lex(#[from] SqlError),
}

const SYSDATE: &str = "(now() at time zone 'utc')";
const GETDATE: &str = "date_trunc('second', statement_timestamp() at time zone 'utc')";

/// Redshift column compression encodings (`ENCODE <x>`).
const ENCODINGS: &[&str] = &[
    "raw",
    "az64",
    "bytedict",
    "delta",
    "delta32k",
    "lzo",
    "mostly8",
    "mostly16",
    "mostly32",
    "runlength",
    "text255",
    "text32k",
    "zstd",
    "auto",
];

const DISTSTYLES: &[&str] = &["all", "even", "key", "auto"];

/// Translates one SQL text (one statement, or several separated by `;`).
pub fn to_postgres(sql: &str) -> Result<String, TranslateError> {
    let tokens = tokenize(sql)?;
    let mut edits = Edits::new(tokens.len());
    let mut start = 0;
    while start < tokens.len() {
        let end = tokens[start..]
            .iter()
            .position(|t| t.kind == TokenKind::Semicolon)
            .map_or(tokens.len(), |p| start + p + 1);
        translate_statement(&tokens, start, end, &mut edits);
        start = end;
    }
    Ok(edits.apply(&tokens))
}

struct Edits {
    removed: Vec<bool>,
    replaced: Vec<Option<&'static str>>,
}

impl Edits {
    fn new(len: usize) -> Self {
        Self {
            removed: vec![false; len],
            replaced: vec![None; len],
        }
    }

    /// Removes tokens `from..=to` and the whitespace right before them.
    fn remove(&mut self, tokens: &[Token<'_>], from: usize, to: usize) {
        for flag in &mut self.removed[from..=to] {
            *flag = true;
        }
        if from > 0 && tokens[from - 1].kind == TokenKind::Whitespace {
            self.removed[from - 1] = true;
        }
    }

    fn apply(&self, tokens: &[Token<'_>]) -> String {
        let mut out = String::new();
        for (i, token) in tokens.iter().enumerate() {
            if let Some(text) = self.replaced[i] {
                out.push_str(text);
            } else if !self.removed[i] {
                out.push_str(token.text);
            }
        }
        out
    }
}

fn is_word(token: &Token<'_>, word: &str) -> bool {
    token.kind == TokenKind::Word && token.text.eq_ignore_ascii_case(word)
}

fn is_punct(token: &Token<'_>, c: &str) -> bool {
    token.kind == TokenKind::Punct && token.text == c
}

fn is_word_in(token: &Token<'_>, words: &[&str]) -> bool {
    token.kind == TokenKind::Word && words.iter().any(|w| token.text.eq_ignore_ascii_case(w))
}

/// Translates the statement made of `tokens[start..end]`.
fn translate_statement(tokens: &[Token<'_>], start: usize, end: usize, edits: &mut Edits) {
    // Indices of the significant tokens (no whitespace or comments).
    let sig: Vec<usize> = (start..end).filter(|&i| !tokens[i].is_trivia()).collect();
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i]);

    let is_table_ddl = at(0).is_some_and(|t| is_word(t, "create") || is_word(t, "alter"))
        && sig.iter().take(6).any(|&i| is_word(&tokens[i], "table"));

    let mut k = 0;
    while k < sig.len() {
        let token = &tokens[sig[k]];
        let prev_is_dot = k > 0 && is_punct(&tokens[sig[k - 1]], ".");
        let next = at(k + 1);

        if token.kind != TokenKind::Word || prev_is_dot {
            k += 1;
            continue;
        }

        // sysdate (a bare word, not a column of a table alias, not a call).
        if is_word(token, "sysdate") && !next.is_some_and(|n| is_punct(n, "(")) {
            edits.replaced[sig[k]] = Some(SYSDATE);
            k += 1;
            continue;
        }
        // getdate()
        if is_word(token, "getdate")
            && next.is_some_and(|n| is_punct(n, "("))
            && at(k + 2).is_some_and(|n| is_punct(n, ")"))
        {
            edits.replaced[sig[k]] = Some(GETDATE);
            edits.removed[sig[k] + 1..=sig[k + 2]].fill(true);
            k += 3;
            continue;
        }

        if !is_table_ddl {
            k += 1;
            continue;
        }

        // ENCODE <encoding>
        if is_word(token, "encode") && next.is_some_and(|n| is_word_in(n, ENCODINGS)) {
            edits.remove(tokens, sig[k], sig[k + 1]);
            k += 2;
            continue;
        }
        // DISTSTYLE ALL|EVEN|KEY|AUTO
        if is_word(token, "diststyle") && next.is_some_and(|n| is_word_in(n, DISTSTYLES)) {
            edits.remove(tokens, sig[k], sig[k + 1]);
            k += 2;
            continue;
        }
        // BACKUP NO|YES
        if is_word(token, "backup") && next.is_some_and(|n| is_word_in(n, &["no", "yes"])) {
            edits.remove(tokens, sig[k], sig[k + 1]);
            k += 2;
            continue;
        }
        // [COMPOUND|INTERLEAVED] SORTKEY ...
        let (key_k, first_k) = if is_word_in(token, &["compound", "interleaved"])
            && next.is_some_and(|n| is_word(n, "sortkey"))
        {
            (k + 1, k)
        } else {
            (k, k)
        };
        let key = &tokens[sig[key_k]];
        if is_word(key, "distkey") || is_word(key, "sortkey") {
            let after = at(key_k + 1);
            if after.is_some_and(|n| is_punct(n, "(")) {
                // Table attribute DISTKEY(col) / SORTKEY(cols): remove through the matching ')'.
                if let Some(close_k) = matching_paren(tokens, &sig, key_k + 1) {
                    edits.remove(tokens, sig[first_k], sig[close_k]);
                    k = close_k + 1;
                    continue;
                }
            } else if is_word(key, "sortkey") && after.is_some_and(|n| is_word(n, "auto")) {
                edits.remove(tokens, sig[first_k], sig[key_k + 1]);
                k = key_k + 2;
                continue;
            } else if first_k == key_k && k > 0 {
                // Column attribute: a bare DISTKEY / SORTKEY after the column's type.
                edits.remove(tokens, sig[k], sig[k]);
                k += 1;
                continue;
            }
        }
        k += 1;
    }
}

/// The significant index of the `)` matching the `(` at significant index `open_k`.
fn matching_paren(tokens: &[Token<'_>], sig: &[usize], open_k: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &i) in sig.iter().enumerate().skip(open_k) {
        if is_punct(&tokens[i], "(") {
            depth += 1;
        } else if is_punct(&tokens[i], ")") {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(sql: &str) -> String {
        to_postgres(sql).expect("translates")
    }

    #[test]
    fn strips_column_encode_and_table_attributes() {
        let sql = "create table stg_item (\n    i_item_id char(16) not null encode zstd,\n    \
                   i_price numeric(7, 2) encode az64\n) backup no diststyle even;";
        assert_eq!(
            tr(sql),
            "create table stg_item (\n    i_item_id char(16) not null,\n    i_price numeric(7, 2)\n);"
        );
    }

    #[test]
    fn strips_distkey_and_sortkey_in_every_form() {
        assert_eq!(
            tr("create table t (a int4 not null distkey, b int4 sortkey) distkey(a) compound sortkey(a, b)"),
            "create table t (a int4 not null, b int4)"
        );
        assert_eq!(
            tr("CREATE TABLE t (a int) DISTSTYLE KEY DISTKEY (a) INTERLEAVED SORTKEY (a)"),
            "CREATE TABLE t (a int)"
        );
        assert_eq!(
            tr("create table t (a int) sortkey(a)"),
            "create table t (a int)"
        );
        assert_eq!(
            tr("create table t (a int) sortkey auto"),
            "create table t (a int)"
        );
        assert_eq!(
            tr("create table if not exists public.d (x date encode az64) diststyle all"),
            "create table if not exists public.d (x date)"
        );
    }

    #[test]
    fn each_diststyle_and_backup_value_is_removed() {
        for style in ["ALL", "EVEN", "KEY", "AUTO"] {
            assert_eq!(
                tr(&format!("create table t (a int) diststyle {style}")),
                "create table t (a int)"
            );
        }
        assert_eq!(
            tr("create table t (a int) backup yes"),
            "create table t (a int)"
        );
    }

    #[test]
    fn ctas_attributes_before_as_are_removed() {
        assert_eq!(
            tr("create temp table t diststyle even sortkey(a) as select 1 as a"),
            "create temp table t as select 1 as a"
        );
    }

    #[test]
    fn sysdate_and_getdate_become_utc_timestamps() {
        assert_eq!(
            tr("select sysdate, getdate(), SYSDATE::date, GetDate ( )"),
            format!("select {SYSDATE}, {GETDATE}, {SYSDATE}::date, {GETDATE}")
        );
    }

    #[test]
    fn never_touches_strings_quoted_identifiers_or_comments() {
        let sql = "select 'sysdate getdate() encode zstd' as \"sysdate\", $$diststyle all$$ \
                   -- sysdate encode zstd\n /* getdate() backup no */ from t";
        assert_eq!(tr(sql), sql);
        let ddl = "create table t (\"encode\" varchar(10) default 'encode zstd' /* sortkey(a) */)";
        assert_eq!(tr(ddl), ddl);
    }

    #[test]
    fn leaves_non_ddl_and_look_alikes_alone() {
        // PostgreSQL's encode() function, a qualified column named sysdate, words in DML.
        let sql = "select encode(b, 'hex'), t.sysdate, sysdate_col from t where backup = 'no'";
        assert_eq!(tr(sql), sql);
        let dml = "insert into t (distkey) values (1)";
        assert_eq!(tr(dml), dml);
        assert_eq!(tr("select sysdate()"), "select sysdate()");
    }

    #[test]
    fn translates_each_statement_of_a_script_on_its_own() {
        assert_eq!(
            tr("create table a (x int encode zstd) backup no; select 1 as backup; select sysdate"),
            format!("create table a (x int); select 1 as backup; select {SYSDATE}")
        );
    }

    #[test]
    fn lexer_errors_are_reported() {
        assert!(matches!(
            to_postgres("select 'unterminated"),
            Err(TranslateError::Lex(_))
        ));
    }
}
