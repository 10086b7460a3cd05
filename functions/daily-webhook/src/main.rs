use std::sync::Arc;

use daily_webhook::handler::{router, Deps};
use lambda_http::Error;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::{Config, Part};
use shared::secrets::SsmParameters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = load_sdk_config().await;
    // Parsed once: a bad value stops the cold start with a message naming the variable. The
    // webhook secret comes from SSM (one request) unless DAILY_WEBHOOK_SECRET is set.
    let config = Config::from_env_with_secrets(
        &[Part::Daily, Part::Webhooks],
        daily_webhook::SECRETS,
        &SsmParameters::new(&sdk),
    )
    .await?;
    let clients = AwsClients::new(&sdk);
    let deps = Deps::from_config(&config, &clients)?;
    lambda_http::run(shared::http::standalone(router(Arc::new(deps)))).await
}
