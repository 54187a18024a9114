//! The tables a script reads and writes, read from its SQL with the crate's [`lexer`](crate::lexer)
//! (no parser: the same token-level approach as the translation, measured in
//! docs/redshift-compatibility.md). `pipeline check` checks a pipeline's dependency graph with it
//! and `pipeline lineage` draws the table-level graph.
//!
//! **Writes**: the target of `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `COPY`, `CREATE TABLE` (also
//! `… AS` and `SELECT … INTO`), `CREATE VIEW` / `MATERIALIZED VIEW`, `REFRESH MATERIALIZED VIEW`,
//! `DROP TABLE` / `VIEW`, `ALTER TABLE` (both names of `RENAME TO`, the source of `APPEND FROM`)
//! and `TRUNCATE`. **Reads**: every relation after `FROM`, `JOIN`, `DELETE … USING` and
//! `MERGE … USING`, in subqueries and CTEs, in `CREATE TABLE … (LIKE t)`, and in the query
//! inside `UNLOAD ('…')`. A table both read and written is in both sets.
//! `FROM t x, x.items` (a name whose first part is an alias or relation of the statement's FROM)
//! navigates a SUPER column, as Redshift reads it, and names no table.
//!
//! **The script's own tables** are neither: CTE names (within their statement), temporary tables
//! (`CREATE TEMP[ORARY] TABLE`, `SELECT … INTO TEMP`, any `#name`) for the rest of the script, as a
//! Data API batch is one session. An unqualified name that matches a temporary table is the
//! temporary table (Redshift looks in the session's temporary schema first).
//!
//! **Names** ([`TableName`]): identifiers are folded to lower case, quoted ones too, as Redshift
//! does while `enable_case_sensitive_identifier` is off (its default; a script that sets it on
//! keeps the case of the quoted identifiers after that statement). An unqualified name is put in
//! the first schema of the search path, `public` unless the script says `SET search_path TO …`
//! (Redshift picks the first schema of the path that holds the table; the analysis cannot see the
//! database, so it takes the first one named). `schema.table` and `database.schema.table` stay
//! as written. `{{…}}` placeholders are read as values, or as a name part where a name stands.
//!
//! A statement the analysis cannot read (a `CALL` of a procedure, an unknown command, a table
//! name where none can be read) is a [`Warning`] naming the statement; the rest of the script is
//! still read. [`analyze`] never fails and never panics (fuzzed: `fuzz/fuzz_targets/lineage.rs`).

use std::collections::BTreeSet;
use std::fmt;

use crate::lexer::{tokenize, TokenKind};

/// The schema of an unqualified name when the script does not set `search_path`.
pub const DEFAULT_SCHEMA: &str = "public";

/// Nesting (parentheses, `UNLOAD` queries) deeper than this is not read: a warning, not a stack
/// overflow.
const MAX_DEPTH: usize = 200;

/// A table's name: `schema.table` or `database.schema.table`, every part folded as Redshift
/// folds it. Ordered and compared as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName(String);

impl TableName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a name as a definition declares it (`reads = ["sales.orders"]`): SQL identifier
    /// syntax, resolved like an unqualified name in a script that sets no search path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let toks = tokens(text).map_err(|e| format!("{text:?} is not a table name: {e}"))?;
        let mut cursor = Cursor {
            toks: &toks,
            pos: 0,
        };
        let parts = cursor
            .name_parts(true)
            .ok_or_else(|| format!("{text:?} is not a table name"))?;
        if cursor.pos != toks.len() {
            return Err(format!(
                "{text:?} is not a table name (expected [database.][schema.]table)"
            ));
        }
        let settings = Settings::default();
        match resolve(&parts, &settings, &BTreeSet::new()) {
            Resolved::Table(t) => Ok(t),
            Resolved::Own => Err(format!(
                "{text:?} is a temporary table, which belongs to its step"
            )),
            Resolved::Invalid => Err(format!(
                "{text:?} is not a table name (at most database.schema.table)"
            )),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A statement the analysis could not read (fully): its reads and writes may be incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based, as [`crate::lexer::split_statements`] numbers the script's statements; 0 when the
    /// script itself does not lex.
    pub statement: usize,
    /// The statement's start, on one line (at most 60 characters).
    pub start: String,
    pub reason: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.statement == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(
                f,
                "statement {} ({}): {}",
                self.statement, self.start, self.reason
            )
        }
    }
}

/// What one script reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub reads: BTreeSet<TableName>,
    pub writes: BTreeSet<TableName>,
    /// The script's temporary tables, as written (`stg_item`, `#stage`): its own, neither read
    /// nor written for the pipeline.
    pub temporary: BTreeSet<String>,
    pub warnings: Vec<Warning>,
}

/// Reads a whole script (its statements separated by `;`). Never fails: what cannot be read is a
/// [`Warning`].
pub fn analyze(script: &str) -> Analysis {
    let mut out = Analysis::default();
    let toks = match tokens(script) {
        Ok(t) => t,
        Err(e) => {
            out.warnings.push(Warning {
                statement: 0,
                start: String::new(),
                reason: format!("the script cannot be split into statements: {e}"),
            });
            return out;
        }
    };
    let mut settings = Settings::default();
    let mut temps = BTreeSet::new();
    let mut number = 0;
    for statement in toks.split(|t| t.kind == Kind::Semicolon) {
        if statement.is_empty() {
            continue;
        }
        number += 1;
        let mut reader = Reader {
            cursor: Cursor {
                toks: statement,
                pos: 0,
            },
            settings: &mut settings,
            temps: &mut temps,
            ctes: BTreeSet::new(),
            aliases: BTreeSet::new(),
            out: &mut out,
            statement: number,
            start: start_of(statement),
            depth: 0,
        };
        reader.statement();
    }
    out.temporary = temps;
    out
}

