//! Whereby webhook bodies: `{id, apiVersion, createdAt (ISO), type, data}`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{non_empty, strip_prefix_cow, CowStr, ParseError};

#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Whereby's event id: the deduplication key.
    pub id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    /// When Whereby created the event: orders out-of-order deliveries.
    pub created_at: Option<DateTime<Utc>>,
    pub kind: EventKind<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind<'a> {
    ClientJoined(ClientChange<'a>),
    ClientLeft(ClientChange<'a>),
    /// A type this service does not act on; accepted and logged.
    Unknown,
}

/// A join or leave, with the room's client count after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientChange<'a> {
    /// Whereby's `roomName` without its leading `/`, as meetings store it.
    pub room_name: Cow<'a, str>,
    pub meeting_id: Option<Cow<'a, str>>,
    pub participant_id: Option<Cow<'a, str>>,
    pub role_name: Option<Cow<'a, str>>,
    pub num_clients: i64,
}

const CLIENT_JOINED: &str = "room.client.joined";
const CLIENT_LEFT: &str = "room.client.left";

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: CowStr<'a>,
    #[serde(borrow, default)]
    id: Option<CowStr<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow, default)]
    created_at: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    #[serde(borrow, default)]
    room_name: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    meeting_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    participant_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    role_name: Option<CowStr<'a>>,
    #[serde(default)]
    num_clients: Option<i64>,
}

/// Parses a Whereby webhook body (already verified) into an [`Event`].
pub fn parse(body: &[u8]) -> Result<Event<'_>, ParseError> {
    let head: Head = serde_json::from_slice(body).map_err(ParseError::json)?;
    let event_type = head.kind.0;
    let id = non_empty(head.id).ok_or_else(|| ParseError::missing(&event_type, "id"))?;
    if event_type != CLIENT_JOINED && event_type != CLIENT_LEFT {
        return Ok(Event {
            id,
            event_type,
            created_at: None,
            kind: EventKind::Unknown,
        });
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(ParseError::json)?;
    let created_at = match non_empty(envelope.created_at) {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|_| ParseError::BadTimestamp { field: "createdAt" })?
                .with_timezone(&Utc),
        ),
    };
    let data = envelope
        .data
        .ok_or_else(|| ParseError::missing(&event_type, "data"))?;
    let room_name = non_empty(data.room_name)
        .map(|r| strip_prefix_cow(r, '/'))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ParseError::missing(&event_type, "data.roomName"))?;
    let num_clients = data
        .num_clients
        .filter(|n| *n >= 0)
        .ok_or_else(|| ParseError::missing(&event_type, "data.numClients"))?;
    let change = ClientChange {
        room_name,
        meeting_id: non_empty(data.meeting_id),
        participant_id: non_empty(data.participant_id),
        role_name: non_empty(data.role_name),
        num_clients,
    };
    let kind = if event_type == CLIENT_JOINED {
        EventKind::ClientJoined(change)
    } else {
        EventKind::ClientLeft(change)
    };
    Ok(Event {
        id,
        event_type,
        created_at,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_joined_reads_count_room_and_time() {
        let e = parse(
            br#"{"id":"evt-1","apiVersion":"1.0","createdAt":"2025-01-01T10:00:00.123Z",
            "type":"room.client.joined","data":{"meetingId":"m-1","roomName":"/room-abc",
            "subdomain":"x","displayName":"Ann","participantId":"p-1","roleName":"member",
            "numClients":3,"numClientsByRoleName":{"member":3},"isDialIn":false,"metadata":null}}"#,
        )
        .unwrap();
        assert_eq!(e.id, "evt-1");
        assert_eq!(e.created_at.unwrap().timestamp_millis(), 1_735_725_600_123);
        let EventKind::ClientJoined(c) = e.kind else {
            panic!()
        };
        assert_eq!(c.room_name, "room-abc");
        assert!(matches!(c.room_name, Cow::Borrowed(_)));
        assert_eq!(c.meeting_id.as_deref(), Some("m-1"));
        assert_eq!(c.num_clients, 3);
    }

    #[test]
    fn client_left_is_understood() {
        let e = parse(
            br#"{"id":"e","type":"room.client.left","createdAt":"2025-01-01T10:00:00Z",
            "data":{"roomName":"/r","numClients":0}}"#,
        )
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::ClientLeft(ClientChange { num_clients: 0, .. })
        ));
    }

    #[test]
    fn unknown_types_are_accepted_whatever_their_data() {
        let e = parse(br#"{"id":"e","type":"recording.finished","data":[1,2]}"#).unwrap();
        assert_eq!(e.kind, EventKind::Unknown);
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        for (body, want) in [
            ("{", "valid webhook envelope"),
            (r#"{"type":"room.client.joined"}"#, "lacks id"),
            (r#"{"id":"e","type":"room.client.joined"}"#, "lacks data"),
            (
                r#"{"id":"e","type":"room.client.joined","data":{"numClients":1}}"#,
                "roomName",
            ),
            (
                r#"{"id":"e","type":"room.client.joined","data":{"roomName":"/","numClients":1}}"#,
                "roomName",
            ),
            (
                r#"{"id":"e","type":"room.client.joined","data":{"roomName":"/r"}}"#,
                "numClients",
            ),
            (
                r#"{"id":"e","type":"room.client.joined","data":{"roomName":"/r","numClients":-1}}"#,
                "numClients",
            ),
            (
                r#"{"id":"e","type":"room.client.joined","data":{"roomName":"/r","numClients":"2"}}"#,
                "valid webhook envelope",
            ),
            (
                r#"{"id":"e","type":"room.client.joined","createdAt":"yesterday","data":{"roomName":"/r","numClients":1}}"#,
                "createdAt",
            ),
        ] {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
