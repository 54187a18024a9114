//! Redshift's transaction rules, statement by statement: which statements commit the transaction
//! they run in, and which Redshift refuses inside a transaction block. A Data API
//! `BatchExecuteStatement` in its default `TRANSACTION` mode is one transaction block, and so is
//! every step of a pipeline; a single `ExecuteStatement` and an `AUTO_COMMIT` batch are not.
//!
//! A statement is classified by its leading words, read with the crate's [`lexer`](crate::lexer):
//! comments and whitespace are skipped, case does not matter, and nothing inside a string
//! literal, a quoted identifier or a comment is ever read as a word. Each rule cites the page of
//! the Amazon Redshift Database Developer Guide that states it.
//!
//! What leading words cannot tell is not classified: whether a table is external (`DROP TABLE`,
//! `ALTER TABLE`, `INSERT` and `GRANT` on an external table or schema are refused in a transaction
//! block too: r_DROP_TABLE, r_ALTER_TABLE, r_INSERT_external_table, r_GRANT), and a `CALL` of a
//! stored procedure that issues `TRUNCATE` (stored-procedure-transaction-management).

use crate::lexer::{tokenize, SqlError, Token, TokenKind};

/// The Developer Guide's pages, under this address.
const GUIDE: &str = "https://docs.aws.amazon.com/redshift/latest/dg/";

/// A Redshift command with a transaction rule, and the page that states the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// The command as Redshift names it in its error messages, e.g. `VACUUM`.
    pub name: &'static str,
    /// The page's file name in the Developer Guide, e.g. `r_VACUUM_command.html`.
    pub page: &'static str,
}

impl Command {
    /// The page's address.
    pub fn url(&self) -> String {
        format!("{GUIDE}{}", self.page)
    }

    /// The error Redshift answers when the command runs inside a transaction block, e.g.
    /// `ERROR: VACUUM cannot run inside a transaction block` (SQLSTATE 25001, the form PostgreSQL's
    /// `PreventInTransactionBlock` gives and Redshift keeps; texts seen from Redshift:
    /// `VACUUM`, `CREATE EXTERNAL TABLE`, `CREATE LIBRARY`, `ALTER TABLE ALTER COLUMN`).
    pub fn refusal(&self) -> String {
        format!("ERROR: {} cannot run inside a transaction block", self.name)
    }
}

/// `TRUNCATE`: "commits the transaction in which it is run; therefore, you can't roll back a
/// TRUNCATE operation, and a TRUNCATE command may commit other operations when it commits itself".
pub const TRUNCATE: Command = Command {
    name: "TRUNCATE",
    page: "r_TRUNCATE.html",
};

/// "You can't run VACUUM within a transaction block (BEGIN ... END)."
pub const VACUUM: Command = Command {
    name: "VACUUM",
    page: "r_VACUUM_command.html",
};

/// "You can't run ALTER TABLE APPEND within a transaction block (BEGIN ... END)."
pub const ALTER_TABLE_APPEND: Command = Command {
    name: "ALTER TABLE APPEND",
    page: "r_ALTER_TABLE_APPEND.html",
};

/// `ALTER COLUMN column_name TYPE`: "You can't alter columns within a transaction block
/// (BEGIN ... END)."
pub const ALTER_TABLE_ALTER_COLUMN: Command = Command {
    name: "ALTER TABLE ALTER COLUMN",
    page: "r_ALTER_TABLE.html",
};

/// "You can't run CREATE EXTERNAL TABLE inside a transaction (BEGIN … END)."
pub const CREATE_EXTERNAL_TABLE: Command = Command {
    name: "CREATE EXTERNAL TABLE",
    page: "r_CREATE_EXTERNAL_TABLE.html",
};

/// "You can't run CREATE DATABASE within a transaction block (BEGIN ... END)."
pub const CREATE_DATABASE: Command = Command {
    name: "CREATE DATABASE",
    page: "r_CREATE_DATABASE.html",
};

/// "You can't run DROP DATABASE within a transaction block (BEGIN ... END)."
pub const DROP_DATABASE: Command = Command {
    name: "DROP DATABASE",
    page: "r_DROP_DATABASE.html",
};

/// `ALTER DATABASE … ISOLATION LEVEL`: "You can't alter the isolation level within a transaction
/// block."
pub const ALTER_DATABASE_ISOLATION: Command = Command {
    name: "ALTER DATABASE",
    page: "r_ALTER_DATABASE.html",
};

/// "CREATE LIBRARY can't be run inside a transaction block (BEGIN … END)."
pub const CREATE_LIBRARY: Command = Command {
    name: "CREATE LIBRARY",
    page: "r_CREATE_LIBRARY.html",
};