// --- tokens -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    String,
    Punct,
    Semicolon,
    /// `{{…}}`: a value, or a name part where a name stands.
    Placeholder,
}

#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    /// Whitespace or a comment directly before it (`# name` is not `#name`).
    spaced: bool,
}

/// The script's significant tokens, with `{{…}}` as one token.
fn tokens(sql: &str) -> Result<Vec<Tok<'_>>, crate::lexer::SqlError> {
    let raw = tokenize(sql)?;
    let mut out: Vec<Tok<'_>> = Vec::with_capacity(raw.len() / 2);
    let mut spaced = false;
    let mut i = 0;
    while i < raw.len() {
        let t = raw[i];
        if t.is_trivia() {
            spaced = true;
            i += 1;
            continue;
        }
        if t.text == "{" && raw.get(i + 1).is_some_and(|n| n.text == "{") {
            // The placeholder's end: the first `}}` (the submitter allows only names inside).
            if let Some(end) = sql[t.offset..].find("}}") {
                let stop = t.offset + end + 2;
                let text = &sql[t.offset..stop];
                if !text[2..text.len() - 2].contains(['{', ';', '\'', '"']) {
                    out.push(Tok {
                        kind: Kind::Placeholder,
                        text,
                        spaced,
                    });
                    spaced = false;
                    while i < raw.len() && raw[i].offset < stop {
                        i += 1;
                    }
                    continue;
                }
            }
        }
        let kind = match t.kind {
            TokenKind::Word => Kind::Word,
            TokenKind::QuotedIdent => Kind::Quoted,
            TokenKind::String => Kind::String,
            TokenKind::Semicolon => Kind::Semicolon,
            _ => Kind::Punct,
        };
        out.push(Tok {
            kind,
            text: t.text,
            spaced,
        });
        spaced = false;
        i += 1;
    }
    Ok(out)
}

struct Cursor<'t, 'a> {
    toks: &'t [Tok<'a>],
    pos: usize,
}

impl<'a> Cursor<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<Tok<'a>> {
        self.toks.get(self.pos + ahead).copied()
    }

    fn is_word_at(&self, ahead: usize, word: &str) -> bool {
        self.peek_at(ahead)
            .is_some_and(|t| t.kind == Kind::Word && t.text.eq_ignore_ascii_case(word))
    }

    fn is_punct_at(&self, ahead: usize, p: &str) -> bool {
        self.peek_at(ahead)
            .is_some_and(|t| t.kind == Kind::Punct && t.text == p)
    }

    fn eat(&mut self, word: &str) -> bool {
        let found = self.is_word_at(0, word);
        self.pos += usize::from(found);
        found
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let found = self.is_punct_at(0, p);
        self.pos += usize::from(found);
        found
    }

    /// A dotted name (`a`, `a.b`, `"A".b.c`, `#temp`, `{{schema}}.t`), each part folded unless
    /// `fold` is off for quoted parts; `None` (nothing consumed) when no name stands here.
    fn name_parts(&mut self, fold_quoted: bool) -> Option<Vec<Part>> {
        let start = self.pos;
        let mut parts = Vec::new();
        loop {
            let t = self.peek()?;
            let part = match t.kind {
                Kind::Word if !t.text.starts_with(|c: char| c.is_ascii_digit()) => Part {
                    text: t.text.to_lowercase(),
                    temp: false,
                },
                Kind::Quoted => {
                    let inner = t.text[1..t.text.len() - 1].replace("\"\"", "\"");
                    Part {
                        text: if fold_quoted {
                            inner.to_lowercase()
                        } else {
                            inner
                        },
                        temp: false,
                    }
                }
                Kind::Placeholder => Part {
                    text: t.text.to_owned(),
                    temp: false,
                },
                Kind::Punct if t.text == "#" && parts.is_empty() => {
                    let next = self
                        .peek_at(1)
                        .filter(|n| !n.spaced && n.kind == Kind::Word);
                    match next {
                        Some(n) => {
                            self.pos += 1;
                            Part {
                                text: format!("#{}", n.text.to_lowercase()),
                                temp: true,
                            }
                        }
                        None => {
                            self.pos = start;
                            return None;
                        }
                    }
                }
                _ => {
                    self.pos = start;
                    return None;
                }
            };
            self.pos += 1;
            parts.push(part);
            if self.is_punct_at(0, ".")
                && self.peek_at(1).is_some_and(|n| {
                    matches!(n.kind, Kind::Word | Kind::Quoted | Kind::Placeholder)
                })
            {
                self.pos += 1;
            } else {
                return Some(parts);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Part {
    text: String,
    /// `#name`: a temporary table by its name.
    temp: bool,
}

// --- names ---------------------------------------------------------------------------------------

/// Per-script session settings that change how names resolve.
#[derive(Debug, Clone)]
struct Settings {
    /// The first schema of `search_path`.
    schema: String,
    /// `enable_case_sensitive_identifier`: quoted identifiers keep their case.
    case_sensitive: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            schema: DEFAULT_SCHEMA.to_owned(),
            case_sensitive: false,
        }
    }
}

enum Resolved {
    Table(TableName),
    /// A temporary table (the script's own).
    Own,
    Invalid,
}

fn resolve(parts: &[Part], settings: &Settings, temps: &BTreeSet<String>) -> Resolved {
    match parts {
        [one] if one.temp || temps.contains(&one.text) => Resolved::Own,
        [one] => Resolved::Table(TableName(format!("{}.{}", settings.schema, one.text))),
        [_, _] | [_, _, _] if parts.iter().any(|p| p.temp) => Resolved::Invalid,
        [_, _] | [_, _, _] => Resolved::Table(TableName(
            parts
                .iter()
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>()
                .join("."),
        )),
        _ => Resolved::Invalid,
    }
}

// --- statements ----------------------------------------------------------------------------------

/// Words that end a relation and cannot be its alias.
const NOT_ALIAS: &[&str] = &[
    "where",
    "group",
    "order",
    "having",
    "limit",
    "offset",
    "union",
    "intersect",
    "except",
    "minus",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "set",
    "when",
    "window",
    "qualify",
    "returning",
    "values",
    "select",
    "from",
    "into",
    "with",
    "top",
    "fetch",
    "for",
    "partition",
    "pivot",
    "unpivot",
    "at",
];

struct Reader<'r, 't, 'a> {
    cursor: Cursor<'t, 'a>,
    settings: &'r mut Settings,
    temps: &'r mut BTreeSet<String>,
    /// CTE names of this statement (any level).
    ctes: BTreeSet<String>,
    /// Aliases and unqualified relation names of this statement: `FROM t x, x.items` navigates
    /// the SUPER column `items` of `x` (PartiQL), it names no table.
    aliases: BTreeSet<String>,
    out: &'r mut Analysis,
    statement: usize,
    /// The statement's start, for warnings.
    start: String,
    depth: usize,
}

