//! Fault rules (`{"rules": [...]}`, first match applies), `duplicate_event_count` and
//! `fail_statement`, against real PostgreSQL with the real SDK client and a stand-in EventBridge.

mod common;

use std::time::Duration;

use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::{ExecutionMode, StatusString};
use aws_sdk_redshiftdata::Client;
use common::*;
use redshift_data_emulator::faults::{FaultSet, Faults};
use serde_json::{json, Value};

async fn emulator_for(sink: &EventSink, faults: FaultSet) -> redshift_data_emulator::Emulator {
    let endpoint = sink.endpoint.clone();
    emulator_with(move |c| {
        c.eventbridge_endpoint = Some(endpoint);
        c.faults = faults;
    })
    .await
}

async fn post_faults(emu: &redshift_data_emulator::Emulator, body: &Value) -> (u16, String) {
    http(
        "POST",
        &format!("{}/_emulator/faults", emu.endpoint()),
        &body.to_string(),
    )
    .await
}

/// One named statement with WithEvent=true; returns its id.
async fn submit(client: &Client, name: &str, sql: &str) -> String {
    client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name(name)
        .with_event(true)
        .sql(sql)
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string()
}

fn details_for(sink: &EventSink, id: &str) -> Vec<Value> {
    sink.details()
        .into_iter()
        .filter(|d| d["statementId"] == id)
        .collect()
}

async fn count_rows(table: &str) -> i64 {
    pg(&format!("select count(*) from {table}")).await[0][0]
        .as_deref()
        .expect("count")
        .parse()
        .expect("number")
}

