use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::{Config, Part};
use shared::secrets::SsmParameters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::aws::load_sdk_config().await;
    // The Daily API key from SSM (one request) unless DAILY_API_KEY is set.
    let config = Config::from_env_with_secrets(
        &[Part::Daily, Part::Downloads],
        recording_processor::SECRETS,
        &SsmParameters::new(&sdk),
    )
    .await?;
    let aws = shared::aws::AwsClients::new(&sdk);
    let deps = recording_processor::build(&config, &aws)?;
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline =
                recording_processor::handler::Deadline::from_lambda(event.context.deadline());
            Ok::<_, Error>(
                recording_processor::handler::handle_until(deps, event.payload, Some(deadline))
                    .await,
            )
        },
    ))
    .await
}
