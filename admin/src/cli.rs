//! The command line (clap). Usage errors exit with 2, as clap does by default.

use clap::{Args, Parser, Subcommand, ValueEnum};

use shared::domain::Platform;

/// Operates Reflector's video-platform backend: runtime flags, room moves between Whereby and
/// Daily, rollback, Daily's webhook, and meetings by hand. Configured by the same environment
/// variables as the Lambda functions (table names, DAILY_*, WHEREBY_*, DAILY_MIGRATION_*,
/// DEFAULT_VIDEO_PLATFORM, MEETING_DURATION_HOURS) plus the usual AWS ones.
///
/// Exit codes: 0 done, 1 the operation failed, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "reflector-admin", version)]
pub struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// AWS profile (default: AWS_PROFILE or the default profile).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Who is making a change, for the flags history (default: the caller's AWS identity).
    #[arg(long, global = true, value_name = "NAME")]
    pub by: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The runtime flags that choose each room's platform.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Rooms and the platform of their next meeting.
    #[command(subcommand)]
    Rooms(RoomsCommand),
    /// Turns the migration off: every room's next meeting is on Whereby (active meetings keep
    /// their platform until they end). Prints the rooms that move back.
    Rollback,
    /// Daily.co's account settings.
    #[command(subcommand)]
    Daily(DailyCommand),
    /// Meetings by hand, to try a platform.
    #[command(subcommand)]
    Meeting(MeetingCommand),
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// The current flags, where they come from, and the last changes.
    Show,
    /// Changes the flags (one conditional write, recorded in the history).
    Set(FlagsSet),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct FlagsSet {
    /// The migration's master switch: off puts every room on Whereby.
    #[arg(long, value_name = "on|off")]
    pub migration: Option<Switch>,
    /// The platform of rooms not listed for Daily while the migration is on.
    #[arg(long = "default", value_name = "whereby|daily")]
    pub default_platform: Option<TargetPlatform>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// The platforms an operator moves rooms between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetPlatform {
    Whereby,
    Daily,
}

impl From<TargetPlatform> for Platform {
    fn from(p: TargetPlatform) -> Platform {
        match p {
            TargetPlatform::Whereby => Platform::Whereby,
            TargetPlatform::Daily => Platform::Daily,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RoomsCommand {
    /// Every room: name, id, the platform of its next meeting, its active meeting.
    List,
    /// Lists rooms for Daily (`--to daily`) or takes them off the list (`--to whereby`), by
    /// name. Nothing is changed when a name is unknown.
    Migrate {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[arg(long, value_name = "whereby|daily")]
        to: TargetPlatform,
    },
}

#[derive(Debug, Subcommand)]
pub enum DailyCommand {
    /// Daily's webhook (Daily has no dashboard for it).
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Creates the domain's webhook (`POST /webhooks`); Daily first sends a test request to
    /// the URL, which must answer 200.
    Create {
        /// The daily-webhook function's URL: https://<api>/v1/daily_webhook.
        #[arg(long)]
        url: String,
        /// The base64 HMAC secret (default: 32 random bytes, printed once).
        #[arg(long, value_name = "BASE64")]
        hmac: Option<String>,
        /// Comma-separated event types (default: those this backend handles).
        #[arg(long, value_delimiter = ',', value_name = "TYPES")]
        event_types: Vec<String>,
        /// circuit-breaker (Daily's default: FAILED after 3 failures) or exponential.
        #[arg(long, value_name = "TYPE")]
        retry_type: Option<String>,
    },
    /// The domain's webhooks: uuid, url, state, failedCount, event types.
    List,
    /// Re-activates a webhook (`POST /webhooks/:uuid`), e.g. one Daily set FAILED.
    Rearm {
        /// Which webhook (default: the domain's only one).
        #[arg(long)]
        uuid: Option<String>,
        /// A new URL (default: its current one).
        #[arg(long)]
        url: Option<String>,
    },
    /// Deletes a webhook (`DELETE /webhooks/:uuid`).
    Delete {
        #[arg(long)]
        uuid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MeetingCommand {
    /// Opens a meeting of ROOM on a chosen platform (whatever the flags say) and makes it the
    /// room's active meeting.
    Create {
        #[arg(value_name = "ROOM")]
        room: String,
        #[arg(long, value_name = "whereby|daily|mock")]
        platform: AnyPlatform,
    },
    /// Ends a meeting: marks it inactive and deletes its platform room.
    End {
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnyPlatform {
    Whereby,
    Daily,
    Mock,
}

impl From<AnyPlatform> for Platform {
    fn from(p: AnyPlatform) -> Platform {
        match p {
            AnyPlatform::Whereby => Platform::Whereby,
            AnyPlatform::Daily => Platform::Daily,
            AnyPlatform::Mock => Platform::Mock,
        }
    }
}
