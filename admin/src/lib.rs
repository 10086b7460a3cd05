//! `reflector-admin` (DESIGN.md section 13): the operator's control plane. Every command
//! returns an [`Output`] (JSON for `--json`, text with tables otherwise) or an [`AdminError`]
//! whose [`AdminError::exit_code`] is 1 when the operation failed and 2 for usage and
//! configuration errors.

pub mod cli;
mod daily;
mod flags;
mod meeting;
mod output;

use std::sync::Arc;

use shared::config::{Config, ConfigError, Part};
use shared::platform::PlatformError;
use shared::store::dynamo::DynamoStores;
use shared::store::StoreError;

pub use output::Output;

use cli::{Cli, Command, DailyCommand, FlagsCommand, MeetingCommand, RoomsCommand};

/// The configuration parts the admin reads: the platforms (webhook and meeting commands), the
/// flags' defaults, and the meeting duration.
pub const PARTS: [Part; 4] = [Part::Whereby, Part::Daily, Part::Flags, Part::Meetings];

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A usage error clap cannot see (an argument's value refused by the command).
    #[error("{0}")]
    Usage(String),
    /// A configuration value is missing or invalid; names the variable.
    #[error("configuration: {0}")]
    Config(String),
    /// The operation was refused or failed (unknown room, platform or store failure).
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Failed(_) => 1,
            AdminError::Usage(_) | AdminError::Config(_) => 2,
        }
    }
}

impl From<ConfigError> for AdminError {
    fn from(e: ConfigError) -> Self {
        AdminError::Config(e.to_string())
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        // The SDK's error context repeats the whole HTTP exchange: keep the service's words.
        let short = text
            .split(" (ServiceError")
            .next()
            .unwrap_or(&text)
            .to_owned();
        if text.contains("ResourceNotFoundException") {
            AdminError::Config(format!(
                "{short}: a table named by ROOMS_TABLE, MEETINGS_TABLE or CONFIG_TABLE does not \
                 exist in this account and region"
            ))
        } else {
            AdminError::Failed(short)
        }
    }
}

impl From<PlatformError> for AdminError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Config { .. } => AdminError::Config(e.to_string()),
            other => AdminError::Failed(other.to_string()),
        }
    }
}

/// What every command may use, built once.
pub struct Ctx {
    pub config: Arc<Config>,
    pub stores: DynamoStores,
    sts: aws_sdk_sts::Client,
    by: Option<String>,
}

impl Ctx {
    /// Clients for `config`'s tables, with the AWS profile and region of the command line
    /// (else the environment's).
    pub async fn new(config: Config, cli: &Cli) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(shared::aws::CONNECT_TIMEOUT)
                    .operation_timeout(shared::aws::OPERATION_TIMEOUT)
                    .operation_attempt_timeout(shared::aws::OPERATION_ATTEMPT_TIMEOUT)
                    .build(),
            );
        if let Some(profile) = &cli.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &cli.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        let aws = shared::aws::AwsClients::new(&sdk);
        Self {
            stores: DynamoStores::new(aws.dynamodb, &config.tables),
            config: Arc::new(config),
            sts: aws_sdk_sts::Client::new(&sdk),
            by: cli.by.clone(),
        }
    }

    /// Who makes a change: `--by`, else the caller's AWS identity (ARN), else `$USER`.
    async fn who(&self) -> String {
        if let Some(by) = &self.by {
            return by.clone();
        }
        match self.sts.get_caller_identity().send().await {
            Ok(id) => match id.arn() {
                Some(arn) => arn.to_owned(),
                None => unverified_user(),
            },
            Err(_) => unverified_user(),
        }
    }
}

fn unverified_user() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user} (unverified)")
}

/// Parses the configuration the functions use (only the parts the admin reads).
pub fn load_config() -> Result<Config, AdminError> {
    Ok(Config::from_env_parts(&PARTS)?)
}

/// Runs one command.
pub async fn run(ctx: &Ctx, command: &Command) -> Result<Output, AdminError> {
    match command {
        Command::Flags(FlagsCommand::Show) => flags::show(ctx).await,
        Command::Flags(FlagsCommand::Set(set)) => flags::set(ctx, set).await,
        Command::Rooms(RoomsCommand::List) => flags::rooms_list(ctx).await,
        Command::Rooms(RoomsCommand::Migrate { names, to }) => {
            flags::rooms_migrate(ctx, names, (*to).into()).await
        }
        Command::Rollback => flags::rollback(ctx).await,
        Command::Daily(DailyCommand::Webhook(w)) => daily::webhook(ctx, w).await,
        Command::Meeting(MeetingCommand::Create { room, platform }) => {
            meeting::create(ctx, room, (*platform).into()).await
        }
        Command::Meeting(MeetingCommand::End { id }) => meeting::end(ctx, id).await,
    }
}
