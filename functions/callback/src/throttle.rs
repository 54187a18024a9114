//! The one classification of throttling: which SDK errors mean "the service is busy (or did not
//! answer in time), try again later" rather than "the request failed".
//!
//! An error is throttling when the service answered with one of a [`Throttling`]'s error codes,
//! or, where the caller retries timeouts the same way, when the call timed out or could not be
//! dispatched. A throttling answer the SDK models as its own variant is listed by its code name and
//! also matched on the variant ([`ThrottlingVariants`]): an error built without its metadata (as
//! the tests build them) carries the variant but no code.

use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementError;
use aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementError;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementError;
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultError;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_heartbeat::SendTaskHeartbeatError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The generic throttling code every AWS service may answer with.
pub const THROTTLING_EXCEPTION: &str = "ThrottlingException";

/// Which answers of one service (as one caller treats them) are throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttling {
    /// The error codes that mean throttling.
    pub codes: &'static [&'static str],
    /// Whether a timeout or a dispatch failure counts as throttling too.
    pub timeouts: bool,
}

impl Throttling {
    /// The token table (rendezvous) requests: DynamoDB's throughput and request limits.
    pub const DYNAMODB: Self = Self {
        codes: &[
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            THROTTLING_EXCEPTION,
        ],
        timeouts: true,
    };

    /// The run lock's requests: DynamoDB's limits, and the generic codes the reconciler's Step
    /// Functions calls also treat as throttling.
    pub const RUN_LOCK: Self = Self {
        codes: &[
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            THROTTLING_EXCEPTION,
            "TooManyRequestsException",
        ],
        timeouts: true,
    };

    /// The Data API calls that look at or cancel a statement (`DescribeStatement`,
    /// `CancelStatement`).
    pub const REDSHIFT_DATA: Self = Self {
        codes: &[
            THROTTLING_EXCEPTION,
            "ActiveWaitingRequestsExceededException",
        ],
        timeouts: true,
    };

    /// `BatchExecuteStatement`: the Data API's limits on active statements and sessions. A
    /// timeout is not throttling here (the submitter reports it as a failed request).
    pub const REDSHIFT_DATA_SUBMIT: Self = Self {
        codes: &[
            "ActiveStatementsExceededException",
            "ActiveSessionsExceededException",
            THROTTLING_EXCEPTION,
        ],
        timeouts: false,
    };

    /// The task callbacks (`SendTaskSuccess`, `SendTaskFailure`, `SendTaskHeartbeat`).
    pub const STEP_FUNCTIONS_CALLBACK: Self = Self {
        codes: &[THROTTLING_EXCEPTION],
        timeouts: true,
    };

    /// `DescribeExecution`.
    pub const STEP_FUNCTIONS_DESCRIBE: Self = Self {
        codes: &[THROTTLING_EXCEPTION, "TooManyRequestsException"],
        timeouts: true,
    };

    /// Whether `err` is throttling as this caller treats it.
    pub fn matches<E, R>(&self, err: &SdkError<E, R>) -> bool
    where
        E: ThrottlingVariants,
    {
        match err {
            SdkError::ServiceError(e) => {
                let e = e.err();
                e.is_throttling_variant() || e.code().is_some_and(|code| self.codes.contains(&code))
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => self.timeouts,
            _ => false,
        }
    }
}

/// An operation error and the throttling answers the SDK models as its variants (each also
/// listed by its code in the [`Throttling`] its callers use).
pub trait ThrottlingVariants: ProvideErrorMetadata {
    fn is_throttling_variant(&self) -> bool {
        false
    }
}

macro_rules! dynamodb_limits {
    ($($error:ty),*) => {$(
        impl ThrottlingVariants for $error {
            fn is_throttling_variant(&self) -> bool {
                self.is_provisioned_throughput_exceeded_exception()
                    || self.is_request_limit_exceeded()
            }
        }
    )*};
}

dynamodb_limits!(UpdateItemError, GetItemError, QueryError);

impl ThrottlingVariants for BatchExecuteStatementError {
    fn is_throttling_variant(&self) -> bool {
        self.is_active_statements_exceeded_exception()
            || self.is_active_sessions_exceeded_exception()
    }
}

impl ThrottlingVariants for DescribeStatementError {
    fn is_throttling_variant(&self) -> bool {
        self.is_active_waiting_requests_exceeded_exception()
    }
}

impl ThrottlingVariants for GetStatementResultError {
    fn is_throttling_variant(&self) -> bool {
        self.is_active_waiting_requests_exceeded_exception()
    }
}

impl ThrottlingVariants for CancelStatementError {}
impl ThrottlingVariants for SendTaskSuccessError {}
impl ThrottlingVariants for SendTaskFailureError {}
impl ThrottlingVariants for SendTaskHeartbeatError {}
impl ThrottlingVariants for DescribeExecutionError {}
