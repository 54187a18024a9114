//! COPY from the local S3 into PostgreSQL: list or read the manifest, fetch, decompress, read
//! CSV / delimited text / JSON / Parquet into rows, convert each value as Redshift would for the
//! column's type (DATEFORMAT, TIMEFORMAT, NULL AS, EMPTYASNULL, TRUNCATECOLUMNS, …), and stream
//! the good rows into `COPY … FROM STDIN` on the batch's own connection, so the load is part of
//! the batch's transaction. Rejected rows go to `stl_load_errors` and `sys_load_error_detail` on a
//! connection of their own (Redshift keeps them after a rollback); past MAXERROR the load fails
//! with Redshift's error and PostgreSQL's COPY is aborted: nothing is half-loaded.
//!
//! Facts and texts from the Amazon Redshift Database Developer Guide: "Load error reference"
//! (r_Load_Error_Reference.html) for the error codes, "System tables for troubleshooting data
//! loads" (system-tables-for-troubleshooting-data-loads.html) for the statement's error text,
//! STL_LOAD_ERRORS (r_STL_LOAD_ERRORS.html) and SYS_LOAD_ERROR_DETAIL
//! (SYS_LOAD_ERROR_DETAIL.html) for the tables, "Data conversion parameters"
//! (copy-parameters-data-conversion.html) for the conversions.

use std::borrow::Cow;
use std::io::Read;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls};

use crate::copy_options::{Compression, CopyFormat, CopyStatement, DateTimeFormat, JsonSpec};
use crate::s3::{S3Error, S3};

/// Why a COPY failed. The text is what the statement's `Error` shows (after `ERROR: `).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("COPY and UNLOAD need the local S3: start the emulator with --s3-endpoint (the local stack does)")]
    NoS3,
    #[error("{0}")]
    S3(#[from] S3Error),
    /// Redshift's text when a prefix matches no object.
    #[error("The specified S3 prefix '{0}' does not exist")]
    PrefixNotFound(String),
    /// "System tables for troubleshooting data loads": the text of a load that rejected more
    /// rows than MAXERROR allows.
    #[error("Load into table '{0}' failed.  Check 'stl_load_errors' system table for details.")]
    RowsRejected(String),
    #[error(
        "Manifest file is not in correct json format or specified manifest file doesn't exist: {0}"
    )]
    Manifest(String),
    #[error("COPY with MANIFEST found no files to load in {0}")]
    EmptyManifest(String),
    #[error("Failed to decompress {compression} file {file}: {detail}")]
    Decompress {
        compression: &'static str,
        file: String,
        detail: String,
    },
    #[error("Spectrum Scan Error. File '{file}' is not a valid Parquet file: {detail}")]
    Parquet { file: String, detail: String },
    #[error("Unmatched number of columns between table and file. Table columns: {table}, Data columns: {data}, File: {file}")]
    ParquetColumns {
        table: usize,
        data: usize,
        file: String,
    },
    #[error("FORMAT AS PARQUET needs the emulator built with its `parquet` feature")]
    ParquetNotBuilt,
    #[error("Invalid JSONPath format in {file}: {detail}")]
    JsonPaths { file: String, detail: String },
    #[error("Number of jsonpaths and the number of columns should match. JSONPath size: {paths}, Number of columns in table or column list: {columns}")]
    JsonPathsCount { paths: usize, columns: usize },
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    NoSuchColumn { table: String, column: String },
    #[error("{0}")]
    Postgres(String),
    /// The reader thread ended without an answer (a bug: it is not meant to panic).
    #[error("COPY's reader stopped unexpectedly: {0}")]
    Reader(String),
}

fn pg_error(error: &tokio_postgres::Error) -> LoadError {
    LoadError::Postgres(match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => error.to_string(),
    })
}

/// A column of the target table, as the load needs it.
#[derive(Debug, Clone)]
pub(crate) struct TargetColumn {
    pub name: String,
    pub kind: Kind,
    /// `format_type`, e.g. `character varying(10)`.
    pub type_name: String,
    pub not_null: bool,
    /// Declared length in bytes for char/varchar.
    pub length: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SmallInt,
    Integer,
    BigInt,
    Numeric {
        precision: u32,
        scale: u32,
    },
    Float,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Char,
    /// Anything else: passed to PostgreSQL as is.
    Other,
}

impl Kind {
    fn from_pg(typname: &str, typmod: i32) -> Self {
        match typname {
            "int2" => Kind::SmallInt,
            "int4" => Kind::Integer,
            "int8" => Kind::BigInt,
            "numeric" => {
                if typmod >= 4 {
                    let m = (typmod - 4) as u32;
                    Kind::Numeric {
                        precision: (m >> 16) & 0xffff,
                        scale: m & 0xffff,
                    }
                } else {
                    // Redshift's default DECIMAL is (18, 0).
                    Kind::Numeric {
                        precision: 38,
                        scale: u32::MAX,
                    }
                }
            }
            "float4" | "float8" => Kind::Float,
            "bool" => Kind::Bool,
            "date" => Kind::Date,
            "timestamp" => Kind::Timestamp,
            "timestamptz" => Kind::TimestampTz,
            "varchar" | "bpchar" | "text" => Kind::Char,
            _ => Kind::Other,
        }
    }

    fn is_char(self) -> bool {
        self == Kind::Char
    }

    /// The short type name STL_LOAD_ERRORS shows.
    fn short_name(self, type_name: &str) -> String {
        type_name
            .split('(')
            .next()
            .unwrap_or(type_name)
            .chars()
            .take(10)
            .collect()
    }
}

/// The target table's columns (all, or those of the column list, in its order).
pub(crate) async fn target_columns(
    client: &Client,
    table: &str,
    wanted: &[String],
) -> Result<(u32, Vec<TargetColumn>), LoadError> {
    let rows = client
        .query(
            "select a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), \
             t.typname::text, a.atttypmod, a.attnotnull \
             from pg_attribute a join pg_type t on t.oid = a.atttypid \
             where a.attrelid = $1::text::regclass and a.attnum > 0 and not a.attisdropped \
             order by a.attnum",
            &[&table],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    let oid = rows
        .first()
        .map_or(0, |r| u32::try_from(r.get::<_, i64>(0)).unwrap_or(0));
    let all: Vec<TargetColumn> = rows
        .iter()
        .map(|r| {
            let typname: String = r.get(3);
            let typmod: i32 = r.get(4);
            let kind = Kind::from_pg(&typname, typmod);
            TargetColumn {
                name: r.get(1),
                type_name: r.get(2),
                not_null: r.get(5),
                length: (kind.is_char() && typmod >= 4).then(|| (typmod - 4) as usize),
                kind,
            }
        })
        .collect();
    if wanted.is_empty() {
        return Ok((oid, all));
    }
    let mut chosen = Vec::new();
    for column in wanted {
        let name = match column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => column.to_lowercase(),
        };
        let found = all
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| LoadError::NoSuchColumn {
                table: table_label(table),
                column: name.clone(),
            })?;
        chosen.push(found.clone());
    }
    Ok((oid, chosen))
}

/// `"My Table"` / `schema.venue` → the table's name as Redshift's messages show it.
pub(crate) fn table_label(table: &str) -> String {
    let last = table.rsplit('.').next().unwrap_or(table);
    match last.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One rejected row, as STL_LOAD_ERRORS and SYS_LOAD_ERROR_DETAIL record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: i64,
    pub column: String,
    pub column_type: String,
    pub column_length: String,
    pub position: i32,
    pub raw_line: String,
    pub raw_value: String,
    pub code: i32,
    pub reason: String,
}

/// A value's problem before it has a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueError {
    code: i32,
    reason: String,
    position: i32,
}

