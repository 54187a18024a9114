//! Redshift `COPY … FROM 's3://…'` and `UNLOAD ('…') TO 's3://…'`: the statement grammar to a
//! typed struct, with named errors. It depends only on the crate's SQL lexer: the emulator runs
//! what it parses (COPY from and UNLOAD to the local S3), and the fuzz target `copy_options`
//! checks it on arbitrary input.
//!
//! Grammar, from the Amazon Redshift Database Developer Guide:
//! - COPY: <https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html>
//!   `COPY table [(column_list)] FROM 's3://…' authorization [[FORMAT] [AS] data_format]
//!   [parameter [argument] [, …]]`; parameters in "COPY parameter reference"
//!   (r_COPY-parameters.html), "Data format parameters" (copy-parameters-data-format.html),
//!   "File compression parameters", "Data conversion parameters"
//!   (copy-parameters-data-conversion.html) and "Authorization parameters"
//!   (copy-parameters-authorization.html).
//! - UNLOAD: <https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD.html>
//!   `UNLOAD ('select-statement') TO 's3://object-path/name-prefix' authorization [option, …]`.
//!
//! Commas between parameters are accepted and ignored, as Redshift does.

use crate::lexer::{tokenize, SqlError, Token, TokenKind};

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// The key or key prefix (may be empty: the whole bucket).
    pub key: String,
}

