//! The submitter and OpenLineage: the step's run (with the submit's time) goes into the item with
//! the statement's first token and only while lineage is on; the submit's own path sends nothing
//! (a retry re-attaching to its statement neither), and when the submitter itself closes the task
//! it sends the run's START and terminal event after the callback.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_smithy_mocks::{mock, Rule};
use etl_callback::lineage::{EventType, Lineage, RecordingSink, StepRun};
use etl_callback::testing::{
    completed_by, completer, described, item, s3, update, update_condition_fails, TOKEN,
};
use serde_json::{json, Value};
use submitter::{Config, Submitter};

const ID: &str = "d9b6c0c9-0747-4bf4-b142-e8883122f766";
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:SalesEtl:run-1";

fn config(lineage: bool) -> Config {
    Config::from_lookup(move |name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "scripts-bucket",
            "STATEMENT_NAME_PREFIX" => "redshift-etl-callback",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_WORKGROUP" => "etl-wg",
            "OPENLINEAGE_URL" if lineage => "http://127.0.0.1:5000/api/v1/lineage",
            "STACK_NAME" => "redshift-etl",
            "AWS_REGION" => "eu-west-1",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap()
}

fn input(token: &str, retry: u32) -> Value {
    json!({
        "taskToken": token, "step": "LoadItem", "script": "load_item.sql",
        "runDate": "2021-06-26", "executionName": "run-1",
        "executionStartTime": "2021-06-27T06:00:00.123Z",
        "stateEnteredTime": "2021-06-27T06:00:01.456Z", "retryCount": retry,
        "executionId": EXECUTION, "redriveCount": 0,
        "lineage": {"pipeline": "sales", "reads": ["public.stg_item"], "writes": ["public.item"]},
    })
}

fn script() -> Rule {
    mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(
                b"insert into item select * from stg_item;\n",
            ))
            .build()
    })
}

fn batch() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build())
}

fn token_item(token: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("statementId".to_owned(), ID.to_owned()),
        ("taskToken".to_owned(), token.to_owned()),
        ("step".to_owned(), "LoadItem".to_owned()),
        ("runDate".to_owned(), "2021-06-26".to_owned()),
        ("executionName".to_owned(), "run-1".to_owned()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    pairs
}

/// The first token's write, answered with the item as DynamoDB leaves it (the run stored with
/// the token, when the request carries one, which is also kept for the test).
fn store_first(
    extra: &'static [(&'static str, &'static str)],
) -> (Rule, Arc<Mutex<Option<String>>>) {
    let stored = Arc::new(Mutex::new(None));
    let keep = stored.clone();
    let rule = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(taskToken)"))
        .then_compute_response(move |r| {
            let mut returned = item(
                &token_item(TOKEN, extra)
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
            );
            if let Some(run) = r
                .expression_attribute_values()
                .and_then(|v| v.get(":lineage"))
            {
                *keep.lock().unwrap() = run.as_s().ok().cloned();
                returned.insert("lineage".into(), run.clone());
            }
            aws_smithy_mocks::MockResponse::Output(
                UpdateItemOutput::builder()
                    .set_attributes(Some(returned))
                    .build(),
            )
        });
    (rule, stored)
}

fn submitter(
    lineage: bool,
    dynamodb: &[&Rule],
    sfn: &[&Rule],
    redshift: &[&Rule],
) -> (Submitter, Arc<RecordingSink>) {
    let get = script();
    let completer = completer(dynamodb, sfn, redshift);
    let sink = Arc::new(RecordingSink::default());
    let submitter = Submitter {
        config: config(lineage),
        s3: s3(&[&get]),
        redshift_data: completer.redshift_data,
        table: completer.table,
        sfn: completer.sfn,
        lineage: if lineage {
            Lineage::to(sink.clone())
        } else {
            Lineage::OFF
        },
    };
    (submitter, sink)
}

#[tokio::test]
async fn the_first_token_stores_the_run_and_the_submit_sends_nothing() {
    let (batch, (store, stored)) = (batch(), store_first(&[]));
    let (s, sink) = submitter(true, &[&store], &[], &[&batch]);
    let before = etl_callback::lineage::event_time(etl_callback::lineage::now());

    let submitted = s.handle(input(TOKEN, 0)).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Stored", "WaitingForEvent")
    );
    assert!(
        sink.events().is_empty(),
        "nothing on the submit's path: {:?}",
        sink.events()
    );
    let run: StepRun = serde_json::from_str(
        stored
            .lock()
            .unwrap()
            .as_deref()
            .expect("the run is stored"),
    )
    .unwrap();
    assert!(run.started_at >= before, "{run:?}");
    let start = serde_json::to_value(run.start()).unwrap();
    assert_eq!(start["eventType"], "START");
    assert_eq!(start["eventTime"], run.started_at.as_str());
    assert_eq!(
        start["job"],
        json!({"namespace": "redshift-etl", "name": "sales.LoadItem"})
    );
    assert_eq!(
        start["inputs"],
        json!([{"namespace": "redshift://etl-wg.eu-west-1:5439", "name": "dev.public.stg_item"}])
    );
    assert_eq!(
        start["outputs"],
        json!([{"namespace": "redshift://etl-wg.eu-west-1:5439", "name": "dev.public.item"}])
    );
    assert_eq!(start["run"]["facets"]["parent"]["job"]["name"], "sales");
    assert_eq!(
        start["run"]["runId"],
        etl_callback::lineage::step_run_id(EXECUTION, "LoadItem", "2021-06-27T06:00:01.456Z", 0)
            .as_str()
    );
}

