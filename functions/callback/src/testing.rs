//! Test support for the handlers' tests (feature `testing`): real SDK clients answered by
//! aws-smithy-mocks rules, and rendezvous items as DynamoDB returns them.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{StatusString, SubStatementData};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;

use crate::complete::Completer;
use crate::store::TokenTable;

pub const TABLE: &str = "tokens";
pub const TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAW-task-token";

/// A DynamoDB item from `(name, value)` pairs; values that parse as integers become numbers.
pub fn item(pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| {
            let value = if v.parse::<i64>().is_ok() {
                AttributeValue::N((*v).to_owned())
            } else {
                AttributeValue::S((*v).to_owned())
            };
            ((*k).to_owned(), value)
        })
        .collect()
}

/// The token half of a rendezvous item.
pub fn with_token(statement_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("statementId", statement_id),
        ("taskToken", TOKEN),
        ("step", "LoadItem"),
        ("runDate", "2021-06-26"),
    ]
}

/// `item` with the step's error names stored (`errorNames`, a map of strings).
pub fn with_error_names(
    mut item: HashMap<String, AttributeValue>,
    names: &[(&str, &str)],
) -> HashMap<String, AttributeValue> {
    item.insert(
        crate::store::ERROR_NAMES.to_owned(),
        AttributeValue::M(
            names
                .iter()
                .map(|(from, to)| ((*from).to_owned(), AttributeValue::S((*to).to_owned())))
                .collect(),
        ),
    );
    item
}

/// An `UpdateItem` whose expression starts with `prefix`, answering with `attributes` as ALL_NEW.
pub fn update(prefix: &'static str, attributes: HashMap<String, AttributeValue>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| r.update_expression().is_some_and(|e| e.starts_with(prefix)))
        .then_output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(attributes.clone()))
                .build()
        })
}

/// The `UpdateItem` that marks a task completed by `side` ("submitter" or "completer").
pub fn completed_by(side: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression()
                .is_some_and(|e| e.starts_with("SET completedAt"))
                && r.expression_attribute_values()
                    .and_then(|v| v.get(":side"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|v| v == side)
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

/// A consistent `GetItem` of the rendezvous item answering `attributes`.
pub fn read(attributes: HashMap<String, AttributeValue>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.consistent_read() == Some(true) && r.table_name() == Some(TABLE))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(attributes.clone()))
                .build()
        })
}

/// The `UpdateItem` that marks the task holding `token` completed with `outcome` by `side`, and
/// takes it out of the pending index.
pub fn marked(side: &'static str, outcome: &'static str, token: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            let value = |name: &str| {
                r.expression_attribute_values()
                    .and_then(|v| v.get(name))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            };
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET completedAt") && e.ends_with("REMOVE claimedUntil, pending")
            }) && r.condition_expression() == Some("taskToken = :token")
                && value(":token").as_deref() == Some(token)
                && value(":side").as_deref() == Some(side)
                && value(":outcome").as_deref() == Some(outcome)
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

/// An `UpdateItem` whose expression starts with `prefix`, failing its condition.
pub fn update_condition_fails(prefix: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| r.update_expression().is_some_and(|e| e.starts_with(prefix)))
        .then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .build(),
            )
        })
}

/// A finished or failed batch as `DescribeStatement` reports it.
pub fn described(
    status: StatusString,
    subs: &[(&str, StatusString, i64, Option<&str>)],
) -> DescribeStatementOutput {
    let sub_statements = subs
        .iter()
        .map(|(id, status, rows, error)| {
            SubStatementData::builder()
                .id(*id)
                .status(status.as_str().into())
                .result_rows(*rows)
                .query_string(format!("statement {id}"))
                .set_error(error.map(str::to_owned))
                .build()
                .expect("sub-statement data has its id")
        })
        .collect();
    DescribeStatementOutput::builder()
        .id(subs
            .first()
            .map_or("stmt", |s| s.0.split(':').next().unwrap_or("stmt")))
        .status(status)
        .duration(1_500_000_000)
        .set_error(subs.iter().find_map(|s| s.3).map(str::to_owned))
        .set_sub_statements(Some(sub_statements))
        .build()
        .expect("describe output has its id")
}

/// A completer whose three clients answer from the given rules (any order, retries off).
pub fn completer(dynamodb: &[&Rule], sfn: &[&Rule], redshift: &[&Rule]) -> Completer {
    let no_retry = RetryConfig::disabled();
    Completer {
        table: TokenTable {
            client: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb, |c| c
                .retry_config(no_retry.clone())),
            table: TABLE.to_owned(),
            ttl_seconds: 3600,
            claim_seconds: crate::store::CLAIM_SECONDS,
        },
        sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn, |c| c
            .retry_config(no_retry.clone())),
        redshift_data: mock_client!(aws_sdk_redshiftdata, RuleMode::MatchAny, redshift, |c| c
            .retry_config(no_retry.clone())),
        lineage: crate::lineage::Lineage::OFF,
    }
}

/// An S3 client answering from the given rules.
pub fn s3(rules: &[&Rule]) -> aws_sdk_s3::Client {
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}
