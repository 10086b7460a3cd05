//! `meeting create ROOM --platform P` and `meeting end ID`: trying a platform by hand.

use serde_json::{json, Value};

use shared::domain::{Meeting, Platform};
use shared::meeting_open::{open_meeting, OpenError, Opened};
use shared::platform::{PlatformRegistry, RegistryOptions};
use shared::store::{MeetingStore, RoomStore};

use crate::output::{table, Output};
use crate::{AdminError, Ctx};

fn registry(ctx: &Ctx) -> PlatformRegistry {
    PlatformRegistry::from_config(
        &ctx.config,
        RegistryOptions {
            // Trying the mock needs no account; the functions in AWS never select it.
            allow_mock: true,
            ..Default::default()
        },
    )
}

fn meeting_json(m: &Meeting) -> Value {
    json!({
        "id": m.id,
        "room_id": m.room_id,
        "platform": m.platform,
        "room_name": m.room_name,
        "room_url": m.room_url,
        "host_room_url": m.host_room_url,
        "start_date": m.start_date.to_rfc3339(),
        "end_date": m.end_date.to_rfc3339(),
        "is_active": m.is_active,
    })
}

fn meeting_table(m: &Meeting) -> String {
    table(
        &["field", "value"],
        [
            ["id", m.id.as_str()],
            ["platform", m.platform.as_str()],
            ["platform room", m.room_name.as_str()],
            ["room_url", m.room_url.as_str()],
            ["host_room_url", m.host_room_url.as_str()],
            ["ends", &m.end_date.to_rfc3339()],
        ]
        .map(|[k, v]| vec![k.to_owned(), v.to_owned()]),
    )
}

pub async fn create(ctx: &Ctx, room_name: &str, platform: Platform) -> Result<Output, AdminError> {
    // Configuration first: a platform without credentials is a configuration error.
    let client = registry(ctx).get(platform)?;
    let room = ctx
        .stores
        .rooms
        .get_by_name(room_name)
        .await?
        .ok_or_else(|| AdminError::Failed(format!("unknown room: {room_name}")))?;
    let now = chrono::Utc::now();
    if let Some(active) = ctx
        .stores
        .meetings
        .get_active_for_room(&room.id, now)
        .await?
    {
        return Err(AdminError::Failed(format!(
            "room {room_name} already has an active meeting {} on {}; end it first with \
             `reflector-admin meeting end {}`",
            active.id, active.platform, active.id
        )));
    }
    let opened = open_meeting(
        client.as_ref(),
        &ctx.stores.meetings,
        &room,
        room.user_id.clone(),
        now,
        ctx.config.meeting_duration,
        // Without a deadline nothing is cut short; a room that could not be deleted is in the
        // warning log line.
        &|_| {},
    )
    .await
    .map_err(|e| match e {
        OpenError::Platform { source, .. } => AdminError::from(source),
        OpenError::Store(e) => AdminError::from(e),
        e @ OpenError::StoreTimedOut => AdminError::Failed(e.to_string()),
    })?;
    match opened {
        Opened::Created(m) => Ok(Output::new(
            meeting_json(&m),
            format!(
                "Meeting of room {room_name} on {}; the API answers it as the room's meeting \
                 until it ends.\n{}",
                m.platform,
                meeting_table(&m)
            ),
        )),
        Opened::Existing(m) => Err(AdminError::Failed(format!(
            "room {room_name} got another active meeting meanwhile ({} on {}); nothing was created",
            m.id, m.platform
        ))),
    }
}

pub async fn end(ctx: &Ctx, id: &str) -> Result<Output, AdminError> {
    let meeting = ctx
        .stores
        .meetings
        .get(id)
        .await?
        .ok_or_else(|| AdminError::Failed(format!("unknown meeting: {id}")))?;
    ctx.stores.meetings.deactivate(id).await?;
    // The meeting is over for us now; deleting the platform room ends the call for anyone
    // still in it. Without the platform's credentials it is left to expire at its end date.
    let room = match registry(ctx).get(meeting.platform) {
        Ok(client) => client
            .delete_room(&meeting.room_name, Some(&meeting.id))
            .await
            .map(|()| "deleted".to_owned())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let json = json!({
        "ended": meeting.id,
        "platform": meeting.platform,
        "platform_room": meeting.room_name,
        "platform_room_deleted": room.is_ok(),
        "platform_room_error": room.as_ref().err(),
    });
    match room {
        Ok(_) => Ok(Output::new(
            json,
            format!(
                "Ended meeting {id}; its {} room {} is deleted.",
                meeting.platform, meeting.room_name
            ),
        )),
        Err(e) => Err(AdminError::Failed(format!(
            "ended meeting {id}, but its {} room {} could not be deleted ({e}); it expires at {}",
            meeting.platform,
            meeting.room_name,
            meeting.end_date.to_rfc3339()
        ))),
    }
}
