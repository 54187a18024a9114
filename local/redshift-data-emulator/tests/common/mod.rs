//! Test support: a real PostgreSQL, an emulator per test, the real SDK client, and a stand-in
//! EventBridge endpoint that records `PutEvents` calls.
//!
//! The database is `TEST_DATABASE_URL` when set; otherwise one throwaway PostgreSQL per test
//! binary is started with `local/pg.sh start` and stopped by a small watcher process once this
//! test process has exited. No PostgreSQL means the tests FAIL (they never skip).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_redshiftdata::Client;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use redshift_data_emulator::faults::Faults;
use redshift_data_emulator::{Config, Emulator};
use tokio::sync::Notify;

static DATABASE_URL: OnceLock<String> = OnceLock::new();

fn pg_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pg.sh")
}

/// The PostgreSQL URL every test uses (started once per test binary when not given).
pub fn database_url() -> String {
    DATABASE_URL
        .get_or_init(|| {
            if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
                if !url.trim().is_empty() {
                    return url;
                }
            }
            start_throwaway_postgres()
        })
        .clone()
}

#[allow(clippy::zombie_processes)]
fn start_throwaway_postgres() -> String {
    let dir = std::env::temp_dir().join(format!(
        "rde-test-pg-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let output = Command::new("bash")
        .arg(pg_sh())
        .arg("start")
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run local/pg.sh");
    assert!(
        output.status.success(),
        "PostgreSQL is required for these tests and local/pg.sh start failed \
         (set TEST_DATABASE_URL or install PostgreSQL: apt-get install -y postgresql)"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = stdout
        .lines()
        .last()
        .expect("pg.sh printed the URL")
        .trim()
        .to_string();
    // Stop and remove the instance once this test process is gone. The watcher outlives this
    // process by design, so it is never waited for.
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{sh}' stop '{dir}' >/dev/null 2>&1",
        pid = std::process::id(),
        sh = pg_sh().display(),
        dir = dir.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the PostgreSQL watcher");
    url
}

/// Runs SQL directly on PostgreSQL (setup and assertions), returning text rows.
pub async fn pg(sql: &str) -> Vec<Vec<Option<String>>> {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// A fresh schema for one test, so tests can run in parallel.
pub async fn schema() -> String {
    let name = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    pg(&format!("create schema {name}")).await;
    name
}

pub async fn emulator_with(configure: impl FnOnce(&mut Config)) -> Emulator {
    let mut config = Config::new(database_url());
    configure(&mut config);
    redshift_data_emulator::start(config)
        .await
        .expect("emulator starts")
}

pub async fn emulator() -> Emulator {
    emulator_with(|_| {}).await
}

/// The real SDK client, pointed at the emulator as `AWS_ENDPOINT_URL_REDSHIFT_DATA` would.
pub fn client(emulator: &Emulator) -> Client {
    let config = aws_sdk_redshiftdata::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(emulator.endpoint())
        .http_client(etl_callback::aws::http_client())
        .build();
    Client::from_conf(config)
}

/// Starts one statement on cluster `c`, database `dev`; returns its id.
pub async fn execute(client: &Client, sql: &str) -> String {
    client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql(sql)
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string()
}

/// Starts one batch on workgroup `wg`, database `dev`; returns its id.
pub async fn batch(client: &Client, sqls: &[String]) -> String {
    client
        .batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .set_sqls(Some(sqls.to_vec()))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string()
}

pub fn is_terminal(status: Option<&StatusString>) -> bool {
    matches!(
        status,
        Some(StatusString::Finished | StatusString::Failed | StatusString::Aborted)
    )
}

/// Polls DescribeStatement until the statement reaches a terminal state.
pub async fn wait_done(client: &Client, id: &str) -> DescribeStatementOutput {
    wait_for(client, id, |d| is_terminal(d.status())).await
}

pub async fn wait_for(
    client: &Client,
    id: &str,
    done: impl Fn(&DescribeStatementOutput) -> bool,
) -> DescribeStatementOutput {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = client
            .describe_statement()
            .id(id)
            .send()
            .await
            .expect("DescribeStatement");
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "statement {id} still {:?} after 30 s",
            out.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One recorded HTTP request to the stand-in EventBridge.
#[derive(Clone, Debug)]
pub struct Captured {
    pub target: String,
    pub content_type: String,
    pub body: serde_json::Value,
    pub at: Instant,
}

#[derive(Default)]
struct SinkState {
    requests: Mutex<Vec<Captured>>,
    /// Answer HTTP 500 to this many requests first.
    fail_first: Mutex<usize>,
    notify: Notify,
}

/// A tiny HTTP server standing in for EventBridge's PutEvents.
pub struct EventSink {
    pub endpoint: String,
    state: Arc<SinkState>,
}

async fn sink_handler(
    State(state): State<Arc<SinkState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    {
        let mut fail = state.fail_first.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"__type":"InternalException"}"#.into(),
            );
        }
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    state.requests.lock().expect("lock").push(Captured {
        target: header("x-amz-target"),
        content_type: header("content-type"),
        body,
        at: Instant::now(),
    });
    state.notify.notify_waiters();
    (
        StatusCode::OK,
        r#"{"FailedEntryCount":0,"Entries":[{"EventId":"11111111-2222-3333-4444-555555555555"}]}"#
            .into(),
    )
}

impl EventSink {
    pub async fn start() -> Self {
        Self::start_failing_first(0).await
    }

    pub async fn start_failing_first(fail_first: usize) -> Self {
        let state = Arc::new(SinkState {
            fail_first: Mutex::new(fail_first),
            ..SinkState::default()
        });
        let app = Router::new()
            .route("/", post(sink_handler))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint: format!("http://{addr}"),
            state,
        }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived (or 10 s passed) and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.state.notify.notified();
            let requests = self.requests();
            if requests.len() >= n || Instant::now() >= deadline {
                return requests;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// The parsed `detail` of every PutEvents entry received.
    pub fn details(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .flat_map(|r| r.body["Entries"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                serde_json::from_str(e["Detail"].as_str().expect("Detail is a string"))
                    .expect("Detail is JSON")
            })
            .collect()
    }
}

/// A plain HTTP call (admin routes), returning status and body.
pub async fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("http call");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub fn faults_json(faults: &Faults) -> String {
    serde_json::to_string(faults).expect("faults json")
}
