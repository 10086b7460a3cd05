use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

use meeting_sweeper::handler::{handle, Deps};
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::{Config, Part};
use shared::platform::RegistryOptions;
use shared::secrets::SsmParameters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = load_sdk_config().await;
    // Both API keys in one SSM request (none when they are set as plain variables).
    let config = Arc::new(
        Config::from_env_with_secrets(
            &[Part::Whereby, Part::Daily, Part::Sweeper],
            meeting_sweeper::SECRETS,
            &SsmParameters::new(&sdk),
        )
        .await?,
    );
    let clients = AwsClients::new(&sdk);
    let deps = Deps::from_aws(config, &clients, RegistryOptions::default())?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| {
        handle(deps, event)
    }))
    .await
}
