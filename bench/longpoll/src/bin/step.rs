//! Long-polling baseline, one step: on the first invocation, prepares the step's script for the
//! run date and starts it as one `BatchExecuteStatement` (no event, no task token); then
//! `DescribeStatement` with `WaitTimeSeconds` (30 s, less near the invocation's deadline) until the
//! statement is FINISHED, FAILED or ABORTED, or the deadline is `DEADLINE_MARGIN` away. The answer
//! carries the status for the state machine's Choice, which invokes this again on the same
//! statement while it runs.
//!
//! The invocation's time is `INVOCATION_SECONDS` (the template sets the function's `Timeout`)
//! from the moment the invocation arrives, or less when the runtime's deadline comes first. On
//! AWS the deadline is that same instant (arrival + `Timeout`); the local runtime API
//! (`cargo lambda watch`) sends a deadline a few seconds away whatever the function's timeout, so
//! the deadline alone would end every invocation after one short poll there, while moto waits for
//! the whole `Timeout` (+ 5 s) as Lambda does. `LOCAL_IGNORE_RUNTIME_DEADLINE=1` (set by
//! bench/compare.py's local stack only, never in the template) uses `INVOCATION_SECONDS` alone.
//!
//! aws-sdk-redshiftdata 1.126 (Cargo.lock) models `WaitTimeSeconds` and sends it as the member
//! `WaitTimeSeconds` of the JSON body, so the plain SDK call goes over the wire as documented.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etl_callback::task::statement_name;
use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use longpoll_baseline::{is_terminal, next_wait, StepInput, StepOutput};
use polling_baseline::env;

struct Step {
    s3: aws_sdk_s3::Client,
    redshift: aws_sdk_redshiftdata::Client,
    bucket: String,
    prefix: String,
    name_prefix: String,
    database: String,
    cluster: String,
    db_user: Option<String>,
}

impl Step {
    async fn submit(&self, input: &polling_baseline::SubmitInput) -> Result<String, Error> {
        let statements =
            polling_baseline::prepared_sql(&self.s3, &self.bucket, &self.prefix, input).await?;
        let name = statement_name(&self.name_prefix, &input.execution_name, &input.step);
        let out = self
            .redshift
            .batch_execute_statement()
            .set_sqls(Some(statements))
            .database(&self.database)
            .cluster_identifier(&self.cluster)
            .set_db_user(self.db_user.clone())
            .statement_name(&name)
            .with_event(false)
            .send()
            .await?;
        let id = out.id().ok_or("BatchExecuteStatement returned no id")?;
        tracing::info!(statement_id = id, step = %input.step, "submitted");
        Ok(id.to_owned())
    }

    async fn handle(&self, input: StepInput, deadline: SystemTime) -> Result<StepOutput, Error> {
        let (id, submit_calls) = match input.statement_id {
            Some(id) => (id, 0),
            None => (self.submit(&input.submit).await?, 1),
        };
        let mut describe_calls = 0;
        loop {
            let remaining = deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let Some(wait) = next_wait(remaining) else {
                // The Choice invokes the function again on this statement.
                tracing::info!(statement_id = %id, "deadline near, statement still running");
                let out = self.redshift.describe_statement().id(&id).send().await?;
                describe_calls += 1;
                return Ok(output(id, &out, submit_calls, describe_calls));
            };
            let out = self
                .redshift
                .describe_statement()
                .id(&id)
                .wait_time_seconds(wait)
                .send()
                .await?;
            describe_calls += 1;
            let status = out.status().map(|s| s.as_str()).unwrap_or_default();
            if is_terminal(status) {
                return Ok(output(id, &out, submit_calls, describe_calls));
            }
        }
    }
}

fn output(
    id: String,
    out: &aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
    submit_calls: u32,
    describe_calls: u32,
) -> StepOutput {
    StepOutput {
        statement_id: id,
        status: out
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        error: out.error().map(str::to_owned),
        submit_calls,
        describe_calls,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let aws = polling_baseline::sdk_config().await;
    let step = &Step {
        s3: aws_sdk_s3::Client::new(&aws),
        redshift: aws_sdk_redshiftdata::Client::new(&aws),
        bucket: env("SCRIPTS_BUCKET")?,
        prefix: std::env::var("SCRIPTS_PREFIX").unwrap_or_default(),
        name_prefix: env("STATEMENT_NAME_PREFIX")?,
        database: env("REDSHIFT_DATABASE")?,
        cluster: env("REDSHIFT_CLUSTER_ID")?,
        db_user: env("REDSHIFT_DB_USER").ok(),
    };
    let budget = Duration::from_secs(env("INVOCATION_SECONDS")?.parse()?);
    let trust_runtime = std::env::var("LOCAL_IGNORE_RUNTIME_DEADLINE").as_deref() != Ok("1");
    run(service_fn(
        move |event: LambdaEvent<StepInput>| async move {
            let runtime = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            let own = SystemTime::now() + budget;
            let deadline = if trust_runtime { own.min(runtime) } else { own };
            step.handle(event.payload, deadline).await
        },
    ))
    .await
}
