//! Against the real emulator (moto): every bucket is unique to its test.

use std::convert::Infallible;

use futures::stream;

use super::*;
use crate::media::samples;

const PART: usize = 5 * MIB;

async fn blobs(settings: BlobSettings) -> (Blobs, aws_sdk_s3::Client, String) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run scripts/test, which starts the emulator"
    );
    let sdk = crate::aws::load_sdk_config().await;
    let s3 = crate::aws::AwsClients::new(&sdk).s3;
    let bucket = format!("blob-test-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    (Blobs::new(&s3, settings), s3, bucket)
}

fn small_parts() -> BlobSettings {
    BlobSettings {
        part_size: PART,
        ..BlobSettings::default()
    }
}

fn target(bucket: &str, key: &str) -> UploadTarget {
    UploadTarget {
        bucket: bucket.into(),
        key: key.into(),
        content_type: Some("video/mp4".into()),
        metadata: HashMap::from([("source".to_owned(), "test".to_owned())]),
    }
}

/// A body of `len` bytes where each byte depends on its offset, so that misordered parts show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn chunked(data: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let chunks: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

async fn object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(_) => None,
    }
}

async fn pending_uploads(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    s3.list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

#[tokio::test]
async fn small_body_is_stored_whole_with_its_metadata() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let data = pattern(1000);
    let up = blobs
        .upload_stream(
            &target(&bucket, "a/small.mp4"),
            chunked(&data, 300),
            Some(1000),
            &mut NoInspect,
        )
        .await
        .unwrap();
    assert_eq!((up.bytes, up.parts), (1000, 0));
    assert_eq!(object(&s3, &bucket, "a/small.mp4").await.unwrap(), data);
    let head = blobs.head(&up.location).await.unwrap().unwrap();
    assert_eq!(head.size, 1000);
    assert_eq!(
        head.metadata.get("source").map(String::as_str),
        Some("test")
    );
}

#[tokio::test]
async fn large_body_is_uploaded_in_parts_and_reads_back_identical() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let len = 2 * PART + 12_345;
    let data = pattern(len);
    let up = blobs
        .upload_stream(
            &target(&bucket, "big.mp4"),
            chunked(&data, 64 * 1024 + 7),
            Some(len as u64),
            &mut NoInspect,
        )
        .await
        .unwrap();
    assert_eq!((up.bytes, up.parts), (len as u64, 3));
    assert!(object(&s3, &bucket, "big.mp4").await.unwrap() == data);
    assert_eq!(pending_uploads(&s3, &bucket).await, 0);
}

#[tokio::test]
async fn source_failing_midway_leaves_no_upload_and_no_object() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let data = pattern(2 * PART + 100);
    let body = chunked(&data, MIB)
        .map(|r| r.map_err(|never| match never {}))
        .chain(stream::iter([Err::<Bytes, &str>("connection reset")]));
    let err = blobs
        .upload_stream(&target(&bucket, "broken.mp4"), body, None, &mut NoInspect)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::Source { error: "connection reset", bytes } if bytes == data.len() as u64),
        "{err}"
    );
    assert_eq!(pending_uploads(&s3, &bucket).await, 0);
    assert_eq!(object(&s3, &bucket, "broken.mp4").await, None);
}

#[tokio::test]
async fn body_shorter_than_announced_is_not_completed() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let data = pattern(PART + 10);
    let err = blobs
        .upload_stream(
            &target(&bucket, "short.mp4"),
            chunked(&data, MIB),
            Some(PART as u64 * 3),
            &mut NoInspect,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Incomplete { .. }), "{err}");
    assert_eq!(pending_uploads(&s3, &bucket).await, 0);
    assert_eq!(object(&s3, &bucket, "short.mp4").await, None);
}

