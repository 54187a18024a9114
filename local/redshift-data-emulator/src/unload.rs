//! UNLOAD to the local S3: runs the query on the batch's connection (after the same
//! Redshift → PostgreSQL translation as any statement), writes delimited text, CSV or Parquet
//! with Redshift's file names, and an optional manifest.
//!
//! Naming from the Developer Guide, "UNLOAD" (r_UNLOAD.html) and "Unloading data to Amazon S3"
//! (t_Unloading_tables.html): one file per slice, `<prefix>0000_part_00` (the emulator has one
//! slice); PARALLEL OFF writes `<prefix>000`; Parquet adds `.parquet`, GZIP `.gz`, BZIP2 `.bz2`,
//! ZSTD `.zst`; MANIFEST writes `<prefix>manifest`.

use std::io::Write;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::copy_options::{Compression, UnloadFormat, UnloadStatement};
use crate::s3::{S3Error, S3};

#[derive(Debug, thiserror::Error)]
pub enum UnloadError {
    #[error("COPY and UNLOAD need the local S3: start the emulator with --s3-endpoint (the local stack does)")]
    NoS3,
    #[error("{0}")]
    S3(#[from] S3Error),
    /// Redshift's text when files exist under the prefix and ALLOWOVERWRITE is not given.
    #[error("Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE option.")]
    NotEmpty,
    #[error("{0}")]
    Query(String),
    #[error("cannot write the unload file: {0}")]
    Write(String),
    #[error("FORMAT AS PARQUET needs the emulator built with its `parquet` feature")]
    ParquetNotBuilt,
}

/// The result of the query: column names and types, rows of text values.
struct Table {
    names: Vec<String>,
    /// The columns' PostgreSQL types (Parquet writes typed columns).
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    types: Vec<Type>,
    rows: Vec<Vec<Option<String>>>,
}

async fn run_query(client: &Client, sql: &str) -> Result<Table, UnloadError> {
    let message = |e: tokio_postgres::Error| {
        UnloadError::Query(match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        })
    };
    let translated =
        crate::translate::to_postgres(sql).map_err(|e| UnloadError::Query(e.to_string()))?;
    let prepared = client.prepare(&translated).await.map_err(message)?;
    let names = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let types = prepared
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let rows = client
        .simple_query(&translated)
        .await
        .map_err(message)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    Ok(Table { names, types, rows })
}

fn text_file(unload: &UnloadStatement, table: &Table) -> Result<Vec<u8>, UnloadError> {
    let (delimiter, csv) = match unload.format {
        UnloadFormat::Csv { delimiter } => (delimiter, true),
        UnloadFormat::Text { delimiter } => (delimiter, false),
        UnloadFormat::Parquet => unreachable!("text_file is for text and CSV"),
    };
    let mut builder = csv::WriterBuilder::new();
    builder.delimiter(delimiter);
    if unload.add_quotes {
        builder.quote_style(csv::QuoteStyle::Always);
    } else if !csv {
        builder.quote_style(csv::QuoteStyle::Never);
    }
    let mut writer = builder.from_writer(Vec::new());
    let write_error = |e: csv::Error| UnloadError::Write(e.to_string());
    if unload.header {
        writer.write_record(&table.names).map_err(write_error)?;
    }
    let null = unload.null_as.as_deref().unwrap_or("");
    for row in &table.rows {
        let fields = row.iter().map(|v| v.as_deref().unwrap_or(null));
        writer.write_record(fields).map_err(write_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| UnloadError::Write(e.to_string()))
}

#[cfg(feature = "parquet")]
fn parquet_file(table: &Table) -> Result<Vec<u8>, UnloadError> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let write = |e: &dyn std::fmt::Display| UnloadError::Write(e.to_string());
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (name, ty)) in table.names.iter().zip(&table.types).enumerate() {
        let data_type = match *ty {
            Type::INT2 => DataType::Int16,
            Type::INT4 => DataType::Int32,
            Type::INT8 => DataType::Int64,
            Type::FLOAT4 => DataType::Float32,
            Type::FLOAT8 => DataType::Float64,
            Type::BOOL => DataType::Boolean,
            Type::DATE => DataType::Date32,
            Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
            Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Type::NUMERIC => {
                // The scale of the values (PostgreSQL's text keeps it); precision 38.
                let scale = table
                    .rows
                    .iter()
                    .find_map(|r| r[i].as_deref())
                    .and_then(|v| v.split_once('.'))
                    .map_or(0, |(_, f)| f.len());
                DataType::Decimal128(38, i8::try_from(scale).unwrap_or(0))
            }
            _ => DataType::Utf8,
        };
        let text: StringArray = table
            .rows
            .iter()
            .map(|r| {
                r[i].as_deref().map(|v| {
                    if *ty == Type::TIMESTAMPTZ {
                        // PostgreSQL's `+00` offset is not RFC 3339.
                        v.strip_suffix("+00").unwrap_or(v)
                    } else {
                        v
                    }
                })
            })
            .collect();
        let text: ArrayRef = Arc::new(text);
        let array = if data_type == DataType::Utf8 {
            text
        } else {
            arrow_cast::cast(&text, &data_type).map_err(|e| write(&e))?
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| write(&e))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props))
        .map_err(|e| write(&e))?;
    writer.write(&batch).map_err(|e| write(&e))?;
    writer.close().map_err(|e| write(&e))?;
    Ok(out)
}