impl S3Url {
    /// Parses `s3://bucket[/key]`. Bucket names follow S3's rules (3–63 characters of
    /// lowercase letters, digits, `.` and `-`).
    pub fn parse(text: &str) -> Result<Self, CopyOptionsError> {
        let invalid = || CopyOptionsError::InvalidS3Url(text.to_string());
        let rest = text.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid_bucket {
            return Err(invalid());
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// How the statement says it may reach S3. Checked for form only: the local S3 takes any
/// credentials. The secret key is kept out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `IAM_ROLE 'arn:aws:iam::<account>:role/<name>[,…]'` or `CREDENTIALS 'aws_iam_role=…'`.
    IamRole(Vec<String>),
    /// `IAM_ROLE default`.
    DefaultIamRole,
    /// `ACCESS_KEY_ID … SECRET_ACCESS_KEY … [SESSION_TOKEN …]` or the `CREDENTIALS` string.
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IamRole(roles) => f.debug_tuple("IamRole").field(roles).finish(),
            Self::DefaultIamRole => f.write_str("DefaultIamRole"),
            Self::Keys { access_key_id, .. } => f
                .debug_struct("Keys")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The input format of a COPY ("Data format parameters").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Delimited text (the default): `DELIMITER` (default `|`), no quoting.
    Text { delimiter: u8 },
    /// `CSV [QUOTE [AS] 'q']`: default delimiter `,`, quote `"`.
    Csv { delimiter: u8, quote: u8 },
    /// `JSON 'auto'`, `JSON 'auto ignorecase'` or `JSON 's3://…jsonpaths'`.
    Json(JsonSpec),
    /// `PARQUET`: columns by position.
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonSpec {
    Auto,
    AutoIgnoreCase,
    JsonPaths(S3Url),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    Zstd,
}

/// A `DATEFORMAT` or `TIMEFORMAT` ("DATEFORMAT and TIMEFORMAT strings",
/// r_DATEFORMAT_and_TIMEFORMAT_strings.html).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateTimeFormat {
    /// `'auto'`: the formats listed under "Using automatic recognition with DATEFORMAT and
    /// TIMEFORMAT".
    Auto,
    /// `'epochsecs'` (TIMEFORMAT only).
    EpochSecs,
    /// `'epochmillisecs'` (TIMEFORMAT only).
    EpochMillis,
    /// A pattern, as a chrono `strftime` string (`YYYY-MM-DD` → `%Y-%m-%d`), and as written.
    Pattern { chrono: String, written: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStatement {
    /// The target table as written (`schema.table`, quoted parts kept quoted).
    pub table: String,
    /// The column list, as written; empty: every column in table order.
    pub columns: Vec<String>,
    pub source: S3Url,
    pub authorization: Authorization,
    pub format: CopyFormat,
    pub compression: Option<Compression>,
    /// The source is a manifest (`MANIFEST`).
    pub manifest: bool,
    pub region: Option<String>,
    pub ignore_header: u64,
    /// `NULL AS`: the text that loads as NULL (default `\N`).
    pub null_as: String,
    pub empty_as_null: bool,
    pub blanks_as_null: bool,
    pub date_format: Option<DateTimeFormat>,
    pub time_format: Option<DateTimeFormat>,
    pub truncate_columns: bool,
    /// Rows that may be rejected before the load fails (default 0).
    pub max_error: u64,
    /// `ACCEPTINVCHARS [AS 'c']`: invalid UTF-8 is replaced by this character (default `?`).
    pub accept_inv_chars: Option<char>,
    pub fill_record: bool,
    pub ignore_blank_lines: bool,
    pub trim_blanks: bool,
    pub remove_quotes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnloadFormat {
    /// Delimited text (the default), `DELIMITER` default `|`.
    Text { delimiter: u8 },
    /// `FORMAT AS CSV`, `DELIMITER` default `,`.
    Csv { delimiter: u8 },
    /// `FORMAT AS PARQUET`.
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadStatement {
    /// The query, with the literal's escapes (`\'`, `''`) resolved.
    pub query: String,
    /// Object path and name prefix.
    pub target: S3Url,
    pub authorization: Authorization,
    pub format: UnloadFormat,
    pub compression: Option<Compression>,
    pub header: bool,
    pub manifest: bool,
    /// `PARALLEL OFF` / `PARALLEL FALSE`.
    pub parallel: bool,
    pub allow_overwrite: bool,
    pub add_quotes: bool,
    /// `NULL AS` (default: empty string).
    pub null_as: Option<String>,
    pub extension: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Copy(Box<CopyStatement>),
    Unload(Box<UnloadStatement>),
}

/// Why a COPY or UNLOAD statement cannot be run. Named, never with a secret in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyOptionsError {
    #[error("cannot parse SQL: {0}")]
    Lex(#[from] SqlError),
    #[error("syntax error at or near \"{found}\": expected {expected}")]
    Syntax {
        expected: &'static str,
        found: String,
    },
    #[error("syntax error at end of input: expected {0}")]
    UnexpectedEnd(&'static str),
    #[error("unknown {statement} parameter {0:?}", statement = .1)]
    UnknownParameter(String, &'static str),
    #[error("{statement} parameter {0} is not supported by the local emulator (docs/copy-unload.md)", statement = .1)]
    UnsupportedParameter(String, &'static str),
    #[error("conflicting or redundant options: {0}")]
    Conflicting(String),
    #[error("invalid S3 location {0:?}: expected s3://bucket/key")]
    InvalidS3Url(String),
    #[error("COPY and UNLOAD read and write only Amazon S3 here; {0:?} is not supported")]
    UnsupportedSource(String),
    #[error("no authorization: give IAM_ROLE, CREDENTIALS or ACCESS_KEY_ID and SECRET_ACCESS_KEY")]
    MissingAuthorization,
    #[error("invalid IAM_ROLE {0:?}: expected arn:aws:iam::<account-id>:role/<role-name> (up to 10, comma-separated) or default")]
    InvalidIamRole(String),
    #[error("invalid credentials: {0}")]
    InvalidCredentials(&'static str),
    #[error("{option} must be a single character, got {value:?}")]
    InvalidCharacter { option: &'static str, value: String },
    #[error("{option} and the delimiter must differ")]
    SameAsDelimiter { option: &'static str },
    #[error("invalid {option} value {value:?}: expected a whole number")]
    InvalidNumber { option: &'static str, value: String },
    #[error("invalid {option} {value:?}: see \"DATEFORMAT and TIMEFORMAT strings\"")]
    InvalidDateTimeFormat { option: &'static str, value: String },
    #[error(
        "invalid JSON option {0:?}: expected 'auto', 'auto ignorecase' or an s3:// jsonpaths file"
    )]
    InvalidJsonOption(String),
    #[error("{option} is not valid with {format}")]
    NotForFormat {
        option: &'static str,
        format: &'static str,
    },
}

/// Parses `sql` when it is a Redshift COPY or UNLOAD; `Ok(None)` for any other statement.
pub fn parse(sql: &str) -> Result<Option<Statement>, CopyOptionsError> {
    let tokens = tokenize(sql)?;
    let mut cursor = Cursor::new(&tokens);
    let Some(first) = cursor.peek() else {
        return Ok(None);
    };
    if first.kind != TokenKind::Word {
        return Ok(None);
    }
    if first.text.eq_ignore_ascii_case("copy") {
        cursor.next();
        return parse_copy(&mut cursor).map(|c| Some(Statement::Copy(Box::new(c))));
    }
    if first.text.eq_ignore_ascii_case("unload") {
        // The query literal may escape quotes with a backslash (`\'`), which the lexer does not
        // know, so it is read from the raw text.
        return parse_unload(sql, first.offset + first.text.len())
            .map(|u| Some(Statement::Unload(Box::new(u))));
    }
    Ok(None)
}

struct Cursor<'t, 'a> {
    tokens: Vec<&'t Token<'a>>,
    pos: usize,
}

impl<'t, 'a> Cursor<'t, 'a> {
    fn new(tokens: &'t [Token<'a>]) -> Self {
        Self {
            tokens: tokens.iter().filter(|t| !t.is_trivia()).collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<&'t Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<&'t Token<'a>> {
        let t = self.peek();
        self.pos += usize::from(t.is_some());
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek_word(word);
        self.pos += usize::from(found);
        found
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let found = self
            .peek()
            .is_some_and(|t| t.kind == TokenKind::Punct && t.text == p);
        self.pos += usize::from(found);
        found
    }

    fn expect_word(&mut self, word: &'static str) -> Result<(), CopyOptionsError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(word))
        }
    }

    fn error(&self, expected: &'static str) -> CopyOptionsError {
        match self.peek() {
            Some(t) => CopyOptionsError::Syntax {
                expected,
                found: t.text.chars().take(60).collect(),
            },
            None => CopyOptionsError::UnexpectedEnd(expected),
        }
    }

    /// A string literal's value (`'…'` with doubled quotes, or `E'…'`).
    fn string(&mut self, expected: &'static str) -> Result<String, CopyOptionsError> {
        self.eat_word("as");
        match self.peek() {
            Some(t) if t.kind == TokenKind::String => {
                self.next();
                string_value(t.text).ok_or_else(|| CopyOptionsError::Syntax {
                    expected,
                    found: t.text.chars().take(60).collect(),
                })
            }
            _ => Err(self.error(expected)),
        }
    }

    /// A whole number, optionally quoted (`IGNOREHEADER 1`, `MAXERROR AS '10'`).
    fn number(&mut self, option: &'static str) -> Result<u64, CopyOptionsError> {
        self.eat_word("as");
        let token = self.next().ok_or(CopyOptionsError::UnexpectedEnd(option))?;
        let text = match token.kind {
            TokenKind::String => string_value(token.text).unwrap_or_default(),
            _ => token.text.to_string(),
        };
        text.trim()
            .parse()
            .map_err(|_| CopyOptionsError::InvalidNumber {
                option,
                value: text.chars().take(60).collect(),
            })
    }

    /// `ON|OFF|TRUE|FALSE` after an option, `true` when absent.
    fn on_off(&mut self) -> bool {
        if self.eat_word("off") || self.eat_word("false") {
            false
        } else {
            let _ = self.eat_word("on") || self.eat_word("true");
            true
        }
    }
}

/// The value of a string token: `'…'` (`''` → `'`) or `E'…'` (backslash escapes).
fn string_value(text: &str) -> Option<String> {
    if let Some(body) = text
        .strip_prefix(['E', 'e'])
        .and_then(|t| t.strip_prefix('\''))
    {
        let body = body.strip_suffix('\'')?;
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    't' => out.push('\t'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    other => out.push(other),
                },
                '\'' => {
                    chars.next();
                    out.push('\'');
                }
                other => out.push(other),
            }
        }
        return Some(out);
    }
    let body = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(body.replace("''", "'"))
}

/// One byte from a one-character option (`DELIMITER '|'`, `'\t'` and `'\\t'` for tab).
fn single_char(option: &'static str, value: &str) -> Result<u8, CopyOptionsError> {
    match value {
        "\\t" => return Ok(b'\t'),
        "\\\\" => return Ok(b'\\'),
        _ => {}
    }
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(CopyOptionsError::InvalidCharacter {
            option,
            value: value.chars().take(20).collect(),
        }),
    }
}

/// A table name or column: identifiers joined by dots.
fn qualified_name(cursor: &mut Cursor<'_, '_>) -> Result<String, CopyOptionsError> {
    let mut name = String::new();
    loop {
        match cursor.peek() {
            Some(t) if matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent) => {
                cursor.next();
                name.push_str(t.text);
            }
            _ => return Err(cursor.error("a table or column name")),
        }
        if !cursor.eat_punct(".") {
            return Ok(name);
        }
        name.push('.');
    }
}

fn source(cursor: &mut Cursor<'_, '_>) -> Result<S3Url, CopyOptionsError> {
    let text = cursor.string("an 's3://…' location")?;
    if !text.starts_with("s3://") {
        return Err(CopyOptionsError::UnsupportedSource(
            text.chars().take(80).collect(),
        ));
    }
    S3Url::parse(&text)
}

/// `arn:aws:iam::123456789012:role/name` (also `aws-cn`, `aws-us-gov` partitions; paths allowed).
fn valid_role_arn(arn: &str) -> bool {
    let Some(rest) = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"]
        .iter()
        .find_map(|p| arn.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, role)) = rest.split_once(":role/") else {
        return false;
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && role.len() <= 512
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
}

fn iam_roles(text: &str) -> Result<Vec<String>, CopyOptionsError> {
    let roles: Vec<String> = text.split(',').map(|r| r.trim().to_string()).collect();
    if roles.len() > 10 || !roles.iter().all(|r| valid_role_arn(r)) {
        return Err(CopyOptionsError::InvalidIamRole(
            text.chars().take(200).collect(),
        ));
    }
    Ok(roles)
}

fn check_keys(access_key_id: &str, secret_access_key: &str) -> Result<(), CopyOptionsError> {
    let id_ok = (16..=128).contains(&access_key_id.len())
        && access_key_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_ok {
        return Err(CopyOptionsError::InvalidCredentials(
            "the access key ID must be 16 to 128 uppercase letters and digits",
        ));
    }
    let secret_ok =
        !secret_access_key.is_empty() && secret_access_key.bytes().all(|b| b.is_ascii_graphic());
    if !secret_ok {
        return Err(CopyOptionsError::InvalidCredentials(
            "the secret access key must be non-empty printable characters",
        ));
    }
    Ok(())
}

/// `CREDENTIALS 'aws_iam_role=…'` or `'aws_access_key_id=…;aws_secret_access_key=…[;token=…]'`.
fn credentials(text: &str) -> Result<Authorization, CopyOptionsError> {
    let mut role = None;
    let (mut id, mut secret, mut token) = (None, None, None);
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(CopyOptionsError::InvalidCredentials(
                "expected key=value pairs separated by ';'",
            ));
        };
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "aws_iam_role" => &mut role,
            "aws_access_key_id" => &mut id,
            "aws_secret_access_key" => &mut secret,
            "token" => &mut token,
            "master_symmetric_key" => {
                return Err(CopyOptionsError::UnsupportedParameter(
                    "CREDENTIALS master_symmetric_key".into(),
                    "COPY",
                ))
            }
            _ => {
                return Err(CopyOptionsError::InvalidCredentials(
                    "unknown key: expected aws_iam_role, aws_access_key_id, aws_secret_access_key or token",
                ))
            }
        };
        *slot = Some(value.trim().to_string());
    }
    match (role, id, secret) {
        (Some(role), None, None) if token.is_none() => {
            Ok(Authorization::IamRole(iam_roles(&role)?))
        }
        (None, Some(access_key_id), Some(secret_access_key)) => {
            check_keys(&access_key_id, &secret_access_key)?;
            Ok(Authorization::Keys {
                access_key_id,
                secret_access_key,
                session_token: token,
            })
        }
        _ => Err(CopyOptionsError::InvalidCredentials(
            "give either aws_iam_role or both aws_access_key_id and aws_secret_access_key",
        )),
    }
}

/// Authorization parameters, shared by COPY and UNLOAD. Returns whether `word` was one.
#[derive(Default)]
struct AuthParts {
    role: Option<Authorization>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl AuthParts {
    fn take(&mut self, word: &str, cursor: &mut Cursor<'_, '_>) -> Result<bool, CopyOptionsError> {
        match word {
            "iam_role" => {
                let auth = if cursor.eat_word("default") {
                    Authorization::DefaultIamRole
                } else {
                    Authorization::IamRole(iam_roles(&cursor.string("an IAM role ARN")?)?)
                };
                self.set_role(auth)?;
            }
            "credentials" | "with_credentials" => {
                let auth = credentials(&cursor.string("a credentials string")?)?;
                self.set_role(auth)?;
            }
            "access_key_id" => self.access_key_id = Some(cursor.string("an access key ID")?),
            "secret_access_key" => {
                self.secret_access_key = Some(cursor.string("a secret access key")?);
            }
            "session_token" => self.session_token = Some(cursor.string("a session token")?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_role(&mut self, auth: Authorization) -> Result<(), CopyOptionsError> {
        if self.role.replace(auth).is_some() {
            return Err(CopyOptionsError::Conflicting(
                "more than one of IAM_ROLE and CREDENTIALS".into(),
            ));
        }
        Ok(())
    }

    fn finish(self) -> Result<Authorization, CopyOptionsError> {
        match (self.role, self.access_key_id, self.secret_access_key) {
            (Some(auth), None, None) if self.session_token.is_none() => Ok(auth),
            (None, Some(access_key_id), Some(secret_access_key)) => {
                check_keys(&access_key_id, &secret_access_key)?;
                Ok(Authorization::Keys {
                    access_key_id,
                    secret_access_key,
                    session_token: self.session_token,
                })
            }
            (None, None, None) if self.session_token.is_none() => {
                Err(CopyOptionsError::MissingAuthorization)
            }
            (Some(_), _, _) => Err(CopyOptionsError::Conflicting(
                "IAM_ROLE or CREDENTIALS together with access keys".into(),
            )),
            _ => Err(CopyOptionsError::InvalidCredentials(
                "ACCESS_KEY_ID and SECRET_ACCESS_KEY go together",
            )),
        }
    }
}

/// Converts a Redshift datetime pattern to chrono's `strftime` ("DATEFORMAT and TIMEFORMAT
/// strings": YYYY, YY, MM, MON, MONTH, DD, HH, HH12, HH24, MI, SS, SS.SSSSSS, AM/PM, US, MS).
fn datetime_format(
    option: &'static str,
    written: &str,
) -> Result<DateTimeFormat, CopyOptionsError> {
    let lower = written.to_ascii_lowercase();
    match lower.as_str() {
        "auto" => return Ok(DateTimeFormat::Auto),
        "epochsecs" if option == "TIMEFORMAT" => return Ok(DateTimeFormat::EpochSecs),
        "epochmillisecs" if option == "TIMEFORMAT" => return Ok(DateTimeFormat::EpochMillis),
        _ => {}
    }
    let invalid = || CopyOptionsError::InvalidDateTimeFormat {
        option,
        value: written.chars().take(60).collect(),
    };
    // Longest first.
    const ITEMS: &[(&str, &str)] = &[
        ("SS.SSSSSS", "%S%.f"),
        ("MONTH", "%B"),
        ("YYYY", "%Y"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("MON", "%b"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%H"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("US", "%6f"),
        ("MS", "%3f"),
    ];
    let upper = written.to_ascii_uppercase();
    let mut chrono = String::new();
    let mut rest = upper.as_str();
    let mut fields = 0;
    while !rest.is_empty() {
        if let Some((item, strf)) = ITEMS.iter().find(|(item, _)| rest.starts_with(item)) {
            chrono.push_str(strf);
            rest = &rest[item.len()..];
            fields += 1;
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        if c.is_ascii_alphanumeric() {
            return Err(invalid());
        }
        if c == '%' {
            chrono.push_str("%%");
        } else {
            chrono.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if fields == 0 {
        return Err(invalid());
    }
    Ok(DateTimeFormat::Pattern {
        chrono,
        written: written.to_string(),
    })
}

fn parse_copy(cursor: &mut Cursor<'_, '_>) -> Result<CopyStatement, CopyOptionsError> {
    let table = qualified_name(cursor)?;
    let mut columns = Vec::new();
    if cursor.eat_punct("(") {
        loop {
            columns.push(qualified_name(cursor)?);
            if cursor.eat_punct(")") {
                break;
            }
            if !cursor.eat_punct(",") {
                return Err(cursor.error("',' or ')'"));
            }
        }
    }
    cursor.expect_word("from")?;
    let source = source(cursor)?;

    let mut auth = AuthParts::default();
    let mut format: Option<CopyFormat> = None;
    let mut delimiter: Option<u8> = None;
    let mut quote: Option<u8> = None;
    let mut compression = None;
    let mut seen: Vec<String> = Vec::new();
    let mut copy = CopyStatement {
        table,
        columns,
        source,
        authorization: Authorization::DefaultIamRole,
        format: CopyFormat::Text { delimiter: b'|' },
        compression: None,
        manifest: false,
        region: None,
        ignore_header: 0,
        null_as: "\\N".into(),
        empty_as_null: false,
        blanks_as_null: false,
        date_format: None,
        time_format: None,
        truncate_columns: false,
        max_error: 0,
        accept_inv_chars: None,
        fill_record: false,
        ignore_blank_lines: false,
        trim_blanks: false,
        remove_quotes: false,
    };
    let mut null_given = false;

    while let Some(token) = cursor.next() {
        if token.kind == TokenKind::Punct && token.text == "," {
            continue;
        }
        if token.kind != TokenKind::Word {
            return Err(CopyOptionsError::Syntax {
                expected: "a COPY parameter",
                found: token.text.chars().take(60).collect(),
            });
        }
        let word = token.text.to_ascii_lowercase();
        let canonical = if word == "with_credentials" {
            "credentials".to_string()
        } else {
            word.clone()
        };
        if seen.contains(&canonical) && word != "format" {
            return Err(CopyOptionsError::Conflicting(
                token.text.to_ascii_uppercase(),
            ));
        }
        seen.push(canonical);
        if auth.take(&word, cursor)? {
            continue;
        }
        let mut set_format = |f: CopyFormat| {
            if format.replace(f).is_some() {
                Err(CopyOptionsError::Conflicting(
                    "more than one data format".into(),
                ))
            } else {
                Ok(())
            }
        };
        match word.as_str() {
            "format" => {
                cursor.eat_word("as");
                let Some(next) = cursor.peek() else {
                    return Err(CopyOptionsError::UnexpectedEnd("a data format"));
                };
                let name = next.text.to_ascii_lowercase();
                if ![
                    "csv",
                    "json",
                    "parquet",
                    "orc",
                    "avro",
                    "fixedwidth",
                    "shapefile",
                ]
                .contains(&name.as_str())
                {
                    return Err(cursor.error("CSV, JSON or PARQUET"));
                }
            }
            "csv" => {
                set_format(CopyFormat::Csv {
                    delimiter: b',',
                    quote: b'"',
                })?;
                if cursor.eat_word("quote") {
                    quote = Some(single_char("QUOTE", &cursor.string("a quote character")?)?);
                }
            }
            "quote" => {
                quote = Some(single_char("QUOTE", &cursor.string("a quote character")?)?);
            }
            "json" => {
                let value = cursor.string("'auto', 'auto ignorecase' or a jsonpaths file")?;
                let spec = match value.trim().to_ascii_lowercase().as_str() {
                    "auto" => JsonSpec::Auto,
                    "auto ignorecase" => JsonSpec::AutoIgnoreCase,
                    "noshred" => {
                        return Err(CopyOptionsError::UnsupportedParameter(
                            "JSON 'noshred'".into(),
                            "COPY",
                        ))
                    }
                    _ if value.starts_with("s3://") => JsonSpec::JsonPaths(S3Url::parse(&value)?),
                    _ => return Err(CopyOptionsError::InvalidJsonOption(value)),
                };
                set_format(CopyFormat::Json(spec))?;
            }
            "parquet" => set_format(CopyFormat::Parquet)?,
            "delimiter" => {
                delimiter = Some(single_char("DELIMITER", &cursor.string("a delimiter")?)?);
            }
            "gzip" | "bzip2" | "zstd" => {
                let c = match word.as_str() {
                    "gzip" => Compression::Gzip,
                    "bzip2" => Compression::Bzip2,
                    _ => Compression::Zstd,
                };
                if compression.replace(c).is_some() {
                    return Err(CopyOptionsError::Conflicting(
                        "more than one compression".into(),
                    ));
                }
            }
            "manifest" => copy.manifest = true,
            "region" => copy.region = Some(cursor.string("a region")?),
            "ignoreheader" => copy.ignore_header = cursor.number("IGNOREHEADER")?,
            "null" => {
                copy.null_as = cursor.string("a NULL string")?;
                null_given = true;
            }
            "emptyasnull" => copy.empty_as_null = true,
            "blanksasnull" => copy.blanks_as_null = true,
            "dateformat" => {
                copy.date_format = Some(datetime_format(
                    "DATEFORMAT",
                    &cursor.string("a date format")?,
                )?);
            }
            "timeformat" => {
                copy.time_format = Some(datetime_format(
                    "TIMEFORMAT",
                    &cursor.string("a time format")?,
                )?);
            }
            "truncatecolumns" => copy.truncate_columns = true,
            "maxerror" => copy.max_error = cursor.number("MAXERROR")?,
            "acceptinvchars" => {
                let replacement = if cursor.peek_word("as")
                    || cursor.peek().is_some_and(|t| t.kind == TokenKind::String)
                {
                    let value = cursor.string("a replacement character")?;
                    let mut chars = value.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii() && c != '\0' => c,
                        _ => {
                            return Err(CopyOptionsError::InvalidCharacter {
                                option: "ACCEPTINVCHARS",
                                value,
                            })
                        }
                    }
                } else {
                    '?'
                };
                copy.accept_inv_chars = Some(replacement);
            }
            "fillrecord" => copy.fill_record = true,
            "ignoreblanklines" => copy.ignore_blank_lines = true,
            "trimblanks" => copy.trim_blanks = true,
            "removequotes" => copy.remove_quotes = true,
            // Accepted, no effect on a local load: compression encodings and statistics.
            "compupdate" => {
                if !cursor.eat_word("preset") {
                    cursor.on_off();
                }
            }
            "statupdate" => {
                cursor.on_off();
            }
            "lzop"
            | "orc"
            | "avro"
            | "fixedwidth"
            | "shapefile"
            | "escape"
            | "explicit_ids"
            | "encrypted"
            | "noload"
            | "readratio"
            | "encoding"
            | "acceptanydate"
            | "roundec"
            | "ssh"
            | "master_symmetric_key" => {
                return Err(CopyOptionsError::UnsupportedParameter(
                    token.text.to_ascii_uppercase(),
                    "COPY",
                ))
            }
            _ => {
                return Err(CopyOptionsError::UnknownParameter(
                    token.text.to_string(),
                    "COPY",
                ))
            }
        }
    }

    copy.authorization = auth.finish()?;
    copy.compression = compression;
    copy.format = match format.unwrap_or(CopyFormat::Text { delimiter: b'|' }) {
        CopyFormat::Text { .. } => {
            if quote.is_some() {
                return Err(CopyOptionsError::NotForFormat {
                    option: "QUOTE",
                    format: "delimited text (use CSV QUOTE)",
                });
            }
            CopyFormat::Text {
                delimiter: delimiter.unwrap_or(b'|'),
            }
        }
        CopyFormat::Csv { .. } => {
            let (delimiter, quote) = (delimiter.unwrap_or(b','), quote.unwrap_or(b'"'));
            if delimiter == quote {
                return Err(CopyOptionsError::SameAsDelimiter { option: "QUOTE" });
            }
            if copy.remove_quotes {
                return Err(CopyOptionsError::NotForFormat {
                    option: "REMOVEQUOTES",
                    format: "CSV",
                });
            }
            CopyFormat::Csv { delimiter, quote }
        }
        other @ (CopyFormat::Json(_) | CopyFormat::Parquet) => {
            let name = if other == CopyFormat::Parquet {
                "PARQUET"
            } else {
                "JSON"
            };
            for (given, option) in [
                (delimiter.is_some(), "DELIMITER"),
                (quote.is_some(), "QUOTE"),
                (copy.ignore_header > 0, "IGNOREHEADER"),
                (null_given, "NULL AS"),
                (copy.fill_record, "FILLRECORD"),
                (copy.remove_quotes, "REMOVEQUOTES"),
            ] {
                if given {
                    return Err(CopyOptionsError::NotForFormat {
                        option,
                        format: name,
                    });
                }
            }
            if other == CopyFormat::Parquet {
                // "COPY from columnar data formats": MAXERROR is not supported, compression
                // comes from the file.
                for (given, option) in [
                    (copy.max_error > 0, "MAXERROR"),
                    (copy.compression.is_some(), "GZIP, BZIP2 or ZSTD"),
                    (copy.date_format.is_some(), "DATEFORMAT"),
                    (copy.time_format.is_some(), "TIMEFORMAT"),
                ] {
                    if given {
                        return Err(CopyOptionsError::NotForFormat {
                            option,
                            format: name,
                        });
                    }
                }
            }
            other
        }
    };
    if let CopyFormat::Text { delimiter } | CopyFormat::Csv { delimiter, .. } = copy.format {
        if copy.null_as.len() == 1 && copy.null_as.as_bytes()[0] == delimiter {
            return Err(CopyOptionsError::SameAsDelimiter { option: "NULL AS" });
        }
    }
    Ok(copy)
}

/// Reads the UNLOAD query literal at `sql[from..]`: `( 'select …' )`, where a quote inside is
/// `\'` or `''`. Returns the query and the byte offset after the closing parenthesis.
fn unload_query(sql: &str, from: usize) -> Result<(String, usize), CopyOptionsError> {
    let bytes = sql.as_bytes();
    let mut i = from;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let near = |i: usize| -> String { sql[i.min(sql.len())..].chars().take(30).collect() };
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'(') {
        return Err(CopyOptionsError::Syntax {
            expected: "'(' and the query as a string literal",
            found: near(i),
        });
    }
    i += 1;
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'\'') {
        return Err(CopyOptionsError::Syntax {
            expected: "the query as a string literal",
            found: near(i),
        });
    }
    i += 1;
    let mut query = String::new();
    let start = i;
    loop {
        let Some(c) = sql[i..].chars().next() else {
            return Err(SqlError::UnterminatedString { offset: start - 1 }.into());
        };
        match c {
            '\\' => {
                let Some(next) = sql[i + 1..].chars().next() else {
                    return Err(SqlError::UnterminatedString { offset: start - 1 }.into());
                };
                query.push(next);
                i += 1 + next.len_utf8();
            }
            '\'' if bytes.get(i + 1) == Some(&b'\'') => {
                query.push('\'');
                i += 2;
            }
            '\'' => {
                i += 1;
                break;
            }
            other => {
                query.push(other);
                i += other.len_utf8();
            }
        }
    }
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b')') {
        return Err(CopyOptionsError::Syntax {
            expected: "')' after the query",
            found: near(i),
        });
    }
    Ok((query, i + 1))
}

fn parse_unload(sql: &str, after_keyword: usize) -> Result<UnloadStatement, CopyOptionsError> {
    let (query, rest_at) = unload_query(sql, after_keyword)?;
    let tokens = tokenize(&sql[rest_at..])?;
    let mut cursor = Cursor::new(&tokens);
    cursor.expect_word("to")?;
    let target = source(&mut cursor)?;
    let mut auth = AuthParts::default();
    let mut format: Option<&'static str> = None;
    let mut delimiter = None;
    let mut compression = None;
    let mut seen: Vec<String> = Vec::new();
    let mut unload = UnloadStatement {
        query,
        target,
        authorization: Authorization::DefaultIamRole,
        format: UnloadFormat::Text { delimiter: b'|' },
        compression: None,
        header: false,
        manifest: false,
        parallel: true,
        allow_overwrite: false,
        add_quotes: false,
        null_as: None,
        extension: None,
        region: None,
    };
    while let Some(token) = cursor.next() {
        if token.kind == TokenKind::Punct && token.text == "," {
            continue;
        }
        if token.kind != TokenKind::Word {
            return Err(CopyOptionsError::Syntax {
                expected: "an UNLOAD parameter",
                found: token.text.chars().take(60).collect(),
            });
        }
        let word = token.text.to_ascii_lowercase();
        if seen.contains(&word) && word != "format" {
            return Err(CopyOptionsError::Conflicting(
                token.text.to_ascii_uppercase(),
            ));
        }
        seen.push(word.clone());
        if auth.take(&word, &mut cursor)? {
            continue;
        }
        let mut set_format = |f: &'static str| {
            if format.replace(f).is_some() {
                Err(CopyOptionsError::Conflicting("more than one format".into()))
            } else {
                Ok(())
            }
        };
        match word.as_str() {
            "format" => {
                cursor.eat_word("as");
            }
            "csv" => set_format("csv")?,
            "parquet" => set_format("parquet")?,
            "delimiter" => {
                delimiter = Some(single_char("DELIMITER", &cursor.string("a delimiter")?)?);
            }
            "header" => unload.header = true,
            "manifest" => {
                if cursor.eat_word("verbose") {
                    return Err(CopyOptionsError::UnsupportedParameter(
                        "MANIFEST VERBOSE".into(),
                        "UNLOAD",
                    ));
                }
                unload.manifest = true;
            }
            "parallel" => unload.parallel = cursor.on_off(),
            "allowoverwrite" => unload.allow_overwrite = true,
            "addquotes" => unload.add_quotes = true,
            "null" => unload.null_as = Some(cursor.string("a NULL string")?),
            "extension" => unload.extension = Some(cursor.string("a file extension")?),
            "region" => unload.region = Some(cursor.string("a region")?),
            "gzip" | "bzip2" | "zstd" => {
                let c = match word.as_str() {
                    "gzip" => Compression::Gzip,
                    "bzip2" => Compression::Bzip2,
                    _ => Compression::Zstd,
                };
                if compression.replace(c).is_some() {
                    return Err(CopyOptionsError::Conflicting(
                        "more than one compression".into(),
                    ));
                }
            }
            "maxfilesize" => {
                cursor.number("MAXFILESIZE")?;
                let _ = cursor.eat_word("mb") || cursor.eat_word("gb");
            }
            "json"
            | "fixedwidth"
            | "partition"
            | "encrypted"
            | "kms_key_id"
            | "escape"
            | "cleanpath"
            | "rowgroupsize"
            | "master_symmetric_key" => {
                return Err(CopyOptionsError::UnsupportedParameter(
                    token.text.to_ascii_uppercase(),
                    "UNLOAD",
                ))
            }
            _ => {
                return Err(CopyOptionsError::UnknownParameter(
                    token.text.to_string(),
                    "UNLOAD",
                ))
            }
        }
    }
    unload.authorization = auth.finish()?;
    unload.compression = compression;
    unload.format = match format {
        None => UnloadFormat::Text {
            delimiter: delimiter.unwrap_or(b'|'),
        },
        Some("csv") => UnloadFormat::Csv {
            delimiter: delimiter.unwrap_or(b','),
        },
        Some(_) => {
            // "UNLOAD": PARQUET is not valid with DELIMITER, ADDQUOTES, NULL AS, HEADER,
            // compression or FIXEDWIDTH.
            for (given, option) in [
                (delimiter.is_some(), "DELIMITER"),
                (unload.add_quotes, "ADDQUOTES"),
                (unload.null_as.is_some(), "NULL AS"),
                (unload.header, "HEADER"),
                (compression.is_some(), "GZIP, BZIP2 or ZSTD"),
            ] {
                if given {
                    return Err(CopyOptionsError::NotForFormat {
                        option,
                        format: "PARQUET",
                    });
                }
            }
            UnloadFormat::Parquet
        }
    };
    Ok(unload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "iam_role 'arn:aws:iam::123456789012:role/MyRedshiftRole'";

    fn copy(sql: &str) -> CopyStatement {
        match parse(sql).expect("parses").expect("a COPY") {
            Statement::Copy(c) => *c,
            other => panic!("not a COPY: {other:?}"),
        }
    }

    fn unload(sql: &str) -> UnloadStatement {
        match parse(sql).expect("parses").expect("an UNLOAD") {
            Statement::Unload(u) => *u,
            other => panic!("not an UNLOAD: {other:?}"),
        }
    }

    fn copy_err(sql: &str) -> CopyOptionsError {
        parse(sql).expect_err("fails")
    }

    #[test]
    fn other_statements_are_not_copy() {
        assert_eq!(parse("select 1").unwrap(), None);
        assert_eq!(parse("-- c\n insert into copy values (1)").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn minimal_copy_has_redshift_defaults() {
        let c = copy(&format!(
            "copy venue from 's3://my-bucket/tickit/venue_' {ROLE}"
        ));
        assert_eq!(c.table, "venue");
        assert_eq!(c.source.bucket, "my-bucket");
        assert_eq!(c.source.key, "tickit/venue_");
        assert_eq!(c.format, CopyFormat::Text { delimiter: b'|' });
        assert_eq!(c.null_as, "\\N");
        assert_eq!(c.max_error, 0);
        assert_eq!(
            c.authorization,
            Authorization::IamRole(vec!["arn:aws:iam::123456789012:role/MyRedshiftRole".into()])
        );
    }

    #[test]
    fn csv_with_the_common_options() {
        let c = copy(&format!(
            "COPY staging.\"Sales\" (id, \"Amount\", day) FROM 's3://b-1/in/sales.csv.gz' {ROLE} \
             FORMAT AS CSV QUOTE AS '''' DELIMITER ';' IGNOREHEADER 1 NULL AS 'NA' EMPTYASNULL \
             BLANKSASNULL DATEFORMAT 'DD/MM/YYYY' TIMEFORMAT 'auto' TRUNCATECOLUMNS MAXERROR 5 \
             ACCEPTINVCHARS AS '^' GZIP REGION 'eu-west-1' COMPUPDATE OFF STATUPDATE OFF"
        ));
        assert_eq!(c.table, "staging.\"Sales\"");
        assert_eq!(c.columns, vec!["id", "\"Amount\"", "day"]);
        assert_eq!(
            c.format,
            CopyFormat::Csv {
                delimiter: b';',
                quote: b'\''
            }
        );
        assert_eq!(c.ignore_header, 1);
        assert_eq!(c.null_as, "NA");
        assert!(c.empty_as_null && c.blanks_as_null && c.truncate_columns);
        assert_eq!(
            c.date_format,
            Some(DateTimeFormat::Pattern {
                chrono: "%d/%m/%Y".into(),
                written: "DD/MM/YYYY".into()
            })
        );
        assert_eq!(c.time_format, Some(DateTimeFormat::Auto));
        assert_eq!(c.max_error, 5);
        assert_eq!(c.accept_inv_chars, Some('^'));
        assert_eq!(c.compression, Some(Compression::Gzip));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn csv_without_format_keyword_and_tab_delimiter() {
        let c = copy(&format!(
            "copy t from 's3://bkt/x' {ROLE} csv delimiter '\\t' acceptinvchars"
        ));
        assert_eq!(
            c.format,
            CopyFormat::Csv {
                delimiter: b'\t',
                quote: b'"'
            }
        );
        assert_eq!(c.accept_inv_chars, Some('?'));
    }

    #[test]
    fn json_and_parquet_and_manifest() {
        let c = copy(&format!(
            "copy t from 's3://bkt/m' {ROLE} format as json 'auto' manifest bzip2"
        ));
        assert_eq!(c.format, CopyFormat::Json(JsonSpec::Auto));
        assert!(c.manifest);
        assert_eq!(c.compression, Some(Compression::Bzip2));
        let c = copy(&format!(
            "copy t from 's3://bkt/d/' {ROLE} json 's3://bkt/paths.json' zstd"
        ));
        assert_eq!(
            c.format,
            CopyFormat::Json(JsonSpec::JsonPaths(S3Url {
                bucket: "bkt".into(),
                key: "paths.json".into()
            }))
        );
        let c = copy(&format!(
            "copy t from 's3://bkt/p/' {ROLE} format as parquet"
        ));
        assert_eq!(c.format, CopyFormat::Parquet);
    }

    #[test]
    fn timeformat_epochs_and_patterns() {
        let c = copy(&format!(
            "copy t from 's3://bkt/x' {ROLE} timeformat 'epochmillisecs' dateformat 'auto'"
        ));
        assert_eq!(c.time_format, Some(DateTimeFormat::EpochMillis));
        assert_eq!(c.date_format, Some(DateTimeFormat::Auto));
        let c = copy(&format!(
            "copy t from 's3://bkt/x' {ROLE} timeformat 'YYYY-MM-DD HH24:MI:SS.SSSSSS'"
        ));
        assert_eq!(
            c.time_format,
            Some(DateTimeFormat::Pattern {
                chrono: "%Y-%m-%d %H:%M:%S%.f".into(),
                written: "YYYY-MM-DD HH24:MI:SS.SSSSSS".into()
            })
        );
        assert!(matches!(
            copy_err(&format!(
                "copy t from 's3://bkt/x' {ROLE} dateformat 'epochsecs'"
            )),
            CopyOptionsError::InvalidDateTimeFormat {
                option: "DATEFORMAT",
                ..
            }
        ));
        assert!(matches!(
            copy_err(&format!(
                "copy t from 's3://bkt/x' {ROLE} dateformat 'YYYY-QQ'"
            )),
            CopyOptionsError::InvalidDateTimeFormat { .. }
        ));
    }

    #[test]
    fn authorization_forms_are_checked() {
        let keys = copy(
            "copy t from 's3://bkt/x' access_key_id 'AKIAIOSFODNN7EXAMPLE' \
             secret_access_key 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
        );
        assert!(matches!(keys.authorization, Authorization::Keys { .. }));
        assert!(
            !format!("{keys:?}").contains("wJalr"),
            "the secret stays out of Debug"
        );
        let creds = copy(
            "copy t from 's3://bkt/x' credentials 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key=abc/def;token=xyz'",
        );
        assert!(matches!(
            creds.authorization,
            Authorization::Keys {
                session_token: Some(_),
                ..
            }
        ));
        let role = copy(
            "copy t from 's3://bkt/x' credentials as 'aws_iam_role=arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b'",
        );
        assert_eq!(
            role.authorization,
            Authorization::IamRole(vec![
                "arn:aws:iam::123456789012:role/a".into(),
                "arn:aws:iam::123456789012:role/b".into()
            ])
        );
        let default = copy("copy t from 's3://bkt/x' iam_role default");
        assert_eq!(default.authorization, Authorization::DefaultIamRole);

        assert_eq!(
            copy_err("copy t from 's3://bkt/x'"),
            CopyOptionsError::MissingAuthorization
        );
        assert!(matches!(
            copy_err("copy t from 's3://bkt/x' iam_role 'arn:aws:iam::12345:role/x'"),
            CopyOptionsError::InvalidIamRole(_)
        ));
        assert!(matches!(
            copy_err("copy t from 's3://bkt/x' iam_role 'MyRole'"),
            CopyOptionsError::InvalidIamRole(_)
        ));
        let secret_error = copy_err(
            "copy t from 's3://bkt/x' access_key_id 'short' secret_access_key 'TOPSECRET'",
        );
        assert!(matches!(
            secret_error,
            CopyOptionsError::InvalidCredentials(_)
        ));
        assert!(!secret_error.to_string().contains("TOPSECRET"));
        assert!(matches!(
            copy_err("copy t from 's3://bkt/x' access_key_id 'AKIAIOSFODNN7EXAMPLE'"),
            CopyOptionsError::InvalidCredentials(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} credentials 'aws_iam_role=arn:aws:iam::123456789012:role/a'")),
            CopyOptionsError::Conflicting(_)
        ));
    }

    #[test]
    fn bad_statements_are_named_errors() {
        assert!(matches!(
            copy_err(&format!("copy t from 'dynamodb://tbl' {ROLE}")),
            CopyOptionsError::UnsupportedSource(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://B/x' {ROLE}")),
            CopyOptionsError::InvalidS3Url(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} bogus")),
            CopyOptionsError::UnknownParameter(_, "COPY")
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} lzop")),
            CopyOptionsError::UnsupportedParameter(_, "COPY")
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} gzip gzip")),
            CopyOptionsError::Conflicting(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} gzip zstd")),
            CopyOptionsError::Conflicting(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} csv json 'auto'")),
            CopyOptionsError::Conflicting(_)
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} delimiter '||'")),
            CopyOptionsError::InvalidCharacter {
                option: "DELIMITER",
                ..
            }
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} ignoreheader 'x'")),
            CopyOptionsError::InvalidNumber {
                option: "IGNOREHEADER",
                ..
            }
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} maxerror -1")),
            CopyOptionsError::InvalidNumber { .. }
        ));
        assert!(matches!(
            copy_err(&format!(
                "copy t from 's3://bkt/x' {ROLE} parquet delimiter ','"
            )),
            CopyOptionsError::NotForFormat {
                option: "DELIMITER",
                format: "PARQUET"
            }
        ));
        assert!(matches!(
            copy_err(&format!(
                "copy t from 's3://bkt/x' {ROLE} parquet maxerror 3"
            )),
            CopyOptionsError::NotForFormat {
                option: "MAXERROR",
                ..
            }
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} quote '\"'")),
            CopyOptionsError::NotForFormat {
                option: "QUOTE",
                ..
            }
        ));
        assert!(matches!(
            copy_err(&format!(
                "copy t from 's3://bkt/x' {ROLE} csv delimiter '\"'"
            )),
            CopyOptionsError::SameAsDelimiter { .. }
        ));
        assert!(matches!(
            copy_err(&format!("copy t from 's3://bkt/x' {ROLE} json 'sideways'")),
            CopyOptionsError::InvalidJsonOption(_)
        ));
        assert!(matches!(
            copy_err("copy t (a, from 's3://bkt/x'"),
            CopyOptionsError::Syntax { .. }
        ));
        assert!(matches!(
            copy_err("copy t from"),
            CopyOptionsError::UnexpectedEnd(_)
        ));
        assert!(matches!(copy_err("copy 't"), CopyOptionsError::Lex(_)));
    }

    #[test]
    fn unload_defaults_and_options() {
        let u = unload(&format!(
            "unload ('select * from venue where venuestate = \\'NV\\' and x = ''y''') \
             to 's3://bkt/unload/venue_' {ROLE}"
        ));
        assert_eq!(
            u.query,
            "select * from venue where venuestate = 'NV' and x = 'y'"
        );
        assert_eq!(u.target.key, "unload/venue_");
        assert_eq!(u.format, UnloadFormat::Text { delimiter: b'|' });
        assert!(u.parallel && !u.header && !u.manifest);

        let u = unload(&format!(
            "UNLOAD ('select 1') TO 's3://bkt/out/' {ROLE} FORMAT AS CSV HEADER PARALLEL OFF \
             MANIFEST ALLOWOVERWRITE GZIP NULL AS 'NULL' EXTENSION 'csv.gz' MAXFILESIZE 100 MB"
        ));
        assert_eq!(u.format, UnloadFormat::Csv { delimiter: b',' });
        assert!(u.header && !u.parallel && u.manifest && u.allow_overwrite);
        assert_eq!(u.compression, Some(Compression::Gzip));
        assert_eq!(u.null_as.as_deref(), Some("NULL"));
        assert_eq!(u.extension.as_deref(), Some("csv.gz"));

        let u = unload(&format!(
            "unload ('select 1') to 's3://bkt/p/' {ROLE} parquet parallel false"
        ));
        assert_eq!(u.format, UnloadFormat::Parquet);
        assert!(!u.parallel);
    }

    #[test]
    fn bad_unloads_are_named_errors() {
        let err = |sql: &str| parse(sql).expect_err("fails");
        assert!(matches!(
            err(&format!(
                "unload ('select 1') to 's3://bkt/p/' {ROLE} parquet header"
            )),
            CopyOptionsError::NotForFormat {
                option: "HEADER",
                ..
            }
        ));
        assert!(matches!(
            err(&format!(
                "unload ('select 1') to 's3://bkt/p/' {ROLE} partition by (a)"
            )),
            CopyOptionsError::UnsupportedParameter(_, "UNLOAD")
        ));
        assert!(matches!(
            err(&format!(
                "unload ('select 1') to 's3://bkt/p/' {ROLE} manifest verbose"
            )),
            CopyOptionsError::UnsupportedParameter(_, "UNLOAD")
        ));
        assert!(matches!(
            err(&format!("unload ('select 1 to 's3://bkt/p/' {ROLE}")),
            CopyOptionsError::Syntax { .. } | CopyOptionsError::Lex(_)
        ));
        assert!(matches!(
            err("unload select 1 to 's3://bkt/p/'"),
            CopyOptionsError::Syntax { .. }
        ));
        assert!(matches!(
            err("unload ('select 1') to 's3://bkt/p/'"),
            CopyOptionsError::MissingAuthorization
        ));
        assert!(matches!(err("unload ('abc\\"), CopyOptionsError::Lex(_)));
    }
}