#[tokio::test]
async fn text_file_is_refused_early_and_never_stored() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let text = "just some text\n".repeat(800_000);
    let mut check = MediaCheck::new();
    let err = blobs
        .upload_stream(
            &target(&bucket, "text.mp4"),
            chunked(text.as_bytes(), MIB),
            None,
            &mut check,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UploadError::Rejected(MediaError::NotMedia { found }) if found.contains("just some")),
        "{err}"
    );
    assert_eq!(object(&s3, &bucket, "text.mp4").await, None);
}

#[tokio::test]
async fn mp4_without_audio_found_at_the_end_aborts_the_multipart_upload() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let file = samples::cat(&[
        samples::ftyp(),
        samples::mdat(2 * PART),
        samples::moov(&[samples::trak(b"vide", b"avc1")]),
    ]);
    let mut check = MediaCheck::new();
    let err = blobs
        .upload_stream(
            &target(&bucket, "video.mp4"),
            chunked(&file, MIB),
            None,
            &mut check,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::Rejected(MediaError::NoAudio { .. })),
        "{err}"
    );
    assert_eq!(pending_uploads(&s3, &bucket).await, 0);
    assert_eq!(object(&s3, &bucket, "video.mp4").await, None);
}

#[tokio::test]
async fn mp4_with_audio_passes_the_check_while_uploading() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let file = samples::mp4_audio(PART + 1000);
    let mut check = MediaCheck::new();
    blobs
        .upload_stream(
            &target(&bucket, "ok.mp4"),
            chunked(&file, MIB),
            Some(file.len() as u64),
            &mut check,
        )
        .await
        .unwrap();
    assert_eq!(
        check.info().map(|i| i.container),
        Some(crate::media::Container::Mp4)
    );
    assert_eq!(
        object(&s3, &bucket, "ok.mp4").await.map(|o| o.len()),
        Some(file.len())
    );
}

#[tokio::test]
async fn cancelled_upload_is_aborted_in_the_background() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let data = pattern(2 * PART);
    // The source stalls after two parts, as a hung download would; the caller gives up.
    let body = chunked(&data, MIB).chain(stream::pending());
    let t = target(&bucket, "cancelled.mp4");
    let mut inspector = NoInspect;
    let upload = blobs.upload_stream(&t, body, None, &mut inspector);
    assert!(tokio::time::timeout(Duration::from_secs(3), upload)
        .await
        .is_err());
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = pending_uploads(&s3, &bucket).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "multipart upload left behind");
    assert_eq!(object(&s3, &bucket, "cancelled.mp4").await, None);
}

#[tokio::test]
async fn copy_below_the_single_copy_limit_duplicates_the_object() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let data = pattern(3000);
    s3.put_object()
        .bucket(&bucket)
        .key("in/room 1+x.mp4")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    let from = S3Location {
        bucket: bucket.clone(),
        key: "in/room 1+x.mp4".into(),
    };
    let up = blobs
        .copy(&from, 3000, &target(&bucket, "out/copy.mp4"))
        .await
        .unwrap();
    assert_eq!(up.parts, 0);
    assert_eq!(object(&s3, &bucket, "out/copy.mp4").await.unwrap(), data);
    let head = blobs.head(&up.location).await.unwrap().unwrap();
    assert_eq!(
        head.metadata.get("source").map(String::as_str),
        Some("test")
    );
}

#[tokio::test]
async fn copy_above_the_single_copy_limit_goes_part_by_part() {
    let (blobs, s3, bucket) = blobs(BlobSettings {
        single_copy_limit: PART as u64,
        copy_part_size: PART as u64,
        ..small_parts()
    })
    .await;
    let len = 2 * PART + 77;
    let data = pattern(len);
    s3.put_object()
        .bucket(&bucket)
        .key("src.mp4")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    let from = S3Location {
        bucket: bucket.clone(),
        key: "src.mp4".into(),
    };
    let up = blobs
        .copy(&from, len as u64, &target(&bucket, "dst.mp4"))
        .await
        .unwrap();
    assert_eq!(up.parts, 3);
    assert!(object(&s3, &bucket, "dst.mp4").await.unwrap() == data);
    assert_eq!(pending_uploads(&s3, &bucket).await, 0);
}

