//! `reflector-local`: every function of the product in one process on localhost (DESIGN.md
//! section 9). The HTTP server merges the same axum routers the functions serve in Lambda
//! (through `lambda_http`), the room page's included, so `http://127.0.0.1:3000/<room>` opens
//! a room; an SQS poller plays the event source mapping; a timer plays the schedule.
//!
//! The stack uses the resources its configuration names (`RECORDINGS_QUEUE_URL`,
//! `PIPELINE_QUEUE_URL`, `RECORDINGS_BUCKET`, the table names), creating those that do not
//! exist; unnamed queues get names from [`Options::resource_prefix`].

pub mod config;
pub mod health;
#[cfg(test)]
mod monitoring;
pub mod poller;
pub mod provision;
pub mod routes;
#[cfg(test)]
mod template_checks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use shared::aws::AwsClients;
use shared::config::Config;
use shared::metrics::{Function, Metrics, Registry};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

type BoxError = lambda_http::Error;
pub type ProcessorFn =
    Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, Result<SqsBatchResponse, BoxError>> + Send + Sync>;
pub type SweeperFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// API Gateway HTTP APIs accept payloads up to 10 MB.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Settings of the local stack beyond the product's own configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of the names of the queues the configuration does not name (`<prefix>-recordings`,
    /// ...), as the SAM stack name is in AWS.
    pub resource_prefix: String,
    /// How long a failed recording job waits before redelivery (see [`poller::Poller`]).
    pub retry_delay: Duration,
    /// Whether to run the SQS poller and the sweeper timer (tests may drive them directly).
    pub background: bool,
    /// Where the HTTP server listens (`LOCAL_LISTEN_ADDR` in `reflector-local`; any free port
    /// by default, for tests).
    pub listen_addr: SocketAddr,
    /// How often the sweeper runs (`LOCAL_SWEEP_SECONDS`); also each run's deadline.
    pub sweep_interval: Duration,
    /// How long an API request may take, as the function's timeout bounds it in Lambda (where
    /// the invocation's own deadline counts instead).
    pub request_budget: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resource_prefix: "reflector".into(),
            retry_delay: Duration::from_secs(5),
            background: true,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sweep_interval: Duration::from_secs(config::DEFAULT_SWEEP_SECONDS),
            request_budget: rooms_api::handler::DEFAULT_REQUEST_BUDGET,
        }
    }
}

/// Everything the running stack shares between requests.
pub struct Stack {
    pub config: Arc<Config>,
    pub aws: AwsClients,
    pub queues: provision::Queues,
    pub processor: ProcessorFn,
    pub sweeper: SweeperFn,
    /// Every function's metrics, aggregated (`GET /metrics`); in Lambda they are EMF lines.
    pub metrics: Arc<Registry>,
}

