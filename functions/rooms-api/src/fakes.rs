//! Small in-memory stores with the contracts' semantics, for handler unit tests. The DynamoDB
//! implementations are tested against the emulator, and the black-box tests use them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use shared::domain::{Consent, Meeting, Room};
use shared::store::{
    Claim, ConsentStore, MeetingStore, Page, RoomPatch, RoomStore, StoreError, StoreResult,
};

fn unsupported<T>() -> StoreResult<T> {
    Err(StoreError::Other(
        "not supported by the in-memory fake".into(),
    ))
}

#[derive(Default)]
pub struct MemRooms {
    pub rooms: Mutex<Vec<Room>>,
    /// When set, every call fails with a retryable error (a DynamoDB outage).
    pub down: Mutex<bool>,
}

impl MemRooms {
    fn check_up(&self) -> StoreResult<()> {
        if *self.down.lock().unwrap() {
            return Err(StoreError::Throttled("fake outage".into()));
        }
        Ok(())
    }
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        entity: "room",
        id: name.to_owned(),
        condition: shared::store::conflict::ROOM_NAME_TAKEN.into(),
    }
}

fn room_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "room",
        id: id.to_owned(),
    }
}

#[async_trait]
impl RoomStore for MemRooms {
    async fn create(&self, room: &Room) -> StoreResult<()> {
        self.check_up()?;
        let mut rooms = self.rooms.lock().unwrap();
        if rooms.iter().any(|r| r.name == room.name) {
            return Err(name_taken(room.name.as_str()));
        }
        rooms.push(room.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Room>> {
        self.check_up()?;
        Ok(self
            .rooms
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == id)
            .cloned())
    }

    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        self.check_up()?;
        Ok(self
            .rooms
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.name.as_str() == name)
            .cloned())
    }

    async fn list_for_user(
        &self,
        user_id: Option<&str>,
        page: u32,
        size: u32,
    ) -> StoreResult<Page<Room>> {
        self.check_up()?;
        let mut visible: Vec<Room> = self
            .rooms
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.is_shared || (user_id.is_some() && r.user_id.as_deref() == user_id))
            .cloned()
            .collect();
        visible.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let total = visible.len() as u64;
        let items = visible
            .into_iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .collect();
        Ok(Page { items, total })
    }

    async fn update(&self, id: &str, owner: Option<&str>, patch: &RoomPatch) -> StoreResult<Room> {
        self.check_up()?;
        let mut rooms = self.rooms.lock().unwrap();
        if let Some(name) = &patch.name {
            if rooms.iter().any(|r| r.name == *name && r.id != id) {
                return Err(name_taken(name.as_str()));
            }
        }
        let room = rooms
            .iter_mut()
            .find(|r| r.id == id && r.user_id.as_deref() == owner)
            .ok_or_else(|| room_not_found(id))?;
        *room = patch.applied_to(room);
        Ok(room.clone())
    }

    async fn delete(&self, id: &str, owner: Option<&str>) -> StoreResult<()> {
        self.check_up()?;
        let mut rooms = self.rooms.lock().unwrap();
        let before = rooms.len();
        rooms.retain(|r| !(r.id == id && r.user_id.as_deref() == owner));
        if rooms.len() == before {
            return Err(room_not_found(id));
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemMeetings {
    pub meetings: Mutex<HashMap<String, Meeting>>,
}

impl MemMeetings {
    fn active(&self, room_id: &str, now: DateTime<Utc>) -> Option<Meeting> {
        self.meetings
            .lock()
            .unwrap()
            .values()
            .find(|m| m.room_id == room_id && m.is_active && m.end_date > now)
            .cloned()
    }
}

#[async_trait]
impl MeetingStore for MemMeetings {
    async fn claim_active(&self, meeting: &Meeting, now: DateTime<Utc>) -> StoreResult<Claim> {
        if let Some(winner) = self.active(&meeting.room_id, now) {
            return Ok(Claim::Lost(winner));
        }
        self.meetings
            .lock()
            .unwrap()
            .insert(meeting.id.clone(), meeting.clone());
        Ok(Claim::Won)
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Meeting>> {
        Ok(self.meetings.lock().unwrap().get(id).cloned())
    }

    async fn get_by_room_name(&self, _room_name: &str) -> StoreResult<Option<Meeting>> {
        unsupported()
    }

    async fn get_active_for_room(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Meeting>> {
        Ok(self.active(room_id, now))
    }

    async fn list_active(&self) -> StoreResult<Vec<Meeting>> {
        unsupported()
    }

    async fn set_clients_if_newer(
        &self,
        _id: &str,
        _count: i64,
        _observed_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        unsupported()
    }

    async fn deactivate(&self, id: &str) -> StoreResult<()> {
        if let Some(m) = self.meetings.lock().unwrap().get_mut(id) {
            m.is_active = false;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemConsents {
    pub consents: Mutex<Vec<Consent>>,
}

#[async_trait]
impl ConsentStore for MemConsents {
    async fn upsert(&self, consent: &Consent) -> StoreResult<Consent> {
        let mut all = self.consents.lock().unwrap();
        if consent.user_id.is_some() {
            if let Some(existing) = all
                .iter_mut()
                .find(|c| c.meeting_id == consent.meeting_id && c.user_id == consent.user_id)
            {
                existing.consent_given = consent.consent_given;
                existing.consent_timestamp = consent.consent_timestamp;
                return Ok(existing.clone());
            }
        }
        all.push(consent.clone());
        Ok(consent.clone())
    }
}
