//! AWS SDK configuration, built once per process and shared by every client.

use std::time::Duration;

use aws_config::{timeout::TimeoutConfig, BehaviorVersion, SdkConfig};

/// Whole-operation limit, retries included: under the shortest function timeout, so a stuck
/// AWS call surfaces as an error the handler can map instead of a Lambda timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// One attempt; the SDK's standard retry policy (3 attempts) retries throttling and 5xx.
pub const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads region, credentials and `AWS_ENDPOINT_URL` from the environment, with explicit
/// timeouts. Call once at start.
pub async fn load_sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
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
