//! The rooms API (DESIGN.md section 6): rooms CRUD, meeting get-or-create and consent, in the
//! paths, JSON shapes and status codes of the original Reflector API.
//!
//! Checks run in FastAPI's order: credentials (401), then the request's own validity (413,
//! 422), then the stored state (404, 400). [`handle`] never returns `Err`: every failure a
//! client can cause is a 4xx, and a failing dependency is a 5xx with a `{"detail"}` body.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use tracing::{error, info, instrument, warn};

use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::{
    Consent, Meeting, Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName,
};
use shared::http::{detail, json_response};
use shared::platform::{select_platform, PlatformError, PlatformRegistry, VideoPlatform};
use shared::store::dynamo::DynamoStores;
use shared::store::{
    conflict, Claim, ConsentStore, MeetingStore, RoomPatch, RoomStore, StoreError,
};

use crate::auth::{AuthError, Authenticator, UserId};
use crate::validate::{self, Fields, Invalid};

/// Room bodies are a few hundred bytes; anything near this is not a room.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Free-text fields (Zulip stream and topic) are bounded so a room item stays small.
pub const MAX_TEXT_LEN: usize = 1000;
/// Ids in paths are uuids or platform ids; longer ones cannot exist (and DynamoDB refuses keys
/// over 2 KB, which must not turn into a 5xx).
const MAX_ID_LEN: usize = 200;
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 100;

/// Everything the handler needs, built once per process.
pub struct Deps {
    pub config: Arc<Config>,
    pub rooms: Arc<dyn RoomStore>,
    pub meetings: Arc<dyn MeetingStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub platforms: Arc<PlatformRegistry>,
    pub auth: Authenticator,
    pub clock: fn() -> DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
}

impl Deps {
    /// Deps over the given stores and platforms; fails when the auth settings are unusable.
    pub fn new(
        config: Arc<Config>,
        rooms: Arc<dyn RoomStore>,
        meetings: Arc<dyn MeetingStore>,
        consents: Arc<dyn ConsentStore>,
        platforms: Arc<PlatformRegistry>,
    ) -> Result<Self, DepsError> {
        Ok(Self {
            auth: Authenticator::from_config(&config.auth)?,
            config,
            rooms,
            meetings,
            consents,
            platforms,
            clock: Utc::now,
        })
    }

    /// Deps over the DynamoDB tables named in `config`; used by `main` and the local stack.
    pub fn from_config(
        config: Arc<Config>,
        aws: &AwsClients,
        platforms: PlatformRegistry,
    ) -> Result<Self, DepsError> {
        let stores = DynamoStores::new(aws.dynamodb.clone(), &config.tables);
        Self::new(
            config,
            Arc::new(stores.rooms),
            Arc::new(stores.meetings),
            Arc::new(stores.consents),
            Arc::new(platforms),
        )
    }
}

