use std::sync::Arc;

use super::{at, env, id};
use crate::domain::{S3Location, Transcript, TranscriptStatus};
use crate::store::{StoreError, TranscriptStore};

fn transcript(recording_id: &str) -> Transcript {
    Transcript {
        id: id(),
        recording_id: recording_id.into(),
        meeting_id: "m1".into(),
        room_id: "r1".into(),
        status: TranscriptStatus::Idle,
        error: None,
        error_permanent: false,
        audio: None,
        pipeline_sent_at: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

#[tokio::test]
async fn a_recording_gets_one_transcript_however_often_it_is_created() {
    let env = env().await;
    let transcripts = &env.stores.transcripts;
    let first = transcript("rec-1");

    assert_eq!(
        transcripts.create_if_absent(&first).await.unwrap(),
        (first.clone(), true)
    );
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(
        transcripts
            .create_if_absent(&transcript("rec-1"))
            .await
            .unwrap(),
        (first.clone(), false)
    );
    assert_eq!(env.ops(), ["TransactWriteItems", "GetItem"]);

    assert_eq!(
        transcripts.get_by_recording("rec-1").await.unwrap(),
        Some(first)
    );
    assert_eq!(env.ops(), ["GetItem", "GetItem"]);
    assert_eq!(transcripts.get_by_recording("rec-2").await.unwrap(), None);
    assert_eq!(env.ops(), ["GetItem"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_for_one_recording_create_one_transcript() {
    let env = env().await;
    let transcripts = Arc::new(env.stores.transcripts.clone());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let transcripts = transcripts.clone();
            tokio::spawn(async move {
                transcripts
                    .create_if_absent(&transcript("rec-1"))
                    .await
                    .unwrap()
            })
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
async fn status_updates_store_audio_and_errors_and_clear_errors() {
    let env = env().await;
    let transcripts = &env.stores.transcripts;
    let t = transcript("rec-1");
    transcripts.create_if_absent(&t).await.unwrap();
    env.ops();

    let failed = transcripts
        .set_status(
            &t.id,
            TranscriptStatus::Error,
            Some(("no audio track", true)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert_eq!(failed.error.as_deref(), Some("no audio track"));
    assert!(failed.error_permanent);
    assert!(failed.updated_at > t.updated_at);

    let audio = S3Location {
        bucket: "recordings".into(),
        key: "rec-1/audio.mp4".into(),
    };
    let uploaded = transcripts
        .set_status(&t.id, TranscriptStatus::Uploaded, None, Some(&audio))
        .await
        .unwrap();
    assert_eq!(uploaded.status, TranscriptStatus::Uploaded);
    assert_eq!(uploaded.error, None);
    assert!(!uploaded.error_permanent);
    assert_eq!(uploaded.audio, Some(audio.clone()));
    assert_eq!(
        transcripts.get_by_recording(&t.recording_id).await.unwrap(),
        Some(uploaded)
    );

    // Audio stays when a later update does not mention it.
    let retried = transcripts
        .set_status(
            &t.id,
            TranscriptStatus::Error,
            Some(("pipeline down", false)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(retried.audio, Some(audio));
    assert!(!retried.error_permanent);

    let err = transcripts
        .set_status("missing", TranscriptStatus::Idle, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn the_pipeline_message_is_marked_sent_once() {
    let env = env().await;
    let transcripts = &env.stores.transcripts;
    let t = transcript("rec-1");
    transcripts.create_if_absent(&t).await.unwrap();
    env.ops();

    assert!(transcripts.mark_pipeline_sent(&t.id, at(10)).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(!transcripts.mark_pipeline_sent(&t.id, at(20)).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert_eq!(
        transcripts
            .get_by_recording(&t.recording_id)
            .await
            .unwrap()
            .unwrap()
            .pipeline_sent_at,
        Some(at(10))
    );
    let err = transcripts
        .mark_pipeline_sent("missing", at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn releasing_the_pipeline_mark_lets_the_next_claim_win_but_spares_anothers_mark() {
    let env = env().await;
    let transcripts = &env.stores.transcripts;
    let t = transcript("rec-release");
    transcripts.create_if_absent(&t).await.unwrap();
    assert!(transcripts.mark_pipeline_sent(&t.id, at(10)).await.unwrap());
    env.ops();

    // Someone else's mark (another time) is left alone.
    transcripts
        .release_pipeline_sent(&t.id, at(99))
        .await
        .unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(!transcripts.mark_pipeline_sent(&t.id, at(20)).await.unwrap());

    env.ops();
    // Our own mark is removed, so the next claim wins.
    transcripts
        .release_pipeline_sent(&t.id, at(10))
        .await
        .unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    let stored = transcripts
        .get_by_recording(&t.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.pipeline_sent_at, None);
    assert!(transcripts.mark_pipeline_sent(&t.id, at(30)).await.unwrap());
}

#[tokio::test]
async fn a_taken_id_for_another_recording_is_a_conflict_and_writes_nothing() {
    let env = env().await;
    let transcripts = &env.stores.transcripts;
    let first = transcript("rec-a");
    transcripts.create_if_absent(&first).await.unwrap();
    let mut same_id = transcript("rec-b");
    same_id.id = first.id.clone();

    let err = transcripts.create_if_absent(&same_id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { entity: "transcript", id, condition }
            if id == &first.id && condition == crate::store::conflict::ID_TAKEN),
        "{err:?}"
    );
    assert_eq!(transcripts.get_by_recording("rec-b").await.unwrap(), None);
    assert_eq!(
        transcripts.get_by_recording("rec-a").await.unwrap(),
        Some(first)
    );
}