/// "DROP LIBRARY can't be run inside a transaction block (BEGIN … END)."
pub const DROP_LIBRARY: Command = Command {
    name: "DROP LIBRARY",
    page: "r_DROP_LIBRARY.html",
};

/// Every command Redshift refuses inside a transaction block that [`classify`] recognises.
pub const NOT_IN_TRANSACTION_BLOCK: &[Command] = &[
    VACUUM,
    ALTER_TABLE_APPEND,
    ALTER_TABLE_ALTER_COLUMN,
    CREATE_EXTERNAL_TABLE,
    CREATE_DATABASE,
    DROP_DATABASE,
    ALTER_DATABASE_ISOLATION,
    CREATE_LIBRARY,
    DROP_LIBRARY,
];

/// What Redshift does with a statement's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Runs inside the transaction like any statement: rolled back with it.
    Transactional,
    /// Commits the transaction it runs in, itself and what ran before it ([`TRUNCATE`]).
    Commits(Command),
    /// Refused inside a transaction block (one of [`NOT_IN_TRANSACTION_BLOCK`]).
    NotInTransactionBlock(Command),
}

/// Classifies one statement (as [`crate::lexer::split_statements`] gives it) by its leading words.
pub fn classify(statement: &str) -> Result<Rule, SqlError> {
    let tokens = tokenize(statement)?;
    let mut words = Words {
        tokens: tokens
            .iter()
            .take_while(|t| t.kind != TokenKind::Semicolon)
            .filter(|t| !t.is_trivia())
            .copied()
            .collect(),
        at: 0,
    };
    let rule = if words.keyword("truncate") {
        Rule::Commits(TRUNCATE)
    } else if words.keyword("vacuum") {
        Rule::NotInTransactionBlock(VACUUM)
    } else if words.keyword("alter") {
        alter(&mut words)
    } else if words.keyword("create") {
        let _ = words.keyword("or") && words.keyword("replace");
        if words.keyword("external") && words.keyword("table") {
            Rule::NotInTransactionBlock(CREATE_EXTERNAL_TABLE)
        } else if words.keyword("database") {
            Rule::NotInTransactionBlock(CREATE_DATABASE)
        } else if words.keyword("library") {
            Rule::NotInTransactionBlock(CREATE_LIBRARY)
        } else {
            Rule::Transactional
        }
    } else if words.keyword("drop") {
        if words.keyword("database") {
            Rule::NotInTransactionBlock(DROP_DATABASE)
        } else if words.keyword("library") {
            Rule::NotInTransactionBlock(DROP_LIBRARY)
        } else {
            Rule::Transactional
        }
    } else {
        Rule::Transactional
    };
    Ok(rule)
}

/// `ALTER TABLE t APPEND …`, `ALTER TABLE t ALTER [COLUMN] c TYPE …`, `ALTER DATABASE d …
/// ISOLATION LEVEL …` (the word `ALTER` already read).
fn alter(words: &mut Words<'_>) -> Rule {
    if words.keyword("table") {
        if !words.name() {
            return Rule::Transactional;
        }
        if words.keyword("append") {
            return Rule::NotInTransactionBlock(ALTER_TABLE_APPEND);
        }
        if words.keyword("alter") {
            let _ = words.keyword("column");
            if words.name_part() && words.keyword("type") {
                return Rule::NotInTransactionBlock(ALTER_TABLE_ALTER_COLUMN);
            }
        }
        return Rule::Transactional;
    }
    if words.keyword("database") && words.name_part() {
        let rest = &words.tokens[words.at..];
        let isolation = rest
            .windows(2)
            .any(|pair| is_keyword(&pair[0], "isolation") && is_keyword(&pair[1], "level"));
        if isolation {
            return Rule::NotInTransactionBlock(ALTER_DATABASE_ISOLATION);
        }
    }
    Rule::Transactional
}

fn is_keyword(token: &Token<'_>, word: &str) -> bool {
    token.kind == TokenKind::Word && token.text.eq_ignore_ascii_case(word)
}

/// The statement's tokens without whitespace and comments, read from the front.
struct Words<'a> {
    tokens: Vec<Token<'a>>,
    at: usize,
}

