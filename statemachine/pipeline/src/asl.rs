//! The product's state machine (`statemachine/etl.asl.json`): every policy exists once, here.
//!
//! ```text
//! ReadInput -> CheckInput -> [DefaultRunDate] -> Settings -> AcquireRunLock -> Pipeline
//!   with [vars]: ResolveVars (the submitter: the run's variables checked, the run's state built)
//!   instead of Settings; a refused variable -> ReadVarsRefusal -> VarsRefused -> RunFailed
//!   Pipeline (one branch: the steps, laid out by `layout`) -> ReleaseRunLock -> EtlSucceeded
//!   a failed step fails the execution where it is: no Catch, no state after it
//! ```
//!
//! Built for Redrive. `RedriveExecution` "continues the failed execution from the unsuccessful
//! step", does not rerun succeeded states, and for a `Parallel` "redrives only the ... branches
//! that failed or aborted" (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html>). A `Catch`
//! that routes a failure to a `Fail` state makes that `Fail` state the unsuccessful one, and a
//! redrive would re-enter it and fail again at once. So no state between a SQL step and the end
//! of the execution catches anything: a failed step fails its branch, every enclosing `Parallel`
//! (with the branch's own error and cause) and the execution, with the step's own error (what the
//! submitter, completer or reconciler sent, after the step's `errors` mapping, or Step Functions'
//! `States.Timeout`, for a missed heartbeat as for the step's timeout; nothing here matches
//! `States.HeartbeatTimeout`). A redrive then reruns exactly the failed step's branch from the
//! failed step, and everything after it.
//!
//! The run lock: `AcquireRunLock` takes the first attempt's slot (it is not rerun by a redrive);
//! a redriven attempt's submitter takes the attempt's own slot before its first SQL (holder
//! `<execution ARN>#<$$.Execution.RedriveCount>`, `RunLockTaken` retried while the lock is full).
//! `ReleaseRunLock` gives back the current attempt's slot when the pipeline succeeded; a failed
//! attempt's slot is given back by the reconciler (its execution-ended event, or the schedule).
//!
//! The failures before the lock (`InvalidInput`, `RunAlreadyInProgress`) go through the one `Fail`
//! state, `RunFailed`; a redrive of those fails again at once (start a new run instead). A `Fail`
//! state never raises a `States.*` name (the prefix is reserved for Step Functions' own errors).

use std::collections::BTreeSet;

use crate::definition::{Definition, DefinitionError};
use crate::emit::{emit, then, ParallelNames, Scope, StepStates};
use crate::json::Json;
use crate::layout::Layout;
use crate::obj;

/// The submitter errors worth another attempt: throttling, retried with a long backoff.
pub const THROTTLE_ERRORS: &[&str] = &[
    "RedshiftThrottled",
    "TokenStoreThrottled",
    "RunLockThrottled",
];
/// The Lambda errors of an invocation that failed, crashed or timed out, possibly after it
/// submitted: the retry re-attaches to the same statement through its `ClientToken`.
/// `Lambda.Unknown` is what Step Functions reports for a function timeout or out-of-memory crash;
/// `Sandbox.Timedout` and `Runtime.ExitError` are the error types Lambda itself gives a timed-out
/// or crashed `provided.al2023` function.
pub const LAMBDA_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    "Sandbox.Timedout",
    "Runtime.ExitError",
];
/// DynamoDB errors of the run lock's direct integration worth another attempt. Step Functions
/// names them after the AWS SDK for Java's exception classes (`InternalServerErrorException` for
/// the wire code `InternalServerError`); `RequestLimitExceeded` is listed under both names.
pub const DYNAMODB_RETRY_ERRORS: &[&str] = &[
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.RequestLimitExceededException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.AmazonDynamoDBException",
];
/// What `ResolveVars` fails with when it refuses a variable (the submitter's names).
pub const VARS_REFUSED: &[&str] = &["InvalidInput", "InvalidPipelineVars"];
/// The run lock's Retry while it is taken: about two minutes in all (2+4+8+16+32+60 s, jittered).
pub const LOCK_WAIT: Retry = Retry {
    errors: &["DynamoDB.ConditionalCheckFailedException"],
    interval: 2,
    attempts: 6,
    max_delay: Some(60),
};
/// A redriven step's wait for a slot of the run lock (the submitter's `RunLockTaken`): as long as
/// `AcquireRunLock`'s.
pub const STEP_LOCK_WAIT: Retry = Retry {
    errors: &["RunLockTaken"],
    interval: LOCK_WAIT.interval,
    attempts: LOCK_WAIT.attempts,
    max_delay: LOCK_WAIT.max_delay,
};
pub const STEP_THROTTLE: Retry = Retry {
    errors: THROTTLE_ERRORS,
    interval: 5,
    attempts: 6,
    max_delay: Some(120),
};
pub const STEP_LAMBDA: Retry = Retry {
    errors: LAMBDA_ERRORS,
    interval: 2,
    attempts: 5,
    max_delay: Some(60),
};
pub const DYNAMODB_RETRY: Retry = Retry {
    errors: DYNAMODB_RETRY_ERRORS,
    interval: 1,
    attempts: 5,
    max_delay: None,
};