#[tokio::test]
async fn rules_apply_different_faults_to_concurrent_statements() {
    let s = schema().await;
    let table = format!("{s}.t");
    pg(&format!("create table {table} (n int)")).await;
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, FaultSet::default()).await;
    let (status, body) = post_faults(
        &emu,
        &json!({"rules": [
            {"statement_name_contains": "pipe-a/", "duplicate_event_count": 2},
            {"statement_name_contains": "pipe-b/", "fail_statement": "pipe b broke"},
            {"statement_name_contains": "pipe-c/", "drop_event": true},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client = client(&emu);
    let insert = format!("insert into {table} values (1)");
    let (a, b, c, d) = tokio::join!(
        submit(&client, "run/pipe-a/load", &insert),
        submit(&client, "run/pipe-b/load", &insert),
        submit(&client, "run/pipe-c/load", &insert),
        submit(&client, "run/pipe-d/load", &insert),
    );
    let (da, db, dc, dd) = tokio::join!(
        wait_done(&client, &a),
        wait_done(&client, &b),
        wait_done(&client, &c),
        wait_done(&client, &d),
    );
    assert_eq!(da.status(), Some(&StatusString::Finished));
    assert_eq!(db.status(), Some(&StatusString::Failed));
    assert_eq!(db.error(), Some("ERROR: pipe b broke"));
    assert_eq!(dc.status(), Some(&StatusString::Finished));
    assert_eq!(dd.status(), Some(&StatusString::Finished));
    assert_eq!(
        count_rows(&table).await,
        3,
        "a, c and d committed, b did not"
    );

    // a: 1 + 2 copies, b: 1 (FAILED), c: none, d (no rule): 1.
    sink.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(details_for(&sink, &a).len(), 3);
    let b_events = details_for(&sink, &b);
    assert_eq!(b_events.len(), 1);
    assert_eq!(b_events[0]["state"], "FAILED");
    assert!(details_for(&sink, &c).is_empty());
    assert_eq!(details_for(&sink, &d).len(), 1);
    assert_eq!(sink.details().len(), 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn first_matching_rule_applies() {
    let emu = emulator_with(|c| {
        c.faults = FaultSet::Rules {
            rules: vec![
                Faults {
                    statement_name_contains: Some("Load".into()),
                    fail_statement: Some("first rule".into()),
                    ..Faults::default()
                },
                Faults {
                    statement_name_contains: Some("LoadItem".into()),
                    fail_statement: Some("second rule".into()),
                    ..Faults::default()
                },
                Faults {
                    fail_statement: Some("catch-all".into()),
                    ..Faults::default()
                },
            ],
        }
    })
    .await;
    let client = client(&emu);
    let item = submit(&client, "x/LoadItem", "select 1").await;
    let other = submit(&client, "x/Other", "select 1").await;
    assert_eq!(
        wait_done(&client, &item).await.error(),
        Some("ERROR: first rule")
    );
    assert_eq!(
        wait_done(&client, &other).await.error(),
        Some("ERROR: catch-all")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_endpoint_keeps_the_posted_shape_and_names_the_bad_rule() {
    let emu = emulator().await;
    let url = format!("{}/_emulator/faults", emu.endpoint());

    // The original single object: same meaning, shown back as a single object.
    let single = json!({"statement_name_contains": "LoadItem", "delay_ms": 5});
    let (status, body) = post_faults(&emu, &single).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = http("GET", &url, "").await;
    let shown: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(shown["delay_ms"], 5);
    assert_eq!(shown["statement_name_contains"], "LoadItem");
    assert!(shown.get("rules").is_none(), "{shown}");
    assert!(matches!(emu.state.faults(), FaultSet::Single(_)));

    let rules = json!({"rules": [
        {"statement_name_contains": "A", "duplicate_event_count": 3},
        {"statement_name_contains": "B", "fail_statement": "no"},
    ]});
    let (status, body) = post_faults(&emu, &rules).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = http("GET", &url, "").await;
    let shown: Value = serde_json::from_str(&body).expect("json");
    let shown_rules = shown["rules"].as_array().expect("rules array");
    assert_eq!(shown_rules.len(), 2);
    assert_eq!(shown_rules[0]["duplicate_event_count"], 3);
    assert_eq!(shown_rules[1]["fail_statement"], "no");
    let installed = emu.state.faults();

    // An invalid rule rejects the whole set, naming the rule; nothing changes.
    for bad in [
        json!({"rules": [{}, {"fail_response_after_submit": true, "reject_response_after_submit": true}]}),
        json!({"rules": [{}, {}, {"dealy_ms": 1}]}),
    ] {
        let (status, body) = post_faults(&emu, &bad).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("rules[1]") || body.contains("rules[2]"),
            "{body}"
        );
        assert_eq!(emu.state.faults(), installed);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn each_rule_counts_its_response_faults_separately() {
    let emu = emulator_with(|c| {
        c.faults = FaultSet::Rules {
            rules: vec![
                Faults {
                    statement_name_contains: Some("/A/".into()),
                    reject_response_after_submit: true,
                    response_fault_times: 1,
                    ..Faults::default()
                },
                Faults {
                    statement_name_contains: Some("/B/".into()),
                    reject_response_after_submit: true,
                    response_fault_times: 2,
                    ..Faults::default()
                },
            ],
        }
    })
    .await;
    let client = client(&emu);
    let rejected = |name: &'static str| {
        let client = client.clone();
        async move {
            match client
                .execute_statement()
                .cluster_identifier("c")
                .database("dev")
                .statement_name(name)
                .sql("select 1")
                .send()
                .await
            {
                Ok(_) => false,
                Err(error) => {
                    assert_eq!(error.code(), Some("ValidationException"));
                    true
                }
            }
        }
    };
    assert!(rejected("x/B/1").await);
    assert!(rejected("x/A/1").await);
    assert!(!rejected("x/A/2").await, "rule 0 is spent after one");
    assert!(rejected("x/B/2").await, "rule 1 counts on its own");
    assert!(!rejected("x/B/3").await);
    assert!(!rejected("x/C/1").await, "no rule matches");
    emu.shutdown().await;
}

#[tokio::test]
async fn duplicate_event_count_publishes_n_plus_one_events() {
    let sink = EventSink::start().await;
    let emu = emulator_for(
        &sink,
        Faults {
            duplicate_event_count: 3,
            ..Faults::default()
        }
        .into(),
    )
    .await;
    let client = client(&emu);
    let id = submit(&client, "dup/three", "select 1").await;
    wait_done(&client, &id).await;
    sink.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let details = sink.details();
    assert_eq!(details.len(), 4, "the event and 3 extra copies");
    assert!(details.iter().all(|d| *d == details[0]));
    assert_eq!(details[0]["statementId"], id.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_statement_fails_the_batch_after_its_last_statement_and_rolls_back() {
    let s = schema().await;
    let table = format!("{s}.t");
    pg(&format!("create table {table} (n int)")).await;
    let sink = EventSink::start().await;
    // Quotes, `%`, `$$` and a backslash arrive verbatim.
    let message = r"injected: can't load 100% $$ \n";
    let emu = emulator_for(
        &sink,
        Faults {
            statement_name_contains: Some("/fail/".into()),
            fail_statement: Some(message.into()),
            ..Faults::default()
        }
        .into(),
    )
    .await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name("run/fail/batch")
        .with_event(true)
        .sqls(format!("insert into {table} values (1)"))
        .sqls(format!("insert into {table} values (2)"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    let expected = format!("ERROR: {message}");
    assert_eq!(described.error(), Some(expected.as_str()));
    let subs = described.sub_statements();
    let statuses: Vec<&str> = subs
        .iter()
        .map(|s| s.status().map_or("", |s| s.as_str()))
        .collect();
    assert_eq!(statuses, ["FINISHED", "FAILED"]);
    assert_eq!(subs[1].error(), Some(expected.as_str()));
    assert_eq!(
        subs[1].query_string(),
        Some(format!("insert into {table} values (2)").as_str()),
        "the injected statement never shows"
    );
    assert_eq!(count_rows(&table).await, 0, "nothing committed");

    sink.wait_for(1).await;
    let details = sink.details();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["state"], "FAILED");
    assert_eq!(details[0]["statementId"], id.as_str());

    // Statements the filter does not match run normally.
    let ok = submit(
        &client,
        "run/ok",
        &format!("insert into {table} values (3)"),
    )
    .await;
    assert_eq!(
        wait_done(&client, &ok).await.status(),
        Some(&StatusString::Finished)
    );
    assert_eq!(count_rows(&table).await, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_statement_rolls_back_single_and_auto_commit_last_statements() {
    let s = schema().await;
    let table = format!("{s}.t");
    pg(&format!("create table {table} (n int)")).await;
    let emu = emulator_with(|c| {
        c.faults = Faults {
            fail_statement: Some("boom".into()),
            ..Faults::default()
        }
        .into()
    })
    .await;
    let client = client(&emu);

    // A single statement has no transaction of its own: it gets one for the fault.
    let single = execute(&client, &format!("insert into {table} values (1)")).await;
    let described = wait_done(&client, &single).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert_eq!(described.error(), Some("ERROR: boom"));
    assert_eq!(count_rows(&table).await, 0);

    // AUTO_COMMIT: earlier statements are committed, the last (failing) one is not.
    let batch = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name("auto")
        .execution_mode(ExecutionMode::AutoCommit)
        .sqls(format!("insert into {table} values (1)"))
        .sqls(format!("insert into {table} values (2)"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &batch).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert_eq!(described.error(), Some("ERROR: boom"));
    let rows = pg(&format!("select n from {table}")).await;
    assert_eq!(rows, vec![vec![Some("1".to_string())]]);
    emu.shutdown().await;
}
