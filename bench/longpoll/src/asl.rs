//! The long-polling baseline's state machine, generated from the product's pipeline definition
//! with the product's layout (`pipeline::emit`): every SQL step is one synchronous `lambda:invoke`
//! Task that submits the batch and long-polls `DescribeStatement` until the statement ends; when
//! the Lambda's time runs out first it returns the in-progress status and a `Choice` invokes it
//! again on the same statement. Benchmark only.

use std::collections::BTreeSet;

use pipeline::emit::{emit, ParallelNames, Scope, StepStates};
use pipeline::json::Json;
use pipeline::{obj, Definition, DefinitionError, Plan};

struct LongPollSteps;

/// The Lambda's answer the `Choice` reads, and the Data API calls it made (for the benchmark).
fn result_selector() -> Json {
    obj! {
        "statementId.$" => "$.Payload.statementId",
        "status.$" => "$.Payload.status",
        "describeCalls.$" => "$.Payload.describeCalls",
    }
}

impl StepStates for LongPollSteps {
    fn step(&self, def: &Definition, index: usize, scope: &mut Scope, next: Option<&str>) {
        let step = &def.steps[index];
        let name = step.name.as_str();
        let (poll, done, failed, succeeded) = (
            format!("{name}Poll"),
            format!("{name}Done"),
            format!("{name}Failed"),
            format!("{name}Succeeded"),
        );
        let result = format!("$.steps.{name}");
        scope.add(name, obj! {
            "Type" => "Task",
            "Comment" => format!("Submit {} as one BatchExecuteStatement, then long-poll DescribeStatement (WaitTimeSeconds) until it ends or the Lambda's time is nearly up.", if step.script.is_empty() { "a check's SELECT" } else { step.script.as_str() }),
            "Resource" => "arn:aws:states:::lambda:invoke",
            "Parameters" => obj! {
                "FunctionName" => "${StepFunctionArn}",
                "Payload" => obj! {
                    "step" => name,
                    "script" => (!step.script.is_empty()).then(|| Json::str(&step.script)),
                    "sql" => polling_baseline::asl::check_sql(step),
                    "scriptsVersion" => def.scripts_version.as_str(),
                    "runDate.$" => "$.runDate",
                    "executionName.$" => "$$.Execution.Name",
                    "varTypes" => pipeline::vars::baseline_types(&def.vars),
                    "vars" => pipeline::vars::baseline_defaults(&def.vars),
                },
            },
            "ResultSelector" => result_selector(),
            "ResultPath" => result.as_str(),
            "Next" => done.as_str(),
        });
        let status_is =
            |s: &str| obj! { "Variable" => format!("{result}.status"), "StringEquals" => s };
        scope.add(done.as_str(), obj! {
            "Type" => "Choice",
            "Comment" => "FINISHED: go on; FAILED or ABORTED: fail; still running (the Lambda's time ran out first): long-poll again.",
            "Choices" => Json::Arr(vec![
                obj! {
                    "Variable" => format!("{result}.status"),
                    "StringEquals" => "FINISHED",
                    "Next" => next.unwrap_or(succeeded.as_str()),
                },
                obj! {
                    "Or" => Json::Arr(vec![status_is("FAILED"), status_is("ABORTED")]),
                    "Next" => failed.as_str(),
                },
            ]),
            "Default" => poll.as_str(),
        });
        scope.add(
            poll.as_str(),
            obj! {
                "Type" => "Task",
                "Comment" => "Long-poll the same statement again (no new submission).",
                "Resource" => "arn:aws:states:::lambda:invoke",
                "Parameters" => obj! {
                    "FunctionName" => "${StepFunctionArn}",
                    "Payload" => obj! {
                        "step" => name,
                        "script" => (!step.script.is_empty()).then(|| Json::str(&step.script)),
                    "sql" => polling_baseline::asl::check_sql(step),
                        "scriptsVersion" => def.scripts_version.as_str(),
                        "runDate.$" => "$.runDate",
                        "executionName.$" => "$$.Execution.Name",
                        "varTypes" => pipeline::vars::baseline_types(&def.vars),
                        "vars" => pipeline::vars::baseline_defaults(&def.vars),
                        "statementId.$" => format!("{result}.statementId"),
                    },
                },
                "ResultSelector" => result_selector(),
                "ResultPath" => result.as_str(),
                "Next" => done.as_str(),
            },
        );
        if next.is_none() {
            scope.add(succeeded, obj! { "Type" => "Succeed" });
        }
        scope.add(
            failed,
            obj! {
                "Type" => "Fail",
                "Error" => "Redshift.StatementFailed",
                "Cause" => "The statement ended FAILED or ABORTED; see the step's output.",
            },
        );
    }
}

/// The long-polling state machine for a definition (`bench/longpoll.asl.json` for the sales ETL).
pub fn longpoll_state_machine(plan: &Plan) -> Result<String, DefinitionError> {
    let def = &plan.definition;
    let names = ParallelNames::new(def, &plan.layout)?;
    let mut steps = Scope::default();
    let start = emit(
        def,
        &LongPollSteps,
        &names,
        &plan.layout,
        &mut steps,
        None,
        &BTreeSet::new(),
    );
    Ok(obj! {
        "Comment" => format!(
            "BENCHMARK ONLY - GENERATED by `make asl` from {} with the product's layout: the long-polling baseline. Every SQL step is one synchronous Lambda Task that submits the Data API batch and long-polls DescribeStatement (WaitTimeSeconds) until it ends; a Choice invokes it again while the statement still runs.",
            plan.source_name()
        ),
        "StartAt" => start,
        "TimeoutSeconds" => Json::int(pipeline::definition::EXECUTION_TIMEOUT_SECONDS),
        "States" => steps.into_json(),
    }
    .pretty())
}