/// One Retry object (backoff 2.0 with full jitter, as every retry here).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub errors: &'static [&'static str],
    pub interval: u32,
    pub attempts: u32,
    pub max_delay: Option<u32>,
}

impl Retry {
    pub fn json(&self) -> Json {
        obj! {
            "ErrorEquals" => Json::strs(self.errors.iter()),
            "IntervalSeconds" => Json::int(self.interval),
            "MaxAttempts" => Json::int(self.attempts),
            "BackoffRate" => Json::num("2.0"),
            "MaxDelaySeconds" => self.max_delay.map(Json::int),
            "JitterStrategy" => "FULL",
        }
    }
}

/// The SQL Task: `lambda:invoke.waitForTaskToken` on the submitter.
pub struct CallbackSteps;

impl StepStates for CallbackSteps {
    fn step(&self, def: &Definition, index: usize, scope: &mut Scope, next: Option<&str>) {
        let step = &def.steps[index];
        let errors = (!step.errors.is_empty()).then(|| {
            Json::Obj(
                step.errors
                    .iter()
                    .map(|(from, to)| (from.clone(), Json::str(to)))
                    .collect(),
            )
        });
        // A check: its settings, and its SELECT unless its script is the check
        // (etl_callback::check; the submitter wraps it, the closer reads its rows).
        let check = step.check.as_ref().map(|c| {
            obj! {
                "severity" => c.severity.as_str(),
                "maxRows" => Json::int(c.max_rows),
                "sql" => c.sql.as_deref().map(Json::str),
            }
        });
        let payload = obj! {
            "taskToken.$" => "$$.Task.Token",
            "step" => step.name.as_str(),
            "script" => (!step.script.is_empty()).then(|| Json::str(&step.script)),
            "scriptsVersion" => def.scripts_version.as_str(),
            "runDate.$" => "$.runDate",
            "executionName.$" => "$$.Execution.Name",
            "executionStartTime.$" => "$$.Execution.StartTime",
            "stateEnteredTime.$" => "$$.State.EnteredTime",
            "retryCount.$" => "$$.State.RetryCount",
            // A redriven Task entry is a new attempt (the submitter takes the run lock for it and
            // sends a new ClientToken): the context object's Execution.RedriveCount, documented at
            // https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
            "executionId.$" => "$$.Execution.Id",
            "redriveCount.$" => "$$.Execution.RedriveCount",
            "executionInput.$" => "$$.Execution.Input",
            "errors" => errors,
            // The step's tables for its OpenLineage events (docs/lineage.md): what `pipeline
            // check` validated (declared reads/writes win), so the events and the check never
            // disagree and the submitter analyses nothing at run time.
            "lineage" => obj! {
                "pipeline" => def.name.as_str(),
                "reads" => Json::strs(step.data.reads.iter().map(|t| t.as_str())),
                "writes" => Json::strs(step.data.writes.iter().map(|t| t.as_str())),
            },
            "check" => check,
        };
        let payload = with_vars(payload, def);
        let (heartbeat, heartbeat_path) = match step.heartbeat_seconds {
            Some(s) => (Some(Json::int(s)), None),
            None => (None, Some(Json::str("$.settings.heartbeatSeconds"))),
        };
        let (timeout, timeout_path) = match step.timeout_seconds {
            Some(s) => (Some(Json::int(s)), None),
            None => (None, Some(Json::str("$.settings.timeoutSeconds"))),
        };
        let comment = step.description.clone().unwrap_or_else(|| match &step.check {
            Some(c) => format!(
                "Check ({}): fails the run with Check.Failed and the first rows when its SELECT returns any.",
                c.kind
            ),
            None => format!("Runs {} as one transaction.", step.script),
        });
        let state = obj! {
            "Type" => "Task",
            "Comment" => comment,
            "Resource" => "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters" => obj! {
                "FunctionName" => "${SubmitterFunctionArn}",
                "Payload" => payload,
            },
            "HeartbeatSeconds" => heartbeat,
            "HeartbeatSecondsPath" => heartbeat_path,
            "TimeoutSeconds" => timeout,
            "TimeoutSecondsPath" => timeout_path,
            "ResultPath" => format!("$.steps.{}", step.name),
            "Retry" => Json::Arr(vec![STEP_THROTTLE.json(), STEP_LAMBDA.json(), STEP_LOCK_WAIT.json()]),
        };
        scope.add(step.name.clone(), then(state, next));
    }
}

