//! Polling baseline, status check: one `DescribeStatement` per call, as the original sample's
//! `get_sql_status` action. The `Choice` state loops on anything but FINISHED, FAILED or ABORTED
//! (unlike the original, a FAILED status is returned, not raised, so the Choice sees it).

use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use polling_baseline::{Status, StatusInput};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let aws = polling_baseline::sdk_config().await;
    let redshift = &aws_sdk_redshiftdata::Client::new(&aws);
    run(service_fn(
        move |event: LambdaEvent<StatusInput>| async move {
            let id = event.payload.statement_id;
            let out = redshift.describe_statement().id(&id).send().await?;
            let status = out
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            Ok::<_, Error>(Status {
                statement_id: id,
                status,
                error: out.error().map(str::to_owned),
            })
        },
    ))
    .await
}
