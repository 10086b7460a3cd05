//! The rooms API (DESIGN.md section 6): rooms CRUD and lookup, meeting get-or-create, lookup,
//! join (Daily meeting tokens), deactivation, manual Daily recording start, and consent, in the
//! paths, JSON shapes and status codes of the original Reflector API.
//!
//! [`ROUTES`] declares every route once; [`router`] builds the axum router from it, which
//! `lambda_http` serves in Lambda and `reflector-local` merges into its server. A new route is
//! one line there and one handler function taking what it needs as extractors.
//!
//! Checks run in FastAPI's order: credentials (401, the [`Caller`] extractor, always first),
//! then the request's own validity (413 in the [`Payload`] extractor, always last; then 422 in
//! the handler), then the stored state (404, 400). No handler fails with anything but an
//! [`ApiError`], which maps every failure a client can cause to a 4xx and a failing dependency
//! to a 5xx, each with a `{"detail"}` body, in one place (its `IntoResponse`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, State};
use axum::routing::on;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::request::Parts;
use http::Method;
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;
use tracing::field::Empty;
use tracing::{error, info, instrument, warn, Span};

use shared::aws::AwsClients;
use shared::config::{Config, Flags};
use shared::domain::{
    Consent, Meeting, Platform, RecordingKind, RecordingTrigger, RecordingType, Room, RoomMode,
    RoomName,
};
use shared::flags::{CachedFlags, FlagSource, StaticFlags};
use shared::http::{detail, json_response, Route};
use shared::meeting_open::{open_meeting, OpenError, Opened};
use shared::metrics::{Function, Metric, Metrics};
use shared::platform::daily::token::{join_url, TokenRequest};
use shared::platform::daily::{recording_instance_id, RecordingStart};
use shared::platform::{select_platform, PlatformError, PlatformRegistry};
use shared::retry::Transient;
use shared::store::dynamo::DynamoStores;
use shared::store::{
    conflict, ConsentStore, MeetingStore, RoomCursor, RoomPatch, RoomStore, StoreError,
};

use crate::auth::{AuthError, Authenticator, UserId};
use crate::daily::DailyApi;
use crate::validate::{self, Fields, Invalid};

/// Room bodies are a few hundred bytes; anything near this is not a room.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Free-text fields (Zulip stream and topic) are bounded so a room item stays small.
pub const MAX_TEXT_LEN: usize = 1000;
/// Ids in paths are uuids or platform ids; longer ones cannot exist (and DynamoDB refuses keys
/// over 2 KB, which must not turn into a 5xx).
const MAX_ID_LEN: usize = 200;
const DEFAULT_PAGE_SIZE: u32 = 50;
/// The request budget without a Lambda deadline: the function's timeout in template.yaml.
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(10);
/// Kept between the end of the invocation and the moment a request still running is cut off
/// with a 504: the time to write the answer and hand it to the runtime.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);
const MAX_PAGE_SIZE: u32 = 100;
/// How many rooms a page number may pass over (page 11 of 100, page 21 of 50).
const MAX_LISTING_OFFSET: u32 = 1000;

/// Everything the handler needs, built once per process.
pub struct Deps {
    pub config: Arc<Config>,
    pub rooms: Arc<dyn RoomStore>,
    pub meetings: Arc<dyn MeetingStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub platforms: Arc<PlatformRegistry>,
    /// The runtime flags that choose a room's platform (stored, cached; `config.flags` are
    /// their defaults).
    pub flags: Arc<dyn FlagSource>,
    /// Daily's own operations (join tokens, recording starts); `None` when Daily is not
    /// configured (or the mock stands in for it).
    pub daily: Option<Arc<dyn DailyApi>>,
    pub auth: Authenticator,
    pub clock: fn() -> DateTime<Utc>,
    pub metrics: Metrics,
    /// How long a request may take when its invocation carries no deadline of its own (the
    /// local stack); in Lambda the invocation's deadline counts. See [`within_deadline`].
    pub request_budget: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
}

impl Deps {
    /// Deps over the given stores and platforms, with `config.flags` as fixed flags (see
    /// [`Self::with_flags`]); fails when the auth settings are unusable.
    pub fn new(
        config: Arc<Config>,
        rooms: Arc<dyn RoomStore>,
        meetings: Arc<dyn MeetingStore>,
        consents: Arc<dyn ConsentStore>,
        platforms: Arc<PlatformRegistry>,
    ) -> Result<Self, DepsError> {
        Ok(Self {
            auth: Authenticator::from_config(&config.auth)?,
            daily: platforms.daily_client().map(|d| d as Arc<dyn DailyApi>),
            flags: Arc::new(StaticFlags(config.flags.clone())),
            config,
            rooms,
            meetings,
            consents,
            platforms,
            clock: Utc::now,
            metrics: Metrics::standard(Function::RoomsApi),
            request_budget: DEFAULT_REQUEST_BUDGET,
        })
    }

    /// These deps reading the flags from `flags`.
    pub fn with_flags(mut self, flags: Arc<dyn FlagSource>) -> Self {
        self.flags = flags;
        self
    }

    /// These deps with `daily` as the Daily client (tests, or a client built by hand).
    pub fn with_daily(mut self, daily: Arc<dyn DailyApi>) -> Self {
        self.daily = Some(daily);
        self
    }