/// A SQL step's payload with the run's variables: their types from the definition (`varTypes`)
/// and their values, resolved before the run lock (`vars.$`). Unchanged without `[vars]`.
fn with_vars(mut payload: Json, def: &Definition) -> Json {
    if !def.vars.is_empty() {
        if let Json::Obj(fields) = &mut payload {
            fields.push(("varTypes".into(), crate::vars::types_json(&def.vars)));
            fields.push(("vars.$".into(), Json::str("$.vars")));
        }
    }
    payload
}

fn lock_key() -> Json {
    obj! { "lockName" => obj! { "S" => "${RunLockName}" } }
}

/// The run lock's item: `holders`, a string set of the execution ARNs holding a slot. `ADD` and
/// `DELETE` of a set element are idempotent, so a retried acquire or release (a write that
/// succeeded but answered an error) counts once, and nothing can drift from the holders.
fn lock_member() -> Json {
    obj! {
        ":me" => obj! { "SS.$" => "States.Array($$.Execution.Id)" },
        ":id" => obj! { "S.$" => "$$.Execution.Id" },
    }
}

/// The current attempt's holders elements, for the release: the first attempt's (the execution
/// ARN, taken by `AcquireRunLock`) and a redriven attempt's (`<ARN>#<redrive count>`, taken by
/// the submitter). `<ARN>#0` is never written, so deleting it changes nothing.
fn release_members() -> Json {
    obj! {
        ":me" => obj! { "SS.$" => "States.Array($$.Execution.Id, States.Format('{}#{}', $$.Execution.Id, $$.Execution.RedriveCount))" },
        ":id" => obj! { "S.$" => "$$.Execution.Id" },
        ":attempt" => obj! { "S.$" => "States.Format('{}#{}', $$.Execution.Id, $$.Execution.RedriveCount)" },
    }
}

/// A `Catch` of every catchable error, recorded at `result_path`.
fn catch_all(result_path: &str, next: &str) -> Json {
    Json::Arr(vec![obj! {
        "ErrorEquals" => Json::strs(["States.ALL"]),
        "ResultPath" => result_path,
        "Next" => next,
    }])
}

