//! Tracing initialisation: JSON in Lambda (one object per line, what CloudWatch Logs Insights
//! parses), human-readable locally. Level from `RUST_LOG`, default `info`.

use tracing_subscriber::EnvFilter;

/// Whether this process runs inside AWS Lambda.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber; later calls are no-ops (tests may call it many times).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if in_lambda() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .with_ansi(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
