//! The product's state machine (`statemachine/etl.asl.json`): every policy exists once, here.
//!
//! ```text
//! ReadInput -> CheckInput -> [DefaultRunDate] -> Settings -> AcquireRunLock -> Pipeline
//!   Pipeline (one branch: the steps, laid out by `layout`) -> ReleaseRunLock -> RunOutcome
//!   RunOutcome: succeeded -> EtlSucceeded; a step's error -> RunFailed (same name and cause);
//!               States.HeartbeatTimeout/Timeout -> StepTimedOut -> RunFailed (Step.TimedOut);
//!               another States.* error -> StepFunctionsError -> RunFailed (Run.StepFunctionsError)
//! ```
//!
//! The error rule, true on AWS: a `Fail` state never raises a `States.*` name (the prefix is
//! reserved for Step Functions' own errors). A step's own error (what the submitter, completer or
//! reconciler sent, after the step's `errors` mapping) ends the run unchanged; Step Functions'
//! step timeouts end it as `Step.TimedOut`; any other `States.*` error as `Run.StepFunctionsError`
//! with the original name first in the cause. SQL steps have no `Catch`: a failed step is the
//! failed state of the execution, inside its branch, and the one `Catch` on `Pipeline` gives the
//! run lock back. There is one `Fail` state.

use std::collections::BTreeSet;

use crate::definition::{Definition, DefinitionError};
use crate::emit::{emit, then, ParallelNames, Scope, StepStates};
use crate::json::Json;
use crate::layout::Layout;
use crate::obj;