fn value_error(code: i32, reason: impl Into<String>) -> ValueError {
    ValueError {
        code,
        reason: reason.into(),
        position: 0,
    }
}

/// How values are read: text sources follow DATEFORMAT/TIMEFORMAT; Parquet values are already
/// typed (ISO text after the cast) and go to PostgreSQL as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Text,
    Typed,
}

/// The per-load conversion settings.
struct Converter<'a> {
    copy: &'a CopyStatement,
    source: Source,
    /// DATEFORMAT / TIMEFORMAT patterns, parsed once for the load (chrono's `*::parse_from_str`
    /// would parse the pattern again for every value).
    date_pattern: Option<Pattern>,
    time_pattern: Option<Pattern>,
}

/// A DATEFORMAT / TIMEFORMAT pattern, parsed.
struct Pattern {
    items: Vec<Item<'static>>,
    /// The pattern is PostgreSQL's own input form (`YYYY-MM-DD`, `YYYY-MM-DD HH24:MI:SS`): a
    /// value already in exactly that form is a valid value and goes to PostgreSQL as it is.
    iso: bool,
}

impl Pattern {
    fn new(format: Option<&DateTimeFormat>, iso_form: &str) -> Option<Self> {
        match format {
            Some(DateTimeFormat::Pattern { chrono, .. }) => Some(Self {
                // A pattern chrono cannot read fails every value, as before (1205 / 1206).
                items: StrftimeItems::new(chrono)
                    .parse_to_owned()
                    .unwrap_or_else(|_| vec![Item::Error]),
                iso: chrono == iso_form,
            }),
            _ => None,
        }
    }
}

/// Parses `value` with pre-parsed chrono items.
fn parse_with(value: &str, items: &[Item<'_>]) -> Option<Parsed> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, value, items.iter()).ok()?;
    Some(parsed)
}

/// The formats of DATEFORMAT / TIMEFORMAT 'auto', parsed once.
struct AutoFormats {
    dates: Vec<Vec<Item<'static>>>,
    times: Vec<Vec<Item<'static>>>,
    zoned: Vec<Vec<Item<'static>>>,
}

fn auto_formats() -> &'static AutoFormats {
    static FORMATS: std::sync::OnceLock<AutoFormats> = std::sync::OnceLock::new();
    FORMATS.get_or_init(|| {
        let parse = |list: &[&str]| -> Vec<Vec<Item<'static>>> {
            list.iter()
                .filter_map(|f| StrftimeItems::new(f).parse_to_owned().ok())
                .collect()
        };
        AutoFormats {
            dates: parse(DATE_AUTO),
            times: parse(TIME_AUTO),
            zoned: parse(&["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]),
        }
    })
}

/// `YYYY-MM-DD`, as chrono's `%Y-%m-%d` writes it.
fn write_date(out: &mut String, date: NaiveDate) {
    use std::fmt::Write;
    let year = date.year();
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}-{:02}-{:02}", date.month(), date.day());
    } else {
        let _ = write!(out, "{}", date.format("%Y-%m-%d"));
    }
}

/// `YYYY-MM-DD HH:MI:SS[.fff|.ffffff|.fffffffff]`, as chrono's `%Y-%m-%d %H:%M:%S%.f` writes it.
fn write_timestamp(out: &mut String, t: NaiveDateTime) {
    use std::fmt::Write;
    if t.nanosecond() >= 1_000_000_000 || !(0..=9999).contains(&t.year()) {
        // A leap second (`:60`) or a year of more than four digits: chrono's own writing.
        let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.f"));
        return;
    }
    write_date(out, t.date());
    let _ = write!(out, " {:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let nanos = t.nanosecond();
    if nanos == 0 {
        // whole seconds: no fraction
    } else if nanos % 1_000_000 == 0 {
        let _ = write!(out, ".{:03}", nanos / 1_000_000);
    } else if nanos % 1_000 == 0 {
        let _ = write!(out, ".{:06}", nanos / 1_000);
    } else {
        let _ = write!(out, ".{nanos:09}");
    }
}

const DATE_AUTO: &[&str] = &[
    "%Y-%m-%d",
    "%Y%m%d",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%m-%d-%Y",
    "%m.%d.%Y",
];
const TIME_AUTO: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y%m%d %H:%M:%S%.f",
    "%Y%m%dT%H%M%S",
    "%m/%d/%Y %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%d-%b-%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M:%S%.f",
];

impl<'a> Converter<'a> {
    fn new(copy: &'a CopyStatement, source: Source) -> Self {
        Self {
            copy,
            source,
            date_pattern: Pattern::new(copy.date_format.as_ref(), "%Y-%m-%d"),
            time_pattern: Pattern::new(copy.time_format.as_ref(), "%Y-%m-%d %H:%M:%S"),
        }
    }