/// A statement's first tokens on one line, at most 60 characters.
fn start_of(toks: &[Tok<'_>]) -> String {
    let mut start = String::new();
    for t in toks {
        if start.len() >= 60 {
            break;
        }
        if !start.is_empty() {
            start.push(' ');
        }
        start.push_str(t.text);
    }
    start
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(60)
        .collect()
}

/// What a table reference does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
}

impl<'a> Reader<'_, '_, 'a> {
    fn warn(&mut self, reason: impl Into<String>) {
        let start = self.start.clone();
        let reason = reason.into();
        if !self
            .out
            .warnings
            .iter()
            .any(|w| w.statement == self.statement && w.reason == reason)
        {
            self.out.warnings.push(Warning {
                statement: self.statement,
                start,
                reason,
            });
        }
    }

    fn record(&mut self, parts: &[Part], usage: Use) {
        if let [one] = parts {
            if usage == Use::Read && !one.temp && self.ctes.contains(&one.text) {
                return;
            }
        }
        match resolve(parts, self.settings, self.temps) {
            Resolved::Table(t) => {
                match usage {
                    Use::Read => self.out.reads.insert(t),
                    Use::Write => self.out.writes.insert(t),
                };
            }
            Resolved::Own => {}
            Resolved::Invalid => {
                let name: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
                let name: String = name.join(".").chars().take(100).collect();
                self.warn(format!(
                    "{name} is not a table name (at most database.schema.table)"
                ));
            }
        }
    }

    /// A table name where one must stand (after `INSERT INTO`, `UPDATE`, …), recorded.
    fn target(&mut self, usage: Use, after: &str) -> Option<Vec<Part>> {
        let parts = self.cursor.name_parts(!self.settings.case_sensitive);
        match &parts {
            Some(p) => self.record(p, usage),
            None => self.warn(format!("no table name after {after}")),
        }
        parts
    }

    fn statement(&mut self) {
        while self.cursor.is_word_at(0, "with") {
            self.cursor.pos += 1;
            self.ctes();
        }
        let Some(first) = self.cursor.peek() else {
            return;
        };
        if first.kind != Kind::Word {
            if first.kind == Kind::Punct && first.text == "(" {
                // `(select …) union (select …)`
                self.scan(true);
            } else {
                self.warn(format!("a statement cannot start with {:?}", first.text));
            }
            return;
        }
        let word = first.text.to_ascii_lowercase();
        self.cursor.pos += 1;
        match word.as_str() {
            "select" | "values" => self.scan(true),
            "insert" => {
                self.cursor.eat("into");
                self.target(Use::Write, "INSERT INTO");
                self.scan(true);
            }
            "update" => {
                self.cursor.eat("only");
                self.target(Use::Write, "UPDATE");
                self.scan(true);
            }
            "delete" => {
                self.cursor.eat("from");
                self.target(Use::Write, "DELETE FROM");
                self.alias();
                if self.cursor.eat("using") {
                    self.relations(true);
                }
                self.scan(true);
            }
            "merge" => {
                self.cursor.eat("into");
                self.target(Use::Write, "MERGE INTO");
                self.alias();
                if self.cursor.eat("using") {
                    self.relations(false);
                }
                self.scan(true);
            }
            "copy" => {
                self.target(Use::Write, "COPY");
            }
            "unload" => self.unload(),
            "truncate" => {
                self.cursor.eat("table");
                self.cursor.eat("only");
                self.name_list(Use::Write, "TRUNCATE");
            }
            "create" => self.create(),
            "drop" => self.drop(),
            "alter" => self.alter(),
            "refresh" => {
                if self.cursor.eat("materialized") && self.cursor.eat("view") {
                    self.target(Use::Write, "REFRESH MATERIALIZED VIEW");
                }
            }
            "set" => self.set(),
            "reset" => {
                if self.cursor.eat("search_path") {
                    self.settings.schema = DEFAULT_SCHEMA.to_owned();
                } else if self.cursor.eat("enable_case_sensitive_identifier") {
                    self.settings.case_sensitive = false;
                } else if self.cursor.eat("all") {
                    *self.settings = Settings::default();
                }
            }
            "declare" => self.scan(true),
            "explain" | "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "show"
            | "analyze" | "analyse" | "vacuum" | "grant" | "revoke" | "comment" | "lock"
            | "fetch" | "close" | "deallocate" | "cancel" => {}
            "call" => self.warn(
                "CALL runs a stored procedure, whose tables the analysis cannot see: declare them with reads = [...] and writes = [...] on the step",
            ),
            "execute" | "prepare" => self.warn(format!(
                "{} runs SQL the analysis cannot see: declare its tables with reads = [...] and writes = [...] on the step",
                word.to_uppercase()
            )),
            _ => self.warn(format!(
                "{} is not a statement the analysis reads: declare its tables with reads = [...] and writes = [...] on the step",
                word.to_uppercase()
            )),
        }
    }

