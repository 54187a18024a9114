//! COPY from and UNLOAD to S3 against a real PostgreSQL and a real moto S3 (`.venv/bin/moto_server`,
//! one per test binary), driven by the real Data API client. Every option family and every
//! bad-input case of docs/copy-unload.md.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_s3::primitives::ByteStream;
use common::*;
use redshift_data_emulator::Emulator;

const ROLE: &str = "IAM_ROLE 'arn:aws:iam::123456789012:role/MyRedshiftRole'";

static MOTO: OnceLock<String> = OnceLock::new();

/// moto's S3, started once for this test binary and stopped when it exits.
#[allow(clippy::zombie_processes)]
fn moto() -> String {
    MOTO.get_or_init(|| {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        assert!(
            bin.exists(),
            "moto is required for these tests: `make setup` installs it in .venv ({})",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let watcher = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {child} 2>/dev/null",
            pid = std::process::id(),
            child = child.id()
        );
        Command::new("sh")
            .arg("-c")
            .arg(watcher)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the moto watcher");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .endpoint_url(moto())
        .force_path_style(true)
        .http_client(etl_callback::aws::http_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A fresh bucket for one test.
async fn bucket() -> String {
    let name = format!("b-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    s3().create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("CreateBucket");
    name
}

async fn put(bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    s3().put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .expect("PutObject");
}

async fn get(bucket: &str, key: &str) -> Vec<u8> {
    s3().get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("body")
        .to_vec()
}

async fn keys(bucket: &str) -> Vec<String> {
    s3().list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("ListObjectsV2")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

async fn emu() -> Emulator {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let endpoint = moto();
    emulator_with(|c| c.s3_endpoint = Some(endpoint)).await
}

/// Runs one statement; returns (status, rows, error).
async fn run(emu: &Emulator, sql: &str) -> (StatusString, i64, Option<String>) {
    let client = client(emu);
    let id = execute(&client, sql).await;
    let done = wait_done(&client, &id).await;
    (
        done.status().cloned().expect("status"),
        done.result_rows(),
        done.error().map(str::to_string),
    )
}

async fn ok(emu: &Emulator, sql: &str) -> i64 {
    let (status, rows, error) = run(emu, sql).await;
    assert_eq!(status, StatusString::Finished, "{sql}: {error:?}");
    rows
}

async fn fails(emu: &Emulator, sql: &str) -> String {
    let (status, _, error) = run(emu, sql).await;
    assert_eq!(status, StatusString::Failed, "{sql} should fail");
    error.expect("an error")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn texts(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

const LOAD_FAILED: &str =
    "ERROR: Load into table 't' failed.  Check 'stl_load_errors' system table for details.";

fn rows(expected: &[&[&str]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect()
}

#[tokio::test]
async fn csv_from_a_prefix_loads_every_object_with_the_common_options() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id int not null, name varchar(20), amount numeric(8,2), day date, at timestamp, ok boolean)"
    ))
    .await;
    put(&b, "in/part-1.csv", "id,name,amount,day,at,ok\n1,\"a,b\",1.50,03/01/2024,2024-03-01 10:00:00,true\n2,,NA,04/01/2024,2024-03-01T11:30:00Z,f\n").await;
    put(
        &b,
        "in/part-2.csv",
        "id,name,amount,day,at,ok\n3,\"say \"\"hi\"\"\",2,05/01/2024,2024-03-01 12:00:00.5,0\n",
    )
    .await;
    put(&b, "other/skip.csv", "id\n99\n").await;
    let loaded = ok(
        &emu,
        &format!(
            "COPY {s}.t FROM 's3://{b}/in/' {ROLE} FORMAT AS CSV IGNOREHEADER 1 NULL AS 'NA' \
             EMPTYASNULL DATEFORMAT 'DD/MM/YYYY' TIMEFORMAT 'auto' REGION 'us-east-1' COMPUPDATE OFF"
        ),
    )
    .await;
    assert_eq!(loaded, 3, "rows loaded are the statement's rows");
    let got = texts(
        pg(&format!(
            "select id, name, amount, day, at, ok from {s}.t order by id"
        ))
        .await,
    );
    assert_eq!(
        got,
        rows(&[
            &["1", "a,b", "1.50", "2024-01-03", "2024-03-01 10:00:00", "t"],
            &[
                "2",
                "NULL",
                "NULL",
                "2024-01-04",
                "2024-03-01 11:30:00",
                "f"
            ],
            &[
                "3",
                "say \"hi\"",
                "2.00",
                "2024-01-05",
                "2024-03-01 12:00:00.5",
                "f"
            ],
        ])
    );
    emu.shutdown().await;
}

/// The same CSV into a table PostgreSQL is fed in its binary COPY format (every column
/// integer, numeric, varchar, char, date, timestamp or boolean) and into one that also has a
/// FLOAT column (text format): the shared columns hold the same values.
#[tokio::test]
async fn binary_and_text_copy_formats_load_the_same_values() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    let columns = "i2 smallint, i4 int, i8 bigint, n numeric(12,2), n0 numeric, \
                   c char(4), v varchar(12), t text, d date, ts timestamp, ts0 timestamp(0), ok boolean";
    pg(&format!("create table {s}.bin ({columns})")).await;
    pg(&format!("create table {s}.txt ({columns}, f float8)")).await;
    let lines = [
        "-32768,2147483647,-9223372036854775808,1234567890.125,-0.000100,ab,\"tab\tand\\\",t,2000-01-01,1999-12-31 23:59:59.9999996,2024-02-29 10:00:00.5,yes",
        "32767,-2147483648,9223372036854775807,-0.005,12345678901234567890.0987654321,,\"line\nbreak\",,0001-01-01,2000-01-01 00:00:00,2024-02-29 10:00:00.4,F",
        " 7 ,+8,009,+007.10,0,d,caf\u{e9},\"\",9999-12-31,1970-01-01 00:00:00.000001,2024-02-29 23:59:59.6,0",
        ",,,,,,,,,,,",
    ];
    let csv = lines.join("\n");
    put(&b, "bin/a.csv", csv.clone()).await;
    let with_float: Vec<String> = lines.iter().map(|l| format!("{l},1.5")).collect();
    put(&b, "txt/a.csv", with_float.join("\n")).await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.bin from 's3://{b}/bin/' {ROLE} csv")
        )
        .await,
        4
    );
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.txt from 's3://{b}/txt/' {ROLE} csv")
        )
        .await,
        4
    );
    let select = |t: &str| {
        format!(
            "select i2::text, i4::text, i8::text, n::text, n0::text, c::text, v::text, t::text, \
             d::text, ts::text, ts0::text, ok::text from {s}.{t} order by i8 nulls last, i2"
        )
    };
    let binary = texts(pg(&select("bin")).await);
    let text = texts(pg(&select("txt")).await);
    assert_eq!(binary, text);
    assert_eq!(
        binary[0],
        [
            "-32768",
            "2147483647",
            "-9223372036854775808",
            "1234567890.13",
            "-0.000100",
            "ab",
            "tab\tand\\",
            "t",
            "2000-01-01",
            "2000-01-01 00:00:00",
            "2024-02-29 10:00:01",
            "true"
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn delimited_text_conversions_and_compressions() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id int, code char(3), note varchar(4), at timestamp)"
    ))
    .await;
    // Pipe-delimited (the default), `\N` is NULL, blanks become NULL, a long note is truncated,
    // invalid UTF-8 is replaced, epoch seconds.
    let text = b"1|ab |  |1709287200\n2|\\N|toolong|1709290800\n3|x|caf\xe9|0\n".to_vec();
    put(&b, "gz/a.gz", gzip(&text)).await;
    let loaded = ok(
        &emu,
        &format!(
            "copy {s}.t from 's3://{b}/gz/' {ROLE} gzip blanksasnull truncatecolumns \
             acceptinvchars as '^' timeformat 'epochsecs' statupdate off"
        ),
    )
    .await;
    assert_eq!(loaded, 3);
    assert_eq!(
        texts(pg(&format!("select id, code, note, at from {s}.t order by id")).await),
        rows(&[
            &["1", "ab ", "NULL", "2024-03-01 10:00:00"],
            &["2", "NULL", "tool", "2024-03-01 11:00:00"],
            &["3", "x  ", "caf^", "1970-01-01 00:00:00"],
        ])
    );

    // BZIP2 and ZSTD, tab-delimited, a custom TIMEFORMAT.
    pg(&format!("truncate {s}.t")).await;
    let tsv = b"7\tq\tn\t2024-03-01 10:00\n";
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(tsv).unwrap();
    put(&b, "bz/a.bz2", bz.finish().unwrap()).await;
    put(
        &b,
        "zs/a.zst",
        zstd::stream::encode_all(&tsv[..], 1).unwrap(),
    )
    .await;
    for (prefix, codec) in [("bz", "bzip2"), ("zs", "zstd")] {
        let n = ok(
            &emu,
            &format!(
                "copy {s}.t from 's3://{b}/{prefix}/' {ROLE} delimiter '\\t' {codec} \
                 timeformat 'YYYY-MM-DD HH24:MI'"
            ),
        )
        .await;
        assert_eq!(n, 1, "{codec}");
    }
    assert_eq!(
        pg(&format!(
            "select count(*) from {s}.t where at = '2024-03-01 10:00'"
        ))
        .await[0][0]
            .as_deref(),
        Some("2")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn manifest_lists_the_files_and_mandatory_ones_must_exist() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!("create table {s}.t (id int)")).await;
    put(&b, "d/one", "1\n").await;
    put(&b, "d/two", "2\n").await;
    put(&b, "d/three", "3\n").await;
    let manifest = format!(
        r#"{{"entries": [{{"url": "s3://{b}/d/one", "mandatory": true}}, {{"url": "s3://{b}/d/three"}}, {{"url": "s3://{b}/d/gone", "mandatory": false}}]}}"#
    );
    put(&b, "m/load.manifest", manifest).await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.t from 's3://{b}/m/load.manifest' {ROLE} manifest")
        )
        .await,
        2
    );
    assert_eq!(
        texts(pg(&format!("select id from {s}.t order by id")).await),
        rows(&[&["1"], &["3"]])
    );
    put(
        &b,
        "m/bad.manifest",
        format!(r#"{{"entries": [{{"url": "s3://{b}/d/one", "mandatory": true}}, {{"url": "s3://{b}/d/gone", "mandatory": true}}]}}"#),
    )
    .await;
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/m/bad.manifest' {ROLE} manifest"),
    )
    .await;
    assert!(
        error.contains("NoSuchKey") && error.contains("d/gone"),
        "{error}"
    );
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/m/none' {ROLE} manifest"),
    )
    .await;
    assert!(error.contains("NoSuchKey"), "{error}");
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("2")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn json_auto_and_jsonpaths() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id int, name varchar(10), tags varchar(50), day date)"
    ))
    .await;
    put(
        &b,
        "j/a.json",
        "{\"id\": 1, \"name\": \"a\", \"tags\": [\"x\"], \"day\": \"2024-03-01\"}\n{\"ID\": 2, \"Name\": \"b\"}\n{\"id\": 3, \"extra\": true}",
    )
    .await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.t from 's3://{b}/j/' {ROLE} format as json 'auto'")
        )
        .await,
        3
    );
    assert_eq!(
        texts(
            pg(&format!(
                "select id, name, tags, day from {s}.t order by id nulls first"
            ))
            .await
        ),
        rows(&[
            &["NULL", "NULL", "NULL", "NULL"],
            &["1", "a", "[\"x\"]", "2024-03-01"],
            &["3", "NULL", "NULL", "NULL"],
        ])
    );
    pg(&format!("truncate {s}.t")).await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.t from 's3://{b}/j/' {ROLE} json 'auto ignorecase'")
        )
        .await,
        3
    );
    assert_eq!(
        pg(&format!("select name from {s}.t where id = 2")).await[0][0].as_deref(),
        Some("b")
    );

    pg(&format!("truncate {s}.t")).await;
    put(
        &b,
        "p/paths.json",
        r#"{"jsonpaths": ["$.k", "$['who']['name']", "$.list[1]", "$.d"]}"#,
    )
    .await;
    put(
        &b,
        "jp/x.json",
        r#"{"k": 5, "who": {"name": "n"}, "list": [1, 2], "d": "2024-01-31"}"#,
    )
    .await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.t from 's3://{b}/jp/' {ROLE} json 's3://{b}/p/paths.json'")
        )
        .await,
        1
    );
    assert_eq!(
        texts(pg(&format!("select id, name, tags, day from {s}.t")).await),
        rows(&[&["5", "n", "2", "2024-01-31"]])
    );
    put(&b, "p/short.json", r#"{"jsonpaths": ["$.k"]}"#).await;
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/jp/' {ROLE} json 's3://{b}/p/short.json'"),
    )
    .await;
    assert!(
        error.contains("Number of jsonpaths and the number of columns should match"),
        "{error}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn rejected_rows_fail_the_load_past_maxerror_and_are_recorded() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id int not null, name varchar(3), day date)"
    ))
    .await;
    let mut data = b"1,abc,2024-03-01\n".to_vec();
    data.extend_from_slice(b"x2,abc,2024-03-01\n"); // 1207 invalid digit
    data.extend_from_slice(b"3,abcd,2024-03-01\n"); // 1204 too long
    data.extend_from_slice(b"4,abc,2024-13-45\n"); // 1205 bad date
    data.extend_from_slice(b"5,abc\n"); // 1214 missing column
    data.extend_from_slice(b"6,abc,2024-03-01,extra\n"); // 1202 extra column
    data.extend_from_slice(b"7,a\xff,2024-03-01\n"); // 1220 invalid UTF-8
    data.extend_from_slice(b",abc,2024-03-01\n"); // 1213 NOT NULL
    data.extend_from_slice(b"9,ok,2024-03-02\n");
    put(&b, "bad/rows.csv", data).await;

    // MAXERROR 0 (the default): the first reject fails the load, nothing is loaded.
    let error = fails(&emu, &format!("copy {s}.t from 's3://{b}/bad/' {ROLE} csv")).await;
    assert_eq!(error, LOAD_FAILED);
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("0")
    );

    // Within MAXERROR: the good rows load, every reject is in both error tables.
    let loaded = ok(
        &emu,
        &format!("copy {s}.t from 's3://{b}/bad/' {ROLE} csv maxerror 10"),
    )
    .await;
    assert_eq!(loaded, 2);
    let file = format!("s3://{b}/bad/rows.csv");
    let stl = texts(
        pg(&format!(
            "select line_number, trim(colname), err_code, trim(err_reason), trim(raw_field_value) \
             from stl_load_errors where trim(filename) = '{file}' order by query desc, line_number limit 7"
        ))
        .await,
    );
    let codes: Vec<(String, String)> = stl.iter().map(|r| (r[0].clone(), r[2].clone())).collect();
    assert_eq!(
        codes,
        [
            ("2", "1207"),
            ("3", "1204"),
            ("4", "1205"),
            ("5", "1214"),
            ("6", "1202"),
            ("7", "1220"),
            ("8", "1213")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(stl[0][1], "id");
    assert!(
        stl[0][3].starts_with("Invalid digit, Value 'x'"),
        "{:?}",
        stl[0]
    );
    assert_eq!(stl[1][3], "String length exceeds DDL length");
    assert_eq!(stl[1][4], "abcd");
    let sys = pg(&format!(
        "select count(*), min(trim(column_type)) from sys_load_error_detail where trim(file_name) = '{file}' and error_code = 1204"
    ))
    .await;
    assert_eq!(
        sys[0][0].as_deref(),
        Some("1"),
        "the first load stopped at its first reject"
    );
    assert_eq!(sys[0][1].as_deref(), Some("character"));

    // MAXERROR 3 with 7 rejects: fails, rolls back.
    pg(&format!("truncate {s}.t")).await;
    assert_eq!(
        fails(
            &emu,
            &format!("copy {s}.t from 's3://{b}/bad/' {ROLE} csv maxerror 3")
        )
        .await,
        LOAD_FAILED
    );
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("0")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn copy_is_part_of_the_batch_transaction() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!("create table {s}.t (id int)")).await;
    put(&b, "x/1", "1\n2\n").await;
    let client = client(&emu);
    let id = batch(
        &client,
        &[
            format!("copy {s}.t from 's3://{b}/x/' {ROLE}"),
            format!("insert into {s}.t values (1 / 0)"),
        ],
    )
    .await;
    let done = wait_done(&client, &id).await;
    assert_eq!(done.status(), Some(&StatusString::Failed));
    assert_eq!(done.sub_statements()[0].result_rows(), 2);
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("0"),
        "rolled back"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_sources_are_redshift_errors_and_load_nothing() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!("create table {s}.t (id int)")).await;
    assert_eq!(
        fails(
            &emu,
            &format!("copy {s}.t from 's3://{b}/nothing/here' {ROLE}")
        )
        .await,
        "ERROR: The specified S3 prefix 'nothing/here' does not exist"
    );
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://no-such-bucket-x1/a' {ROLE}"),
    )
    .await;
    assert!(
        error.starts_with("ERROR: S3ServiceException:The specified bucket does not exist"),
        "{error}"
    );
    put(&b, "gz/bad.gz", b"not gzip at all".to_vec()).await;
    let error = fails(&emu, &format!("copy {s}.t from 's3://{b}/gz/' {ROLE} gzip")).await;
    assert!(
        error.starts_with("ERROR: Failed to decompress gzip file"),
        "{error}"
    );
    // A good file then a truncated one: nothing of the first stays.
    put(&b, "gz2/a.gz", gzip(b"1\n2\n")).await;
    let truncated = gzip(b"3\n4\n");
    put(&b, "gz2/b.gz", truncated[..truncated.len() / 2].to_vec()).await;
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/gz2/' {ROLE} gzip"),
    )
    .await;
    assert!(error.contains("gz2/b.gz"), "{error}");
    put(&b, "pq/bad.parquet", b"PAR1 not really".to_vec()).await;
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/pq/' {ROLE} format as parquet"),
    )
    .await;
    assert!(error.starts_with("ERROR: Spectrum Scan Error"), "{error}");
    let error = fails(
        &emu,
        &format!("copy {s}.t from 's3://{b}/x' iam_role 'not-an-arn'"),
    )
    .await;
    assert!(error.contains("invalid IAM_ROLE"), "{error}");
    let error = fails(
        &emu,
        &format!("copy {s}.missing from 's3://{b}/gz2/' {ROLE}"),
    )
    .await;
    assert!(error.contains("does not exist"), "{error}");
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("0")
    );

    // Without an S3 endpoint the emulator runs, and COPY says why it cannot.
    let plain = emulator().await;
    let error = fails(&plain, &format!("copy {s}.t from 's3://{b}/gz2/' {ROLE}")).await;
    assert!(error.contains("--s3-endpoint"), "{error}");
    plain.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn unload_csv_and_text_with_redshift_file_names() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id int, name varchar(10), day date)"
    ))
    .await;
    pg(&format!(
        "insert into {s}.t values (1, 'a,b', '2024-03-01'), (2, null, null)"
    ))
    .await;
    let n = ok(
        &emu,
        &format!(
            "unload ('select * from {s}.t where name <> \\'zz\\' or name is null order by id') \
             to 's3://{b}/out/t_' {ROLE} format as csv header parallel off manifest"
        ),
    )
    .await;
    assert_eq!(n, 2, "rows unloaded");
    assert_eq!(
        String::from_utf8(get(&b, "out/t_000").await).unwrap(),
        "id,name,day\n1,\"a,b\",2024-03-01\n2,,\n"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(&b, "out/t_manifest").await).unwrap();
    assert_eq!(manifest["entries"][0]["url"], format!("s3://{b}/out/t_000"));

    // The destination is not empty now.
    let error = fails(
        &emu,
        &format!("unload ('select 1') to 's3://{b}/out/t_' {ROLE}"),
    )
    .await;
    assert!(
        error.starts_with("ERROR: Specified unload destination on S3 is not empty"),
        "{error}"
    );
    ok(&emu, &format!("unload ('select id, name from {s}.t order by id') to 's3://{b}/out/t_' {ROLE} allowoverwrite null as 'N/A'")).await;
    assert_eq!(
        String::from_utf8(get(&b, "out/t_0000_part_00").await).unwrap(),
        "1|a,b\n2|N/A\n"
    );

    // UNLOAD then COPY back: gzip round trip.
    ok(
        &emu,
        &format!("unload ('select * from {s}.t') to 's3://{b}/rt/' {ROLE} csv gzip"),
    )
    .await;
    assert_eq!(
        keys(&b)
            .await
            .iter()
            .filter(|k| k.starts_with("rt/"))
            .collect::<Vec<_>>(),
        ["rt/0000_part_00.gz"]
    );
    ok(
        &emu,
        &format!("copy {s}.t from 's3://{b}/rt/' {ROLE} csv gzip"),
    )
    .await;
    assert_eq!(
        pg(&format!("select count(*) from {s}.t")).await[0][0].as_deref(),
        Some("4")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn parquet_unload_and_copy_round_trip() {
    let (emu, b, s) = (emu().await, bucket().await, schema().await);
    pg(&format!(
        "create table {s}.t (id bigint, name varchar(10), amount numeric(10,2), day date, at timestamp, ok boolean, f float8)"
    ))
    .await;
    pg(&format!(
        "insert into {s}.t values (1, 'a', 12.50, '2024-03-01', '2024-03-01 10:00:00', true, 1.5), (2, null, null, null, null, null, null)"
    ))
    .await;
    assert_eq!(
        ok(&emu, &format!("unload ('select * from {s}.t order by id') to 's3://{b}/pq/' {ROLE} format as parquet")).await,
        2
    );
    assert_eq!(keys(&b).await, ["pq/0000_part_00.parquet"]);
    pg(&format!("create table {s}.u (like {s}.t)")).await;
    assert_eq!(
        ok(
            &emu,
            &format!("copy {s}.u from 's3://{b}/pq/' {ROLE} format as parquet")
        )
        .await,
        2
    );
    assert_eq!(
        texts(pg(&format!("select * from {s}.u order by id")).await),
        texts(pg(&format!("select * from {s}.t order by id")).await)
    );
    pg(&format!("create table {s}.narrow (id bigint)")).await;
    let error = fails(
        &emu,
        &format!("copy {s}.narrow from 's3://{b}/pq/' {ROLE} parquet"),
    )
    .await;
    assert!(error.contains("Unmatched number of columns"), "{error}");
    emu.shutdown().await;
}