/// A failure's cause: literal text, or a path / intrinsic function evaluated on the state.
enum Cause<'a> {
    Text(&'a str),
    Path(&'a str),
}

/// A Pass state that sets `$.error` to the run's failure, then goes to `RunFailed`.
fn failure(comment: &str, error: &str, cause: Cause) -> Json {
    let (cause_key, cause) = match cause {
        Cause::Text(text) => ("Cause", Json::str(text)),
        Cause::Path(path) => ("Cause.$", Json::str(path)),
    };
    obj! {
        "Type" => "Pass",
        "Comment" => comment,
        "Parameters" => Json::Obj(vec![
            ("Error".into(), Json::str(error)),
            (cause_key.into(), cause),
        ]),
        "ResultPath" => "$.error",
        "Next" => "RunFailed",
    }
}

/// The whole state machine for a definition.
pub fn state_machine(
    def: &Definition,
    layout: &Layout,
    source: &str,
) -> Result<Json, DefinitionError> {
    let names = ParallelNames::new(def, layout)?;
    let mut pipeline = Scope::default();
    let start = emit(
        def,
        &CallbackSteps,
        &names,
        layout,
        &mut pipeline,
        None,
        &BTreeSet::new(),
    );

    let has_vars = !def.vars.is_empty();
    let after_date = if has_vars { "ResolveVars" } else { "Settings" };
    let mut top = Scope::default();
    top.add("ReadInput", obj! {
        "Type" => "Pass",
        "Comment" => "Read the execution input from the context object (it may not be a JSON object): the run never carries fields it did not validate.",
        "Parameters" => obj! {
            "input.$" => "$$.Execution.Input",
            "inputText.$" => "States.JsonToString($$.Execution.Input)",
        },
        "Next" => "CheckInput",
    });
    top.add("CheckInput", obj! {
        "Type" => "Choice",
        "Comment" => if has_vars {
            "A non-object input fails the run at once (InvalidInput), before the run lock and any SQL; a given runDate is used, else DefaultRunDate takes the UTC day the execution started; ResolveVars checks the run's vars. Other input fields are ignored."
        } else {
            "A non-object input, or one with vars (this pipeline declares none), fails the run at once (InvalidInput), before the run lock and any SQL; a given runDate is used, else DefaultRunDate takes the UTC day the execution started. Other input fields are ignored."
        },
        "Choices" => Json::Arr({
            let mut choices = vec![obj! {
                "Not" => obj! { "Variable" => "$.inputText", "StringMatches" => "{*" },
                "Next" => "InvalidInput",
            }];
            if !has_vars {
                // `"vars": null` is no variables (what a backfill passes on when it was given none).
                choices.push(obj! {
                    "And" => Json::Arr(vec![
                        obj! { "Variable" => "$.input.vars", "IsPresent" => Json::Bool(true) },
                        obj! { "Not" => obj! { "Variable" => "$.input.vars", "IsNull" => Json::Bool(true) } },
                    ]),
                    "Next" => "UnexpectedVars",
                });
            }
            choices.push(obj! { "Variable" => "$.input.runDate", "IsPresent" => Json::Bool(true), "Next" => after_date });
            choices
        }),
        "Default" => "DefaultRunDate",
    });
    top.add("InvalidInput", failure(
        "The execution input is not a JSON object.",
        "InvalidInput",
        Cause::Text("The execution input must be a JSON object such as {\"runDate\": \"2021-06-26\"} (or {} for today, UTC); nothing was run."),
    ));
    if !has_vars {
        top.add("UnexpectedVars", failure(
            "The execution input has vars, and this pipeline declares no variables.",
            "InvalidInput",
            Cause::Text("The execution input has vars, but this pipeline declares no variables ([vars] in its definition); nothing was run."),
        ));
    }
    top.add("DefaultRunDate", obj! {
        "Type" => "Pass",
        "Comment" => "No runDate in the input: the date part of $$.Execution.StartTime (UTC), e.g. 2021-06-27. The submitter validates it like any other run date.",
        "Parameters" => obj! {
            "runDate.$" => "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
        },
        "ResultPath" => "$.input",
        "Next" => after_date,
    });
    let settings = || {
        obj! {
            "heartbeatSeconds.$" => "States.StringToJson('${StepHeartbeatSeconds}')",
            "timeoutSeconds.$" => "States.StringToJson('${StepTimeoutSeconds}')",
        }
    };
    if has_vars {
        top.add("ResolveVars", obj! {
            "Type" => "Task",
            "Comment" => "The run's variables before the run lock and any SQL: the definition's defaults, the deployment's PipelineVars, the input's vars (only declared names, each checked against its type). A refused value fails the run with InvalidInput (InvalidPipelineVars for the deployment's) naming the variable. Builds the run's state as Settings does without variables: the run date, the variables, the step limits, an empty steps object.",
            "Resource" => "arn:aws:states:::lambda:invoke",
            "Parameters" => obj! {
                "FunctionName" => "${SubmitterFunctionArn}",
                "Payload" => obj! {
                    "resolveVars" => obj! {
                        "declared" => crate::vars::declared_json(&def.vars),
                        "executionInput.$" => "$$.Execution.Input",
                        "runDate.$" => "$.input.runDate",
                    },
                },
            },
            "ResultSelector" => obj! {
                "runDate.$" => "$.Payload.runDate",
                "vars.$" => "$.Payload.vars",
                "settings" => settings(),
                "steps" => Json::Obj(vec![]),
            },
            "ResultPath" => "$",
            "Retry" => Json::Arr(vec![STEP_LAMBDA.json()]),
            "Catch" => Json::Arr(vec![obj! {
                "ErrorEquals" => Json::strs(VARS_REFUSED),
                "ResultPath" => "$.error",
                "Next" => "ReadVarsRefusal",
            }]),
            "Next" => "AcquireRunLock",
        });
        top.add("ReadVarsRefusal", obj! {
            "Type" => "Pass",
            "Comment" => "A Lambda error's cause is {\"errorType\", \"errorMessage\"}: the run's cause is the message, which names the variable.",
            "Parameters" => obj! {
                "Error.$" => "$.error.Error",
                "Cause.$" => "States.StringToJson($.error.Cause)",
            },
            "ResultPath" => "$.refusal",
            "Next" => "VarsRefused",
        });
        top.add(
            "VarsRefused",
            obj! {
                "Type" => "Pass",
                "Comment" => "ResolveVars refused a variable: nothing is locked or run.",
                "Parameters" => obj! {
                    "Error.$" => "$.refusal.Error",
                    "Cause.$" => "$.refusal.Cause.errorMessage",
                },
                "ResultPath" => "$.error",
                "Next" => "RunFailed",
            },
        );
    }
    if !has_vars {
        top.add("Settings", obj! {
            "Type" => "Pass",
            "Comment" => "The run's state, built from validated fields only: the run date, the step limits from the template parameters (StepHeartbeatSeconds, StepTimeoutSeconds; every SQL Task without its own limits reads them), and an empty steps object for the results.",
            "Parameters" => obj! {
                "runDate.$" => "$.input.runDate",
                "settings" => settings(),
                "steps" => Json::Obj(vec![]),
            },
            "Next" => "AcquireRunLock",
        });
    }
    top.add("AcquireRunLock", obj! {
        "Type" => "Task",
        "Comment" => "One run at a time (RunConcurrency runs): this execution's ARN joins the lock item's holders set when the set has room, or is already in it (a retried acquire counts once; a redriven run takes its slot in the submitter, since this state succeeded and is not rerun). A full lock is retried with backoff (about 2 minutes in all), then the run fails with RunAlreadyInProgress naming the holders.",
        "Resource" => "arn:aws:states:::dynamodb:updateItem",
        "Parameters" => obj! {
            "TableName" => "${RunLockTableName}",
            "Key" => lock_key(),
            "UpdateExpression" => "ADD holders :me",
            "ConditionExpression" => "attribute_not_exists(holders) OR contains(holders, :id) OR size(holders) < :limit",
            "ExpressionAttributeValues" => {
                let mut v = lock_member();
                if let Json::Obj(f) = &mut v {
                    f.push((":limit".into(), obj! { "N" => "${RunConcurrency}" }));
                }
                v
            },
        },
        "ResultPath" => Json::Null,
        "Retry" => Json::Arr(vec![LOCK_WAIT.json(), DYNAMODB_RETRY.json()]),
        "Catch" => Json::Arr(vec![obj! {
            "ErrorEquals" => Json::strs(LOCK_WAIT.errors.iter()),
            "ResultPath" => "$.error",
            "Next" => "DescribeRunLock",
        }]),
        "Next" => "Pipeline",
    });
    top.add(
        "DescribeRunLock",
        obj! {
            "Type" => "Task",
            "Comment" => "Read who holds the lock, for the RunAlreadyInProgress cause.",
            "Resource" => "arn:aws:states:::dynamodb:getItem",
            "Parameters" => obj! {
                "TableName" => "${RunLockTableName}",
                "Key" => lock_key(),
                "ConsistentRead" => Json::Bool(true),
            },
            "ResultSelector" => obj! { "holders.$" => "States.JsonToString($.Item)" },
            "ResultPath" => "$.lock",
            "Retry" => Json::Arr(vec![DYNAMODB_RETRY.json()]),
            "Next" => "RunAlreadyInProgress",
        },
    );
    top.add("RunAlreadyInProgress", failure(
        "RunConcurrency runs already hold the run lock, and it stayed taken while this run waited.",
        "RunAlreadyInProgress",
        Cause::Path("States.Format('the run lock stayed taken (RunConcurrency reached); it is held by: {}', $.lock.holders)"),
    ));
    let comment = match &def.description {
        Some(d) => format!("Pipeline {}: {d} No Catch: a failed step fails the execution where it is, so a Redrive resumes at that step (a failed attempt's run lock slot is given back by the reconciler).", def.name),
        None => format!("Pipeline {}. No Catch: a failed step fails the execution where it is, so a Redrive resumes at that step (a failed attempt's run lock slot is given back by the reconciler).", def.name),
    };
    top.add("Pipeline", obj! {
        "Type" => "Parallel",
        "Comment" => comment,
        "Branches" => Json::Arr(vec![obj! { "StartAt" => start, "States" => pipeline.into_json() }]),
        "OutputPath" => "$[0]",
        "Next" => "ReleaseRunLock",
    });
    top.add("ReleaseRunLock", obj! {
        "Type" => "Task",
        "Comment" => "The pipeline succeeded: this attempt leaves the holders set (its execution ARN, or <ARN>#<redrive count> for a redriven attempt; conditional, so a second release changes nothing). If it fails, the run still succeeds and the reconciler releases the slot (the execution is no longer running).",
        "Resource" => "arn:aws:states:::dynamodb:updateItem",
        "Parameters" => obj! {
            "TableName" => "${RunLockTableName}",
            "Key" => lock_key(),
            "UpdateExpression" => "DELETE holders :me",
            "ConditionExpression" => "contains(holders, :id) OR contains(holders, :attempt)",
            "ExpressionAttributeValues" => release_members(),
        },
        "ResultPath" => Json::Null,
        "Retry" => Json::Arr(vec![DYNAMODB_RETRY.json()]),
        "Catch" => catch_all("$.releaseError", "EtlSucceeded"),
        "Next" => "EtlSucceeded",
    });
    top.add("EtlSucceeded", obj! {
        "Type" => "Succeed",
        "Comment" => "Every step succeeded; the output has the run date and each step's result under steps.",
    });
    top.add("RunFailed", obj! {
        "Type" => "Fail",
        "Comment" => "The run's only Fail state, for the failures before the run lock (InvalidInput, RunAlreadyInProgress): a redrive fails here again at once, start a new run. A failed SQL step does not come here: it fails the execution where it is, so that a redrive resumes at that step.",
        "ErrorPath" => "$.error.Error",
        "CausePath" => "$.error.Cause",
    });
    Ok(obj! {
        "Comment" => format!(
            "GENERATED by `make asl` from {source} (pipeline {}): edit the definition, not this file. Every SQL step submits one Data API batch and waits for the Redshift Data API status-change event (callback token, no polling).",
            def.name
        ),
        "StartAt" => "ReadInput",
        "TimeoutSeconds" => Json::int(crate::definition::EXECUTION_TIMEOUT_SECONDS),
        "States" => top.into_json(),
    })
}