    /// `name [(cols)] AS [[NOT] MATERIALIZED] (query) [, …]` after `WITH [RECURSIVE]`.
    fn ctes(&mut self) {
        self.cursor.eat("recursive");
        loop {
            let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) else {
                self.warn("no name after WITH");
                return;
            };
            if let [one] = parts.as_slice() {
                self.ctes.insert(one.text.clone());
            }
            if self.cursor.is_punct_at(0, "(") {
                self.cursor.pos += 1;
                self.nested(false);
            }
            if !self.cursor.eat("as") {
                self.warn("no AS after a WITH name");
                return;
            }
            self.cursor.eat("not");
            self.cursor.eat("materialized");
            if self.cursor.eat_punct("(") {
                self.nested(true);
            } else {
                self.warn("no ( after a WITH name's AS");
                return;
            }
            if !self.cursor.eat_punct(",") {
                return;
            }
        }
    }

    /// Reads the rest of a parenthesised part (after its `(`) with [`Reader::scan`], within
    /// the depth limit.
    fn nested(&mut self, query: bool) {
        if self.depth >= MAX_DEPTH {
            self.warn(format!(
                "nested more than {MAX_DEPTH} levels deep; the rest is not read"
            ));
            self.cursor.pos = self.cursor.toks.len();
            return;
        }
        self.depth += 1;
        self.scan(query);
        self.depth -= 1;
    }

    /// Reads up to (and past) the `)` that closes the current level, or to the end: relations
    /// after `FROM` and `JOIN` (in a query), subqueries, `SELECT … INTO`.
    fn scan(&mut self, query: bool) {
        while let Some(t) = self.cursor.peek() {
            match t.kind {
                Kind::Punct if t.text == ")" => {
                    self.cursor.pos += 1;
                    return;
                }
                Kind::Punct if t.text == "(" => {
                    self.cursor.pos += 1;
                    let inner = self.starts_query();
                    self.nested(inner);
                }
                Kind::Word if query => {
                    let word = t.text.to_ascii_lowercase();
                    self.cursor.pos += 1;
                    match word.as_str() {
                        // `a IS [NOT] DISTINCT FROM b` compares values.
                        "from" if !self.previous_is("distinct") => self.relations(true),
                        "join" => self.relations(false),
                        "with" if self.cte_follows() => self.ctes(),
                        "into" => self.select_into(),
                        _ => {}
                    }
                }
                _ => self.cursor.pos += 1,
            }
        }
    }

    /// Whether the token before the one just read is `word`.
    fn previous_is(&self, word: &str) -> bool {
        self.cursor.pos >= 2 && {
            let t = self.cursor.toks[self.cursor.pos - 2];
            t.kind == Kind::Word && t.text.eq_ignore_ascii_case(word)
        }
    }

    /// Whether the tokens after a `(` start a query.
    fn starts_query(&self) -> bool {
        ["select", "with", "values"]
            .iter()
            .any(|w| self.cursor.is_word_at(0, w))
            || (self.cursor.is_punct_at(0, "(") && {
                // `((select …) union (select …))`
                let mut ahead = 0;
                while self.cursor.is_punct_at(ahead, "(") {
                    ahead += 1;
                }
                self.cursor.is_word_at(ahead, "select") || self.cursor.is_word_at(ahead, "with")
            })
    }

    /// `WITH name AS (` or `WITH name (cols) AS (` ahead (not `WITH NO SCHEMA BINDING`).
    fn cte_follows(&self) -> bool {
        let at = usize::from(self.cursor.is_word_at(0, "recursive"));
        self.cursor
            .peek_at(at)
            .is_some_and(|t| matches!(t.kind, Kind::Word | Kind::Quoted))
            && (self.cursor.is_word_at(at + 1, "as") || self.cursor.is_punct_at(at + 1, "("))
    }

    /// `SELECT … INTO [TEMP | TEMPORARY] [TABLE] name`.
    fn select_into(&mut self) {
        let temp = self.temp_keyword();
        self.cursor.eat("unlogged");
        self.cursor.eat("table");
        self.created(temp, "SELECT … INTO");
    }

    /// `TEMP`, `TEMPORARY`, `LOCAL TEMP`.
    fn temp_keyword(&mut self) -> bool {
        let local = self.cursor.is_word_at(0, "local")
            && (self.cursor.is_word_at(1, "temp") || self.cursor.is_word_at(1, "temporary"));
        if local {
            self.cursor.pos += 1;
        }
        self.cursor.eat("temp") || self.cursor.eat("temporary")
    }

    /// A table the statement creates: the script's own when temporary.
    fn created(&mut self, temp: bool, after: &str) {
        let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) else {
            self.warn(format!("no table name after {after}"));
            return;
        };
        match parts.as_slice() {
            [one] if temp || one.temp => {
                self.temps.insert(one.text.clone());
            }
            _ if temp => {
                let name: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
                let name: String = name.join(".").chars().take(100).collect();
                self.warn(format!("a temporary table cannot have a schema: {name}"));
            }
            _ => self.record(&parts, Use::Write),
        }
    }

    /// A relation list after `FROM` (`comma`) or one relation after `JOIN` / `USING`.
    fn relations(&mut self, comma: bool) {
        loop {
            self.cursor.eat("only");
            self.cursor.eat("lateral");
            if self.cursor.eat_punct("(") {
                // A subquery, or a parenthesised join: `(a join b on …)`.
                if self.starts_query() {
                    self.nested(true);
                } else if self.depth < MAX_DEPTH {
                    self.depth += 1;
                    self.relations(true);
                    self.scan(true);
                    self.depth -= 1;
                } else {
                    self.nested(true);
                }
            } else if let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) {
                if self.cursor.is_punct_at(0, "(") {
                    // A function in FROM (`generate_series(…)`): its arguments are values.
                    self.cursor.pos += 1;
                    self.nested(false);
                } else if parts.len() > 1 && self.aliases.contains(&parts[0].text) {
                    // `FROM t x, x.items i`: the SUPER column of a relation already in FROM.
                } else {
                    if let [one] = parts.as_slice() {
                        self.aliases.insert(one.text.clone());
                    }
                    self.record(&parts, Use::Read);
                }
            } else {
                return;
            }
            self.alias();
            if !(comma && self.cursor.eat_punct(",")) {
                return;
            }
        }
    }

    /// `[AS] alias [(columns)]`.
    fn alias(&mut self) {
        let explicit = self.cursor.eat("as");
        let is_alias = self.cursor.peek().is_some_and(|t| match t.kind {
            Kind::Quoted => true,
            Kind::Word => explicit || !NOT_ALIAS.iter().any(|w| t.text.eq_ignore_ascii_case(w)),
            _ => false,
        });
        if is_alias {
            let start = self.cursor.pos;
            if let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) {
                self.aliases.insert(parts[0].text.clone());
            }
            self.cursor.pos = start + 1;
            if self.cursor.is_punct_at(0, "(") && !self.starts_query_after_paren() {
                self.cursor.pos += 1;
                self.nested(false);
            }
        }
    }

    fn starts_query_after_paren(&self) -> bool {
        self.cursor.is_word_at(1, "select") || self.cursor.is_word_at(1, "with")
    }

    /// Comma-separated table names (`DROP TABLE a, b`, `TRUNCATE a, b`).
    fn name_list(&mut self, usage: Use, after: &str) {
        loop {
            let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) else {
                self.warn(format!("no table name after {after}"));
                return;
            };
            if usage == Use::Write {
                if let [one] = parts.as_slice() {
                    if one.temp || self.temps.contains(&one.text) {
                        if after.starts_with("DROP") {
                            self.temps.remove(&one.text);
                        }
                        if !self.cursor.eat_punct(",") {
                            return;
                        }
                        continue;
                    }
                }
            }
            self.record(&parts, usage);
            if !self.cursor.eat_punct(",") {
                return;
            }
        }
    }

    fn create(&mut self) {
        if self.cursor.eat("or") {
            self.cursor.eat("replace");
        }
        let temp = self.temp_keyword();
        self.cursor.eat("external");
        if self.cursor.eat("table") {
            let _ = self.cursor.eat("if") && self.cursor.eat("not") && self.cursor.eat("exists");
            self.created(temp, "CREATE TABLE");
            if self.cursor.eat("like") {
                self.target(Use::Read, "LIKE");
            } else if self.cursor.is_punct_at(0, "(") && self.cursor.is_word_at(1, "like") {
                self.cursor.pos += 2;
                self.target(Use::Read, "LIKE");
            }
            // Column definitions are values; `AS query` is read.
            self.scan(true);
        } else if self.cursor.eat("view") {
            self.target(Use::Write, "CREATE VIEW");
            self.scan(true);
        } else if self.cursor.eat("materialized") && self.cursor.eat("view") {
            self.target(Use::Write, "CREATE MATERIALIZED VIEW");
            self.scan(true);
        }
        // Schemas, functions, procedures, users, libraries, …: no table.
    }

    fn drop(&mut self) {
        let what = if self.cursor.eat("table") {
            "DROP TABLE"
        } else if self.cursor.eat("view") {
            "DROP VIEW"
        } else if self.cursor.eat("materialized") && self.cursor.eat("view") {
            "DROP MATERIALIZED VIEW"
        } else {
            return;
        };
        let _ = self.cursor.eat("if") && self.cursor.eat("exists");
        self.name_list(Use::Write, what);
    }

    fn alter(&mut self) {
        if !self.cursor.eat("table") {
            if self.cursor.eat("materialized") && self.cursor.eat("view") || self.cursor.eat("view")
            {
                self.target(Use::Write, "ALTER VIEW");
            }
            return;
        }
        let _ = self.cursor.eat("if") && self.cursor.eat("exists");
        let Some(parts) = self.cursor.name_parts(!self.settings.case_sensitive) else {
            self.warn("no table name after ALTER TABLE");
            return;
        };
        let own = matches!(resolve(&parts, self.settings, self.temps), Resolved::Own);
        self.record(&parts, Use::Write);
        if self.cursor.eat("rename") && self.cursor.eat("to") {
            let Some(new) = self.cursor.name_parts(!self.settings.case_sensitive) else {
                self.warn("no table name after RENAME TO");
                return;
            };
            if own {
                if let ([old], [new]) = (parts.as_slice(), new.as_slice()) {
                    self.temps.remove(&old.text);
                    self.temps.insert(new.text.clone());
                }
                return;
            }
            // The new name stays in the table's schema.
            let mut renamed = parts.clone();
            let last = renamed.len() - 1;
            renamed[last] = new[new.len() - 1].clone();
            if parts.len() == 1 {
                // Unqualified: resolve the new name as the old one was (not as a temp table).
                if let Resolved::Table(t) = resolve(&renamed, self.settings, &BTreeSet::new()) {
                    self.out.writes.insert(t);
                }
            } else {
                self.record(&renamed, Use::Write);
            }
        } else if self.cursor.eat("append") && self.cursor.eat("from") {
            self.target(Use::Write, "APPEND FROM");
        }
    }

    /// `SET search_path TO a, b` / `= a`, `SET enable_case_sensitive_identifier TO true`.
    fn set(&mut self) {
        self.cursor.eat("session");
        self.cursor.eat("local");
        if self.cursor.eat("search_path") {
            if !(self.cursor.eat("to") || self.cursor.eat_punct("=")) {
                return;
            }
            if self.cursor.eat("default") {
                self.settings.schema = DEFAULT_SCHEMA.to_owned();
                return;
            }
            while let Some(t) = self.cursor.peek() {
                let entry = match t.kind {
                    Kind::Word => t.text.to_lowercase(),
                    Kind::Quoted | Kind::String if t.text.len() >= 2 => {
                        t.text[1..t.text.len() - 1].to_lowercase()
                    }
                    _ => return,
                };
                self.cursor.pos += 1;
                if entry != "$user" {
                    self.settings.schema = entry;
                    return;
                }
                if !self.cursor.eat_punct(",") {
                    return;
                }
            }
        } else if self.cursor.eat("enable_case_sensitive_identifier")
            && (self.cursor.eat("to") || self.cursor.eat_punct("="))
        {
            let on = self.cursor.peek().is_some_and(|t| {
                let v = t.text.trim_matches('\'').to_ascii_lowercase();
                matches!(v.as_str(), "true" | "on" | "1" | "yes")
            });
            self.settings.case_sensitive = on;
        }
    }

    /// `UNLOAD ('query') TO …`: the query inside the literal is read.
    fn unload(&mut self) {
        let literal = self
            .cursor
            .is_punct_at(0, "(")
            .then(|| self.cursor.peek_at(1))
            .flatten()
            .filter(|t| t.kind == Kind::String);
        let Some(literal) = literal else {
            self.warn("no ('query') after UNLOAD");
            return;
        };
        let query = unescape(literal.text);
        let toks = match tokens(&query) {
            Ok(t) => t,
            Err(e) => {
                self.warn(format!("the UNLOAD query cannot be read: {e}"));
                return;
            }
        };
        if self.depth >= MAX_DEPTH {
            self.warn(format!(
                "nested more than {MAX_DEPTH} levels deep; the rest is not read"
            ));
            return;
        }
        let statement = self.statement;
        let mut inner = Reader {
            cursor: Cursor {
                toks: &toks,
                pos: 0,
            },
            settings: &mut *self.settings,
            temps: &mut *self.temps,
            ctes: BTreeSet::new(),
            aliases: BTreeSet::new(),
            out: &mut *self.out,
            statement,
            start: self.start.clone(),
            depth: self.depth + 1,
        };
        let before = inner.out.writes.clone();
        inner.statement();
        if inner.out.writes != before {
            // An UNLOAD query is a SELECT: a write inside it is a misreading, not a write.
            inner.out.writes = before;
            inner.warn("the UNLOAD query is not a SELECT");
        }
    }
}

