//! Runtime flags (DESIGN.md sections 3 and 13): `daily_migration_enabled`,
//! `daily_migration_room_ids` and `default_video_platform` as one stored item, so that moving a
//! room or rolling back needs no redeploy.
//!
//! - Functions read them through [`CachedFlags`]: at most one store read per
//!   `FLAGS_CACHE_SECONDS` per process, none while the cache is warm. While nothing is stored,
//!   the environment's flags (`DAILY_MIGRATION_*`, `DEFAULT_VIDEO_PLATFORM`) are the flags.
//! - Operators change them with [`change_flags`]: a read, then a write on condition that the
//!   version read is still the stored one. A writer that lost re-reads and applies its edit
//!   again, so two concurrent changes both land and both appear in the history (the last
//!   [`HISTORY_LIMIT`] changes: who, what, when), and neither overwrites the other silently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::Flags;
use crate::store::{conflict, StoreError, StoreResult};

/// How many changes the stored item remembers.
pub const HISTORY_LIMIT: usize = 50;

/// How many times [`change_flags`] re-reads and retries after losing to a concurrent change.
const CHANGE_ATTEMPTS: u32 = 10;

/// One recorded change of the flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagChange {
    /// The version the change produced (1 for the first stored flags).
    pub version: u64,
    pub at: DateTime<Utc>,
    /// Who made it, as the operator's tool names them.
    pub by: String,
    /// What changed, one `field: before -> after` per changed field.
    pub what: String,
}

/// The stored flags item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlags {
    pub flags: Flags,
    /// Incremented by every change; every write is conditional on the version it read.
    pub version: u64,
    /// Oldest first, at most [`HISTORY_LIMIT`].
    pub history: Vec<FlagChange>,
}

/// Where the flags item lives (DynamoDB: `store::dynamo::DynamoFlagStore`).
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// The stored flags; `None` while nothing was ever stored. `consistent` asks for a
    /// strongly consistent read (before a change); the functions' cache reads eventually
    /// consistently (a read that is a moment stale is within the cache's own staleness).
    async fn load(&self, consistent: bool) -> StoreResult<Option<StoredFlags>>;

    /// Stores `next` if the stored version is still `expected` (`None`: nothing is stored);
    /// otherwise a `Conflict` with [`conflict::CHANGED_CONCURRENTLY`] and nothing written.
    async fn save(&self, next: &StoredFlags, expected: Option<u64>) -> StoreResult<()>;
}

/// Where a function gets the flags that choose a room's platform.
#[async_trait]
pub trait FlagSource: Send + Sync {
    async fn current(&self) -> StoreResult<Flags>;
}

/// Fixed flags (tests, and functions built without a flags table).
#[derive(Debug, Clone)]
pub struct StaticFlags(pub Flags);

#[async_trait]
impl FlagSource for StaticFlags {
    async fn current(&self) -> StoreResult<Flags> {
        Ok(self.0.clone())
    }
}

/// The stored flags, read at most once per `ttl`; `defaults` while nothing is stored.
///
/// One refresh at a time: concurrent callers of an expired cache wait for the one read
/// instead of each making their own. When a refresh fails and flags were read before, the last
/// flags read are used (and the next call tries again): a failed read must not flip rooms back
/// to the environment's defaults. With nothing read yet, the error is returned.
pub struct CachedFlags {
    store: Arc<dyn FlagStore>,
    defaults: Flags,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Flags)>>,
}