    /// Converts one field (`None`: NULL) for `column`; the result is PostgreSQL input text.
    fn convert<'v>(
        &self,
        value: Option<&'v str>,
        column: &TargetColumn,
    ) -> Result<Option<Cow<'v, str>>, ValueError> {
        let copy = self.copy;
        let Some(mut value) = value else {
            return self.null(column);
        };
        if self.source == Source::Text {
            if value == copy.null_as {
                return self.null(column);
            }
            if copy.remove_quotes
                && value.len() >= 2
                && value.starts_with('"')
                && value.ends_with('"')
            {
                value = &value[1..value.len() - 1];
            }
            if copy.trim_blanks && column.kind.is_char() {
                value = value.trim_end_matches(' ');
            }
            if value.is_empty() {
                // "Empty fields for other data types, such as INT, are always loaded with NULL."
                if !column.kind.is_char() || copy.empty_as_null {
                    return self.null(column);
                }
            } else if copy.blanks_as_null && value.trim_matches(' ').is_empty() {
                return self.null(column);
            }
        }
        match column.kind {
            Kind::Char => {
                let Some(max) = column.length else {
                    return Ok(Some(Cow::Borrowed(value)));
                };
                if value.len() <= max {
                    return Ok(Some(Cow::Borrowed(value)));
                }
                if copy.truncate_columns {
                    let mut end = max;
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    return Ok(Some(Cow::Borrowed(&value[..end])));
                }
                Err(value_error(1204, "String length exceeds DDL length"))
            }
            Kind::SmallInt | Kind::Integer | Kind::BigInt => {
                let trimmed = value.trim();
                let (type_label, ok) = match column.kind {
                    Kind::SmallInt => ("Smallint", trimmed.parse::<i16>().is_ok()),
                    Kind::Integer => ("Integer", trimmed.parse::<i32>().is_ok()),
                    _ => ("Long", trimmed.parse::<i64>().is_ok()),
                };
                if ok {
                    return Ok(Some(Cow::Borrowed(trimmed)));
                }
                let digits = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(value_error(
                        1216,
                        format!("Overflow, Value '{trimmed}', Type: {type_label}"),
                    ));
                }
                let pos = digits
                    .bytes()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(0)
                    + (trimmed.len() - digits.len());
                Err(ValueError {
                    code: 1207,
                    reason: format!(
                        "Invalid digit, Value '{}', Pos {pos}, Type: {type_label}",
                        char_at(trimmed, pos)
                    ),
                    position: i32::try_from(pos).unwrap_or(0),
                })
            }
            Kind::Numeric { precision, scale } => {
                let trimmed = value.trim();
                let body = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
                let (int, frac) = body.split_once('.').unwrap_or((body, ""));
                let well_formed = !(int.is_empty() && frac.is_empty())
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit());
                if !well_formed {
                    if self.source == Source::Typed && trimmed.parse::<f64>().is_ok() {
                        return Ok(Some(Cow::Borrowed(trimmed)));
                    }
                    return Err(value_error(
                        1207,
                        format!(
                            "Invalid digit, Value '{}', Pos 0, Type: Decimal",
                            trimmed.chars().next().unwrap_or(' ')
                        ),
                    ));
                }
                if scale != u32::MAX {
                    let int_digits = int.trim_start_matches('0').len();
                    if int_digits as u32 > precision.saturating_sub(scale) {
                        return Err(value_error(
                            1216,
                            format!("Numeric data overflow (result precision), Value '{trimmed}'"),
                        ));
                    }
                }
                Ok(Some(Cow::Borrowed(trimmed)))
            }
            Kind::Float => {
                let trimmed = value.trim();
                let special = ["nan", "inf", "-inf", "infinity", "-infinity"]
                    .iter()
                    .any(|s| trimmed.eq_ignore_ascii_case(s));
                match () {
                    () if special || trimmed.parse::<f64>().is_ok() => {
                        Ok(Some(Cow::Borrowed(trimmed)))
                    }
                    () => Err(value_error(
                        1208,
                        format!("Invalid digit, Value '{trimmed}', Type: Double"),
                    )),
                }
            }
            Kind::Bool => {
                let t = value.trim();
                let is = |words: &[&str]| words.iter().any(|w| t.eq_ignore_ascii_case(w));
                if is(&["t", "true", "1", "y", "yes"]) {
                    Ok(Some(Cow::Borrowed("t")))
                } else if is(&["f", "false", "0", "n", "no"]) {
                    Ok(Some(Cow::Borrowed("f")))
                } else {
                    Err(value_error(
                        1210,
                        format!("Invalid boolean format, Value '{t}'"),
                    ))
                }
            }
            Kind::Date if self.source == Source::Text => {
                let value = value.trim();
                // The default format, already ISO: checked without parsing, passed on as is.
                // A value already `YYYY-MM-DD` reads as itself under the default, 'auto' (its
                // first format) and a `YYYY-MM-DD` pattern: checked without parsing, passed on.
                let iso = match &self.copy.date_format {
                    None | Some(DateTimeFormat::Auto) => true,
                    Some(_) => self.date_pattern.as_ref().is_some_and(|p| p.iso),
                };
                if iso && iso_date(value.as_bytes()) {
                    return Ok(Some(Cow::Borrowed(value)));
                }
                self.date(value).map(|d| Some(Cow::Owned(d)))
            }
            Kind::Timestamp | Kind::TimestampTz if self.source == Source::Text => {
                let value = value.trim();
                if self.copy.time_format.is_none() && iso_timestamp(value.as_bytes()) {
                    return Ok(Some(Cow::Borrowed(value)));
                }
                // `TIMEFORMAT 'YYYY-MM-DD HH24:MI:SS'` (or `HH:MI:SS`) and a value in exactly
                // that form (no fraction, no zone), or 'auto' (whose first zone-less format
                // is `YYYY-MM-DD HH:MI:SS[.f]`) and a value of that form: the value reads as
                // itself. (TIMESTAMPTZ values are written with their zone below.)
                let iso = match &self.copy.time_format {
                    Some(DateTimeFormat::Auto) => true,
                    Some(DateTimeFormat::Pattern { .. }) => {
                        value.len() == 19 && self.time_pattern.as_ref().is_some_and(|p| p.iso)
                    }
                    _ => false,
                };
                if iso && column.kind == Kind::Timestamp && iso_timestamp(value.as_bytes()) {
                    return Ok(Some(Cow::Borrowed(value)));
                }
                self.timestamp(value, column.kind == Kind::TimestampTz)
                    .map(|t| Some(Cow::Owned(t)))
            }
            _ => Ok(Some(Cow::Borrowed(value))),
        }
    }

    fn null<'v>(&self, column: &TargetColumn) -> Result<Option<Cow<'v, str>>, ValueError> {
        if column.not_null {
            return Err(value_error(1213, "Missing data for not-null field"));
        }
        Ok(None)
    }

    fn date(&self, value: &str) -> Result<String, ValueError> {
        let parsed = match (&self.copy.date_format, &self.date_pattern) {
            (Some(DateTimeFormat::Pattern { .. }), Some(pattern)) => {
                parse_with(value, &pattern.items).and_then(|p| {
                    p.to_naive_date()
                        .ok()
                        .or_else(|| p.to_naive_datetime_with_offset(0).ok().map(|t| t.date()))
                })
            }
            (None, _) => NaiveDate::parse_from_str(value, "%Y-%m-%d").ok(),
            _ => auto_formats()
                .dates
                .iter()
                .find_map(|f| parse_with(value, f)?.to_naive_date().ok())
                .or_else(|| auto_timestamp(value).map(|t| t.date())),
        };
        match parsed {
            Some(date) => {
                let mut out = String::with_capacity(10);
                write_date(&mut out, date);
                Ok(out)
            }
            None => {
                let expected = match &self.copy.date_format {
                    Some(DateTimeFormat::Pattern { written, .. }) => written.as_str(),
                    Some(_) => "auto",
                    None => "YYYY-MM-DD",
                };
                Err(value_error(
                    1205,
                    format!("Invalid Date Format - length must be 10 or more or match [{expected}], Value '{value}'"),
                ))
            }
        }
    }

    fn timestamp(&self, value: &str, with_zone: bool) -> Result<String, ValueError> {
        let parsed = match (&self.copy.time_format, &self.time_pattern) {
            (None, _) => NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .or_else(|| {
                    with_zone
                        .then(|| DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f%#z").ok())
                        .flatten()
                        .map(|t| t.naive_utc())
                }),
            (Some(DateTimeFormat::Pattern { .. }), Some(pattern)) => {
                parse_with(value, &pattern.items).and_then(|p| {
                    p.to_naive_datetime_with_offset(0)
                        .ok()
                        .or_else(|| p.to_naive_date().ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
                })
            }
            (Some(DateTimeFormat::EpochSecs), _) => value
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .map(|t| t.naive_utc()),
            (Some(DateTimeFormat::EpochMillis), _) => value
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| t.naive_utc()),
            _ => auto_timestamp(value),
        };
        match parsed {
            Some(t) => {
                let mut out = String::with_capacity(32);
                write_timestamp(&mut out, t);
                if with_zone {
                    out.push_str("+00");
                }
                Ok(out)
            }
            None => {
                let expected = match &self.copy.time_format {
                    Some(DateTimeFormat::Pattern { written, .. }) => written.as_str(),
                    Some(DateTimeFormat::Auto) => "auto",
                    Some(DateTimeFormat::EpochSecs) => "epochsecs",
                    Some(DateTimeFormat::EpochMillis) => "epochmillisecs",
                    None => "YYYY-MM-DD HH24:MI:SS",
                };
                Err(value_error(
                    1206,
                    format!("Invalid timestamp format or value [{expected}], Value '{value}'"),
                ))
            }
        }
    }
}