    /// Whether `user` may manage `room`'s meetings (deactivate, start recordings): anyone when
    /// there are no accounts (`AUTH_BACKEND=none`), else the signed-in owner only.
    fn may_manage(&self, user: &UserId, room: Option<&Room>) -> bool {
        match self.auth {
            Authenticator::None => true,
            Authenticator::Jwt { .. } => room.is_some_and(|r| owns(user, r)),
        }
    }

    /// With accounts (`AUTH_BACKEND=jwt`), what changes rooms or ends meetings needs a
    /// signed-in caller: 401 for anonymous ones, before anything is read. Without accounts
    /// everyone is anonymous and passes, as in the original.
    fn require_user(&self, user: &UserId) -> Result<(), ApiError> {
        match self.auth {
            Authenticator::Jwt { .. } if user.is_none() => Err(ApiError::NotAuthenticated),
            _ => Ok(()),
        }
    }

    /// Whether `user` sees `room`'s host URL: with accounts, its signed-in owner only (an
    /// anonymous caller hosts nothing, not even a room made before accounts); without them,
    /// the original's rule (the caller's user id, none, equals the room's).
    fn hosts(&self, user: &UserId, room: &Room) -> bool {
        match self.auth {
            Authenticator::None => *user == room.user_id,
            Authenticator::Jwt { .. } => owns(user, room),
        }
    }

    /// Deps over the DynamoDB tables named in `config`, the stored flags read through a cache
    /// of `FLAGS_CACHE_SECONDS`; used by `main` and the local stack.
    pub fn from_config(
        config: Arc<Config>,
        aws: &AwsClients,
        platforms: PlatformRegistry,
    ) -> Result<Self, DepsError> {
        let stores = DynamoStores::new(aws.dynamodb.clone(), &config.tables);
        let flags = CachedFlags::new(
            Arc::new(stores.flags),
            config.flags.clone(),
            config.flags_cache,
        );
        Ok(Self::new(
            config,
            Arc::new(stores.rooms),
            Arc::new(stores.meetings),
            Arc::new(stores.consents),
            Arc::new(platforms),
        )?
        .with_flags(Arc::new(flags)))
    }
}

