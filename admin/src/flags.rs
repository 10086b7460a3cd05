//! `flags show|set`, `rooms list|migrate`, `rollback`: the runtime flags and what they mean
//! for each room.

use std::collections::HashMap;

use serde_json::{json, Value};

use shared::config::Flags;
use shared::domain::{Meeting, Platform, Room};
use shared::flags::{change_flags, ChangeOutcome, FlagChange, FlagStore, StoredFlags};
use shared::platform::select_platform;
use shared::store::{MeetingStore, RoomStore};

use crate::cli::{FlagsSet, Switch};
use crate::output::{table, Output};
use crate::{AdminError, Ctx};

fn flags_json(f: &Flags) -> Value {
    json!({
        "daily_migration_enabled": f.daily_migration_enabled,
        "daily_migration_room_ids": f.daily_migration_room_ids,
        "default_video_platform": f.default_video_platform,
    })
}

fn change_json(c: &FlagChange) -> Value {
    json!({"version": c.version, "at": c.at.to_rfc3339(), "by": c.by, "what": c.what})
}

fn flags_lines(f: &Flags) -> String {
    let ids = if f.daily_migration_room_ids.is_empty() {
        "(none)".to_owned()
    } else {
        f.daily_migration_room_ids
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    table(
        &["flag", "value"],
        [
            vec![
                "daily_migration_enabled".to_owned(),
                f.daily_migration_enabled.to_string(),
            ],
            vec!["daily_migration_room_ids".to_owned(), ids],
            vec![
                "default_video_platform".to_owned(),
                f.default_video_platform.to_string(),
            ],
        ],
    )
}

/// The stored flags (consistent read), or the environment's while none are stored.
async fn current(ctx: &Ctx) -> Result<(Flags, Option<StoredFlags>), AdminError> {
    let stored = ctx.stores.flags.load(true).await?;
    let flags = stored
        .as_ref()
        .map_or_else(|| ctx.config.flags.clone(), |s| s.flags.clone());
    Ok((flags, stored))
}

pub async fn show(ctx: &Ctx) -> Result<Output, AdminError> {
    let (flags, stored) = current(ctx).await?;
    let history: Vec<FlagChange> = stored
        .as_ref()
        .map(|s| s.history.clone())
        .unwrap_or_default();
    let json = json!({
        "source": if stored.is_some() { "stored" } else { "environment" },
        "version": stored.as_ref().map(|s| s.version),
        "flags": flags_json(&flags),
        "history": history.iter().map(change_json).collect::<Vec<_>>(),
    });
    let source = match &stored {
        Some(s) => format!(
            "Stored flags, version {} (table {}).",
            s.version, ctx.config.tables.config
        ),
        None => format!(
            "No flags stored in table {} yet: these are the environment's defaults \
             (DAILY_MIGRATION_ENABLED, DAILY_MIGRATION_ROOM_IDS, DEFAULT_VIDEO_PLATFORM); the \
             first change stores them.",
            ctx.config.tables.config
        ),
    };
    let text = format!(
        "{}\n{source}\n\nHistory (oldest first):\n{}",
        flags_lines(&flags),
        table(
            &["version", "at", "by", "what"],
            history.iter().map(|c| {
                vec![
                    c.version.to_string(),
                    c.at.to_rfc3339(),
                    c.by.clone(),
                    c.what.clone(),
                ]
            }),
        )
    );
    Ok(Output::new(json, text))
}

/// Applies `edit` as one recorded change by the caller.
async fn change(
    ctx: &Ctx,
    edit: impl Fn(&Flags) -> Flags,
) -> Result<(ChangeOutcome, String), AdminError> {
    let by = ctx.who().await;
    let outcome = change_flags(
        &ctx.stores.flags,
        &ctx.config.flags,
        &by,
        chrono::Utc::now,
        edit,
    )
    .await?;
    Ok((outcome, by))
}

fn outcome_json(outcome: &ChangeOutcome) -> Value {
    match outcome {
        ChangeOutcome::Changed { before, after, .. } => json!({
            "changed": true,
            "version": after.version,
            "before": flags_json(before),
            "flags": flags_json(&after.flags),
            "change": after.history.last().map(change_json),
        }),
        ChangeOutcome::Unchanged(flags) => json!({
            "changed": false,
            "flags": flags_json(flags),
        }),
    }
}

fn outcome_text(outcome: &ChangeOutcome) -> String {
    match outcome {
        ChangeOutcome::Changed { after, .. } => format!(
            "Changed (version {}): {}\n{}",
            after.version,
            after
                .history
                .last()
                .map(|c| c.what.as_str())
                .unwrap_or_default(),
            flags_lines(&after.flags)
        ),
        ChangeOutcome::Unchanged(flags) => {
            format!("Nothing to change.\n{}", flags_lines(flags))
        }
    }
}

pub async fn set(ctx: &Ctx, set: &FlagsSet) -> Result<Output, AdminError> {
    let (outcome, _) = change(ctx, |f| {
        let mut next = f.clone();
        if let Some(m) = set.migration {
            next.daily_migration_enabled = m == Switch::On;
        }
        if let Some(p) = set.default_platform {
            next.default_video_platform = p.into();
        }
        next
    })
    .await?;
    Ok(Output::new(outcome_json(&outcome), outcome_text(&outcome)))
}

/// Every room with its active meeting, if any.
async fn rooms_with_meetings(ctx: &Ctx) -> Result<Vec<(Room, Option<Meeting>)>, AdminError> {
    let rooms = ctx.stores.rooms.list_all().await?;
    let now = chrono::Utc::now();
    let mut active: HashMap<String, Meeting> = ctx
        .stores
        .meetings
        .list_active()
        .await?
        .into_iter()
        .filter(|m| m.is_active && m.end_date > now)
        .map(|m| (m.room_id.clone(), m))
        .collect();
    Ok(rooms
        .into_iter()
        .map(|r| {
            let m = active.remove(&r.id);
            (r, m)
        })
        .collect())
}

fn meeting_cells(m: Option<&Meeting>) -> [String; 2] {
    match m {
        Some(m) => [
            format!("{} ({})", m.id, m.platform),
            m.num_clients.to_string(),
        ],
        None => ["-".to_owned(), "-".to_owned()],
    }
}

fn meeting_json(m: Option<&Meeting>) -> Value {
    m.map_or(Value::Null, |m| {
        json!({
            "id": m.id,
            "platform": m.platform,
            "room_url": m.room_url,
            "num_clients": m.num_clients,
            "end_date": m.end_date.to_rfc3339(),
        })
    })
}

pub async fn rooms_list(ctx: &Ctx) -> Result<Output, AdminError> {
    let (flags, _) = current(ctx).await?;
    let rooms = rooms_with_meetings(ctx).await?;
    let json = Value::Array(
        rooms
            .iter()
            .map(|(r, m)| {
                json!({
                    "name": r.name.as_str(),
                    "id": r.id,
                    "platform": select_platform(&r.id, &flags),
                    "active_meeting": meeting_json(m.as_ref()),
                })
            })
            .collect(),
    );
    let text = table(
        &[
            "name",
            "id",
            "next meeting on",
            "active meeting",
            "participants",
        ],
        rooms.iter().map(|(r, m)| {
            let [meeting, participants] = meeting_cells(m.as_ref());
            vec![
                r.name.to_string(),
                r.id.clone(),
                select_platform(&r.id, &flags).to_string(),
                meeting,
                participants,
            ]
        }),
    );
    Ok(Output::new(json, text))
}

pub async fn rooms_migrate(
    ctx: &Ctx,
    names: &[String],
    to: Platform,
) -> Result<Output, AdminError> {
    let mut rooms = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match ctx.stores.rooms.get_by_name(name).await? {
            Some(r) => rooms.push(r),
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(AdminError::Failed(format!(
            "unknown room{}: {}; nothing was changed (`reflector-admin rooms list` shows the rooms)",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        )));
    }
    let (outcome, _) = change(ctx, |f| {
        let mut next = f.clone();
        for r in &rooms {
            if to == Platform::Daily {
                next.daily_migration_room_ids.insert(r.id.clone());
            } else {
                next.daily_migration_room_ids.remove(&r.id);
            }
        }
        next
    })
    .await?;
    let flags = match &outcome {
        ChangeOutcome::Changed { after, .. } => after.flags.clone(),
        ChangeOutcome::Unchanged(f) => f.clone(),
    };
    let mut notes = Vec::new();
    if to == Platform::Daily && !flags.daily_migration_enabled {
        notes.push(
            "The migration is off: these rooms stay on Whereby until \
             `reflector-admin flags set --migration on`."
                .to_owned(),
        );
    }
    if to == Platform::Whereby
        && flags.daily_migration_enabled
        && flags.default_video_platform != Platform::Whereby
    {
        notes.push(format!(
            "The default platform is {}: rooms off the Daily list use it, not Whereby \
             (`flags set --default whereby`, or `rollback` for every room).",
            flags.default_video_platform
        ));
    }
    let mut json = outcome_json(&outcome);
    json["rooms"] = rooms
        .iter()
        .map(|r| json!({"name": r.name.as_str(), "id": r.id, "platform": select_platform(&r.id, &flags)}))
        .collect();
    json["notes"] = json!(notes);
    let mut text = format!(
        "{}\n\n{}",
        outcome_text(&outcome),
        table(
            &["room", "id", "next meeting on"],
            rooms.iter().map(|r| {
                vec![
                    r.name.to_string(),
                    r.id.clone(),
                    select_platform(&r.id, &flags).to_string(),
                ]
            }),
        )
    );
    for n in &notes {
        text.push_str("\nNote: ");
        text.push_str(n);
    }
    text.push_str(
        "\nActive meetings keep their platform until they end; new meetings follow within \
         FLAGS_CACHE_SECONDS.",
    );
    Ok(Output::new(json, text))
}

pub async fn rollback(ctx: &Ctx) -> Result<Output, AdminError> {
    let (outcome, _) = change(ctx, |f| Flags {
        daily_migration_enabled: false,
        ..f.clone()
    })
    .await?;
    let before = match &outcome {
        ChangeOutcome::Changed { before, .. } => before.clone(),
        ChangeOutcome::Unchanged(f) => f.clone(),
    };
    let moving: Vec<(Room, Option<Meeting>, Platform)> = rooms_with_meetings(ctx)
        .await?
        .into_iter()
        .filter_map(|(r, m)| {
            let from = select_platform(&r.id, &before);
            (from != Platform::Whereby).then_some((r, m, from))
        })
        .collect();
    let mut json = outcome_json(&outcome);
    json["rooms"] = moving
        .iter()
        .map(|(r, m, from)| {
            json!({
                "name": r.name.as_str(),
                "id": r.id,
                "from": from,
                "to": Platform::Whereby,
                "active_meeting": meeting_json(m.as_ref()),
            })
        })
        .collect();
    let head = match &outcome {
        ChangeOutcome::Changed { after, .. } => {
            format!("Migration off (version {}).", after.version)
        }
        ChangeOutcome::Unchanged(_) => "The migration was already off.".to_owned(),
    };
    let text = format!(
        "{head} Rooms whose next meeting moves back to Whereby ({}):\n{}\nActive meetings keep \
         their platform until they end; new meetings are on Whereby within FLAGS_CACHE_SECONDS. \
         The Daily room list is kept: `flags set --migration on` moves them again.",
        moving.len(),
        table(
            &["room", "id", "from", "active meeting", "participants"],
            moving.iter().map(|(r, m, from)| {
                let [meeting, participants] = meeting_cells(m.as_ref());
                vec![
                    r.name.to_string(),
                    r.id.clone(),
                    from.to_string(),
                    meeting,
                    participants,
                ]
            }),
        )
    );
    Ok(Output::new(json, text))
}