/// DATEFORMAT / TIMEFORMAT 'auto' for a timestamp: RFC 3339, ISO with a zone, the zone-less
/// formats, then the date formats at midnight.
fn auto_timestamp(value: &str) -> Option<NaiveDateTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.naive_utc());
    }
    let formats = auto_formats();
    formats
        .zoned
        .iter()
        .find_map(|f| parse_with(value, f)?.to_datetime().ok())
        .map(|t| t.naive_utc())
        .or_else(|| {
            formats
                .times
                .iter()
                .find_map(|f| parse_with(value, f)?.to_naive_datetime_with_offset(0).ok())
        })
        .or_else(|| {
            formats
                .dates
                .iter()
                .find_map(|f| parse_with(value, f)?.to_naive_date().ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// `YYYY-MM-DD`, a real date (the fast path of the default DATEFORMAT).
fn iso_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => {
            NaiveDate::from_ymd_opt(i32::try_from(y).unwrap_or(0), m, d).is_some()
        }
        _ => false,
    }
}

/// `YYYY-MM-DD HH:MI:SS[.f…]`, valid (the fast path of the default TIMEFORMAT).
fn iso_timestamp(b: &[u8]) -> bool {
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' || !iso_date(&b[..10]) {
        return false;
    }
    let fraction_ok = match &b[19..] {
        [] => true,
        [b'.', rest @ ..] => !rest.is_empty() && rest.len() <= 6 && digits(rest).is_some(),
        _ => false,
    };
    matches!(
        (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19])),
        (Some(h), Some(mi), Some(s)) if h < 24 && mi < 60 && s < 60
    ) && fraction_ok
}

fn char_at(text: &str, pos: usize) -> String {
    text.get(pos..)
        .and_then(|t| t.chars().next())
        .map(String::from)
        .unwrap_or_default()
}

/// Appends one value in PostgreSQL's COPY text format.
fn push_pg_text(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// PostgreSQL's binary COPY format ("COPY", "Binary Format" in the PostgreSQL manual): the
/// signature, flags and header extension length; the trailer is a field count of -1.
const PG_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const PG_BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// The column kinds the binary COPY format is written for. A load into a table with any other
/// column (TIMESTAMPTZ, FLOAT, TIME, SUPER, …) and a Parquet load use the text format, whose
/// input PostgreSQL reads itself.
fn binary_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::SmallInt
            | Kind::Integer
            | Kind::BigInt
            | Kind::Numeric { .. }
            | Kind::Bool
            | Kind::Date
            | Kind::Timestamp
            | Kind::Char
    )
}

/// Days from 0001-01-01 (chrono's `num_days_from_ce` day 1) to PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS_FROM_CE: i32 = 730_120;
/// Seconds from the Unix epoch to PostgreSQL's epoch 2000-01-01 00:00:00.
const PG_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