/// Every way a request can fail, mapped to HTTP in one place (its `IntoResponse`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("invalid credentials: {0}")]
    BadCredentials(#[from] AuthError),
    #[error("request body is over the limit of {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("validation failed")]
    Invalid(Invalid),
    #[error("room not found")]
    RoomNotFound,
    #[error("meeting not found")]
    MeetingNotFound,
    #[error("meeting is not active")]
    MeetingNotActive,
    #[error("meeting is not an active Daily meeting")]
    NotActiveDailyMeeting,
    #[error("only the room owner may do this")]
    NotOwner,
    #[error("Daily could not {action}: {source}")]
    Daily {
        action: &'static str,
        source: PlatformError,
    },
    #[error("room name is taken")]
    NameTaken,
    #[error("the room changed concurrently")]
    Concurrent,
    #[error("{platform} could not {action}: {source}")]
    Platform {
        platform: Platform,
        action: &'static str,
        source: PlatformError,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The request's deadline came first (the invocation would have been killed), or the
    /// meeting's store write did not finish by it.
    #[error("the request ran out of time: {0}")]
    TimedOut(&'static str),
}

/// A platform failure as the caller sees it: the status (504 when the platform did not answer
/// in time, else 502) and a detail naming the platform and what it could not do. Never the
/// platform's answer, our error chain or a setting's name: those are for the log.
fn platform_failure(platform: Platform, action: &str, source: &PlatformError) -> (u16, String) {
    let name = platform.display_name();
    match source {
        PlatformError::Config { .. } | PlatformError::UnknownPlatform(_) => (
            502,
            format!("{name} could not {action}: this service is not set up for {name}"),
        ),
        e if e.timed_out() => (
            504,
            format!("{name} did not answer in time to {action}; try again"),
        ),
        _ => (502, format!("{name} could not {action}; try again")),
    }
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> Self {
        ApiError::Invalid(i)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        match &self {
            ApiError::Store(s) => error!(error = %s, "store failure"),
            ApiError::Platform {
                platform,
                action,
                source,
            } => {
                let (status, detail) = platform_failure(*platform, action, source);
                warn!(%platform, action, status, detail, error = %source, "platform failure")
            }
            ApiError::Daily { action, source } => {
                let (status, detail) = platform_failure(Platform::Daily, action, source);
                warn!(platform = %Platform::Daily, action, status, detail, error = %source,
                    "platform failure")
            }
            ApiError::BadCredentials(reason) => info!(%reason, "credentials refused"),
            ApiError::TimedOut(what) => warn!(what, "request ran out of time"),
            _ => {}
        }
        let response = match self {
            ApiError::NotAuthenticated => detail(401, "Not authenticated"),
            ApiError::BadCredentials(_) => detail(401, "Invalid authentication"),
            ApiError::TooLarge => detail(413, "Request body too large"),
            ApiError::Invalid(Invalid(errors)) => json_response(422, &json!({ "detail": errors })),
            ApiError::RoomNotFound => detail(404, "Room not found"),
            ApiError::MeetingNotFound => detail(404, "Meeting not found"),
            ApiError::MeetingNotActive => detail(400, "Meeting is not active"),
            ApiError::NotActiveDailyMeeting => {
                detail(400, "Meeting is not an active Daily meeting")
            }
            ApiError::NotOwner => detail(403, "Only the room owner can do this"),
            ApiError::Daily { action, source } => {
                let (status, text) = platform_failure(Platform::Daily, action, &source);
                detail(status, &text)
            }
            ApiError::NameTaken => detail(400, "Room name is not unique"),
            ApiError::Concurrent => detail(409, "The room was changed concurrently, try again"),
            ApiError::Platform {
                platform,
                action,
                source,
            } => {
                let (status, text) = platform_failure(platform, action, &source);
                detail(status, &text)
            }
            ApiError::TimedOut(_) => detail(504, "The request took too long; try again"),
            ApiError::Store(e) if e.is_transient() => {
                detail(503, "The database is unavailable, try again shortly")
            }
            ApiError::Store(_) => detail(500, "Internal Server Error"),
        };
        response.into_response()
    }
}

type Reply = Result<Response<Body>, ApiError>;

/// Every route of the function, as in template.yaml's HttpApi events (a test of the local
/// crate checks both ways).
pub const ROUTES: &[Route<Arc<Deps>>] = &[
    Route {
        method: Method::GET,
        path: "/v1/rooms",
        handler: |m| on(m, list_rooms),
    },
    Route {
        method: Method::POST,
        path: "/v1/rooms",
        handler: |m| on(m, create_room),
    },
    Route {
        method: Method::GET,
        path: "/v1/rooms/{room_id}",
        handler: |m| on(m, get_room),
    },
    Route {
        method: Method::GET,
        path: "/v1/rooms/name/{room_name}",
        handler: |m| on(m, get_room_by_name),
    },
    Route {
        method: Method::PATCH,
        path: "/v1/rooms/{room_id}",
        handler: |m| on(m, update_room),
    },
    Route {
        method: Method::DELETE,
        path: "/v1/rooms/{room_id}",
        handler: |m| on(m, delete_room),
    },
    Route {
        method: Method::POST,
        path: "/v1/rooms/{room_name}/meeting",
        handler: |m| on(m, room_meeting),
    },
    Route {
        method: Method::GET,
        path: "/v1/rooms/{room_name}/meetings/active",
        handler: |m| on(m, active_meetings),
    },
    Route {
        method: Method::GET,
        path: "/v1/rooms/{room_name}/meetings/{meeting_id}",
        handler: |m| on(m, get_meeting),
    },
    Route {
        method: Method::POST,
        path: "/v1/rooms/{room_name}/meetings/{meeting_id}/join",
        handler: |m| on(m, join_meeting),
    },
    Route {
        method: Method::POST,
        path: "/v1/meetings/{meeting_id}/consent",
        handler: |m| on(m, meeting_consent),
    },
    Route {
        method: Method::PATCH,
        path: "/v1/meetings/{meeting_id}/deactivate",
        handler: |m| on(m, deactivate_meeting),
    },
    Route {
        method: Method::POST,
        path: "/v1/meetings/{meeting_id}/recordings/start",
        handler: |m| on(m, start_recording),
    },
    Route {
        method: Method::GET,
        path: "/v1/openapi.json",
        handler: |m| on(m, openapi),
    },
];

/// The OpenAPI 3.1 document of the HTTP API (every `/v1` route of every function; a test of the
/// local crate checks it against the route tables both ways, and `scripts/api-fuzz` checks the
/// answers against it).
pub const OPENAPI: &str = include_str!("../openapi/openapi.json");

async fn openapi() -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::Text(OPENAPI.to_owned()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The function's routes over `deps`, each request bounded by [`within_deadline`].
pub fn router(deps: Arc<Deps>) -> axum::Router {
    shared::http::router(ROUTES, deps.clone())
        .layer(axum::middleware::from_fn_with_state(deps, within_deadline))
}

/// Runs a request so that its caller always gets an answer before the invocation ends.
///
/// The invocation ends at the Lambda context's deadline (in the request's extensions, put there
/// by `lambda_http`), or [`Deps::request_budget`] from now without one (the local stack). The
/// request is cut off [`ANSWER_MARGIN`] before that with a 504 `{"detail"}`; everything in it
/// runs under [`shared::deadline`] a little earlier again, so the platform calls (which watch
/// that deadline) and the meeting creation's clean-up finish first with their own answer.
async fn within_deadline(
    State(deps): State<Arc<Deps>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use lambda_http::RequestExt;
    use tokio::time::Instant;

    let now = Instant::now();
    let ends_at = match request.lambda_context_ref() {
        Some(context) => Instant::from_std(shared::deadline::before_lambda_deadline_now(
            context.deadline(),
            Duration::ZERO,
        )),
        None => now + deps.request_budget,
    };
    let cut_off_at = ends_at.checked_sub(ANSWER_MARGIN).unwrap_or(now);
    // Work that does not watch the deadline may overrun it by `GRACE` (see
    // `deadline::enforce`): that must still end before the cut-off.
    let deadline = cut_off_at
        .checked_sub(shared::deadline::GRACE * 2)
        .unwrap_or(now);
    let run = shared::deadline::within(deadline, next.run(request));
    match tokio::time::timeout_at(cut_off_at, run).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::TimedOut(
            "the request's deadline passed",
        )),
    }
}

/// Who is calling, from the request's headers (see [`crate::auth`]). Taken first by every
/// handler, so bad credentials are a 401 whatever else is wrong with the request.
pub struct Caller(pub UserId);

impl FromRequestParts<Arc<Deps>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        Ok(Caller(deps.auth.identify(&parts.headers)?))
    }
}

