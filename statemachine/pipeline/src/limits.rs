//! Whether a pipeline fits one execution: Step Functions' quota of 25,000 history events per
//! execution and of 1 MB (1,048,576 bytes) per state machine definition, both counted for the
//! worst case the generated policies allow.

use crate::asl::{DYNAMODB_RETRY, LOCK_WAIT, STEP_LAMBDA, STEP_LOCK_WAIT, STEP_THROTTLE};

/// Step Functions' quota on one execution's history (Standard workflows).
pub const HISTORY_EVENT_QUOTA: usize = 25_000;
/// Step Functions' quota on a state machine definition, in bytes.
pub const DEFINITION_QUOTA_BYTES: usize = 1_048_576;

/// A SQL Task that succeeds on its last attempt: TaskStateEntered, TaskScheduled, TaskStarted,
/// TaskSubmitted, TaskSucceeded, TaskStateExited; and every retried attempt before it (the
/// throttling, Lambda and run lock Retry objects, all their attempts): TaskScheduled,
/// TaskStarted, TaskSubmitted, TaskFailed. Heartbeats add no events. (Each redrive of a failed
/// step adds its events again; a history past 25,000 events cannot be redriven.)
pub const EVENTS_PER_STEP: usize = 6
    + (STEP_THROTTLE.attempts as usize
        + STEP_LAMBDA.attempts as usize
        + STEP_LOCK_WAIT.attempts as usize)
        * 4;
/// ParallelStateEntered, ParallelStateStarted, ParallelStateSucceeded, ParallelStateExited.
pub const EVENTS_PER_PARALLEL: usize = 4;
/// Everything but the steps and their Parallels, on the longest way through: ExecutionStarted and
/// its end; ReadInput, CheckInput, DefaultRunDate, Settings, a failure Pass state and one more
/// (entered + exited each; an upper bound); AcquireRunLock with every retry (entered, exited, and Scheduled,
/// Started, Succeeded/Failed per attempt); the Pipeline Parallel; ReleaseRunLock with every
/// retry; RunFailed (entered).
pub const EVENTS_FIXED: usize = 2
    + 6 * 2
    + 2
    + (1 + LOCK_WAIT.attempts as usize + DYNAMODB_RETRY.attempts as usize) * 3
    + EVENTS_PER_PARALLEL
    + 2
    + (1 + DYNAMODB_RETRY.attempts as usize) * 3
    + 1;

/// The placeholders CloudFormation substitutes, with the longest value each can take: the
/// definition Step Functions checks is the substituted one.
pub const SUBSTITUTIONS: &[(&str, usize)] = &[
    // arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function: + a 64-character name
    ("${SubmitterFunctionArn}", 140),
    ("${RunLockTableName}", 255),
    ("${RunLockName}", 64),
    ("${RunConcurrency}", 2),
    ("${StepHeartbeatSeconds}", 5),
    ("${StepTimeoutSeconds}", 5),
];

/// The worst-case history of one execution.
pub fn worst_case_events(steps: usize, parallels: usize) -> usize {
    EVENTS_FIXED + steps * EVENTS_PER_STEP + parallels * EVENTS_PER_PARALLEL
}

/// The definition's size once deployed, every placeholder at its longest value.
pub fn deployed_bytes(asl: &str) -> usize {
    let mut bytes = asl.len();
    for (placeholder, longest) in SUBSTITUTIONS {
        let count = asl.matches(placeholder).count();
        bytes = bytes + count * longest - count * placeholder.len();
    }
    bytes
}