impl std::fmt::Debug for CachedFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedFlags")
            .field("defaults", &self.defaults)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedFlags {
    pub fn new(store: Arc<dyn FlagStore>, defaults: Flags, ttl: Duration) -> Self {
        Self {
            store,
            defaults,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl FlagSource for CachedFlags {
    /// No request while the cache is fresh; one `load` otherwise.
    async fn current(&self) -> StoreResult<Flags> {
        let mut cached = self.cached.lock().await;
        if let Some((read_at, flags)) = cached.as_ref() {
            if read_at.elapsed() < self.ttl {
                return Ok(flags.clone());
            }
        }
        match self.store.load(false).await {
            Ok(stored) => {
                let flags = stored.map_or_else(|| self.defaults.clone(), |s| s.flags);
                *cached = Some((Instant::now(), flags.clone()));
                Ok(flags)
            }
            Err(e) => match cached.as_ref() {
                Some((_, last)) => {
                    warn!(error = %e, "could not read the runtime flags; using the last ones read");
                    Ok(last.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// What [`change_flags`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Written: the flags before, and the stored item after (its last history entry is this
    /// change).
    Changed {
        before: Flags,
        after: StoredFlags,
        /// How many writes lost to a concurrent change first.
        retries: u32,
    },
    /// The edit changed nothing, so nothing was written.
    Unchanged(Flags),
}

/// Applies `edit` to the current flags (the stored ones, else `defaults`) and stores the
/// result with a history entry by `by` at `now()`, on condition that nobody changed the flags
/// in between; after losing such a race it re-reads and applies `edit` again. Each attempt is
/// two requests (a consistent read and a conditional write).
pub async fn change_flags<F>(
    store: &dyn FlagStore,
    defaults: &Flags,
    by: &str,
    now: fn() -> DateTime<Utc>,
    edit: F,
) -> StoreResult<ChangeOutcome>
where
    F: Fn(&Flags) -> Flags,
{
    for attempt in 0..CHANGE_ATTEMPTS {
        let stored = store.load(true).await?;
        let (before, version, mut history) = match stored {
            Some(s) => (s.flags, Some(s.version), s.history),
            None => (defaults.clone(), None, Vec::new()),
        };
        let after = edit(&before);
        let Some(what) = describe_change(&before, &after) else {
            return Ok(ChangeOutcome::Unchanged(before));
        };
        let next_version = version.map_or(1, |v| v + 1);
        history.push(FlagChange {
            version: next_version,
            at: now(),
            by: by.to_owned(),
            what,
        });
        let excess = history.len().saturating_sub(HISTORY_LIMIT);
        history.drain(..excess);
        let next = StoredFlags {
            flags: after,
            version: next_version,
            history,
        };
        match store.save(&next, version).await {
            Ok(()) => {
                info!(version = next_version, by, "runtime flags changed");
                return Ok(ChangeOutcome::Changed {
                    before,
                    after: next,
                    retries: attempt,
                });
            }
            Err(e) if e.is_conflict(conflict::CHANGED_CONCURRENTLY) => {
                // Spread racing writers out a little before they read again.
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
                tokio::time::sleep(Duration::from_millis(5 + jitter)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict {
        entity: "flags",
        id: "flags".into(),
        condition: format!(
            "{}: still changing after {CHANGE_ATTEMPTS} attempts",
            conflict::CHANGED_CONCURRENTLY
        ),
    })
}

/// `field: before -> after` for each field that differs (`room ids: +a, -b` for the list);
/// `None` when nothing does.
pub fn describe_change(before: &Flags, after: &Flags) -> Option<String> {
    let mut parts = Vec::new();
    if before.daily_migration_enabled != after.daily_migration_enabled {
        parts.push(format!(
            "daily_migration_enabled: {} -> {}",
            before.daily_migration_enabled, after.daily_migration_enabled
        ));
    }
    if before.default_video_platform != after.default_video_platform {
        parts.push(format!(
            "default_video_platform: {} -> {}",
            before.default_video_platform, after.default_video_platform
        ));
    }
    let added = after
        .daily_migration_room_ids
        .difference(&before.daily_migration_room_ids)
        .map(|id| format!("+{id}"));
    let removed = before
        .daily_migration_room_ids
        .difference(&after.daily_migration_room_ids)
        .map(|id| format!("-{id}"));
    let ids: Vec<String> = added.chain(removed).collect();
    if !ids.is_empty() {
        parts.push(format!("daily_migration_room_ids: {}", ids.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Platform;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// An in-memory store that counts loads and can fail them.
    #[derive(Default)]
    struct Memory {
        item: Mutex<Option<StoredFlags>>,
        loads: AtomicUsize,
        fail_loads: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl FlagStore for Memory {
        async fn load(&self, _consistent: bool) -> StoreResult<Option<StoredFlags>> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if self.fail_loads.load(Ordering::SeqCst) {
                return Err(StoreError::Other("table unreachable".into()));
            }
            Ok(self.item.lock().unwrap().clone())
        }

        async fn save(&self, next: &StoredFlags, expected: Option<u64>) -> StoreResult<()> {
            let mut item = self.item.lock().unwrap();
            if item.as_ref().map(|s| s.version) != expected {
                return Err(StoreError::Conflict {
                    entity: "flags",
                    id: "flags".into(),
                    condition: conflict::CHANGED_CONCURRENTLY.into(),
                });
            }
            *item = Some(next.clone());
            Ok(())
        }
    }

    fn migration_on() -> Flags {
        Flags {
            daily_migration_enabled: true,
            ..Flags::default()
        }
    }

    fn stored(flags: Flags) -> StoredFlags {
        StoredFlags {
            flags,
            version: 1,
            history: Vec::new(),
        }
    }

    #[tokio::test]
    async fn environment_defaults_apply_while_nothing_is_stored() {
        let store = Arc::new(Memory::default());
        let defaults = Flags {
            default_video_platform: Platform::Daily,
            ..Flags::default()
        };
        let cache = CachedFlags::new(store.clone(), defaults.clone(), Duration::from_secs(30));
        assert_eq!(cache.current().await.unwrap(), defaults);
    }

    #[tokio::test]
    async fn a_warm_cache_reads_nothing_and_a_zero_ttl_reads_every_time() {
        let store = Arc::new(Memory::default());
        *store.item.lock().unwrap() = Some(stored(migration_on()));
        let cache = CachedFlags::new(store.clone(), Flags::default(), Duration::from_secs(3600));
        for _ in 0..3 {
            assert_eq!(cache.current().await.unwrap(), migration_on());
        }
        assert_eq!(store.loads.load(Ordering::SeqCst), 1);
        // A change is not seen while the cache is fresh ...
        *store.item.lock().unwrap() = Some(stored(Flags::default()));
        assert_eq!(cache.current().await.unwrap(), migration_on());

        // ... and at once without a cache.
        let uncached = CachedFlags::new(store.clone(), Flags::default(), Duration::ZERO);
        let before = store.loads.load(Ordering::SeqCst);
        assert_eq!(uncached.current().await.unwrap(), Flags::default());
        assert_eq!(uncached.current().await.unwrap(), Flags::default());
        assert_eq!(store.loads.load(Ordering::SeqCst), before + 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_last_flags_read_and_fails_only_without_any() {
        let store = Arc::new(Memory::default());
        *store.item.lock().unwrap() = Some(stored(migration_on()));
        let cache = CachedFlags::new(store.clone(), Flags::default(), Duration::ZERO);
        assert_eq!(cache.current().await.unwrap(), migration_on());
        store.fail_loads.store(true, Ordering::SeqCst);
        // Not the environment's defaults (migration off): the last stored flags.
        assert_eq!(cache.current().await.unwrap(), migration_on());

        let cold = CachedFlags::new(store.clone(), Flags::default(), Duration::ZERO);
        let err = cold.current().await.unwrap_err();
        assert!(err.to_string().contains("table unreachable"), "{err}");
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn the_first_change_starts_from_the_defaults_and_is_recorded() {
        let store = Memory::default();
        let defaults = Flags {
            daily_migration_room_ids: BTreeSet::from(["r0".to_owned()]),
            ..Flags::default()
        };
        let outcome = change_flags(&store, &defaults, "ops@example", at, |f| Flags {
            daily_migration_enabled: true,
            ..f.clone()
        })
        .await
        .unwrap();
        let ChangeOutcome::Changed { before, after, .. } = outcome else {
            panic!("expected a change");
        };
        assert_eq!(before, defaults);
        assert_eq!(after.version, 1);
        assert!(after.flags.daily_migration_enabled);
        assert_eq!(
            after.flags.daily_migration_room_ids,
            defaults.daily_migration_room_ids
        );
        assert_eq!(
            after.history,
            vec![FlagChange {
                version: 1,
                at: at(),
                by: "ops@example".into(),
                what: "daily_migration_enabled: false -> true".into(),
            }]
        );
        assert_eq!(store.item.lock().unwrap().as_ref(), Some(&after));
    }

    #[tokio::test]
    async fn an_edit_that_changes_nothing_writes_nothing() {
        let store = Memory::default();
        let outcome = change_flags(&store, &Flags::default(), "me", at, Flags::clone)
            .await
            .unwrap();
        assert_eq!(outcome, ChangeOutcome::Unchanged(Flags::default()));
        assert!(store.item.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn history_keeps_the_last_fifty_changes() {
        let store = Memory::default();
        for i in 0..(HISTORY_LIMIT + 5) {
            let enable = i % 2 == 0;
            change_flags(&store, &Flags::default(), &format!("op{i}"), at, |f| {
                Flags {
                    daily_migration_enabled: enable,
                    ..f.clone()
                }
            })
            .await
            .unwrap();
        }
        let item = store.item.lock().unwrap().clone().unwrap();
        assert_eq!(item.version, (HISTORY_LIMIT + 5) as u64);
        assert_eq!(item.history.len(), HISTORY_LIMIT);
        assert_eq!(item.history[0].by, "op5");
        assert_eq!(item.history[0].version, 6);
        assert_eq!(
            item.history.last().unwrap().by,
            format!("op{}", HISTORY_LIMIT + 4)
        );
    }

    #[test]
    fn changes_are_described_field_by_field() {
        let before = Flags {
            daily_migration_room_ids: BTreeSet::from(["a".to_owned(), "b".to_owned()]),
            ..Flags::default()
        };
        let after = Flags {
            daily_migration_enabled: true,
            daily_migration_room_ids: BTreeSet::from(["b".to_owned(), "c".to_owned()]),
            default_video_platform: Platform::Daily,
        };
        assert_eq!(
            describe_change(&before, &after).unwrap(),
            "daily_migration_enabled: false -> true; default_video_platform: whereby -> daily; \
             daily_migration_room_ids: +c, -a"
        );
        assert_eq!(describe_change(&after, &after), None);
    }
}