impl Words<'_> {
    /// Reads `word` (any case) if it comes next.
    fn keyword(&mut self, word: &str) -> bool {
        let found = self
            .tokens
            .get(self.at)
            .is_some_and(|t| is_keyword(t, word));
        if found {
            self.at += 1;
        }
        found
    }

    /// Reads one identifier (a word or a quoted identifier) if one comes next.
    fn name_part(&mut self) -> bool {
        let found = self
            .tokens
            .get(self.at)
            .is_some_and(|t| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent));
        if found {
            self.at += 1;
        }
        found
    }

    /// Reads a possibly qualified name (`t`, `s.t`, `"S"."t"`, `db.s.t`) if one comes next.
    fn name(&mut self) -> bool {
        if !self.name_part() {
            return false;
        }
        while self
            .tokens
            .get(self.at)
            .is_some_and(|t| t.kind == TokenKind::Punct && t.text == ".")
        {
            self.at += 1;
            if !self.name_part() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(sql: &str) -> Rule {
        classify(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn truncate_commits_in_every_spelling() {
        for sql in [
            "TRUNCATE TABLE t",
            "truncate t",
            "Truncate Table sales.\"Fact\"",
            "  -- empty the staging table\n  truncate stage",
            "/* a /* nested */ comment */ TRUNCATE TABLE s.t",
            "truncate my_materialized_view",
        ] {
            assert_eq!(rule(sql), Rule::Commits(TRUNCATE), "{sql}");
        }
    }

    #[test]
    fn each_refused_command_is_recognised() {
        let cases = [
            ("VACUUM", VACUUM),
            ("vacuum delete only sales to 75 percent", VACUUM),
            ("VACUUM FULL; ", VACUUM),
            ("alter table target append from source", ALTER_TABLE_APPEND),
            (
                "ALTER TABLE \"S\".\"T\" APPEND FROM s.src IGNOREEXTRA",
                ALTER_TABLE_APPEND,
            ),
            (
                "alter table t alter column c type varchar(300)",
                ALTER_TABLE_ALTER_COLUMN,
            ),
            (
                "ALTER TABLE s.t ALTER \"Name\" TYPE VARCHAR(20)",
                ALTER_TABLE_ALTER_COLUMN,
            ),
            (
                "create external table spectrum.sales (id int) stored as parquet location 's3://b/p/'",
                CREATE_EXTERNAL_TABLE,
            ),
            ("CREATE DATABASE tickit", CREATE_DATABASE),
            ("drop database tickit", DROP_DATABASE),
            (
                "ALTER DATABASE sampledb ISOLATION LEVEL SNAPSHOT",
                ALTER_DATABASE_ISOLATION,
            ),
            (
                "create or replace library f_urlparse language plpythonu from 's3://b/u.zip'",
                CREATE_LIBRARY,
            ),
            ("CREATE LIBRARY l LANGUAGE plpythonu FROM 'x'", CREATE_LIBRARY),
            ("drop library f_urlparse", DROP_LIBRARY),
        ];
        for (sql, command) in cases {
            assert_eq!(rule(sql), Rule::NotInTransactionBlock(command), "{sql}");
        }
        for command in NOT_IN_TRANSACTION_BLOCK {
            assert!(
                cases.iter().any(|(_, c)| c == command),
                "{} has no case",
                command.name
            );
        }
    }

    #[test]
    fn comments_before_the_command_are_skipped() {
        assert_eq!(
            rule("-- weekly maintenance\n/* sorted */\n  VaCuUm sales"),
            Rule::NotInTransactionBlock(VACUUM)
        );
    }

    #[test]
    fn ordinary_statements_are_transactional() {
        for sql in [
            "delete from t",
            "select 'truncate t'",
            "insert into log values ('VACUUM')",
            "select \"truncate\" from t",
            "-- truncate t\nselect 1",
            "/* vacuum */ select 1",
            "update t set truncate = 1",
            "alter table t add column c int",
            "alter table t alter distkey c",
            "alter table t alter column c encode zstd",
            "alter table t rename to vacuum",
            "ALTER DATABASE d RENAME TO e",
            "create table t (truncate int)",
            "create table external (a int)",
            "create schema library",
            "drop table t",
            "analyze t",
            "",
        ] {
            assert_eq!(rule(sql), Rule::Transactional, "{sql}");
        }
    }

    #[test]
    fn a_word_only_counts_as_a_word() {
        // A quoted identifier named like a command is a name, not the command.
        assert_eq!(rule("\"vacuum\""), Rule::Transactional);
        assert_eq!(rule("'truncate' t"), Rule::Transactional);
        assert_eq!(rule("E'\\'' ; truncate t"), Rule::Transactional);
        assert_eq!(rule("truncate_log()"), Rule::Transactional);
    }

    #[test]
    fn refusal_text_is_redshifts() {
        assert_eq!(
            VACUUM.refusal(),
            "ERROR: VACUUM cannot run inside a transaction block"
        );
        assert_eq!(
            CREATE_EXTERNAL_TABLE.refusal(),
            "ERROR: CREATE EXTERNAL TABLE cannot run inside a transaction block"
        );
        assert_eq!(
            TRUNCATE.url(),
            "https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html"
        );
    }

    #[test]
    fn unlexable_sql_is_an_error() {
        assert_eq!(
            classify("truncate 'x"),
            Err(SqlError::UnterminatedString { offset: 9 })
        );
    }
}