#[tokio::test]
async fn media_check_by_ranges_finds_a_trailing_moov_and_refuses_video_only() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    let audio = samples::mp4_audio(3 * MIB);
    let video = samples::cat(&[
        samples::ftyp(),
        samples::mdat(MIB),
        samples::moov(&[samples::trak(b"vide", b"avc1")]),
    ]);
    for (key, body) in [("a.mp4", &audio), ("v.mp4", &video)] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
    }
    let loc = |k: &str| S3Location {
        bucket: bucket.clone(),
        key: k.into(),
    };
    let ok = blobs
        .check_media(&loc("a.mp4"), audio.len() as u64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.audio_codec.as_deref(), Some("mp4a"));
    let no = blobs
        .check_media(&loc("v.mp4"), video.len() as u64)
        .await
        .unwrap();
    assert!(matches!(no, Err(MediaError::NoAudio { .. })), "{no:?}");
}

#[tokio::test]
async fn finds_a_completed_object_by_key_prefix() {
    let (blobs, s3, bucket) = blobs(small_parts()).await;
    s3.put_object()
        .bucket(&bucket)
        .key("recordings/m1/r1.webm")
        .body(b"xyz".to_vec().into())
        .send()
        .await
        .unwrap();
    let found = blobs
        .find_by_prefix(&bucket, "recordings/m1/r1.")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.location.key.as_str(), found.size),
        ("recordings/m1/r1.webm", 3)
    );
    assert_eq!(
        blobs
            .find_by_prefix(&bucket, "recordings/m1/r2.")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn missing_objects_are_absent_and_reading_them_is_a_permanent_error() {
    let (blobs, _s3, bucket) = blobs(small_parts()).await;
    let loc = S3Location {
        bucket: bucket.clone(),
        key: "nope".into(),
    };
    assert_eq!(blobs.head(&loc).await.unwrap(), None);
    let err = blobs.read_range(&loc, 0, 10).await.unwrap_err();
    assert!(!err.is_transient() && err.is_not_found(), "{err:?}");
}

/// s3s-fs (the recording benchmark's fast S3) answers ListMultipartUploads with 501: the upload
/// must still go ahead, and nothing else may be skipped. A fake S3 that checks each request.
#[tokio::test]
async fn a_store_that_cannot_list_multipart_uploads_still_takes_the_upload() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let key_path = "/fake-bucket/big.mp4";
    Mock::given(method("GET"))
        .and(path("/fake-bucket/"))
        .and(query_param("prefix", "big.mp4"))
        .and(query_param("uploads", ""))
        .respond_with(ResponseTemplate::new(501).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code>\
             <Message>ListMultipartUploads is not implemented yet</Message></Error>",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(key_path))
        .and(query_param("uploads", ""))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<InitiateMultipartUploadResult><Bucket>fake-bucket</Bucket><Key>big.mp4</Key>\
             <UploadId>u1</UploadId></InitiateMultipartUploadResult>",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(key_path))
        .and(query_param("uploadId", "u1"))
        .respond_with(ResponseTemplate::new(200).insert_header("ETag", "\"etag\""))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(key_path))
        .and(query_param("uploadId", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<CompleteMultipartUploadResult><Bucket>fake-bucket</Bucket><Key>big.mp4</Key>\
             <ETag>\"etag-3\"</ETag></CompleteMultipartUploadResult>",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(server.uri())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "key", "secret", None, None, "test",
        ))
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let blobs = Blobs::new(&s3, small_parts());
    let len = 2 * PART + 12_345;
    let up = blobs
        .upload_stream(
            &target("fake-bucket", "big.mp4"),
            chunked(&pattern(len), 64 * 1024),
            Some(len as u64),
            &mut NoInspect,
        )
        .await
        .unwrap();
    assert_eq!((up.bytes, up.parts), (len as u64, 3));
    // The expectations (one listing answered 501, one upload of three parts, completed) are
    // checked when the server drops.
}