/// The request body within [`MAX_BODY_BYTES`] (else 413), with its content type. Taken last by
/// every handler, whether or not it reads the body, so the limit holds on every route.
pub struct Payload {
    content_type: Option<String>,
    bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Payload {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            // A content type that is not even text cannot be JSON.
            .map(|v| v.to_str().unwrap_or("application/octet-stream").to_owned());
        // The body is in memory already (Lambda's event, or the local server's buffer), so
        // exceeding the limit is the only way reading it fails.
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        Ok(Payload {
            content_type,
            bytes,
        })
    }
}

impl Payload {
    fn object(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        Ok(validate::json_object(
            self.content_type.as_deref(),
            &self.bytes,
        )?)
    }
}

/// A path parameter, or `missing` when it cannot be decoded (percent-encoding of bytes that
/// are not UTF-8): no room or meeting has such an id or name.
fn path_param(
    path: Result<Path<String>, PathRejection>,
    missing: ApiError,
) -> Result<String, ApiError> {
    path.map(|Path(value)| value).map_err(|_| missing)
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A room as the API returns it.
#[derive(Debug, Serialize)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub user_id: Option<String>,
    pub created_at: String,
    pub zulip_auto_post: bool,
    pub zulip_stream: String,
    pub zulip_topic: String,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_shared: bool,
    pub platform: Platform,
    pub skip_consent: bool,
}

impl RoomView {
    /// The room as the API shows it: `platform` is the one its next meeting would use under
    /// `flags` (an active meeting keeps its own until it ends).
    fn new(r: &Room, flags: &Flags) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.to_string(),
            user_id: r.user_id.clone(),
            created_at: timestamp(&r.created_at),
            zulip_auto_post: r.zulip_auto_post,
            zulip_stream: r.zulip_stream.clone(),
            zulip_topic: r.zulip_topic.clone(),
            is_locked: r.is_locked,
            room_mode: r.room_mode,
            recording_type: r.recording_type,
            recording_trigger: r.recording_trigger,
            is_shared: r.is_shared,
            platform: select_platform(&r.id, flags),
            skip_consent: r.skip_consent,
        }
    }
}

/// A meeting as the API returns it: `platform` and `recording_type` let the web client pick
/// the Daily or the Whereby component.
#[derive(Debug, Serialize)]
pub struct MeetingView {
    pub id: String,
    pub room_name: String,
    pub room_url: String,
    pub host_room_url: String,
    pub start_date: String,
    pub end_date: String,
    pub recording_type: RecordingType,
    pub platform: Platform,
    pub num_clients: i64,
    pub is_active: bool,
}

impl MeetingView {
    /// `host_room_url` only for a caller who hosts the room ([`Deps::hosts`]), else "".
    fn for_caller(deps: &Deps, m: &Meeting, room: &Room, user: &UserId) -> Self {
        Self {
            id: m.id.clone(),
            room_name: m.room_name.clone(),
            room_url: m.room_url.clone(),
            host_room_url: if deps.hosts(user, room) {
                m.host_room_url.clone()
            } else {
                String::new()
            },
            start_date: timestamp(&m.start_date),
            end_date: timestamp(&m.end_date),
            recording_type: m.recording_type,
            platform: m.platform,
            num_clients: m.num_clients,
            is_active: m.is_active,
        }
    }
}

#[instrument(skip_all)]
async fn list_rooms(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    RawQuery(query): RawQuery,
    _: Payload,
) -> Reply {
    if user.is_none() && !deps.config.public_mode {
        return Err(ApiError::NotAuthenticated);
    }
    // The first value of a repeated parameter counts, as with API Gateway's parameters.
    let first = |name: &str| {
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (raw_page, raw_size, raw_cursor) = (first("page"), first("size"), first("cursor"));
    let mut errors = Vec::new();
    let size = validate::query_int(
        "size",
        raw_size.as_deref(),
        DEFAULT_PAGE_SIZE,
        1,
        Some(MAX_PAGE_SIZE),
        &mut errors,
    );
    // A page number is served by passing over the rooms before it, so how deep it may go is
    // bounded; deeper listings follow `next_cursor`.
    let max_page = MAX_LISTING_OFFSET / size + 1;
    let page = validate::query_int(
        "page",
        raw_page.as_deref(),
        1,
        1,
        Some(max_page),
        &mut errors,
    );
    let cursor = match raw_cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => {
            let parsed = RoomCursor::decode(text);
            if parsed.is_none() {
                errors.push(validate::invalid_cursor(text));
            }
            parsed
        }
    };
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let (from, skip, page) = match cursor {
        Some(c) => (c, 0, None),
        None => (RoomCursor::start(), (page - 1) * size, Some(page)),
    };
    // Independent reads: together, a cold flags cache adds no wait to the listing.
    let (listed, flags) = tokio::join!(
        deps.rooms.list_for_user(user.as_deref(), &from, skip, size),
        deps.flags.current()
    );
    let (listed, flags) = (listed?, flags?);
    let items: Vec<RoomView> = listed
        .items
        .iter()
        .map(|r| RoomView::new(r, &flags))
        .collect();
    Ok(json_response(
        200,
        &RoomPage {
            items,
            total: listed.total,
            page,
            size,
            pages: listed.total.map(|t| t.div_ceil(u64::from(size))),
            next_cursor: listed.next.map(|c| c.encode()),
        },
    ))
}