/// A started stack: its address, and a handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub stack: Arc<Stack>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the server and the background tasks and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("provisioning the local AWS resources failed: {0}")]
    Provision(#[from] provision::ProvisionError),
    #[error("configuration: {0}")]
    Config(#[from] shared::config::ConfigError),
    #[error("recording processor: {0}")]
    Processor(#[from] recording_processor::BuildError),
    #[error("creating the local tables failed: {0}")]
    Tables(#[from] shared::provision::ProvisionError),
    #[error("the rooms API cannot start: {0}")]
    RoomsApi(#[from] rooms_api::handler::DepsError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
}

/// Creates the missing tables, queues and bucket (those the configuration names, or
/// prefix-named queues where it names none), then serves HTTP on `options.listen_addr`
/// and starts the poller and the sweeper timer.
pub async fn start(
    mut config: Config,
    aws: AwsClients,
    options: Options,
) -> Result<Running, StartError> {
    let created = shared::provision::ensure_tables(&aws.dynamodb, &config.tables).await?;
    if !created.is_empty() {
        info!(tables = ?created, "created tables");
    }
    let queues = provision::ensure_queues(
        &aws.sqs,
        &options.resource_prefix,
        &provision::ConfiguredQueues {
            recordings: config.recordings_queue_url.clone(),
            pipeline: config.pipeline_queue_url.clone(),
        },
    )
    .await?;
    if provision::ensure_bucket(&aws.s3, &config.recordings_bucket).await? {
        info!(bucket = %config.recordings_bucket, "created recordings bucket");
    }
    // The senders (webhooks, processor) and the poller use the same queues.
    config.recordings_queue_url = Some(queues.recordings.clone());
    config.pipeline_queue_url = Some(queues.pipeline.clone());
    let config = Arc::new(config);

    let platforms =
        shared::platform::PlatformRegistry::from_config(&config, registry_options(&config));
    let metrics = Arc::new(Registry::default());
    let metrics_of = |function| Metrics::new(function, metrics.clone());
    let functions = axum::Router::new()
        .merge(rooms_api::handler::router(Arc::new(
            rooms_api::handler::Deps {
                metrics: metrics_of(Function::RoomsApi),
                request_budget: options.request_budget,
                ..rooms_api::handler::Deps::from_config(config.clone(), &aws, platforms)?
            },
        )))
        .merge(daily_webhook::handler::router(Arc::new(
            daily_webhook::handler::Deps {
                metrics: metrics_of(Function::DailyWebhook),
                ..daily_webhook::handler::Deps::from_config(&config, &aws)?
            },
        )))
        .merge(whereby_webhook::handler::router(Arc::new(
            whereby_webhook::handler::Deps {
                metrics: metrics_of(Function::WherebyWebhook),
                ..whereby_webhook::handler::Deps::from_config(&config, &aws)
            },
        )))
        // `/{room_name}` matches one segment only, and axum prefers a literal segment over a
        // parameter, so `/healthz` and every `/v1/...` route still win over the page.
        .merge(room_page::router());

    let stack = Arc::new(Stack {
        processor: {
            let deps = Arc::new(recording_processor::handler::Deps {
                metrics: metrics_of(Function::RecordingProcessor),
                ..recording_processor::build(&config, &aws)?
            });
            Arc::new(move |event| {
                let deps = deps.clone();
                Box::pin(
                    async move { Ok(recording_processor::handler::handle(&deps, event).await) },
                )
            })
        },
        sweeper: {
            let deps = Arc::new(meeting_sweeper::handler::Deps {
                metrics: metrics_of(Function::MeetingSweeper),
                ..meeting_sweeper::handler::Deps::from_aws(
                    config.clone(),
                    &aws,
                    registry_options(&config),
                )?
            });
            let every = options.sweep_interval;
            Arc::new(move || {
                let deps = deps.clone();
                Box::pin(async move {
                    // Like the Lambda, a run stops before the next one is due.
                    let deadline = std::time::Instant::now() + every;
                    let summary =
                        meeting_sweeper::handler::run(&deps, chrono::Utc::now(), deadline).await;
                    if summary.errors.is_empty() {
                        Ok(())
                    } else {
                        Err(summary.errors.join("; ").into())
                    }
                })
            })
        },
        config: config.clone(),
        aws: aws.clone(),
        queues: queues.clone(),
        metrics,
    });

    let listener = tokio::net::TcpListener::bind(options.listen_addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: options.listen_addr,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: options.listen_addr,
        reason: e.to_string(),
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let app = axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(healthz).with_state(stack.clone()),
        )
        .route(
            "/metrics",
            axum::routing::get(metrics_summary).with_state(stack.clone()),
        )
        .merge(functions)
        // API Gateway answers 404 for other methods too, but the allowed ones are more useful
        // locally.
        .method_not_allowed_fallback(|| async {
            plain(405, serde_json::json!({"detail": "Method Not Allowed"}))
        })
        .fallback(|| async { plain(404, serde_json::json!({"detail": "Not Found"})) })
        .layer(axum::middleware::from_fn(within_api_gateway_limit))
        .layer(axum::middleware::from_fn(invocation_span));
    let mut rx = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            error!(error = %e, "HTTP server failed");
        }
    });
    let mut tasks = vec![server];
    if options.background {
        let queue_arn = queue_arn(&aws.sqs, &queues.recordings).await;
        let poller = poller::Poller {
            sqs: aws.sqs.clone(),
            queue_url: queues.recordings.clone(),
            queue_arn,
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            processor: stack.processor.clone(),
            retry_delay: options.retry_delay,
        };
        tasks.push(tokio::spawn(poller.run(shutdown_rx.clone())));
        tasks.push(tokio::spawn(sweep_timer(
            stack.sweeper.clone(),
            options.sweep_interval,
            shutdown_rx.clone(),
        )));
    }
    info!(%addr, "reflector-local listening");
    Ok(Running {
        addr,
        stack,
        shutdown: shutdown_tx,
        tasks,
    })
}

/// The mock platform may be selected locally (`DEFAULT_VIDEO_PLATFORM=mock`), and with no
/// platform credentials and no explicit platform choice it stands in for every platform, so a
/// new user can create a room and a meeting at once.
pub fn registry_options(config: &Config) -> shared::platform::RegistryOptions {
    shared::platform::RegistryOptions {
        allow_mock: true,
        mock_fallback: !config.has_platform_credentials() && !config.default_platform_explicit,
        ..Default::default()
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .cloned()
        })
        .unwrap_or_default()
}

async fn sweep_timer(sweeper: SweeperFn, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = sweeper().await {
            warn!(error = %e, "meeting sweeper run failed");
        }
    }
}

fn plain(status: u16, body: serde_json::Value) -> axum::response::Response {
    let status =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

async fn healthz(State(stack): State<Arc<Stack>>) -> axum::response::Response {
    let (status, body) = health::check(&stack).await;
    plain(status, body)
}

#[derive(serde::Deserialize)]
struct MetricsQuery {
    format: Option<String>,
}

/// The metrics every function recorded since start: Prometheus text, or with `?format=json`
/// (or `Accept: application/json`) a JSON summary with per-metric totals.
async fn metrics_summary(
    State(stack): State<Arc<Stack>>,
    query: axum::extract::Query<MetricsQuery>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    let wants_json = match query.format.as_deref() {
        Some("json") => true,
        Some("prometheus") | Some("text") => false,
        Some(other) => {
            return plain(
                400,
                serde_json::json!({"detail": format!("unknown format {other:?}: use json or prometheus")}),
            )
        }
        None => headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json")),
    };
    if wants_json {
        plain(200, stack.metrics.to_json())
    } else {
        (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            stack.metrics.to_prometheus(),
        )
            .into_response()
    }
}

/// One span per request with a fresh request id, as lambda_runtime opens one per invocation,
/// so local logs read like Lambda's.
async fn invocation_span(request: Request, next: Next) -> axum::response::Response {
    let span = tracing::info_span!(
        "Lambda runtime invoke",
        requestId = %uuid::Uuid::new_v4()
    );
    tracing::Instrument::instrument(next.run(request), span).await
}

/// Buffers the body up to API Gateway's payload limit, answering 413 past it as API Gateway
/// does, so the functions see a whole body as in Lambda.
async fn within_api_gateway_limit(request: Request, next: Next) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => plain(413, serde_json::json!({"detail": "Request body too large"})),
    }
}