fn compress(data: Vec<u8>, compression: Option<Compression>) -> Result<Vec<u8>, UnloadError> {
    let write = |e: std::io::Error| UnloadError::Write(e.to_string());
    Ok(match compression {
        None => data,
        Some(Compression::Gzip) => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).map_err(write)?;
            e.finish().map_err(write)?
        }
        Some(Compression::Bzip2) => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(&data).map_err(write)?;
            e.finish().map_err(write)?
        }
        Some(Compression::Zstd) => zstd::stream::encode_all(data.as_slice(), 3).map_err(write)?,
    })
}

/// The data file's key: `<prefix>0000_part_00` or, with PARALLEL OFF, `<prefix>000`.
pub fn data_key(unload: &UnloadStatement) -> String {
    let mut key = format!(
        "{}{}",
        unload.target.key,
        if unload.parallel {
            "0000_part_00"
        } else {
            "000"
        }
    );
    if unload.format == UnloadFormat::Parquet {
        key.push_str(".parquet");
    }
    match unload.compression {
        Some(Compression::Gzip) => key.push_str(".gz"),
        Some(Compression::Bzip2) => key.push_str(".bz2"),
        Some(Compression::Zstd) => key.push_str(".zst"),
        None => {}
    }
    if let Some(ext) = &unload.extension {
        key.push('.');
        key.push_str(ext.trim_start_matches('.'));
    }
    key
}

/// Runs an UNLOAD; returns the number of rows written.
pub async fn unload(
    client: &Client,
    s3: Option<&S3>,
    unload: &UnloadStatement,
) -> Result<i64, UnloadError> {
    let s3 = s3.ok_or(UnloadError::NoS3)?;
    let target = &unload.target;
    if !unload.allow_overwrite && !s3.list(&target.bucket, &target.key).await?.is_empty() {
        return Err(UnloadError::NotEmpty);
    }
    let table = run_query(client, &unload.query).await?;
    let data = match unload.format {
        UnloadFormat::Parquet => {
            #[cfg(feature = "parquet")]
            {
                parquet_file(&table)?
            }
            #[cfg(not(feature = "parquet"))]
            return Err(UnloadError::ParquetNotBuilt);
        }
        _ => compress(text_file(unload, &table)?, unload.compression)?,
    };
    let key = data_key(unload);
    s3.put(&target.bucket, &key, data).await?;
    if unload.manifest {
        let manifest = serde_json::json!({
            "entries": [{"url": format!("s3://{}/{}", target.bucket, key)}]
        });
        s3.put(
            &target.bucket,
            &format!("{}manifest", target.key),
            manifest.to_string().into_bytes(),
        )
        .await?;
    }
    Ok(i64::try_from(table.rows.len()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy_options::{parse, Statement};

    fn statement(sql: &str) -> UnloadStatement {
        match parse(sql).unwrap().unwrap() {
            Statement::Unload(u) => *u,
            _ => panic!("not an unload"),
        }
    }

    #[test]
    fn file_names_follow_redshift() {
        let role = "iam_role 'arn:aws:iam::123456789012:role/R'";
        assert_eq!(
            data_key(&statement(&format!(
                "unload ('select 1') to 's3://bkt/out/venue_' {role}"
            ))),
            "out/venue_0000_part_00"
        );
        assert_eq!(
            data_key(&statement(&format!(
                "unload ('select 1') to 's3://bkt/out/' {role} parallel off"
            ))),
            "out/000"
        );
        assert_eq!(
            data_key(&statement(&format!(
                "unload ('select 1') to 's3://bkt/out/' {role} format parquet"
            ))),
            "out/0000_part_00.parquet"
        );
        assert_eq!(
            data_key(&statement(&format!(
                "unload ('select 1') to 's3://bkt/o/' {role} csv gzip parallel off"
            ))),
            "o/000.gz"
        );
    }
}