/// One page of the room listing: fastapi-pagination's `Page` (`total` and `pages` are
/// nullable there too) plus `next_cursor`, where the next page starts.
#[derive(Debug, Serialize)]
pub struct RoomPage {
    pub items: Vec<RoomView>,
    /// Known when this listing read every room (it started at the first and this is the last
    /// page); counting them otherwise would read them all.
    pub total: Option<u64>,
    /// `null` when the page was asked by cursor.
    pub page: Option<u32>,
    pub size: u32,
    pub pages: Option<u64>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The room fields shared by create (with defaults) and update (partial).
struct RoomFields {
    name: Option<RoomName>,
    zulip_auto_post: Option<bool>,
    zulip_stream: Option<String>,
    zulip_topic: Option<String>,
    is_locked: Option<bool>,
    room_mode: Option<RoomMode>,
    recording_type: Option<RecordingType>,
    recording_trigger: Option<RecordingTrigger>,
    is_shared: Option<bool>,
    skip_consent: Option<bool>,
}

fn room_fields(
    map: &serde_json::Map<String, serde_json::Value>,
    name_required: bool,
) -> Result<RoomFields, Invalid> {
    let mut f = Fields::new(map);
    let name = if name_required {
        f.required("name", validate::room_name)
    } else {
        f.optional("name", validate::room_name)
    };
    let text = validate::bounded_string(MAX_TEXT_LEN);
    let fields = RoomFields {
        name,
        zulip_auto_post: f.optional("zulip_auto_post", validate::boolean),
        zulip_stream: f.optional("zulip_stream", &text),
        zulip_topic: f.optional("zulip_topic", &text),
        is_locked: f.optional("is_locked", validate::boolean),
        room_mode: f.optional("room_mode", validate::one_of::<RoomMode>(RoomMode::KNOWN)),
        recording_type: f.optional(
            "recording_type",
            validate::one_of::<RecordingType>(RecordingType::KNOWN),
        ),
        recording_trigger: f.optional(
            "recording_trigger",
            validate::one_of::<RecordingTrigger>(RecordingTrigger::KNOWN),
        ),
        is_shared: f.optional("is_shared", validate::boolean),
        skip_consent: f.optional("skip_consent", validate::boolean),
    };
    f.finish()?;
    Ok(fields)
}

/// A failed room write in the API's terms.
fn room_conflict(e: StoreError) -> ApiError {
    match e {
        e if e.is_conflict(conflict::ROOM_NAME_TAKEN) => ApiError::NameTaken,
        e if e.is_conflict(conflict::CHANGED_CONCURRENTLY) => ApiError::Concurrent,
        StoreError::NotFound { .. } => ApiError::RoomNotFound,
        other => ApiError::Store(other),
    }
}

/// A read-modify-write that lost to a concurrent write is retried this many times in all.
const UPDATE_ATTEMPTS: u32 = 3;

#[instrument(skip_all)]
async fn create_room(State(deps): State<Arc<Deps>>, Caller(user): Caller, body: Payload) -> Reply {
    deps.require_user(&user)?;
    let fields = room_fields(&body.object()?, true)?;
    let Some(name) = fields.name else {
        // `room_fields` reports a missing name; this keeps the types honest.
        return Err(Invalid(vec![]).into());
    };
    let id = uuid::Uuid::new_v4().to_string();
    let flags = deps.flags.current().await?;
    let platform = select_platform(&id, &flags);
    let room = Room {
        skip_consent: fields.skip_consent.unwrap_or(false),
        platform,
        name,
        user_id: user,
        created_at: (deps.clock)(),
        zulip_auto_post: fields.zulip_auto_post.unwrap_or(false),
        zulip_stream: fields.zulip_stream.unwrap_or_default(),
        zulip_topic: fields.zulip_topic.unwrap_or_default(),
        is_locked: fields.is_locked.unwrap_or(false),
        room_mode: fields.room_mode.unwrap_or_default(),
        recording_type: fields.recording_type.unwrap_or_default(),
        recording_trigger: fields.recording_trigger.unwrap_or_default(),
        is_shared: fields.is_shared.unwrap_or(false),
        id,
    };
    deps.rooms.create(&room).await.map_err(room_conflict)?;
    info!(room_id = %room.id, room_name = %room.name, %platform, "room created");
    Ok(json_response(200, &RoomView::new(&room, &flags)))
}

fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN
}

