use completer::{handle, Config};
use etl_callback::complete::Completer;
use etl_callback::diagnostic;
use etl_callback::store::TokenTable;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let completer = Completer {
        table: TokenTable {
            client: aws_sdk_dynamodb::Client::new(&aws),
            table: config.token_table,
            ttl_seconds: config.token_ttl_seconds,
        },
        sfn: aws_sdk_sfn::Client::new(&aws),
        redshift_data: aws_sdk_redshiftdata::Client::new(&aws),
    };
    let completer = &completer;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(completer, event.payload)
            .await
            .map(|handled| serde_json::to_value(handled).expect("Handled always serializes"))
            .map_err(|err| -> Diagnostic {
                tracing::error!(error_type = err.name(), error = %err, "status event not handled");
                diagnostic(err.name(), &err)
            })
        },
    ))
    .await
}