/// A string literal's value: quotes removed, `''` and `\x` resolved (Redshift's escapes); a
/// dollar-quoted body as it is.
fn unescape(literal: &str) -> String {
    if let Some(rest) = literal.strip_prefix('$') {
        let tag_end = rest.find('$').map_or(literal.len(), |i| i + 2);
        let tag = &literal[..tag_end.min(literal.len())];
        return literal
            .strip_prefix(tag)
            .and_then(|s| s.strip_suffix(tag))
            .unwrap_or("")
            .to_owned();
    }
    let body = literal
        .strip_prefix(['E', 'e'])
        .unwrap_or(literal)
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or("");
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &BTreeSet<TableName>) -> Vec<&str> {
        set.iter().map(TableName::as_str).collect()
    }

    /// (reads, writes) of a script that must read without warnings.
    fn rw(sql: &str) -> (Vec<String>, Vec<String>) {
        let a = analyze(sql);
        assert!(a.warnings.is_empty(), "{sql}: {:?}", a.warnings);
        (
            names(&a.reads).iter().map(|s| s.to_string()).collect(),
            names(&a.writes).iter().map(|s| s.to_string()).collect(),
        )
    }

    fn check(sql: &str, reads: &[&str], writes: &[&str]) {
        let (r, w) = rw(sql);
        assert_eq!((r, w), (strings(reads), strings(writes)), "{sql}");
    }

    fn strings(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn select_reads_every_relation_in_from_join_and_subqueries() {
        check(
            "select a.x, (select max(y) from s.b) from a join c on a.k = c.k left join d using (k) \
             where exists (select 1 from e where e.k = a.k) and a.k in (select k from f)",
            &[
                "public.a", "s.b", "public.c", "public.d", "public.e", "public.f",
            ],
            &[],
        );
        check(
            "select * from a, b x, c as y, (select 1 from d) z",
            &["public.a", "public.b", "public.c", "public.d"],
            &[],
        );
        check(
            "select * from (a join b on a.k = b.k) cross join lateral (select 1 from c) z",
            &["public.a", "public.b", "public.c"],
            &[],
        );
    }

    #[test]
    fn from_inside_functions_and_distinct_from_are_values() {
        check(
            "select extract(year from d), substring(s from 2 for 3), trim(both ' ' from s) \
             from t where a is distinct from b and c is not distinct from d",
            &["public.t"],
            &[],
        );
        check(
            "select * from generate_series(1, 3) g(n), unnest(x)",
            &[],
            &[],
        );
    }

    #[test]
    fn cte_names_are_the_statements_own() {
        check(
            "with recent (k) as (select k from orders), top as materialized (select * from recent) \
             insert into report select * from top join customers using (k)",
            &["public.customers", "public.orders"],
            &["public.report"],
        );
        // A CTE name is local to its statement: the next statement's `recent` is a table.
        check(
            "with recent as (select 1) select * from recent; select * from recent",
            &["public.recent"],
            &[],
        );
    }

    #[test]
    fn dml_targets_are_writes() {
        check("insert into s.t (a, b) values (1, 2)", &[], &["s.t"]);
        check(
            "insert into t select * from u",
            &["public.u"],
            &["public.t"],
        );
        check(
            "update t set a = s.a from s where t.k = s.k",
            &["public.s"],
            &["public.t"],
        );
        check(
            "update only t as x set a = (select max(a) from u)",
            &["public.u"],
            &["public.t"],
        );
        check(
            "delete from t using u, v where t.k = u.k",
            &["public.u", "public.v"],
            &["public.t"],
        );
        check(
            "delete t where k in (select k from u)",
            &["public.u"],
            &["public.t"],
        );
        check(
            "merge into tgt using (select * from src where d = {{run_date}}) s on tgt.k = s.k \
             when matched then update set v = s.v when not matched then insert (k, v) values (s.k, s.v)",
            &["public.src"],
            &["public.tgt"],
        );
        check(
            "merge into tgt t using src s on t.k = s.k when matched then delete",
            &["public.src"],
            &["public.tgt"],
        );
    }

    #[test]
    fn copy_writes_and_unload_reads_its_query() {
        check(
            "copy sales.raw (a, b) from 's3://bucket/prefix/' iam_role default format as csv",
            &[],
            &["sales.raw"],
        );
        check(
            "unload ('select a, split_part(b, \\'-\\', 1) from s.totals join dim on true where x = ''y''') \
             to 's3://b/p/' iam_role default",
            &["public.dim", "s.totals"],
            &[],
        );
        check(
            "unload ($q$select * from t$q$) to 's3://b/p'",
            &["public.t"],
            &[],
        );
        check(
            "unload ('select * from t') to 's3://b/p'; unload ($$select * from u$$) to 's3://b/q'",
            &["public.t", "public.u"],
            &[],
        );
        let bad = analyze("unload ('select * from ''unterminated') to 's3://b/p'");
        assert_eq!(bad.warnings.len(), 1, "{bad:?}");
        assert!(bad.warnings[0]
            .reason
            .starts_with("the UNLOAD query cannot be read"));
    }

    #[test]
    fn ddl_writes_the_table_it_creates_drops_alters_or_truncates() {
        check(
            "create table if not exists s.t (a int, b int references u(a)) diststyle even",
            &[],
            &["s.t"],
        );
        check(
            "create table t as select * from u",
            &["public.u"],
            &["public.t"],
        );
        check(
            "create table t (like u including defaults)",
            &["public.u"],
            &["public.t"],
        );
        check(
            "create or replace view v as select * from u with no schema binding",
            &["public.u"],
            &["public.v"],
        );
        check(
            "create materialized view mv auto refresh yes as select * from u",
            &["public.u"],
            &["public.mv"],
        );
        check("refresh materialized view mv", &[], &["public.mv"]);
        check(
            "drop table if exists a, s.b cascade",
            &[],
            &["public.a", "s.b"],
        );
        check("drop view v", &[], &["public.v"]);
        check("alter table s.t rename to u", &[], &["s.t", "s.u"]);
        check("alter table t rename column a to b", &[], &["public.t"]);
        check("alter table t add column c int", &[], &["public.t"]);
        check(
            "alter table t append from u",
            &[],
            &["public.t", "public.u"],
        );
        check(
            "truncate table a; truncate b, c",
            &[],
            &["public.a", "public.b", "public.c"],
        );
        check("select a into s.t from u", &["public.u"], &["s.t"]);
    }

    #[test]
    fn temporary_tables_are_the_scripts_own() {
        let a = analyze(
            "create temp table stg (a int); insert into stg values (1); \
             create temporary table stg2 as select * from src; \
             select * into temp stg3 from stg2; select * into #stg4 from stg3; \
             create table #stg5 (a int); \
             update target set a = s.a from stg s; insert into target select * from #stg4 join public.stg p on true; \
             alter table stg2 rename to stg6; insert into target select * from stg6; drop table stg, #stg5",
        );
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert_eq!(names(&a.reads), ["public.src", "public.stg"]);
        assert_eq!(names(&a.writes), ["public.target"]);
        assert_eq!(
            a.temporary.iter().map(String::as_str).collect::<Vec<_>>(),
            ["#stg4", "stg3", "stg6"]
        );
    }

    #[test]
    fn names_fold_as_redshift_folds_them() {
        check(
            "select * from Sales.\"Orders\" join \"My \"\"odd\"\" Table\" on true",
            &["public.my \"odd\" table", "sales.orders"],
            &[],
        );
        check(
            "set enable_case_sensitive_identifier to true; select * from \"Orders\" join Items on true",
            &["public.Orders", "public.items"],
            &[],
        );
        check("select * from dev.sales.orders", &["dev.sales.orders"], &[]);
        check(
            "set search_path to '$user', staging, public; insert into t select * from public.u; \
             reset search_path; insert into v select 1",
            &["public.u"],
            &["public.v", "staging.t"],
        );
        assert_eq!(
            TableName::parse("Sales.Orders").unwrap().as_str(),
            "sales.orders"
        );
        assert_eq!(
            TableName::parse("orders").unwrap().as_str(),
            "public.orders"
        );
        assert!(TableName::parse("a.b.c.d").is_err());
        assert!(TableName::parse("#temp").is_err());
        assert!(TableName::parse("orders; drop").is_err());
        assert!(TableName::parse("").is_err());
    }

    #[test]
    fn super_navigation_in_from_names_no_table() {
        check(
            "select o.id from sales.customers c, c.orders o, lineitems, lineitems.parts p join s.t x on true",
            &["public.lineitems", "s.t", "sales.customers"],
            &[],
        );
    }

    #[test]
    fn placeholders_never_stop_the_analysis() {
        check(
            "delete from t where d = {{run_date}}; insert into t select * from {{schema}}.u where d = {{ run_date }}",
            &["{{schema}}.u"],
            &["public.t"],
        );
    }

    #[test]
    fn statements_it_cannot_read_are_named_warnings_and_the_rest_is_read() {
        let a = analyze("insert into a select 1;\ncall refresh_all();\nfrobnicate t;\ninsert into ( select 1);\nselect * from b");
        assert_eq!(names(&a.writes), ["public.a"]);
        assert_eq!(names(&a.reads), ["public.b"]);
        let got: Vec<(usize, &str)> = a
            .warnings
            .iter()
            .map(|w| (w.statement, w.start.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "call refresh_all ( )"),
                (3, "frobnicate t"),
                (4, "insert into ( select 1 )")
            ]
        );
        assert!(a.warnings[0]
            .reason
            .starts_with("CALL runs a stored procedure"));
        assert_eq!(a.warnings[2].reason, "no table name after INSERT INTO");
        assert_eq!(
            a.warnings[1].to_string(),
            "statement 3 (frobnicate t): FROBNICATE is not a statement the analysis reads: declare its tables with reads = [...] and writes = [...] on the step"
        );
        let unlexable = analyze("select 'abc");
        assert_eq!(unlexable.warnings.len(), 1);
        assert_eq!(unlexable.warnings[0].statement, 0);
    }

    #[test]
    fn a_warning_inside_an_unload_names_the_unload_statement() {
        let a = analyze("select 1; unload ('call p()') to 's3://b/'; select 1 from a.b.c.d");
        let got: Vec<(usize, &str)> = a
            .warnings
            .iter()
            .map(|w| (w.statement, w.start.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "unload ( 'call p()' ) to 's3://b/'"),
                (3, "select 1 from a . b . c . d")
            ]
        );
        assert_eq!(
            a.warnings[1].reason,
            "a.b.c.d is not a table name (at most database.schema.table)"
        );
    }

    #[test]
    fn statements_that_touch_no_table_are_silent() {
        check(
            "begin; set datestyle to iso; analyze t; vacuum t; grant select on t to u; comment on table t is 'x'; \
             create schema if not exists s; create function f() returns int stable as $$ select 1 $$ language sql; \
             drop schema s; show search_path; explain select * from t; commit; end; values (1)",
            &[],
            &[],
        );
    }

    #[test]
    fn statement_numbers_match_the_splitter() {
        let sql = "select 1; ; -- nothing\n; select * from t; /* x */ call p()";
        let a = analyze(sql);
        assert_eq!(crate::lexer::split_statements(sql).unwrap().len(), 3);
        assert_eq!(a.warnings[0].statement, 3);
    }

    #[test]
    fn deep_nesting_is_a_warning_not_a_stack_overflow() {
        let deep = format!("select * from {}t{}", "(".repeat(5000), ")".repeat(5000));
        let a = analyze(&deep);
        assert!(a.warnings[0].reason.starts_with("nested more than"));
        let withs = "with a as (select 1) ".repeat(20_000) + "select 1";
        assert!(analyze(&withs).warnings.is_empty());
    }

    #[test]
    fn the_analysis_never_panics_on_prefixes_of_real_scripts() {
        let sql = "with c as (select * from s.a where x = {{run_date}}) merge into t using c on t.k = c.k \
                   when matched then update set v = c.v; unload ('select * from \"Q\"') to 's3://b/'; \
                   create temp table #x (like y); alter table t rename to u; drop table if exists a, b";
        for end in 0..=sql.len() {
            if sql.is_char_boundary(end) {
                let _ = analyze(&sql[..end]);
            }
        }
    }
}