/// A converted DATE value (`YYYY-MM-DD`, or chrono's signed form for other years).
fn parse_pg_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10]))
        {
            return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A converted TIMESTAMP value (`YYYY-MM-DD HH:MI:SS[.f…]`).
fn parse_pg_timestamp(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() >= 19 && b[10] == b' ' && b[13] == b':' && b[16] == b':' {
        let fraction = match &b[19..] {
            [] => Some(0),
            [b'.', rest @ ..] if !rest.is_empty() && rest.len() <= 9 => {
                digits(rest).map(|f| f * 10u32.pow(9 - rest.len() as u32))
            }
            _ => None,
        };
        if let (Some(date), Some(h), Some(mi), Some(s), Some(nanos)) = (
            parse_pg_date(&text[..10]),
            digits(&b[11..13]),
            digits(&b[14..16]),
            digits(&b[17..19]),
            fraction,
        ) {
            if s < 60 {
                return date.and_hms_nano_opt(h, mi, s, nanos);
            }
        }
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// Microseconds since 2000-01-01, the fraction rounded as PostgreSQL rounds more than six
/// digits of text input (`ParseFractionalSecond`: `rint(strtod(fraction) * 1000000)`; the
/// division below is the same correctly rounded double as `strtod` of the digits).
fn pg_timestamp_micros(t: NaiveDateTime) -> i64 {
    let seconds = t.and_utc().timestamp() - PG_EPOCH_UNIX_SECONDS;
    let nanos = t.nanosecond();
    let micros = if nanos % 1000 == 0 {
        i64::from(nanos / 1000)
    } else {
        (f64::from(nanos) / 1e9 * 1e6).round_ties_even() as i64
    };
    seconds * 1_000_000 + micros
}

/// A well-formed decimal (`[+-]digits[.digits]`, as the converter lets through) in
/// PostgreSQL's binary NUMERIC form: base-10000 digits, weight, sign, display scale. PostgreSQL
/// rounds it to the column's scale as it rounds text input.
fn push_pg_numeric(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let dscale = u16::try_from(frac.len()).ok().filter(|d| *d <= 0x3FFF)?;
    // Base-10000 groups aligned on the decimal point.
    let int_groups = int.len().div_ceil(4);
    let frac_groups = frac.len().div_ceil(4);
    let mut groups: Vec<i16> = Vec::with_capacity(int_groups + frac_groups);
    let lead = int_groups * 4 - int.len();
    let mut group = 0i16;
    let mut filled = lead;
    for b in int.bytes().chain(frac.bytes()) {
        group = group * 10 + i16::from(b - b'0');
        filled += 1;
        if filled == 4 {
            groups.push(group);
            group = 0;
            filled = 0;
        }
    }
    if filled > 0 {
        for _ in filled..4 {
            group *= 10;
        }
        groups.push(group);
    }
    let mut weight = i64::try_from(int_groups).ok()? - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    weight -= leading as i64;
    let trailing = groups[leading..]
        .iter()
        .rev()
        .take_while(|g| **g == 0)
        .count();
    let digits = &groups[leading..groups.len() - trailing];
    if digits.is_empty() {
        weight = 0;
    }
    let ndigits = i16::try_from(digits.len()).ok()?;
    let weight = i16::try_from(weight).ok()?;
    let sign: u16 = if negative && !digits.is_empty() {
        0x4000
    } else {
        0
    };
    let len = i32::try_from(8 + 2 * digits.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    Some(())
}

/// Appends one converted value as a binary COPY field; `None` when it cannot be written (a
/// NUMERIC beyond PostgreSQL's format, a value the converter would not let through).
fn push_pg_binary(out: &mut Vec<u8>, kind: Kind, value: Option<&str>) -> Option<()> {
    let Some(value) = value else {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Some(());
    };
    let mut fixed = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    match kind {
        Kind::Char => {
            let len = i32::try_from(value.len()).ok()?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        Kind::SmallInt => fixed(&value.parse::<i16>().ok()?.to_be_bytes()),
        Kind::Integer => fixed(&value.parse::<i32>().ok()?.to_be_bytes()),
        Kind::BigInt => fixed(&value.parse::<i64>().ok()?.to_be_bytes()),
        Kind::Bool => fixed(&[u8::from(value == "t")]),
        Kind::Date => {
            let days = parse_pg_date(value)?.num_days_from_ce() - PG_EPOCH_DAYS_FROM_CE;
            fixed(&days.to_be_bytes());
        }
        Kind::Timestamp => fixed(&pg_timestamp_micros(parse_pg_timestamp(value)?).to_be_bytes()),
        Kind::Numeric { .. } => push_pg_numeric(out, value)?,
        _ => return None,
    }
    Some(())
}

/// Redshift's raw_line / raw_field_value: at most 1024 characters.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The size of the pieces of COPY text handed to PostgreSQL while the rest is converted.
const CHUNK: usize = 256 * 1024;

/// Accumulates converted rows (PostgreSQL COPY text) and rejected rows; every [`CHUNK`] of text
/// goes to `to_postgres` (the task that writes it into `COPY … FROM STDIN`) as soon as it is full,
/// so PostgreSQL loads while the next rows are converted.
pub(crate) struct Batch<'c> {
    converter: Converter<'c>,
    columns: &'c [TargetColumn],
    out: Vec<u8>,
    to_postgres: tokio::sync::mpsc::Sender<bytes::Bytes>,
    /// The writing task stopped (PostgreSQL refused the COPY): nothing more is read.
    closed: bool,
    /// The text is PostgreSQL's binary COPY format (see [`binary_kind`]), not its text format.
    binary: bool,
    /// A value the binary format cannot hold: the load fails with it.
    fatal: Option<LoadError>,
    rows: i64,
    errors: Vec<RowError>,
}

/// A row's fields, each `None` for NULL (JSON null, Parquet null).
type Fields<'a> = Vec<Option<Cow<'a, str>>>;

impl<'c> Batch<'c> {
    fn new(
        converter: Converter<'c>,
        columns: &'c [TargetColumn],
        to_postgres: tokio::sync::mpsc::Sender<bytes::Bytes>,
        binary: bool,
    ) -> Self {
        let mut out = Vec::with_capacity(CHUNK + 4096);
        if binary {
            out.extend_from_slice(PG_BINARY_HEADER);
        }
        Self {
            converter,
            columns,
            out,
            to_postgres,
            closed: false,
            binary,
            fatal: None,
            rows: 0,
            errors: Vec::new(),
        }
    }

    fn too_many_errors(&self) -> bool {
        self.errors.len() as u64 > self.converter.copy.max_error
    }

    /// Reading stops: past MAXERROR, or PostgreSQL stopped taking rows.
    fn stopped(&self) -> bool {
        self.closed || self.fatal.is_some() || self.too_many_errors()
    }

    /// Hands the converted text to the writing task (blocking while it is [`CHUNK`]s behind).
    fn flush(&mut self) {
        if self.out.is_empty() || self.closed {
            return;
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.out,
            Vec::with_capacity(CHUNK + 4096),
        ));
        if self.to_postgres.blocking_send(chunk).is_err() {
            self.closed = true;
        }
    }

    /// Converts and appends one row; a bad row is recorded instead.
    fn push(&mut self, file: &str, line: i64, raw_line: &dyn Fn() -> String, fields: &Fields<'_>) {
        let reject = |column: Option<&TargetColumn>, raw_value: &str, e: ValueError| RowError {
            file: file.to_string(),
            line,
            column: column.map(|c| c.name.clone()).unwrap_or_default(),
            column_type: column
                .map(|c| c.kind.short_name(&c.type_name))
                .unwrap_or_default(),
            column_length: column
                .and_then(|c| c.length)
                .map(|l| l.to_string())
                .unwrap_or_default(),
            position: e.position,
            raw_line: clip(&raw_line(), 1024),
            raw_value: clip(raw_value, 1024),
            code: e.code,
            reason: clip(&e.reason, 100),
        };
        let expected = self.columns.len();
        if fields.len() > expected {
            let error = reject(None, "", value_error(1202, "Extra column(s) found"));
            self.errors.push(error);
            return;
        }
        if fields.len() < expected && !self.converter.copy.fill_record {
            let column = self.columns.get(fields.len());
            let error = reject(column, "", value_error(1214, "Delimiter not found"));
            self.errors.push(error);
            return;
        }
        let start = self.out.len();
        if self.binary {
            // At most 1,600 columns (PostgreSQL's limit).
            let count = i16::try_from(self.columns.len()).unwrap_or(i16::MAX);
            self.out.extend_from_slice(&count.to_be_bytes());
        }
        for (i, column) in self.columns.iter().enumerate() {
            let raw = fields.get(i).and_then(|f| f.as_deref());
            match self.converter.convert(raw, column) {
                Ok(value) if self.binary => {
                    if push_pg_binary(&mut self.out, column.kind, value.as_deref()).is_none() {
                        self.out.truncate(start);
                        self.fatal = Some(LoadError::Postgres(format!(
                            "value overflows the format of column \"{}\" ({}): {}",
                            column.name,
                            column.type_name,
                            clip(value.as_deref().unwrap_or(""), 100)
                        )));
                        return;
                    }
                }
                Ok(value) => {
                    if i > 0 {
                        self.out.push(b'\t');
                    }
                    push_pg_text(&mut self.out, value.as_deref());
                }
                Err(e) => {
                    self.out.truncate(start);
                    let error = reject(Some(column), raw.unwrap_or(""), e);
                    self.errors.push(error);
                    return;
                }
            }
        }
        if !self.binary {
            self.out.push(b'\n');
        }
        self.rows += 1;
        if self.out.len() >= CHUNK {
            self.flush();
        }
    }
}

/// Decompresses per the statement's GZIP / BZIP2 / ZSTD (the data of every file).
fn decompress(
    file: &str,
    data: Vec<u8>,
    compression: Option<Compression>,
) -> Result<Vec<u8>, LoadError> {
    let Some(compression) = compression else {
        return Ok(data);
    };
    let mut out = Vec::with_capacity(data.len() * 4);
    let (name, result) = match compression {
        Compression::Gzip => (
            "gzip",
            flate2::read::MultiGzDecoder::new(data.as_slice()).read_to_end(&mut out),
        ),
        Compression::Bzip2 => (
            "bzip2",
            bzip2::read::MultiBzDecoder::new(data.as_slice()).read_to_end(&mut out),
        ),
        Compression::Zstd => (
            "zstd",
            zstd::stream::read::Decoder::new(data.as_slice())
                .and_then(|mut d| d.read_to_end(&mut out)),
        ),
    };
    result.map_err(|e| LoadError::Decompress {
        compression: name,
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    Ok(out)
}

/// The replacement for invalid UTF-8 under ACCEPTINVCHARS, or the 1220 error.
fn utf8_field<'a>(bytes: &'a [u8], accept: Option<char>) -> Result<Cow<'a, str>, ValueError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(e) => match accept {
            Some(c) => Ok(Cow::Owned(
                String::from_utf8_lossy(bytes).replace('\u{FFFD}', &c.to_string()),
            )),
            None => {
                let bad = &bytes[e.valid_up_to()..bytes.len().min(e.valid_up_to() + 4)];
                let hex: Vec<String> = bad.iter().map(|b| format!("{b:02x}")).collect();
                Err(ValueError {
                    code: 1220,
                    reason: format!(
                        "String contains invalid or unsupported UTF8 codepoints. Bad UTF8 hex sequence: {}",
                        hex.join(" ")
                    ),
                    position: i32::try_from(e.valid_up_to()).unwrap_or(0),
                })
            }
        },
    }
}

/// CSV or delimited text (the csv crate: RFC 4180 quoting for CSV, none for text).
fn read_delimited(batch: &mut Batch<'_>, file: &str, data: &[u8]) {
    let copy = batch.converter.copy;
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true);
    match copy.format {
        CopyFormat::Csv { delimiter, quote } => {
            builder.delimiter(delimiter).quote(quote).double_quote(true);
        }
        CopyFormat::Text { delimiter } => {
            builder.delimiter(delimiter).quoting(false);
        }
        _ => unreachable!("read_delimited is for CSV and text"),
    }
    let mut reader = builder.from_reader(data);
    let mut record = csv::ByteRecord::new();
    let mut skipped = 0;
    loop {
        if batch.stopped() {
            return;
        }
        let line_start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                batch.errors.push(RowError {
                    file: file.to_string(),
                    line: i64::try_from(reader.position().line()).unwrap_or(0),
                    column: String::new(),
                    column_type: String::new(),
                    column_length: String::new(),
                    position: 0,
                    raw_line: String::new(),
                    raw_value: String::new(),
                    code: 1216,
                    reason: clip(&format!("Invalid input line: {e}"), 100),
                });
                continue;
            }
        }
        let line = record
            .position()
            .map_or(0, |p| i64::try_from(p.line()).unwrap_or(0));
        if skipped < copy.ignore_header {
            skipped += 1;
            continue;
        }
        let line_end = reader.position().byte() as usize;
        let raw = &data[line_start.min(data.len())..line_end.min(data.len())];
        let raw_line = || {
            String::from_utf8_lossy(raw)
                .trim_end_matches(['\n', '\r'])
                .to_string()
        };
        let mut fields: Fields<'_> = Vec::with_capacity(record.len());
        let mut bad = None;
        for (i, f) in record.iter().enumerate() {
            match utf8_field(f, copy.accept_inv_chars) {
                Ok(s) => fields.push(Some(s)),
                Err(e) => {
                    bad = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = bad {
            let column = batch.columns.get(i);
            batch.errors.push(RowError {
                file: file.to_string(),
                line,
                column: column.map(|c| c.name.clone()).unwrap_or_default(),
                column_type: column
                    .map(|c| c.kind.short_name(&c.type_name))
                    .unwrap_or_default(),
                column_length: column
                    .and_then(|c| c.length)
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                position: e.position,
                raw_line: clip(&raw_line(), 1024),
                raw_value: clip(&String::from_utf8_lossy(record.get(i).unwrap_or(b"")), 1024),
                code: e.code,
                reason: clip(&e.reason, 100),
            });
            continue;
        }
        batch.push(file, line, &raw_line, &fields);
    }
}

/// A JSONPath of the jsonpaths file: `$.a.b`, `$['a']`, `$.a[0]`.
fn json_path(path: &str) -> Option<Vec<PathStep>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(PathStep::Index(r[..end].trim().parse().ok()?));
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn read_json(
    batch: &mut Batch<'_>,
    file: &str,
    data: &[u8],
    paths: Option<&[Vec<PathStep>]>,
    ignore_case: bool,
) {
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>();
    let mut line: i64 = 1;
    let mut counted = 0usize;
    let columns = batch.columns;
    loop {
        if batch.stopped() {
            return;
        }
        let start = stream.byte_offset();
        let item = stream.next();
        let end = stream.byte_offset();
        line += data[counted..end.min(data.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as i64;
        counted = end.min(data.len());
        let raw = &data[start.min(data.len())..end.min(data.len())];
        let raw_line = || String::from_utf8_lossy(raw).trim().to_string();
        let value = match item {
            None => return,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                batch.errors.push(RowError {
                    file: file.to_string(),
                    line,
                    column: String::new(),
                    column_type: String::new(),
                    column_length: String::new(),
                    position: 0,
                    raw_line: clip(&raw_line(), 1024),
                    raw_value: String::new(),
                    code: 1224,
                    reason: clip(&format!("Invalid JSON: {e}"), 100),
                });
                // A syntax error ends the stream: nothing after it can be framed.
                return;
            }
        };
        let fields: Fields<'_> = match paths {
            Some(paths) => paths
                .iter()
                .map(|steps| {
                    let mut v = Some(&value);
                    for step in steps {
                        v = match (step, v) {
                            (PathStep::Key(k), Some(serde_json::Value::Object(o))) => o.get(k),
                            (PathStep::Index(i), Some(serde_json::Value::Array(a))) => a.get(*i),
                            _ => None,
                        };
                    }
                    v.and_then(json_text).map(Cow::Owned)
                })
                .collect(),
            None => {
                let serde_json::Value::Object(object) = &value else {
                    batch.errors.push(RowError {
                        file: file.to_string(),
                        line,
                        column: String::new(),
                        column_type: String::new(),
                        column_length: String::new(),
                        position: 0,
                        raw_line: clip(&raw_line(), 1024),
                        raw_value: String::new(),
                        code: 1224,
                        reason: "Invalid JSONPath format: Member is not an object.".into(),
                    });
                    continue;
                };
                columns
                    .iter()
                    .map(|c| {
                        let found = if ignore_case {
                            object
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                                .map(|(_, v)| v)
                        } else {
                            object.get(&c.name)
                        };
                        found.and_then(json_text).map(Cow::Owned)
                    })
                    .collect()
            }
        };
        batch.push(file, line, &raw_line, &fields);
    }
}

#[cfg(feature = "parquet")]
fn read_parquet(batch: &mut Batch<'_>, file: &str, data: Vec<u8>) -> Result<(), LoadError> {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let invalid = |e: &dyn std::fmt::Display| LoadError::Parquet {
        file: file.to_string(),
        detail: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data))
        .map_err(|e| invalid(&e))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| invalid(&e))?;
    let mut line: i64 = 0;
    for record_batch in reader {
        let record_batch = record_batch.map_err(|e| invalid(&e))?;
        if record_batch.num_columns() != batch.columns.len() {
            return Err(LoadError::ParquetColumns {
                table: batch.columns.len(),
                data: record_batch.num_columns(),
                file: file.to_string(),
            });
        }
        let strings = record_batch
            .columns()
            .iter()
            .map(|c| arrow_cast::cast(c, &arrow_schema::DataType::Utf8).map_err(|e| invalid(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let strings: Vec<&arrow_array::StringArray> =
            strings.iter().map(|a| a.as_string::<i32>()).collect();
        for row in 0..record_batch.num_rows() {
            line += 1;
            if batch.stopped() {
                return Ok(());
            }
            let fields: Fields<'_> = strings
                .iter()
                .map(|a| (!a.is_null(row)).then(|| Cow::Borrowed(a.value(row))))
                .collect();
            let raw_line = || {
                fields
                    .iter()
                    .map(|f| f.as_deref().unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|")
            };
            batch.push(file, line, &raw_line, &fields);
        }
    }
    Ok(())
}

/// The files a COPY reads: every object under the prefix, or the manifest's entries.
async fn files(s3: &S3, copy: &CopyStatement) -> Result<Vec<(String, String)>, LoadError> {
    let source = &copy.source;
    if !copy.manifest {
        let objects = s3.list(&source.bucket, &source.key).await?;
        let keys: Vec<(String, String)> = objects
            .into_iter()
            // "Folders" (zero-byte keys ending in `/`) are not data files.
            .filter(|o| !(o.key.ends_with('/') && o.size == 0))
            .map(|o| (source.bucket.clone(), o.key))
            .collect();
        if keys.is_empty() {
            return Err(LoadError::PrefixNotFound(source.key.clone()));
        }
        return Ok(keys);
    }
    // "Using a manifest to specify data files" (loading-data-files-using-manifest.html).
    let text = s3.get(&source.bucket, &source.key).await?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| LoadError::Manifest(e.to_string()))?;
    let entries = manifest
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| LoadError::Manifest("no \"entries\" array".into()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let url = entry
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| LoadError::Manifest("an entry without \"url\"".into()))?;
        let mandatory = entry
            .get("mandatory")
            .and_then(|m| m.as_bool())
            .unwrap_or(false);
        let parsed = crate::copy_options::S3Url::parse(url)
            .map_err(|e| LoadError::Manifest(e.to_string()))?;
        match s3.list(&parsed.bucket, &parsed.key).await {
            Ok(objects) if objects.iter().any(|o| o.key == parsed.key) => {
                keys.push((parsed.bucket, parsed.key));
            }
            Ok(_) | Err(S3Error::NoSuchBucket(_)) if !mandatory => {}
            Ok(_) => {
                return Err(S3Error::NoSuchKey {
                    bucket: parsed.bucket,
                    key: parsed.key,
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    if keys.is_empty() {
        return Err(LoadError::EmptyManifest(source.to_string()));
    }
    Ok(keys)
}

/// What the reader thread hands back: the rows it converted and the rows it rejected.
struct ReadOutcome {
    rows: i64,
    errors: Vec<RowError>,
}

/// The reader thread: reads each fetched file into COPY text for `to_postgres`, until the files
/// end, MAXERROR is passed or PostgreSQL stops taking rows.
fn read_files(
    copy: &CopyStatement,
    source: Source,
    columns: &[TargetColumn],
    json_paths: Option<&[Vec<PathStep>]>,
    mut files: tokio::sync::mpsc::Receiver<(String, Vec<u8>)>,
    to_postgres: tokio::sync::mpsc::Sender<bytes::Bytes>,
    binary: bool,
) -> Result<ReadOutcome, LoadError> {
    let mut batch = Batch::new(Converter::new(copy, source), columns, to_postgres, binary);
    while let Some((file, data)) = files.blocking_recv() {
        match &copy.format {
            CopyFormat::Parquet => {
                #[cfg(feature = "parquet")]
                read_parquet(&mut batch, &file, data)?;
                #[cfg(not(feature = "parquet"))]
                {
                    let _ = data;
                    return Err(LoadError::ParquetNotBuilt);
                }
            }
            CopyFormat::Json(spec) => {
                let data = decompress(&file, data, copy.compression)?;
                read_json(
                    &mut batch,
                    &file,
                    &data,
                    json_paths,
                    *spec == JsonSpec::AutoIgnoreCase,
                );
            }
            CopyFormat::Csv { .. } | CopyFormat::Text { .. } => {
                let data = decompress(&file, data, copy.compression)?;
                read_delimited(&mut batch, &file, &data);
            }
        }
        if batch.stopped() {
            break;
        }
    }
    if let Some(error) = batch.fatal.take() {
        return Err(error);
    }
    if !batch.too_many_errors() {
        if batch.binary {
            batch.out.extend_from_slice(PG_BINARY_TRAILER);
        }
        batch.flush();
    }
    Ok(ReadOutcome {
        rows: batch.rows,
        errors: batch.errors,
    })
}

/// Runs a COPY on `client` (inside the batch's transaction when there is one) and returns the
/// number of rows loaded. Rejected rows are written to the error tables through `errors_to`.
pub async fn copy(
    client: &Client,
    errors_to: &tokio_postgres::Config,
    s3: Option<&S3>,
    query_id: i64,
    copy: &CopyStatement,
) -> Result<i64, LoadError> {
    let s3 = s3.ok_or(LoadError::NoS3)?;
    let start_time = chrono::Utc::now().naive_utc();
    let (table_oid, columns) = target_columns(client, &copy.table, &copy.columns).await?;
    let label = table_label(&copy.table);
    let files = files(s3, copy).await?;

    let json_paths = match &copy.format {
        CopyFormat::Json(JsonSpec::JsonPaths(url)) => {
            let text = s3.get(&url.bucket, &url.key).await?;
            let bad = |detail: String| LoadError::JsonPaths {
                file: url.to_string(),
                detail,
            };
            let doc: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
            let list = doc
                .get("jsonpaths")
                .and_then(|p| p.as_array())
                .ok_or_else(|| bad("no \"jsonpaths\" array".into()))?;
            let paths = list
                .iter()
                .map(|p| {
                    p.as_str()
                        .and_then(json_path)
                        .ok_or_else(|| bad(format!("invalid path {p}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if paths.len() != columns.len() {
                return Err(LoadError::JsonPathsCount {
                    paths: paths.len(),
                    columns: columns.len(),
                });
            }
            Some(paths)
        }
        _ => None,
    };

    let source = if copy.format == CopyFormat::Parquet {
        Source::Typed
    } else {
        Source::Text
    };
    let column_list: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    // PostgreSQL reads its binary format with far less work than text (no parsing of numbers,
    // dates and timestamps a second time): used when every column's kind has a binary writer.
    let binary = source == Source::Text && columns.iter().all(|c| binary_kind(c.kind));
    let statement = format!(
        "COPY {} ({}) FROM STDIN{}",
        copy.table,
        column_list.join(", "),
        if binary { " (FORMAT binary)" } else { "" }
    );
    let sink = client
        .copy_in::<_, bytes::Bytes>(&statement)
        .await
        .map_err(|e| pg_error(&e))?;
    let mut sink = Box::pin(sink);

    // Three stages run at once: this task fetches the files (one ahead of the reader) and writes
    // the converted text into PostgreSQL's COPY; a blocking thread reads and converts the rows.
    let (file_tx, file_rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(1);
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let reader = {
        let copy = copy.clone();
        let columns = columns.clone();
        tokio::task::spawn_blocking(move || {
            read_files(
                &copy,
                source,
                &columns,
                json_paths.as_deref(),
                file_rx,
                chunk_tx,
                binary,
            )
        })
    };
    let fetch = async move {
        for (bucket, key) in &files {
            let data = s3.get(bucket, key).await?;
            if file_tx
                .send((format!("s3://{bucket}/{key}"), data))
                .await
                .is_err()
            {
                break; // the reader stopped (an error, MAXERROR, PostgreSQL refused)
            }
        }
        Ok::<(), LoadError>(())
    };
    let write = async {
        while let Some(chunk) = chunk_rx.recv().await {
            if let Err(e) = sink.send(chunk).await {
                // Closing the channel stops the reader at its next chunk.
                drop(chunk_rx);
                return Err(pg_error(&e));
            }
        }
        Ok(())
    };
    let (fetched, written) = tokio::join!(fetch, write);
    let outcome = reader
        .await
        .map_err(|e| LoadError::Reader(e.to_string()))??;
    // In the order a file-by-file load meets them: the reader's error is in a file fetched
    // before the one whose fetch failed; past MAXERROR no further file is read.
    let errors = outcome.errors;
    let failed = errors.len() as u64 > copy.max_error;
    if !failed {
        fetched?;
        written?;
    }
    let mut loaded = outcome.rows;
    if failed {
        // Dropping the sink unfinished aborts PostgreSQL's COPY: nothing of it stays.
        drop(sink);
    } else {
        loaded = i64::try_from(sink.as_mut().finish().await.map_err(|e| pg_error(&e))?)
            .unwrap_or(loaded);
    }
    if !errors.is_empty() {
        if let Err(error) = record_errors(errors_to, query_id, table_oid, start_time, &errors).await
        {
            tracing::warn!(error = ?error.as_db_error().map(|e| e.message()), "cannot record load errors");
        }
    }
    if failed {
        return Err(LoadError::RowsRejected(label));
    }
    Ok(loaded)
}

/// `stl_load_errors` and `sys_load_error_detail` with Redshift's columns (public schema).
const ERROR_TABLES: &str = "\
create table if not exists public.stl_load_errors (
    userid integer, slice integer, tbl integer, starttime timestamp, session integer,
    query integer, filename character(256), line_number bigint, colname character(127),
    type character(10), col_length character(10), position integer,
    raw_line character(1024), raw_field_value character(1024), err_code integer,
    err_reason character(100), is_partial integer, start_offset bigint);
create table if not exists public.sys_load_error_detail (
    user_id integer, query_id bigint, transaction_id bigint, session_id integer,
    database_name character(64), table_id integer, start_time timestamp,
    file_name character(256), line_number bigint, column_name character(127),
    column_type character(10), column_length character(10), position integer,
    error_code integer, error_message character(512));";

/// Creates the error tables if they are missing (serialized: emulators share a database).
pub async fn ensure_error_tables(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "begin; select pg_advisory_xact_lock(hashtext('redshift-data-emulator: load error tables')); {ERROR_TABLES} commit;"
        ))
        .await
}

async fn record_errors(
    config: &tokio_postgres::Config,
    query_id: i64,
    table_oid: u32,
    start_time: NaiveDateTime,
    errors: &[RowError],
) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(connection);
    ensure_error_tables(&client).await?;
    let session: i32 = client
        .query_one("select pg_backend_pid()", &[])
        .await?
        .get(0);
    let tbl = i32::try_from(table_oid).unwrap_or(0);
    let start_time = start_time.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let query = i32::try_from(query_id).unwrap_or(i32::MAX);
    let stl = client
        .prepare(
            "insert into public.stl_load_errors (userid, slice, tbl, starttime, session, query, \
             filename, line_number, colname, type, col_length, position, raw_line, \
             raw_field_value, err_code, err_reason, is_partial, start_offset) \
             values (100, 0, $1, $2::text::timestamp, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, 0)",
        )
        .await?;
    let sys = client
        .prepare(
            "insert into public.sys_load_error_detail (user_id, query_id, transaction_id, \
             session_id, database_name, table_id, start_time, file_name, line_number, \
             column_name, column_type, column_length, position, error_code, error_message) \
             values (100, $1, 0, $2, current_database(), $3, $4::text::timestamp, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .await?;
    for e in errors {
        let file = clip(&e.file, 256);
        let column = clip(&e.column, 127);
        client
            .execute(
                &stl,
                &[
                    &tbl,
                    &start_time,
                    &session,
                    &query,
                    &file,
                    &e.line,
                    &column,
                    &e.column_type,
                    &e.column_length,
                    &e.position,
                    &e.raw_line,
                    &e.raw_value,
                    &e.code,
                    &e.reason,
                ],
            )
            .await?;
        client
            .execute(
                &sys,
                &[
                    &query_id,
                    &session,
                    &tbl,
                    &start_time,
                    &file,
                    &e.line,
                    &column,
                    &e.column_type,
                    &e.column_length,
                    &e.position,
                    &e.code,
                    &clip(&e.reason, 512),
                ],
            )
            .await?;
    }
    drop(client);
    let _ = task.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_text_escapes_the_copy_specials() {
        let mut out = Vec::new();
        push_pg_text(&mut out, Some("a\tb\\c\nd"));
        out.push(b'|');
        push_pg_text(&mut out, None);
        assert_eq!(out, b"a\\tb\\\\c\\nd|\\N");
    }

    #[test]
    fn json_paths_parse() {
        assert_eq!(
            json_path("$.a['b c'][2].d"),
            Some(vec![
                PathStep::Key("a".into()),
                PathStep::Key("b c".into()),
                PathStep::Index(2),
                PathStep::Key("d".into())
            ])
        );
        assert_eq!(json_path("a.b"), None);
        assert_eq!(json_path("$..a"), None);
    }

    #[test]
    fn invalid_utf8_is_1220_or_replaced() {
        let e = utf8_field(b"ab\xffc", None).expect_err("invalid");
        assert_eq!(e.code, 1220);
        assert!(e.reason.contains("ff"), "{}", e.reason);
        assert_eq!(utf8_field(b"ab\xffc", Some('?')).unwrap(), "ab?c");
    }

    #[test]
    fn iso_fast_paths_accept_only_valid_values() {
        assert!(iso_date(b"2024-02-29"));
        assert!(!iso_date(b"2023-02-29"));
        assert!(!iso_date(b"2024-13-01"));
        assert!(!iso_date(b"2024/01/01"));
        assert!(iso_timestamp(b"2024-03-01 10:00:00"));
        assert!(iso_timestamp(b"2024-03-01 23:59:59.123456"));
        assert!(!iso_timestamp(b"2024-03-01 24:00:00"));
        assert!(!iso_timestamp(b"2024-03-01 10:00:00."));
        assert!(!iso_timestamp(b"2024-03-01 10:00:00+02"));
        assert!(!iso_timestamp(b"2024-03-01T10:00:00"));
    }

    /// `(ndigits, weight, sign, dscale, digits)` of a binary NUMERIC field.
    fn numeric(text: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut out = Vec::new();
        push_pg_numeric(&mut out, text).expect("encodable");
        let word = |i: usize| [out[i], out[i + 1]];
        let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        assert_eq!(len, out.len() - 4);
        let n = i16::from_be_bytes(word(4));
        let digits = (0..n as usize)
            .map(|i| i16::from_be_bytes(word(12 + 2 * i)))
            .collect();
        (
            n,
            i16::from_be_bytes(word(6)),
            u16::from_be_bytes(word(8)),
            u16::from_be_bytes(word(10)),
            digits,
        )
    }

    #[test]
    fn numerics_in_postgres_binary_form() {
        // PostgreSQL's own encoding of these values (numeric_send).
        assert_eq!(numeric("123.45"), (2, 0, 0, 2, vec![123, 4500]));
        assert_eq!(numeric("-0.001"), (1, -1, 0x4000, 3, vec![10]));
        assert_eq!(numeric("+10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(numeric("007.50"), (2, 0, 0, 2, vec![7, 5000]));
        assert_eq!(numeric("0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(numeric("-0"), (0, 0, 0, 0, vec![]));
        assert_eq!(numeric(".5"), (1, -1, 0, 1, vec![5000]));
        assert_eq!(numeric("5."), (1, 0, 0, 0, vec![5]));
        assert_eq!(
            numeric("12345678901234567890.123456789"),
            (
                8,
                4,
                0,
                9,
                vec![1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000]
            )
        );
        assert_eq!(
            numeric("100000000.00000001"),
            (5, 2, 0, 8, vec![1, 0, 0, 0, 1])
        );
        // More fraction digits than PostgreSQL's display scale allows: not encodable.
        assert!(push_pg_numeric(&mut Vec::new(), &format!("0.{}", "1".repeat(20_000))).is_none());
    }

    #[test]
    fn dates_and_timestamps_in_postgres_binary_form() {
        let days = |t: &str| parse_pg_date(t).map(|d| d.num_days_from_ce() - PG_EPOCH_DAYS_FROM_CE);
        assert_eq!(days("2000-01-01"), Some(0));
        assert_eq!(days("1999-12-31"), Some(-1));
        assert_eq!(days("2024-02-29"), Some(8825));
        assert_eq!(days("+10000-01-01"), Some(2_921_940));
        assert_eq!(days("2023-02-29"), None);
        let micros = |t: &str| parse_pg_timestamp(t).map(pg_timestamp_micros);
        assert_eq!(micros("2000-01-01 00:00:00"), Some(0));
        assert_eq!(micros("1999-12-31 23:59:59.5"), Some(-500_000));
        assert_eq!(micros("2000-01-01 00:00:01.123456"), Some(1_123_456));
        // Beyond microseconds: rounded as PostgreSQL's rint(strtod(…) * 1e6).
        assert_eq!(micros("2000-01-01 00:00:01.0000004"), Some(1_000_000));
        assert_eq!(micros("2000-01-01 00:00:01.0000016"), Some(1_000_002));
        assert_eq!(micros("2000-01-01 00:00:01.000000501"), Some(1_000_001));
        // A leap second (chrono writes `:60`) is the next minute, as in PostgreSQL.
        assert_eq!(micros("2000-01-01 00:00:60"), Some(60_000_000));
        assert_eq!(micros("2000-01-01 24:00:00"), None);
    }

    #[test]
    fn dates_and_timestamps_are_written_as_chrono_writes_them() {
        let stamps = [
            "2024-03-01 10:00:00",
            "2024-03-01 10:00:00.5",
            "2024-03-01 10:00:00.123456",
            "2024-03-01 10:00:00.123456789",
            "0001-01-01 00:00:00.001",
            "+12345-06-07 08:09:10",
        ];
        for text in stamps {
            let t = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap();
            let mut out = String::new();
            write_timestamp(&mut out, t);
            assert_eq!(out, t.format("%Y-%m-%d %H:%M:%S%.f").to_string(), "{text}");
            let mut out = String::new();
            write_date(&mut out, t.date());
            assert_eq!(out, t.date().format("%Y-%m-%d").to_string(), "{text}");
        }
    }

    #[test]
    fn table_labels() {
        assert_eq!(table_label("staging.Venue"), "venue");
        assert_eq!(table_label("s.\"My \"\"T\""), "My \"T");
    }
}
