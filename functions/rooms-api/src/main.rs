use std::sync::Arc;

use lambda_http::Error;
use shared::config::Part;
use shared::platform::{PlatformRegistry, RegistryOptions};
use shared::secrets::SsmParameters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::aws::load_sdk_config().await;
    // Parsed once: a bad value stops the cold start with a message naming the variable. The
    // platforms' keys come from SSM in one request, unless set as plain variables.
    let config = Arc::new(
        shared::config::Config::from_env_with_secrets(
            &[
                Part::Whereby,
                Part::Daily,
                Part::Flags,
                Part::Auth,
                Part::Meetings,
            ],
            rooms_api::SECRETS,
            &SsmParameters::new(&sdk),
        )
        .await?,
    );
    let aws = shared::aws::AwsClients::new(&sdk);
    let platforms = PlatformRegistry::from_config(&config, RegistryOptions::default());
    let deps = rooms_api::handler::Deps::from_config(config, &aws, platforms)?;
    let router = rooms_api::handler::router(Arc::new(deps));
    lambda_http::run(shared::http::standalone(router)).await
}