#[instrument(skip_all, fields(room_id = Empty))]
async fn update_room(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    room_id: Result<Path<String>, PathRejection>,
    body: Payload,
) -> Reply {
    deps.require_user(&user)?;
    let f = room_fields(&body.object()?, false)?;
    let room_id = path_param(room_id, ApiError::RoomNotFound)?;
    Span::current().record("room_id", room_id.as_str());
    if !usable_id(&room_id) {
        return Err(ApiError::RoomNotFound);
    }
    let patch = RoomPatch {
        name: f.name,
        zulip_auto_post: f.zulip_auto_post,
        zulip_stream: f.zulip_stream,
        zulip_topic: f.zulip_topic,
        is_locked: f.is_locked,
        room_mode: f.room_mode,
        recording_type: f.recording_type,
        recording_trigger: f.recording_trigger,
        is_shared: f.is_shared,
        skip_consent: f.skip_consent,
    };
    let mut attempt = 1;
    let room = loop {
        match deps.rooms.update(&room_id, user.as_deref(), &patch).await {
            Err(e)
                if e.is_conflict(conflict::CHANGED_CONCURRENTLY) && attempt < UPDATE_ATTEMPTS =>
            {
                attempt += 1;
            }
            other => break other.map_err(room_conflict)?,
        }
    };
    let flags = deps.flags.current().await?;
    Ok(json_response(200, &RoomView::new(&room, &flags)))
}

#[instrument(skip_all, fields(room_id = Empty))]
async fn delete_room(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    room_id: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    deps.require_user(&user)?;
    let room_id = path_param(room_id, ApiError::RoomNotFound)?;
    Span::current().record("room_id", room_id.as_str());
    if !usable_id(&room_id) {
        return Err(ApiError::RoomNotFound);
    }
    deps.rooms
        .delete(&room_id, user.as_deref())
        .await
        .map_err(room_conflict)?;
    info!("room deleted");
    Ok(json_response(200, &json!({ "status": "ok" })))
}

/// What a failed meeting creation could not do, in the caller's words.
const CREATE_ROOM: &str = "create the room";

/// Get-or-create the room's active meeting. Concurrent callers race on one conditional write
/// (`claim_active`); each loser deletes the platform room it made and answers with the winner's
/// meeting, so every caller gets the same meeting and no platform room is left behind.
#[instrument(skip_all, fields(room_name = Empty, meeting_id = Empty))]
async fn room_meeting(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    room_name: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    let room_name = path_param(room_name, ApiError::RoomNotFound)?;
    Span::current().record("room_name", room_name.as_str());
    let Ok(name) = RoomName::parse(&room_name) else {
        return Err(ApiError::RoomNotFound);
    };
    let room = deps
        .rooms
        .get_by_name(name.as_str())
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    let now = (deps.clock)();
    if let Some(active) = deps.meetings.get_active_for_room(&room.id, now).await? {
        return Ok(json_response(
            200,
            &MeetingView::for_caller(&deps, &active, &room, &user),
        ));
    }

    // Read only when a meeting is made: an active meeting keeps its platform until it ends.
    let selected = select_platform(&room.id, &deps.flags.current().await?);
    let client = deps.platforms.get(selected).map_err(|source| {
        deps.metrics.count(Metric::PlatformError, Some(selected));
        ApiError::Platform {
            platform: selected,
            action: CREATE_ROOM,
            source,
        }
    })?;
    let platform = client.platform();
    let opened = open_meeting(
        client.as_ref(),
        deps.meetings.as_ref(),
        &room,
        user.clone(),
        now,
        deps.config.meeting_duration,
        &|p| deps.metrics.count(Metric::PlatformRoomLeftBehind, Some(p)),
    )
    .await
    .map_err(|e| match e {
        OpenError::Platform { source, .. } => {
            deps.metrics.count(Metric::PlatformError, Some(platform));
            ApiError::Platform {
                platform,
                action: CREATE_ROOM,
                source,
            }
        }
        OpenError::Store(e) => ApiError::Store(e),
        OpenError::StoreTimedOut => ApiError::TimedOut("storing the meeting"),
    })?;
    if let Opened::Created(meeting) = &opened {
        Span::current().record("meeting_id", meeting.id.as_str());
        deps.metrics
            .count(Metric::MeetingCreated, Some(meeting.platform));
    }
    Ok(json_response(
        200,
        &MeetingView::for_caller(&deps, opened.meeting(), &room, &user),
    ))
}

#[instrument(skip_all, fields(meeting_id = Empty))]
async fn meeting_consent(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    meeting_id: Result<Path<String>, PathRejection>,
    body: Payload,
) -> Reply {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let consent_given = f.required("consent_given", validate::boolean);
    f.finish()?;
    let consent_given = consent_given.unwrap_or(false);
    let meeting_id = path_param(meeting_id, ApiError::MeetingNotFound)?;
    Span::current().record("meeting_id", meeting_id.as_str());
    if !usable_id(&meeting_id) {
        return Err(ApiError::MeetingNotFound);
    }
    if deps.meetings.get(&meeting_id).await?.is_none() {
        return Err(ApiError::MeetingNotFound);
    }
    let stored = deps
        .consents
        .upsert(&Consent {
            id: uuid::Uuid::new_v4().to_string(),
            meeting_id: meeting_id.clone(),
            user_id: user,
            consent_given,
            consent_timestamp: (deps.clock)(),
        })
        .await?;
    Ok(json_response(
        200,
        &json!({ "status": "success", "consent_id": stored.id }),
    ))
}

