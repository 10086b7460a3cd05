use std::sync::Arc;
use std::time::Duration;

use super::{at, env, id};
use crate::domain::{Platform, Recording, RecordingSource, RecordingStatus};
use crate::store::{conflict, RecordingStore, StoreError};

fn s3(key: &str) -> RecordingSource {
    RecordingSource::S3 {
        bucket: "whereby-recordings".into(),
        key: key.into(),
    }
}

fn recording(source: RecordingSource, secs: i64) -> Recording {
    Recording {
        id: id(),
        meeting_id: "m1".into(),
        source,
        status: RecordingStatus::Pending,
        error: None,
        created_at: at(secs),
        updated_at: at(secs),
    }
}

#[tokio::test]
async fn a_source_maps_to_one_recording_however_often_it_is_created() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let first = recording(s3("room-2026.mp4"), 0);

    assert_eq!(
        recordings.create_if_absent(&first).await.unwrap(),
        (first.clone(), true)
    );
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    let redelivered = recording(s3("room-2026.mp4"), 5);
    assert_eq!(
        recordings.create_if_absent(&redelivered).await.unwrap(),
        (first.clone(), false)
    );
    assert_eq!(env.ops(), ["TransactWriteItems", "GetItem"]);
    assert_eq!(recordings.get(&redelivered.id).await.unwrap(), None);

    let daily = recording(
        RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id: "rec-1".into(),
        },
        1,
    );
    assert!(recordings.create_if_absent(&daily).await.unwrap().1);
    env.ops();
    assert_eq!(
        recordings.get(&daily.id).await.unwrap(),
        Some(daily.clone())
    );
    assert_eq!(env.ops(), ["GetItem"]);
    assert_eq!(
        recordings.get_by_source(&daily.source).await.unwrap(),
        Some(daily)
    );
    assert_eq!(env.ops(), ["GetItem", "GetItem"]);
    assert_eq!(
        recordings.get_by_source(&s3("unknown")).await.unwrap(),
        None
    );
    assert_eq!(env.ops(), ["GetItem"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_source_create_it_once() {
    let env = env().await;
    let recordings = Arc::new(env.stores.recordings.clone());
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let recordings = recordings.clone();
            let r = recording(s3("same.mp4"), i);
            tokio::spawn(async move { recordings.create_if_absent(&r).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = Vec::new();
    for t in tasks {
        let (stored, new) = t.await.unwrap();
        created += usize::from(new);
        ids.push(stored.id);
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn status_moves_along_legal_transitions_and_keeps_the_failure_message() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let r = recording(s3("a.mp4"), 0);
    recordings.create_if_absent(&r).await.unwrap();
    env.ops();

    let processing = recordings
        .set_status(&r.id, RecordingStatus::Processing, None)
        .await
        .unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert_eq!(processing.status, RecordingStatus::Processing);
    assert!(processing.updated_at > r.updated_at);
    let failed = recordings
        .set_status(&r.id, RecordingStatus::Failed, Some("download timed out"))
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("download timed out"));
    // Reprocessing clears the error; completion is final.
    let again = recordings
        .set_status(&r.id, RecordingStatus::Processing, None)
        .await
        .unwrap();
    assert_eq!(again.error, None);
    let done = recordings
        .set_status(&r.id, RecordingStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(recordings.get(&r.id).await.unwrap(), Some(done));
}

#[tokio::test]
async fn illegal_transitions_are_refused_naming_the_current_status() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let r = recording(s3("a.mp4"), 0);
    recordings.create_if_absent(&r).await.unwrap();
    env.ops();

    let err = recordings
        .set_status(&r.id, RecordingStatus::Completed, None)
        .await
        .unwrap_err();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(err.is_conflict(conflict::ILLEGAL_TRANSITION), "{err:?}");
    assert!(err.to_string().contains("pending -> completed"), "{err}");
    assert_eq!(
        recordings.get(&r.id).await.unwrap().unwrap().status,
        RecordingStatus::Pending
    );
    recordings
        .set_status(&r.id, RecordingStatus::Processing, None)
        .await
        .unwrap();
    recordings
        .set_status(&r.id, RecordingStatus::Completed, None)
        .await
        .unwrap();
    let err = recordings
        .set_status(&r.id, RecordingStatus::Failed, Some("late"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("completed -> failed"), "{err}");
    let err = recordings
        .set_status("missing", RecordingStatus::Processing, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn listing_by_status_is_oldest_first_and_bounded() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let mut pending = Vec::new();
    for i in 0..4 {
        let r = recording(s3(&format!("{i}.mp4")), 100 - i);
        recordings.create_if_absent(&r).await.unwrap();
        pending.push(r);
    }
    let moved = recording(s3("moved.mp4"), 0);
    recordings.create_if_absent(&moved).await.unwrap();
    recordings
        .set_status(&moved.id, RecordingStatus::Processing, None)
        .await
        .unwrap();
    env.ops();

    let listed = recordings
        .list_by_status(RecordingStatus::Pending, 3)
        .await
        .unwrap();
    assert_eq!(env.ops(), ["Query"]);
    pending.sort_by_key(|r| r.created_at);
    assert_eq!(listed, pending[..3].to_vec());
    let processing = recordings
        .list_by_status(RecordingStatus::Processing, 10)
        .await
        .unwrap();
    assert_eq!(processing.len(), 1);
    assert_eq!(processing[0].id, moved.id);
    env.ops();
    assert!(recordings
        .list_by_status(RecordingStatus::Pending, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(env.ops().is_empty(), "limit 0 makes no request");
}

#[tokio::test]
async fn requeue_claims_respect_the_cooldown() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let r = recording(s3("a.mp4"), 0);
    recordings.create_if_absent(&r).await.unwrap();
    env.ops();
    let cooldown = Duration::from_secs(600);

    assert!(recordings
        .claim_requeue(&r.id, at(1000), cooldown)
        .await
        .unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(!recordings
        .claim_requeue(&r.id, at(1300), cooldown)
        .await
        .unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(recordings
        .claim_requeue(&r.id, at(1600), cooldown)
        .await
        .unwrap());
    let err = recordings
        .claim_requeue("missing", at(0), cooldown)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_taken_id_with_a_new_source_is_a_conflict_and_writes_nothing() {
    let env = env().await;
    let recordings = &env.stores.recordings;
    let first = recording(s3("a.mp4"), 0);
    recordings.create_if_absent(&first).await.unwrap();
    let mut same_id = recording(s3("b.mp4"), 1);
    same_id.id = first.id.clone();

    let err = recordings.create_if_absent(&same_id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { entity: "recording", id, condition }
            if id == &first.id && condition == conflict::ID_TAKEN),
        "{err:?}"
    );
    // The transaction wrote neither item: b.mp4 has no marker, the recording is unchanged.
    assert_eq!(recordings.get_by_source(&s3("b.mp4")).await.unwrap(), None);
    assert_eq!(recordings.get(&first.id).await.unwrap(), Some(first));
}
