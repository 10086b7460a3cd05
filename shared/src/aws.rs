//! AWS SDK configuration, built once per process and shared by every client.

use std::time::Duration;

use aws_config::{timeout::TimeoutConfig, BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;

/// Whole-operation limit, retries included: under the shortest function timeout, so a stuck
/// AWS call surfaces as an error the handler can map instead of a Lambda timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// One attempt; the SDK's standard retry policy (3 attempts) retries throttling and 5xx.
pub const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads region, credentials and `AWS_ENDPOINT_URL` from the environment, with explicit
/// timeouts. Call once at start.
///
/// The HTTP client is the SDK's own, set up for a short cold start: TLS (the trusted roots read
/// from the system and parsed) happens at the first request instead of once per client built
/// ([`FirstUseTls`]), and a plain `http://` endpoint (the emulator, `reflector-local`) gets a
/// client without TLS at all.
pub async fn load_sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
        .build();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let plain_http = sdk
        .endpoint_url()
        .is_some_and(|url| url.starts_with("http://"));
    let client = if plain_http {
        aws_smithy_http_client::Builder::new().build_http()
    } else {
        match sdk.http_client() {
            Some(default) => FirstUseTls(default).into_shared(),
            None => return sdk,
        }
    };
    sdk.into_builder().http_client(client).build()
}

/// The SDK's HTTPS client, with its TLS set-up left to the first request.
///
/// The SDK's client builds a complete TLS connector (every trusted root certificate parsed) in
/// `validate_base_client_config`, which runs for each service client constructed, and throws it
/// away: the first request builds its own. A function that constructs three clients paid for
/// four root-store builds before answering anything. This wrapper forwards the connectors
/// (built once per settings and cached by the inner client) and skips that validation step.
#[derive(Debug)]
pub struct FirstUseTls(pub SharedHttpClient);

impl HttpClient for FirstUseTls {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The AWS clients every function may need, all sharing one configuration (and so one HTTP
/// connection pool per client).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        // Emulators (moto) and custom endpoints serve buckets by path, not by virtual host.
        let s3_config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}
