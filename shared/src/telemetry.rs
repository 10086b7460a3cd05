//! Tracing initialisation. In Lambda, the runtime's own set-up
//! (`lambda_runtime::tracing::init_default_subscriber`): it honours
//! Lambda's logging controls, `AWS_LAMBDA_LOG_FORMAT` (`JSON`, which template.yaml sets, gives one
//! object per line for CloudWatch Logs Insights) and `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else
//! `info`). Locally, human-readable lines, level from `RUST_LOG`, default `info`.

use tracing_subscriber::EnvFilter;

/// Whether this process runs inside AWS Lambda.
fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber; later calls are no-ops (tests may call it many times).
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if in_lambda() {
            // Panics if another subscriber is installed; the `Once` and this being the only
            // place that installs one rule that out.
            lambda_runtime::tracing::init_default_subscriber();
        } else {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .try_init();
        }
    });
}
