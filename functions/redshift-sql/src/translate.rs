//! Redshift → PostgreSQL translation: the ONLY place where Redshift-only syntax is rewritten.
//!
//! Just enough for the project's scripts (`scripts/README.md` lists the Redshift-only syntax they use):
//! - in `CREATE TABLE` / `ALTER TABLE` statements: column `ENCODE <encoding>`, column
//!   `DISTKEY` / `SORTKEY`, table attributes `DISTSTYLE ALL|EVEN|KEY|AUTO`, `DISTKEY(col)`,
//!   `[COMPOUND|INTERLEAVED] SORTKEY(cols)`, `SORTKEY AUTO`, `BACKUP NO|YES` are removed;
//! - everywhere: `sysdate` becomes `(now() at time zone 'utc')` (transaction start, UTC, like
//!   Redshift) and `getdate()` becomes the statement's start, UTC, truncated to seconds.
//!
//! It works on the lexer's tokens ([`crate::lexer`]), so text inside string literals,
//! quoted identifiers and comments is never touched.

use std::borrow::Cow;

use crate::dialect;
use crate::lexer::{tokenize, SqlError, Token, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot parse SQL: {0}")]
    Lex(#[from] SqlError),
    /// A Redshift feature a local PostgreSQL cannot stand in for (docs/redshift-compatibility.md
    /// lists them): named, instead of a misleading PostgreSQL syntax error.
    #[error("not emulated locally: {0}")]
    NotEmulated(String),
}

const SYSDATE: &str = "(now() at time zone 'utc')";
const GETDATE: &str = "date_trunc('second', statement_timestamp() at time zone 'utc')";

/// Redshift column compression encodings (`ENCODE <x>`).
pub(crate) const ENCODINGS: &[&str] = &[
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
    // Indices of each statement's significant tokens (no whitespace or comments), in one
    // buffer reused for every statement.
    let mut sig = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        sig.clear();
        let mut end = tokens.len();
        for (i, token) in tokens.iter().enumerate().skip(start) {
            if !token.is_trivia() {
                sig.push(i);
            }
            if token.kind == TokenKind::Semicolon {
                end = i + 1;
                break;
            }
        }
        if !dialect::rewrite_statement(&tokens, &sig, end, &mut edits)? {
            translate_statement(&tokens, &sig, &mut edits);
        }
        start = end;
    }
    Ok(edits.apply(&tokens))
}

/// The edits of one translation, applied once at the end. Replacements and insertions are few
/// (a handful per statement), so they are kept sparse, in the order they were made: a per-token
/// table of them cost more than the rules themselves on a 100 KB script.
pub(crate) struct Edits {
    removed: Vec<bool>,
    /// `(token index, text)`: the last replacement of a token wins.
    replaced: Vec<(usize, Cow<'static, str>)>,
    /// `(token index, text)`: text written right before a token (after its replacement, if any,
    /// of the previous one), in the order inserted.
    before: Vec<(usize, String)>,
}

impl Edits {
    fn new(len: usize) -> Self {
        Self {
            removed: vec![false; len],
            replaced: Vec::new(),
            before: Vec::new(),
        }
    }

    pub(crate) fn replace(&mut self, i: usize, text: impl Into<Cow<'static, str>>) {
        self.replaced.push((i, text.into()));
    }

    pub(crate) fn insert_before(&mut self, i: usize, text: impl Into<String>) {
        self.before.push((i, text.into()));
    }