/// The submitter errors worth another attempt: throttling, retried with a long backoff.
pub const THROTTLE_ERRORS: &[&str] = &["RedshiftThrottled", "TokenStoreThrottled"];
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
/// The run lock's Retry while it is taken: about two minutes in all (2+4+8+16+32+60 s, jittered).
pub const LOCK_WAIT: Retry = Retry {
    errors: &["DynamoDB.ConditionalCheckFailedException"],
    interval: 2,
    attempts: 6,
    max_delay: Some(60),
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

/// The cause of `Step.TimedOut`.
pub const TIMED_OUT_CAUSE: &str = "The SQL step got no heartbeat within StepHeartbeatSeconds or ran longer than StepTimeoutSeconds; see the TaskTimedOut event in the execution history.";

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
        let payload = obj! {
            "taskToken.$" => "$$.Task.Token",
            "step" => step.name.as_str(),
            "script" => step.script.as_str(),
            "scriptsVersion" => def.scripts_version.as_str(),
            "runDate.$" => "$.runDate",
            "executionName.$" => "$$.Execution.Name",
            "executionStartTime.$" => "$$.Execution.StartTime",
            "stateEnteredTime.$" => "$$.State.EnteredTime",
            "retryCount.$" => "$$.State.RetryCount",
            "executionInput.$" => "$$.Execution.Input",
            "errors" => errors,
        };
        let (heartbeat, heartbeat_path) = match step.heartbeat_seconds {
            Some(s) => (Some(Json::int(s)), None),
            None => (None, Some(Json::str("$.settings.heartbeatSeconds"))),
        };
        let (timeout, timeout_path) = match step.timeout_seconds {
            Some(s) => (Some(Json::int(s)), None),
            None => (None, Some(Json::str("$.settings.timeoutSeconds"))),
        };
        let comment = step
            .description
            .clone()
            .unwrap_or_else(|| format!("Runs {} as one transaction.", step.script));
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
            "Retry" => Json::Arr(vec![STEP_THROTTLE.json(), STEP_LAMBDA.json()]),
        };
        scope.add(step.name.clone(), then(state, next));
    }
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
        "Comment" => "A non-object input fails the run at once (InvalidInput), before the run lock and any SQL; a given runDate is used, else DefaultRunDate takes the UTC day the execution started. Other input fields are ignored.",
        "Choices" => Json::Arr(vec![
            obj! {
                "Not" => obj! { "Variable" => "$.inputText", "StringMatches" => "{*" },
                "Next" => "InvalidInput",
            },
            obj! { "Variable" => "$.input.runDate", "IsPresent" => Json::Bool(true), "Next" => "Settings" },
        ]),
        "Default" => "DefaultRunDate",
    });
    top.add("InvalidInput", failure(
        "The execution input is not a JSON object.",
        "InvalidInput",
        Cause::Text("The execution input must be a JSON object such as {\"runDate\": \"2021-06-26\"} (or {} for today, UTC); nothing was run."),
    ));
    top.add("DefaultRunDate", obj! {
        "Type" => "Pass",
        "Comment" => "No runDate in the input: the date part of $$.Execution.StartTime (UTC), e.g. 2021-06-27. The submitter validates it like any other run date.",
        "Parameters" => obj! {
            "runDate.$" => "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
        },
        "ResultPath" => "$.input",
        "Next" => "Settings",
    });
    top.add("Settings", obj! {
        "Type" => "Pass",
        "Comment" => "The run's state, built from validated fields only: the run date, the step limits from the template parameters (StepHeartbeatSeconds, StepTimeoutSeconds; every SQL Task without its own limits reads them), and an empty steps object for the results.",
        "Parameters" => obj! {
            "runDate.$" => "$.input.runDate",
            "settings" => obj! {
                "heartbeatSeconds.$" => "States.StringToJson('${StepHeartbeatSeconds}')",
                "timeoutSeconds.$" => "States.StringToJson('${StepTimeoutSeconds}')",
            },
            "steps" => Json::Obj(vec![]),
        },
        "Next" => "AcquireRunLock",
    });
    top.add("AcquireRunLock", obj! {
        "Type" => "Task",
        "Comment" => "One run at a time (RunConcurrency runs): this execution's ARN joins the lock item's holders set when the set has room, or is already in it (a retried or redriven acquire counts once). A full lock is retried with backoff (about 2 minutes in all), then the run fails with RunAlreadyInProgress naming the holders.",
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
        Some(d) => format!("Pipeline {}: {d} Inside one branch so that every way out of it passes the lock release.", def.name),
        None => format!("Pipeline {}, inside one branch so that every way out of it passes the lock release.", def.name),
    };
    top.add("Pipeline", obj! {
        "Type" => "Parallel",
        "Comment" => comment,
        "Branches" => Json::Arr(vec![obj! { "StartAt" => start, "States" => pipeline.into_json() }]),
        "OutputPath" => "$[0]",
        "Catch" => catch_all("$.error", "ReleaseRunLock"),
        "Next" => "ReleaseRunLock",
    });
    top.add("ReleaseRunLock", obj! {
        "Type" => "Task",
        "Comment" => "The one release, on every way out of the pipeline: this execution leaves the holders set (conditional, so a second release changes nothing). If it fails, the reconciler releases the lock (the holder's execution is no longer running).",
        "Resource" => "arn:aws:states:::dynamodb:updateItem",
        "Parameters" => obj! {
            "TableName" => "${RunLockTableName}",
            "Key" => lock_key(),
            "UpdateExpression" => "DELETE holders :me",
            "ConditionExpression" => "contains(holders, :id)",
            "ExpressionAttributeValues" => lock_member(),
        },
        "ResultPath" => Json::Null,
        "Retry" => Json::Arr(vec![DYNAMODB_RETRY.json()]),
        "Catch" => catch_all("$.releaseError", "RunOutcome"),
        "Next" => "RunOutcome",
    });
    top.add("RunOutcome", obj! {
        "Type" => "Choice",
        "Comment" => "Succeeded, or which failure: a step's own error ends the run unchanged; Step Functions' errors get names of ours (a Fail state never raises a States.* name).",
        "Choices" => Json::Arr(vec![
            obj! { "Variable" => "$.error", "IsPresent" => Json::Bool(false), "Next" => "EtlSucceeded" },
            obj! {
                "Or" => Json::Arr(vec![
                    obj! { "Variable" => "$.error.Error", "StringEquals" => "States.HeartbeatTimeout" },
                    obj! { "Variable" => "$.error.Error", "StringEquals" => "States.Timeout" },
                ]),
                "Next" => "StepTimedOut",
            },
            obj! { "Variable" => "$.error.Error", "StringMatches" => "States.*", "Next" => "StepFunctionsError" },
        ]),
        "Default" => "RunFailed",
    });
    top.add("StepTimedOut", failure(
        "A SQL step got no heartbeat within its heartbeat limit (nobody looked after it: its event was lost and the reconciler is off or failing) or ran longer than its timeout. The history's TaskTimedOut event names the step and States.HeartbeatTimeout or States.Timeout.",
        "Step.TimedOut",
        Cause::Text(TIMED_OUT_CAUSE),
    ));
    top.add(
        "StepFunctionsError",
        failure(
            "A States.* error escaped the pipeline; the cause starts with its name.",
            "Run.StepFunctionsError",
            Cause::Path("States.Format('{}: {}', $.error.Error, $.error.Cause)"),
        ),
    );
    top.add("EtlSucceeded", obj! {
        "Type" => "Succeed",
        "Comment" => "Every step succeeded; the output has the run date and each step's result under steps.",
    });
    top.add("RunFailed", obj! {
        "Type" => "Fail",
        "Comment" => "The run's only Fail state: the error and cause of the failing step (or of the states above).",
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
