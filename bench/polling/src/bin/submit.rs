//! Polling baseline, submit: prepares the step's script for the run date and starts it as one
//! `BatchExecuteStatement` without an event (`WithEvent` false) and without a task token; the state
//! machine then polls the statement with `polling-status`.

use etl_callback::task::statement_name;
use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use polling_baseline::{env, SubmitInput, Submitted};

struct Submit {
    s3: aws_sdk_s3::Client,
    redshift: aws_sdk_redshiftdata::Client,
    bucket: String,
    prefix: String,
    name_prefix: String,
    database: String,
    cluster: String,
    db_user: Option<String>,
}

impl Submit {
    async fn handle(&self, input: SubmitInput) -> Result<Submitted, Error> {
        let statements =
            polling_baseline::prepared_sql(&self.s3, &self.bucket, &self.prefix, &input).await?;
        let name = statement_name(&self.name_prefix, &input.execution_name, &input.step);
        let out = self
            .redshift
            .batch_execute_statement()
            .set_sqls(Some(statements.clone()))
            .database(&self.database)
            .cluster_identifier(&self.cluster)
            .set_db_user(self.db_user.clone())
            .statement_name(&name)
            .with_event(false)
            .send()
            .await?;
        let id = out.id().ok_or("BatchExecuteStatement returned no id")?;
        tracing::info!(statement_id = id, step = %input.step, "submitted");
        Ok(Submitted {
            statement_id: id.to_owned(),
            statement_name: name,
            step: input.step,
            statements: statements.len(),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let aws = polling_baseline::sdk_config().await;
    let submit = &Submit {
        s3: aws_sdk_s3::Client::new(&aws),
        redshift: aws_sdk_redshiftdata::Client::new(&aws),
        bucket: env("SCRIPTS_BUCKET")?,
        prefix: std::env::var("SCRIPTS_PREFIX").unwrap_or_default(),
        name_prefix: env("STATEMENT_NAME_PREFIX")?,
        database: env("REDSHIFT_DATABASE")?,
        cluster: env("REDSHIFT_CLUSTER_ID")?,
        db_user: env("REDSHIFT_DB_USER").ok(),
    };
    run(service_fn(
        move |event: LambdaEvent<SubmitInput>| async move { submit.handle(event.payload).await },
    ))
    .await
}