    /// Removes the tokens `from..=to` but their comments (and the whitespace after a comment,
    /// which ends a line comment), and the whitespace right before them unless the tokens either
    /// side would then lex as one (`-` and `-`, a word and a word or a quote, ...): where nothing
    /// separates them, a space is left.
    pub(crate) fn remove(&mut self, tokens: &[Token<'_>], from: usize, to: usize) {
        self.remove_keeping_comments(tokens, from, to);
        let kept = (from..=to).find(|&i| !self.removed[i]);
        let right = tokens.get(kept.unwrap_or(to + 1));
        let left = from.checked_sub(1).map(|i| &tokens[i]);
        match left {
            Some(space) if space.kind == TokenKind::Whitespace => {
                let before = from.checked_sub(2).map(|i| &tokens[i]);
                // The line break after a line comment ends it: it always stays.
                let ends_comment = before.is_some_and(|t| t.kind == TokenKind::LineComment);
                if !ends_comment && (separates(right, false) || separates(before, true)) {
                    self.removed[from - 1] = true;
                }
            }
            _ if separates(right, false) || separates(left, true) => {}
            _ => self.replace(from, " "),
        }
    }

    /// Marks `from..=to` removed, except comments and the whitespace right after one.
    pub(crate) fn remove_keeping_comments(&mut self, tokens: &[Token<'_>], from: usize, to: usize) {
        let is_comment = |t: &Token<'_>| t.is_trivia() && t.kind != TokenKind::Whitespace;
        for i in from..=to {
            let after_comment = i > from && is_comment(&tokens[i - 1]);
            let keep = is_comment(&tokens[i])
                || (tokens[i].kind == TokenKind::Whitespace && after_comment);
            self.removed[i] = !keep;
        }
    }

    fn apply(mut self, tokens: &[Token<'_>]) -> String {
        // Stable sorts: equal indices keep the order the edits were made in.
        self.replaced.sort_by_key(|&(i, _)| i);
        self.before.sort_by_key(|&(i, _)| i);
        let length = tokens.last().map_or(0, |t| t.offset + t.text.len());
        let mut out = String::with_capacity(length + length / 8);
        let (mut r, mut b) = (0, 0);
        for (i, token) in tokens.iter().enumerate() {
            while b < self.before.len() && self.before[b].0 == i {
                out.push_str(&self.before[b].1);
                b += 1;
            }
            let mut replacement = None;
            while r < self.replaced.len() && self.replaced[r].0 == i {
                replacement = Some(&self.replaced[r].1);
                r += 1;
            }
            if let Some(text) = replacement {
                out.push_str(text);
            } else if !self.removed[i] {
                out.push_str(token.text);
            }
        }
        for (_, text) in &self.before[b..] {
            out.push_str(text);
        }
        out
    }
}

/// Whether `token` (the one left of a removal when `left`, else the one right of it) lexes the
/// same whatever is put next to it: whitespace, a separator, `(`, `)` or `,`, the end of the
/// text, or (on the left) a comment.
fn separates(token: Option<&Token<'_>>, left: bool) -> bool {
    token.is_none_or(|t| match t.kind {
        TokenKind::Whitespace | TokenKind::Semicolon => true,
        TokenKind::LineComment | TokenKind::BlockComment => left,
        TokenKind::Punct => matches!(t.text, "(" | ")" | ","),
        _ => false,
    })
}

pub(crate) fn is_word(token: &Token<'_>, word: &str) -> bool {
    token.kind == TokenKind::Word && token.text.eq_ignore_ascii_case(word)
}

pub(crate) fn is_punct(token: &Token<'_>, c: &str) -> bool {
    token.kind == TokenKind::Punct && token.text == c
}

pub(crate) fn is_word_in(token: &Token<'_>, words: &[&str]) -> bool {
    token.kind == TokenKind::Word && words.iter().any(|w| token.text.eq_ignore_ascii_case(w))
}

/// Translates one statement, whose significant tokens are `tokens[sig[k]]`.
fn translate_statement(tokens: &[Token<'_>], sig: &[usize], edits: &mut Edits) {
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i]);

    // Tables, and materialized views, which take the same attributes
    // (materialized-view-create-sql-command.html).
    let is_table_ddl = at(0).is_some_and(|t| is_word(t, "create") || is_word(t, "alter"))
        && sig
            .iter()
            .take(6)
            .any(|&i| is_word(&tokens[i], "table") || is_word(&tokens[i], "materialized"));

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
            edits.replace(sig[k], SYSDATE);
            k += 1;
            continue;
        }
        // getdate()
        if is_word(token, "getdate")
            && next.is_some_and(|n| is_punct(n, "("))
            && at(k + 2).is_some_and(|n| is_punct(n, ")"))
        {
            edits.replace(sig[k], GETDATE);
            edits.remove_keeping_comments(tokens, sig[k] + 1, sig[k + 2]);
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
                // Table attribute DISTKEY(col) / SORTKEY(cols): remove through the matching ')',
                // when what is inside is a column list (anything else stays, for PostgreSQL to
                // refuse as Redshift would: a literal is never removed).
                if let Some(close_k) = column_list(tokens, sig, key_k + 1) {
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

/// The significant index of the `)` closing the column list whose `(` is at significant index
/// `open_k`: column names (words, quoted identifiers) and commas, nothing else.
fn column_list(tokens: &[Token<'_>], sig: &[usize], open_k: usize) -> Option<usize> {
    for (k, &i) in sig.iter().enumerate().skip(open_k + 1) {
        let token = &tokens[i];
        match token.kind {
            TokenKind::Word | TokenKind::QuotedIdent => {}
            TokenKind::Punct if token.text == "," => {}
            TokenKind::Punct if token.text == ")" => return Some(k),
            _ => return None,
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

    /// Fuzzing regression (`fuzz/corpus/translate/distkey-paren-swallows-literals`): the
    /// attribute `DISTKEY (` removed everything to the next matching `)`, literals included.
    #[test]
    fn only_a_column_list_is_removed_with_distkey_or_sortkey() {
        let sql = "create table t (a int) distkey (a, 'x;y') sortkey(\"b\", c)";
        assert_eq!(tr(sql), "create table t (a int) distkey (a, 'x;y')");
        let nested = "create table t (a int) sortkey((a))";
        assert_eq!(tr(nested), nested);
    }

    /// Found by the `translate` fuzz target: comments inside a removed attribute went with it.
    #[test]
    fn comments_inside_removed_attributes_stay() {
        assert_eq!(
            tr("create table t (a int encode /* why */ zstd, b int encode -- note\n lzo)"),
            "create table t (a int /* why */ , b int -- note\n )"
        );
        assert_eq!(
            tr("select getdate( /* now */ )"),
            format!("select {GETDATE}/* now */ ")
        );
    }

    /// Fuzzing regression (`fuzz/corpus/translate/line-comment-swallows-comma`): removing
    /// `ENCODE az64` took the line break before it, so the line comment above ran on over the
    /// rest of the line.
    #[test]
    fn the_line_break_ending_a_line_comment_stays() {
        assert_eq!(
            tr("create table t (a int -- note\nencode az64, b int)"),
            "create table t (a int -- note\n, b int)"
        );
        assert_eq!(tr("create table--\nencode az64,"), "create table--\n,");
    }

    /// Found by the `translate` fuzz target: removing an attribute and the space before it must
    /// not join its neighbours into one token (`-` `-` into a comment, `e` and a quote into an
    /// escape string).
    #[test]
    fn a_removal_never_joins_its_neighbours() {
        assert_eq!(
            tr("create table t (a int) -backup no-1"),
            "create table t (a int) - -1"
        );
        assert_eq!(
            tr("create table t (a int) e backup no'x'"),
            "create table t (a int) e 'x'"
        );
        assert_eq!(
            tr("create table t (a int) -diststyle all-1"),
            "create table t (a int) - -1"
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