#[tokio::test]
async fn a_retry_re_attaching_to_its_statement_emits_no_second_start() {
    let (batch, first) = (
        batch(),
        update_condition_fails("SET taskToken = :token, step"),
    );
    let replace = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET taskToken = :token, attempt = :attempt")
                    && !e.contains("lineage")
            }) && r
                .expression_attribute_values()
                .is_some_and(|v| !v.contains_key(":lineage"))
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .set_attributes(Some(item(
                    &token_item("a-newer-token", &[("attempt", "1")])
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect::<Vec<_>>(),
                )))
                .build()
        });
    let (s, sink) = submitter(true, &[&first, &replace], &[], &[&batch]);

    let submitted = s.handle(input("a-newer-token", 1)).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Reattached", "WaitingForEvent")
    );
    assert_eq!(replace.num_calls(), 1);
    assert!(sink.events().is_empty(), "{:?}", sink.events());
}

#[tokio::test]
async fn when_the_submitter_closes_the_task_start_comes_before_complete() {
    let (batch, (store, stored), claim, mark) = (
        batch(),
        store_first(&[("eventState", "FINISHED"), ("eventRows", "3")]),
        update("SET claimedUntil", item(&[])),
        completed_by("submitter"),
    );
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Finished,
            &[(
                "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
                StatusString::Finished,
                3,
                None,
            )],
        )
    });
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let (s, sink) = submitter(
        true,
        &[&store, &claim, &mark],
        &[&success],
        &[&batch, &describe],
    );

    let submitted = s.handle(input(TOKEN, 0)).await.unwrap();

    assert_eq!(submitted.completion, "Succeeded");
    let types: Vec<EventType> = sink.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::Start, EventType::Complete]);
    // The submitter does not link the SQL analysis (its bootstrap's size): no row counts.
    assert!(sink.events()[1].outputs[0].output_facets.is_none());
    let run: StepRun = serde_json::from_str(stored.lock().unwrap().as_deref().unwrap()).unwrap();
    assert!(sink.events().iter().all(|e| e.run.run_id == run.run_id));
    assert_eq!(
        sink.events()[0].event_time,
        run.started_at,
        "START at the submit's time"
    );
}

#[tokio::test]
async fn with_lineage_off_nothing_is_stored_or_emitted() {
    let batch = batch();
    let store = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(taskToken)")
                && !r
                    .update_expression()
                    .unwrap_or_default()
                    .contains("lineage")
                && r.expression_attribute_values()
                    .is_some_and(|v| !v.contains_key(":lineage"))
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .set_attributes(Some(item(&[
                    ("taskToken", TOKEN),
                    ("step", "LoadItem"),
                    ("runDate", "2021-06-26"),
                ])))
                .build()
        });
    let (s, sink) = submitter(false, &[&store], &[], &[&batch]);

    let submitted = s.handle(input(TOKEN, 0)).await.unwrap();

    assert_eq!(submitted.recorded, "Stored");
    assert_eq!(store.num_calls(), 1);
    assert!(s.config.lineage.is_none());
    let task = etl_callback::task::TaskInput::from_json(input(TOKEN, 0))
        .unwrap()
        .validate()
        .unwrap();
    assert!(s.step_run(&task, etl_callback::lineage::now()).is_none());
    assert!(sink.events().is_empty());
}

#[test]
fn a_lineage_url_that_is_not_http_is_a_configuration_error() {
    let err = Config::from_lookup(|name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "b",
            "STATEMENT_NAME_PREFIX" => "p",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_WORKGROUP" => "wg",
            "OPENLINEAGE_URL" => "marquez:5000",
            "STACK_NAME" => "s",
            "AWS_REGION" => "us-east-1",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("OPENLINEAGE_URL"), "{err}");
}

#[test]
fn the_api_key_secret_is_read_from_the_environment_only_with_lineage_on() {
    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ol-key-AbCdEf";
    let read = |url: Option<&'static str>, arn: &'static str| {
        Config::from_lookup(move |name| {
            let value = match name {
                "TOKEN_TABLE" => "tokens",
                "SCRIPTS_BUCKET" => "b",
                "STATEMENT_NAME_PREFIX" => "p",
                "REDSHIFT_DATABASE" => "dev",
                "REDSHIFT_WORKGROUP" => "wg",
                "OPENLINEAGE_URL" => url?,
                "OPENLINEAGE_API_KEY_SECRET_ARN" => arn,
                "STACK_NAME" => "s",
                "AWS_REGION" => "us-east-1",
                _ => return None,
            };
            Some(value.to_owned())
        })
        .unwrap()
        .lineage
    };
    let on = read(Some("https://lineage.example.com/api/v1/lineage"), ARN).unwrap();
    assert_eq!(on.api_key_secret.as_deref(), Some(ARN));
    let no_key = read(Some("https://lineage.example.com/api/v1/lineage"), " ").unwrap();
    assert_eq!(no_key.api_key_secret, None);
    assert!(
        read(None, ARN).is_none(),
        "no URL: lineage off, the secret unused"
    );
}