/// Whether `user` is the signed-in owner of `room` (anonymous callers own nothing here, even
/// anonymous rooms: this grants Daily owner rights and meeting management).
fn owns(user: &UserId, room: &Room) -> bool {
    user.is_some() && *user == room.user_id
}

/// A room id from the path, or 404.
fn room_id_param(room_id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let room_id = path_param(room_id, ApiError::RoomNotFound)?;
    Span::current().record("room_id", room_id.as_str());
    if !usable_id(&room_id) {
        return Err(ApiError::RoomNotFound);
    }
    Ok(room_id)
}

/// A meeting id from the path, or 404.
fn meeting_id_param(meeting_id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let meeting_id = path_param(meeting_id, ApiError::MeetingNotFound)?;
    Span::current().record("meeting_id", meeting_id.as_str());
    if !usable_id(&meeting_id) {
        return Err(ApiError::MeetingNotFound);
    }
    Ok(meeting_id)
}

/// The room named `room_name` (one store read), or 404.
async fn room_named(deps: &Deps, room_name: &str) -> Result<Room, ApiError> {
    Span::current().record("room_name", room_name);
    let Ok(name) = RoomName::parse(room_name) else {
        return Err(ApiError::RoomNotFound);
    };
    deps.rooms
        .get_by_name(name.as_str())
        .await?
        .ok_or(ApiError::RoomNotFound)
}

/// The room named in the path and its meeting `meeting_id` (two store reads, made at once: they
/// are independent, so a join waits for one round trip instead of two); 404 when either is
/// unknown or the meeting is another room's, the room's 404 first.
async fn room_and_meeting(
    deps: &Deps,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Room, Meeting), ApiError> {
    let Ok(Path((room_name, meeting_id))) = path else {
        return Err(ApiError::RoomNotFound);
    };
    Span::current().record("meeting_id", meeting_id.as_str());
    let meeting = async {
        if usable_id(&meeting_id) {
            deps.meetings.get(&meeting_id).await
        } else {
            Ok(None)
        }
    };
    let (room, meeting) = tokio::join!(room_named(deps, &room_name), meeting);
    let room = room?;
    match meeting? {
        Some(m) if m.room_id == room.id => Ok((room, m)),
        _ => Err(ApiError::MeetingNotFound),
    }
}