/// Every way a request can fail, mapped to HTTP in one place ([`ApiError::into_response`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("invalid credentials: {0}")]
    BadCredentials(#[from] AuthError),
    #[error("request body of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("validation failed")]
    Invalid(Invalid),
    #[error("no such route")]
    NoRoute,
    #[error("room not found")]
    RoomNotFound,
    #[error("meeting not found")]
    MeetingNotFound,
    #[error("room name is taken")]
    NameTaken,
    #[error("the room changed concurrently")]
    Concurrent,
    #[error("{platform} failed: {source}")]
    Platform {
        platform: Platform,
        source: PlatformError,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> Self {
        ApiError::Invalid(i)
    }
}

impl ApiError {
    fn into_response(self) -> Response<Body> {
        match self {
            ApiError::NotAuthenticated => detail(401, "Not authenticated"),
            ApiError::BadCredentials(_) => detail(401, "Invalid authentication"),
            ApiError::TooLarge(_) => detail(413, "Request body too large"),
            ApiError::Invalid(Invalid(errors)) => json_response(422, &json!({ "detail": errors })),
            ApiError::NoRoute => detail(404, "Not Found"),
            ApiError::RoomNotFound => detail(404, "Room not found"),
            ApiError::MeetingNotFound => detail(404, "Meeting not found"),
            ApiError::NameTaken => detail(400, "Room name is not unique"),
            ApiError::Concurrent => detail(409, "The room was changed concurrently, try again"),
            ApiError::Platform { platform, source } => detail(
                502,
                &format!("Could not create a meeting on {platform}: {source}"),
            ),
            ApiError::Store(e) if e.is_retryable() => {
                detail(503, "The database is unavailable, try again shortly")
            }
            ApiError::Store(_) => detail(500, "Internal Server Error"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ListRooms,
    CreateRoom,
    UpdateRoom,
    DeleteRoom,
    RoomMeeting,
    MeetingConsent,
}

/// API Gateway has matched the route already; its path parameters tell which one.
fn route_of(request: &Request) -> Option<(Route, String)> {
    let params = request.path_parameters();
    let method = request.method();
    let param = |name: &str| params.first(name).map(str::to_owned);
    if let Some(id) = param("meeting_id") {
        return (method == Method::POST).then_some((Route::MeetingConsent, id));
    }
    if let Some(name) = param("room_name") {
        return (method == Method::POST).then_some((Route::RoomMeeting, name));
    }
    if let Some(id) = param("room_id") {
        return match *method {
            Method::PATCH => Some((Route::UpdateRoom, id)),
            Method::DELETE => Some((Route::DeleteRoom, id)),
            _ => None,
        };
    }
    match *method {
        Method::GET => Some((Route::ListRooms, String::new())),
        Method::POST => Some((Route::CreateRoom, String::new())),
        _ => None,
    }
}

/// The Lambda entry point. Never `Err`: see the module documentation.
#[instrument(skip_all, fields(method = %request.method(), path = %request.uri().path()))]
pub async fn handle(deps: &Deps, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let response = match route(deps, &request).await {
        Ok(r) => r,
        Err(e) => {
            match &e {
                ApiError::Store(s) => error!(error = %s, "store failure"),
                ApiError::Platform { platform, source } => {
                    warn!(%platform, error = %source, "platform failure")
                }
                ApiError::BadCredentials(reason) => info!(%reason, "credentials refused"),
                _ => {}
            }
            e.into_response()
        }
    };
    Ok(response)
}

async fn route(deps: &Deps, request: &Request) -> Result<Response<Body>, ApiError> {
    let (route, param) = route_of(request).ok_or(ApiError::NoRoute)?;
    let user = deps.auth.identify(request.headers())?;
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(body.len()));
    }
    match route {
        Route::ListRooms => list_rooms(deps, request, user).await,
        Route::CreateRoom => create_room(deps, request, user).await,
        Route::UpdateRoom => update_room(deps, request, user, &param).await,
        Route::DeleteRoom => delete_room(deps, user, &param).await,
        Route::RoomMeeting => room_meeting(deps, user, &param).await,
        Route::MeetingConsent => meeting_consent(deps, request, user, &param).await,
    }
}

fn content_type(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        // A content type that is not even text cannot be JSON.
        .map(|v| v.to_str().unwrap_or("application/octet-stream"))
}

fn body_object(request: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    Ok(validate::json_object(
        content_type(request),
        request.body().as_ref(),
    )?)
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
}

impl From<&Room> for RoomView {
    fn from(r: &Room) -> Self {
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
            platform: r.platform,
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
    /// `host_room_url` only for the room's owner (the original's rule: the caller's user id,
    /// possibly none, equals the room's).
    fn for_caller(m: &Meeting, room: &Room, user: &UserId) -> Self {
        Self {
            id: m.id.clone(),
            room_name: m.room_name.clone(),
            room_url: m.room_url.clone(),
            host_room_url: if *user == room.user_id {
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
    deps: &Deps,
    request: &Request,
    user: UserId,
) -> Result<Response<Body>, ApiError> {
    if user.is_none() && !deps.config.public_mode {
        return Err(ApiError::NotAuthenticated);
    }
    let query = request.query_string_parameters();
    let mut errors = Vec::new();
    let page = validate::query_int("page", query.first("page"), 1, 1, None, &mut errors);
    let size = validate::query_int(
        "size",
        query.first("size"),
        DEFAULT_PAGE_SIZE,
        1,
        Some(MAX_PAGE_SIZE),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let listed = deps
        .rooms
        .list_for_user(user.as_deref(), page, size)
        .await?;
    let items: Vec<RoomView> = listed.items.iter().map(RoomView::from).collect();
    Ok(json_response(
        200,
        &json!({
            "items": items,
            "total": listed.total,
            "page": page,
            "size": size,
            "pages": listed.total.div_ceil(u64::from(size)),
        }),
    ))
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
async fn create_room(
    deps: &Deps,
    request: &Request,
    user: UserId,
) -> Result<Response<Body>, ApiError> {
    let fields = room_fields(&body_object(request)?, true)?;
    let Some(name) = fields.name else {
        // `room_fields` reports a missing name; this keeps the types honest.
        return Err(Invalid(vec![]).into());
    };
    let id = uuid::Uuid::new_v4().to_string();
    let platform = select_platform(&id, &deps.config.flags);
    let room = Room {
        skip_consent: false,
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
    Ok(json_response(200, &RoomView::from(&room)))
}

fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN
}

#[instrument(skip_all, fields(room_id = %room_id))]
async fn update_room(
    deps: &Deps,
    request: &Request,
    user: UserId,
    room_id: &str,
) -> Result<Response<Body>, ApiError> {
    let f = room_fields(&body_object(request)?, false)?;
    if !usable_id(room_id) {
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
        skip_consent: None,
    };
    let mut attempt = 1;
    let room = loop {
        match deps.rooms.update(room_id, user.as_deref(), &patch).await {
            Err(e)
                if e.is_conflict(conflict::CHANGED_CONCURRENTLY) && attempt < UPDATE_ATTEMPTS =>
            {
                attempt += 1;
            }
            other => break other.map_err(room_conflict)?,
        }
    };
    Ok(json_response(200, &RoomView::from(&room)))
}

#[instrument(skip_all, fields(room_id = %room_id))]
async fn delete_room(deps: &Deps, user: UserId, room_id: &str) -> Result<Response<Body>, ApiError> {
    if !usable_id(room_id) {
        return Err(ApiError::RoomNotFound);
    }
    deps.rooms
        .delete(room_id, user.as_deref())
        .await
        .map_err(room_conflict)?;
    info!("room deleted");
    Ok(json_response(200, &json!({ "status": "ok" })))
}

/// Get-or-create the room's active meeting. Concurrent callers race on one conditional write
/// (`claim_active`); each loser deletes the platform room it made and answers with the winner's
/// meeting, so every caller gets the same meeting and no platform room is left behind.
#[instrument(skip_all, fields(room_name = %room_name))]
async fn room_meeting(
    deps: &Deps,
    user: UserId,
    room_name: &str,
) -> Result<Response<Body>, ApiError> {
    let Ok(name) = RoomName::parse(room_name) else {
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
            &MeetingView::for_caller(&active, &room, &user),
        ));
    }

    let selected = select_platform(&room.id, &deps.config.flags);
    let client = deps
        .platforms
        .get(selected)
        .map_err(|source| ApiError::Platform {
            platform: selected,
            source,
        })?;
    let platform = client.platform();
    let end_date = now
        + chrono::Duration::from_std(deps.config.meeting_duration)
            .unwrap_or_else(|_| chrono::Duration::hours(8));
    // Daily (and the mock) name rooms `<prefix>-<second>`, and Daily deletes by name: racing
    // callers within one second would otherwise collide, and a loser would delete the winner's
    // room. A random part keeps every caller's room its own. Whereby names rooms itself.
    let prefix = match platform {
        Platform::Whereby => room.name.to_string(),
        _ => {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            format!("{}-{}", room.name, &tag[..6])
        }
    };
    let created = client
        .create_meeting(&prefix, end_date, &room)
        .await
        .map_err(|source| ApiError::Platform { platform, source })?;

    let meeting = Meeting {
        recordings_started: Default::default(),
        id: created.meeting_id.clone(),
        room_id: room.id.clone(),
        room_name: created.room_name.clone(),
        room_url: created.room_url.clone(),
        host_room_url: created.host_room_url.clone(),
        start_date: now,
        end_date,
        user_id: user.clone(),
        is_locked: room.is_locked,
        room_mode: room.room_mode,
        recording_type: room.recording_type,
        recording_trigger: room.recording_trigger,
        num_clients: 0,
        is_active: true,
        platform: created.platform,
        extra_data: created.extra_data.clone(),
    };
    let claimed = deps.meetings.claim_active(&meeting, now).await;
    let winner = match claimed {
        Ok(Claim::Won) => {
            info!(meeting_id = %meeting.id, %platform, "meeting created");
            meeting
        }
        Ok(Claim::Lost(winner)) => {
            info!(winner = %winner.id, "another request created the meeting first");
            discard_platform_room(client.as_ref(), &meeting).await;
            winner
        }
        Err(e) => {
            discard_platform_room(client.as_ref(), &meeting).await;
            return Err(e.into());
        }
    };
    Ok(json_response(
        200,
        &MeetingView::for_caller(&winner, &room, &user),
    ))
}

/// Deletes a platform room that will not be used. A failure is logged: the room expires on its
/// own at `end_date` on both platforms.
async fn discard_platform_room(client: &dyn VideoPlatform, meeting: &Meeting) {
    if let Err(e) = client
        .delete_room(&meeting.room_name, Some(&meeting.id))
        .await
    {
        warn!(room_name = %meeting.room_name, platform = %meeting.platform, error = %e,
            "could not delete an unused platform room; it expires at its end date");
    }
}

#[instrument(skip_all, fields(meeting_id = %meeting_id))]
async fn meeting_consent(
    deps: &Deps,
    request: &Request,
    user: UserId,
    meeting_id: &str,
) -> Result<Response<Body>, ApiError> {
    let map = body_object(request)?;
    let mut f = Fields::new(&map);
    let consent_given = f.required("consent_given", validate::boolean);
    f.finish()?;
    let consent_given = consent_given.unwrap_or(false);
    if !usable_id(meeting_id) {
        return Err(ApiError::MeetingNotFound);
    }
    if deps.meetings.get(meeting_id).await?.is_none() {
        return Err(ApiError::MeetingNotFound);
    }
    let stored = deps
        .consents
        .upsert(&Consent {
            id: uuid::Uuid::new_v4().to_string(),
            meeting_id: meeting_id.to_owned(),
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
