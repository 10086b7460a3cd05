//! AWS SDK configuration, built once per process and shared by every client.

use std::time::Duration;

use aws_config::{timeout::TimeoutConfig, BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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
/// client without TLS at all. The loader is given the client before it loads: its default
/// credentials chain builds an STS client (for web identity tokens) while loading, and with
/// the loader's own client that alone read and parsed every root certificate at each cold
/// start, even in Lambda, where the credentials come from the environment.
pub async fn load_sdk_config() -> SdkConfig {
    configure(aws_config::defaults(BehaviorVersion::latest())).await
}

async fn configure(loader: aws_config::ConfigLoader) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
        .build();
    // The SDK's default: hyper with rustls on aws-lc (aws-smithy-runtime's default_https_client).
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    let sdk = loader
        .timeout_config(timeouts)
        .http_client(FirstUseTls(https))
        .load()
        .await;
    let plain_http = sdk
        .endpoint_url()
        .is_some_and(|url| url.starts_with("http://"));
    if !plain_http {
        return sdk;
    }
    sdk.into_builder()
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build()
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{ConfigLoader, Region};
    use tokio::io::AsyncReadExt;

    /// The first bytes each connection to a loopback listener sends, until the test ends.
    async fn first_bytes() -> (u16, tokio::sync::mpsc::Receiver<[u8; 3]>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut first = [0u8; 3];
                if socket.read_exact(&mut first).await.is_ok() && tx.send(first).await.is_err() {
                    return;
                }
            }
        });
        (port, rx)
    }

    fn loader(endpoint: String) -> ConfigLoader {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "key", "secret", None, None, "test",
            ))
    }

    /// What the first connection of a DynamoDB request to `scheme://127.0.0.1` starts with.
    async fn first_bytes_of_a_request(scheme: &str) -> [u8; 3] {
        let (port, mut rx) = first_bytes().await;
        let sdk = configure(loader(format!("{scheme}://127.0.0.1:{port}"))).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let call = tokio::spawn(async move { dynamodb.list_tables().send().await });
        let first = rx.recv().await.expect("a connection");
        call.abort();
        first
    }

    #[tokio::test]
    async fn an_https_endpoint_is_spoken_to_over_tls() {
        // 0x16 0x03: a TLS handshake record (the ClientHello).
        assert_eq!(&first_bytes_of_a_request("https").await[..2], &[0x16, 0x03]);
    }

    #[tokio::test]
    async fn a_plain_http_endpoint_gets_plain_http() {
        assert_eq!(&first_bytes_of_a_request("http").await, b"POS");
    }
}