/// The room by id: its owner, anyone for a shared room, and anyone without accounts
/// (`AUTH_BACKEND=none`); 404 for everyone else, as for an unknown id.
#[instrument(skip_all, fields(room_id = Empty))]
async fn get_room(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    room_id: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    let room_id = room_id_param(room_id)?;
    let room = deps
        .rooms
        .get(&room_id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    let visible =
        matches!(deps.auth, Authenticator::None) || room.is_shared || user == room.user_id;
    if !visible {
        return Err(ApiError::RoomNotFound);
    }
    let flags = deps.flags.current().await?;
    Ok(json_response(200, &RoomView::new(&room, &flags)))
}

/// The room by name: what the room page loads before it joins.
#[instrument(skip_all, fields(room_name = Empty))]
async fn get_room_by_name(
    State(deps): State<Arc<Deps>>,
    Caller(_user): Caller,
    room_name: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    let room_name = path_param(room_name, ApiError::RoomNotFound)?;
    let (room, flags) = tokio::join!(room_named(&deps, &room_name), deps.flags.current());
    let (room, flags) = (room?, flags?);
    Ok(json_response(200, &RoomView::new(&room, &flags)))
}

/// The room's active meetings (at most one: the room's active slot), as a list.
#[instrument(skip_all, fields(room_name = Empty))]
async fn active_meetings(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    room_name: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    let room_name = path_param(room_name, ApiError::RoomNotFound)?;
    let room = room_named(&deps, &room_name).await?;
    let active = deps
        .meetings
        .get_active_for_room(&room.id, (deps.clock)())
        .await?;
    let views: Vec<MeetingView> = active
        .iter()
        .map(|m| MeetingView::for_caller(&deps, m, &room, &user))
        .collect();
    Ok(json_response(200, &views))
}

#[instrument(skip_all, fields(room_name = Empty, meeting_id = Empty))]
async fn get_meeting(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    _: Payload,
) -> Reply {
    let (room, meeting) = room_and_meeting(&deps, path).await?;
    Ok(json_response(
        200,
        &MeetingView::for_caller(&deps, &meeting, &room, &user),
    ))
}

/// The meeting with a `room_url` that admits the caller. On Daily that is the room URL with a
/// self-signed meeting token (no request to Daily once the domain id is known): `o` for the
/// signed-in owner, `ud` the caller's id, expiring at the meeting's end. Whereby and the mock
/// admit anyone with the URL, so it is returned as stored.
#[instrument(skip_all, fields(room_name = Empty, meeting_id = Empty))]
async fn join_meeting(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    _: Payload,
) -> Reply {
    let (room, meeting) = room_and_meeting(&deps, path).await?;
    let now = (deps.clock)();
    if !meeting.is_active || meeting.end_date <= now {
        return Err(ApiError::MeetingNotActive);
    }
    let mut view = MeetingView::for_caller(&deps, &meeting, &room, &user);
    if meeting.platform == Platform::Daily {
        let daily = deps.daily.as_ref().ok_or_else(|| ApiError::Daily {
            action: "admit the participant",
            source: daily_not_configured(),
        })?;
        let request = TokenRequest {
            room_name: &meeting.room_name,
            user_id: user.as_deref(),
            is_owner: owns(&user, &room),
            recording_type: meeting.recording_type,
            skip_consent: room.skip_consent,
            expires_at: meeting.end_date,
        };
        let token = daily
            .meeting_token(&request, now)
            .await
            .map_err(|source| ApiError::Daily {
                action: "admit the participant",
                source,
            })?;
        view.room_url = join_url(&meeting.room_url, &token);
    }
    Ok(json_response(200, &view))
}

fn daily_not_configured() -> PlatformError {
    PlatformError::Config {
        platform: Platform::Daily,
        var: "DAILY_API_KEY",
        reason: "is not set".into(),
    }
}

/// The meeting's room, read only when [`Deps::may_manage`] needs it (with accounts).
async fn room_for_management(deps: &Deps, meeting: &Meeting) -> Result<Option<Room>, ApiError> {
    match deps.auth {
        Authenticator::None => Ok(None),
        Authenticator::Jwt { .. } => Ok(deps.rooms.get(&meeting.room_id).await?),
    }
}

/// Ends the meeting for the API: the next get-or-create of its room makes a new one. The
/// platform room is left to expire at its end date, as the sweeper leaves it.
#[instrument(skip_all, fields(meeting_id = Empty))]
async fn deactivate_meeting(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    meeting_id: Result<Path<String>, PathRejection>,
    _: Payload,
) -> Reply {
    deps.require_user(&user)?;
    let meeting_id = meeting_id_param(meeting_id)?;
    let meeting = deps
        .meetings
        .get(&meeting_id)
        .await?
        .ok_or(ApiError::MeetingNotFound)?;
    let room = room_for_management(&deps, &meeting).await?;
    if !deps.may_manage(&user, room.as_ref()) {
        return Err(ApiError::NotOwner);
    }
    deps.meetings.deactivate(&meeting.id).await?;
    info!("meeting deactivated");
    Ok(json_response(200, &json!({ "status": "success" })))
}

/// Starts `type`'s Daily recording of the meeting now: the manual fallback for the
/// server-started recordings (`shared::recording_start`), under the same deterministic
/// `instanceId`, so both paths converge on one recording per kind. A kind already marked
/// started answers `already_active` without asking Daily.
#[instrument(skip_all, fields(meeting_id = Empty))]
async fn start_recording(
    State(deps): State<Arc<Deps>>,
    Caller(user): Caller,
    meeting_id: Result<Path<String>, PathRejection>,
    body: Payload,
) -> Reply {
    deps.require_user(&user)?;
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let kind = f.required(
        "type",
        validate::one_of::<RecordingKind>(RecordingKind::KNOWN),
    );
    f.finish()?;
    let Some(kind) = kind else {
        // `required` reports a missing type; this keeps the types honest.
        return Err(Invalid(vec![]).into());
    };
    let meeting_id = meeting_id_param(meeting_id)?;
    let meeting = deps
        .meetings
        .get(&meeting_id)
        .await?
        .ok_or(ApiError::MeetingNotFound)?;
    let room = room_for_management(&deps, &meeting).await?;
    if !deps.may_manage(&user, room.as_ref()) {
        return Err(ApiError::NotOwner);
    }
    if meeting.platform != Platform::Daily
        || !meeting.is_active
        || meeting.end_date <= (deps.clock)()
    {
        return Err(ApiError::NotActiveDailyMeeting);
    }
    if meeting.recordings_started.contains(&kind) {
        return Ok(json_response(200, &json!({ "status": "already_active" })));
    }
    let daily = deps.daily.as_ref().ok_or_else(|| ApiError::Daily {
        action: "start the recording",
        source: daily_not_configured(),
    })?;
    let instance_id = recording_instance_id(&meeting.id, kind);
    let answer = daily
        .start_recording(&meeting.room_name, kind, instance_id)
        .await
        .map_err(|source| {
            deps.metrics
                .count(Metric::PlatformError, Some(Platform::Daily));
            ApiError::Daily {
                action: "start the recording",
                source,
            }
        })?;
    // The recording runs whatever happens to the marker; without it a later start asks Daily
    // again under the same instance id, which starts nothing new.
    if let Err(e) = deps
        .meetings
        .mark_recording_started(&meeting.id, kind)
        .await
    {
        warn!(%kind, error = %e, "could not mark the recording started");
    }
    info!(%kind, %instance_id, ?answer, "manual Daily recording start");
    let status = match answer {
        RecordingStart::Started => {
            deps.metrics
                .count(Metric::RecordingStarted, Some(Platform::Daily));
            "ok"
        }
        RecordingStart::AlreadyActive => "already_active",
    };
    Ok(json_response(200, &json!({ "status": status })))
}
