//! The polling baseline's state machine, generated from the product's pipeline definition with
//! the product's layout (`pipeline::emit`): every SQL step submits its batch, then `Wait`s,
//! `DescribeStatement`s and loops through a `Choice` until the statement ends, as the 2021 sample
//! did. Benchmark only.

use std::collections::BTreeSet;

use pipeline::emit::{emit, ParallelNames, Scope, StepStates};
use pipeline::json::Json;
use pipeline::{obj, Definition, DefinitionError, Plan};

struct PollingSteps;

impl StepStates for PollingSteps {
    fn step(&self, def: &Definition, index: usize, scope: &mut Scope, next: Option<&str>) {
        let step = &def.steps[index];
        let name = step.name.as_str();
        let (wait, status, done, failed) = (
            format!("{name}Wait"),
            format!("{name}Status"),
            format!("{name}Done"),
            format!("{name}Failed"),
        );
        let succeeded = format!("{name}Succeeded");
        let result = format!("$.steps.{name}");
        scope.add(name, obj! {
            "Type" => "Task",
            "Comment" => format!("Submit {} as one BatchExecuteStatement (no event, no task token).", if step.script.is_empty() { "a check's SELECT" } else { step.script.as_str() }),
            "Resource" => "arn:aws:states:::lambda:invoke",
            "Parameters" => obj! {
                "FunctionName" => "${SubmitFunctionArn}",
                "Payload" => obj! {
                    "step" => name,
                    "script" => (!step.script.is_empty()).then(|| Json::str(&step.script)),
                    "sql" => crate::asl::check_sql(step),
                    "scriptsVersion" => def.scripts_version.as_str(),
                    "runDate.$" => "$.runDate",
                    "executionName.$" => "$$.Execution.Name",
                    "varTypes" => pipeline::vars::baseline_types(&def.vars),
                    "vars" => pipeline::vars::baseline_defaults(&def.vars),
                },
            },
            "ResultSelector" => obj! { "statementId.$" => "$.Payload.statementId" },
            "ResultPath" => result.as_str(),
            "Next" => wait.as_str(),
        });
        scope.add(
            wait.as_str(),
            obj! {
                "Type" => "Wait",
                "SecondsPath" => "$.settings.waitSeconds",
                "Next" => status.as_str(),
            },
        );
        scope.add(
            status.as_str(),
            obj! {
                "Type" => "Task",
                "Comment" => "DescribeStatement of the batch.",
                "Resource" => "arn:aws:states:::lambda:invoke",
                "Parameters" => obj! {
                    "FunctionName" => "${StatusFunctionArn}",
                    "Payload" => obj! { "statementId.$" => format!("{result}.statementId") },
                },
                "ResultSelector" => obj! {
                    "statementId.$" => "$.Payload.statementId",
                    "status.$" => "$.Payload.status",
                },
                "ResultPath" => result.as_str(),
                "Next" => done.as_str(),
            },
        );
        let status_is =
            |s: &str| obj! { "Variable" => format!("{result}.status"), "StringEquals" => s };
        scope.add(done.as_str(), obj! {
            "Type" => "Choice",
            "Comment" => "FINISHED: go on; FAILED or ABORTED: fail; anything else: wait and check again.",
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
            "Default" => wait.as_str(),
        });
        if next.is_none() {
            scope.add(succeeded, obj! { "Type" => "Succeed" });
        }
        scope.add(
            failed,
            obj! {
                "Type" => "Fail",
                "Error" => "Redshift.StatementFailed",
                "Cause" => "The statement ended FAILED or ABORTED; see the status check's output.",
            },
        );
    }
}

/// The polling state machine for a definition (`bench/polling.asl.json` for the sales ETL).
pub fn polling_state_machine(plan: &Plan) -> Result<String, DefinitionError> {
    let def = &plan.definition;
    let names = ParallelNames::new(def, &plan.layout)?;
    let mut steps = Scope::default();
    let start = emit(
        def,
        &PollingSteps,
        &names,
        &plan.layout,
        &mut steps,
        None,
        &BTreeSet::new(),
    );
    let mut top = Scope::default();
    top.add("Settings", obj! {
        "Type" => "Pass",
        "Comment" => "The Wait seconds from the template parameter WaitSeconds (a number in the state input).",
        "Parameters" => obj! { "waitSeconds.$" => "States.StringToJson('${WaitSeconds}')" },
        "ResultPath" => "$.settings",
        "Next" => start,
    });
    top.states.extend(steps.states);
    Ok(obj! {
        "Comment" => format!(
            "BENCHMARK ONLY - GENERATED by `make asl` from {} with the product's layout: the polling baseline after the original AWS sample. Every SQL step submits one Data API batch, then Wait N s, DescribeStatement, Choice, looping until FINISHED/FAILED/ABORTED.",
            plan.source_name()
        ),
        "StartAt" => "Settings",
        "TimeoutSeconds" => Json::int(pipeline::definition::EXECUTION_TIMEOUT_SECONDS),
        "States" => top.into_json(),
    }
    .pretty())
}

/// A check step's statement as the product's submitter runs it, for a check whose SELECT the
/// definition carries; `None` otherwise.
pub fn check_sql(step: &pipeline::definition::Step) -> Option<Json> {
    let check = step.check.as_ref()?;
    let select = check.sql.as_deref()?;
    Some(Json::str(etl_callback::check::wrap(select, check.max_rows)))
}
