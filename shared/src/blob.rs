//! Audio objects in S3: streaming multipart upload with bounded memory, server-side copy,
//! range reads for the media check, and the "already there" check that makes reprocessing
//! idempotent. The recording processor uses them through the [`BlobStore`] port, implemented
//! over S3 by [`Blobs`] (and in memory by `fakes::MemoryBlobs`, for handler tests).
//!
//! Memory of an upload is bounded by `(max_in_flight + 1) * part_size` whatever the file size:
//! one part filling from the source while at most `max_in_flight` parts upload in background
//! tasks, so reading the source and writing to S3 overlap. Any failure (source error, a refused
//! media check, an S3 error, the future being dropped) aborts the multipart upload, so no
//! half-written object and no orphaned parts (which S3 bills for) stay behind.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::domain::S3Location;
use crate::download::DownloadError;
use crate::media::{MediaError, MediaInfo, Sniffer};
use crate::retry::{is_transient_status, Transient};

const MIB: usize = 1024 * 1024;
/// S3's limit for a single CopyObject; larger objects are copied part by part.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// Tuning of [`Blobs`]; the defaults suit Lambda (128 MiB budget, see DESIGN.md section 11).
#[derive(Debug, Clone)]
pub struct BlobSettings {
    /// Multipart part size (S3's minimum is 5 MiB for every part but the last).
    pub part_size: usize,
    /// Parts uploading at once while the next one fills.
    pub max_in_flight: usize,
    /// Progress is logged at most this often...
    pub progress_interval: Duration,
    /// ...and only once this many bytes have passed since the last line.
    pub progress_bytes: u64,
    /// Objects above this size are copied with UploadPartCopy instead of one CopyObject.
    pub single_copy_limit: u64,
    pub copy_part_size: u64,
    /// UploadPartCopy requests at once. They hold no bytes here (S3 copies), so this is bounded
    /// only to stay polite to S3, not by memory.
    pub copy_parts_in_flight: usize,
    /// Bytes fetched per range read during the media check.
    pub range_read_size: usize,
}

impl Default for BlobSettings {
    fn default() -> Self {
        Self {
            part_size: 8 * MIB,
            max_in_flight: 2,
            progress_interval: Duration::from_secs(10),
            progress_bytes: 64 * MIB as u64,
            single_copy_limit: MAX_SINGLE_COPY,
            copy_part_size: 512 * MIB as u64,
            copy_parts_in_flight: 8,
            range_read_size: 256 * 1024,
        }
    }
}

/// A failed S3 call, with whether retrying later may help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("S3 {op} on s3://{bucket}/{key} failed: {message}")]
pub struct S3Error {
    pub op: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
    /// HTTP status of the answer, when S3 answered.
    pub status: Option<u16>,
    /// Whether retrying later may help; see [`Transient`].
    pub transient: bool,
}

impl Transient for S3Error {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

impl S3Error {
    fn from_sdk<E>(
        op: &'static str,
        bucket: &str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = match &err {
            SdkError::ServiceError(e) => Some(e.raw().status().as_u16()),
            SdkError::ResponseError(e) => Some(e.raw().status().as_u16()),
            _ => None,
        };
        let code = err.code().unwrap_or_default().to_owned();
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                is_transient_status(status.unwrap_or(500))
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout"
                    )
            }
            _ => false,
        };
        Self {
            op,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: DisplayErrorContext(&err).to_string(),
            status,
            transient,
        }
    }

    /// The object or bucket does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

/// Looks at each chunk of an upload as it passes, and may refuse the upload (which is then
/// aborted). `finish` runs after the last chunk and before the upload completes.
pub trait Inspect {
    type Error;
    fn inspect(&mut self, chunk: &[u8]) -> Result<(), Self::Error>;
    fn finish(&mut self) -> Result<(), Self::Error>;
}

/// Accepts everything.
pub struct NoInspect;

impl Inspect for NoInspect {
    type Error = std::convert::Infallible;
    fn inspect(&mut self, _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The media check as an upload inspector: refuses as soon as the file is known not to be audio
/// (a text file after its first bytes), else at the end.
#[derive(Debug, Default)]
pub struct MediaCheck {
    sniffer: Option<Sniffer>,
    info: Option<MediaInfo>,
}

impl MediaCheck {
    pub fn new() -> Self {
        Self {
            sniffer: Some(Sniffer::new()),
            info: None,
        }
    }

    /// The result of a successful check.
    pub fn info(&self) -> Option<&MediaInfo> {
        self.info.as_ref()
    }
}

impl Inspect for MediaCheck {
    type Error = MediaError;
    fn inspect(&mut self, chunk: &[u8]) -> Result<(), MediaError> {
        if let Some(s) = self.sniffer.as_mut() {
            s.feed(chunk);
            if let Some(Err(e)) = s.verdict() {
                return Err(e.clone());
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        if let Some(s) = self.sniffer.take() {
            self.info = Some(s.finish()?);
        }
        Ok(())
    }
}

/// Why a streaming upload failed. It was aborted in every case.
#[derive(Debug, thiserror::Error)]
pub enum UploadError<E, R> {
    #[error("reading the source failed after {bytes} bytes: {error}")]
    Source { error: E, bytes: u64 },
    #[error("the upload was refused: {0}")]
    Rejected(R),
    #[error("the source ended after {got} bytes, {expected} were announced")]
    Incomplete { got: u64, expected: u64 },
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// Where an upload goes and what it carries.
#[derive(Debug, Clone)]
pub struct UploadTarget {
    pub bucket: String,
    pub key: String,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub location: S3Location,
    pub bytes: u64,
    /// 0 when the object was small enough for one PutObject.
    pub parts: u32,
}

/// An object as listed or headed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub location: S3Location,
    pub size: u64,
    pub metadata: HashMap<String, String>,
}

/// A download's body, as [`BlobStore::upload`] takes it.
pub type SourceBody<'a> = BoxStream<'a, Result<Bytes, DownloadError>>;

/// Why [`BlobStore::upload`] failed.
pub type SourceUploadError = UploadError<DownloadError, MediaError>;

/// The object-store operations the recording processor needs. Contract, as S3 has it and
/// [`Blobs`] implements it: an uploaded or copied object becomes visible (to `head`,
/// `find_by_prefix`) only once complete; a failed or refused upload leaves no object and no
/// multipart upload behind; errors say whether a retry may help (`S3Error::transient`) and carry
/// the HTTP status when the store answered (404 for a missing object or bucket).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Size and metadata of an object; `None` when it does not exist.
    async fn head(&self, loc: &S3Location) -> Result<Option<ObjectInfo>, S3Error>;
    /// The first non-empty complete object whose key starts with `prefix`.
    async fn find_by_prefix(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<ObjectInfo>, S3Error>;
    /// Streams `body` into `target`, `inspector` seeing every chunk and able to refuse it; a body
    /// whose length differs from `expected_len` is `Incomplete` and not stored.
    async fn upload(
        &self,
        target: &UploadTarget,
        body: SourceBody<'_>,
        expected_len: Option<u64>,
        inspector: &mut (dyn Inspect<Error = MediaError> + Send),
    ) -> Result<Uploaded, SourceUploadError>;
    /// Copies an object of `size` bytes into `target` without the bytes passing through here.
    async fn copy(
        &self,
        from: &S3Location,
        size: u64,
        target: &UploadTarget,
    ) -> Result<Uploaded, S3Error>;
    /// The media check of an object of `size` bytes, reading only what the check needs.
    async fn check_media(
        &self,
        loc: &S3Location,
        size: u64,
    ) -> Result<Result<MediaInfo, MediaError>, S3Error>;
}

/// S3 operations on audio objects.
#[derive(Clone, Debug)]
pub struct Blobs {
    s3: aws_sdk_s3::Client,
    settings: BlobSettings,
}

impl Blobs {
    /// `s3` may come with the short timeouts of [`crate::aws::load_sdk_config`]: they are
    /// lengthened here, since a part or a server-side copy legitimately takes longer than a
    /// table write.
    pub fn new(s3: &aws_sdk_s3::Client, settings: BlobSettings) -> Self {
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(crate::aws::CONNECT_TIMEOUT)
            .operation_attempt_timeout(Duration::from_secs(120))
            .operation_timeout(Duration::from_secs(600))
            .build();
        let config = s3.config().to_builder().timeout_config(timeouts).build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(config),
            settings,
        }
    }

    /// Size and metadata of an object; `None` when it does not exist.
    pub async fn head(&self, loc: &S3Location) -> Result<Option<ObjectInfo>, S3Error> {
        match self
            .s3
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                location: loc.clone(),
                size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
                metadata: out.metadata().cloned().unwrap_or_default(),
            })),
            Err(e) => {
                let e = S3Error::from_sdk("HeadObject", &loc.bucket, &loc.key, e);
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The first non-empty object whose key starts with `prefix`. Objects written by
    /// [`Blobs::upload_stream`] and [`Blobs::copy`] exist only once complete (S3 makes a
    /// multipart object visible at CompleteMultipartUpload), so finding one means the work was
    /// done.
    pub async fn find_by_prefix(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<ObjectInfo>, S3Error> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(10)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectsV2", bucket, prefix, e))?;
        Ok(out.contents().iter().find_map(|o| {
            let size = u64::try_from(o.size().unwrap_or(0)).unwrap_or(0);
            (size > 0).then(|| ObjectInfo {
                location: S3Location {
                    bucket: bucket.to_owned(),
                    key: o.key().unwrap_or_default().to_owned(),
                },
                size,
                metadata: HashMap::new(),
            })
        }))
    }

    /// Streams `body` into `target`: one PutObject when the whole body fits in one part, else a
    /// multipart upload with at most `max_in_flight` parts uploading while the next one fills.
    /// `inspector` sees every chunk and may refuse the upload; `expected_len` (the source's
    /// Content-Length) turns a short body into an error and enables percentages in the logs.
    pub async fn upload_stream<S, E, I>(
        &self,
        target: &UploadTarget,
        body: S,
        expected_len: Option<u64>,
        inspector: &mut I,
    ) -> Result<Uploaded, UploadError<E, I::Error>>
    where
        S: Stream<Item = Result<Bytes, E>>,
        I: Inspect + ?Sized,
    {
        let mut upload = MultipartUpload::new(self, target);
        let result = self
            .upload_inner(&mut upload, target, body, expected_len, inspector)
            .await;
        if result.is_err() {
            upload.abort().await;
        }
        result
    }

    async fn upload_inner<S, E, I>(
        &self,
        upload: &mut MultipartUpload,
        target: &UploadTarget,
        body: S,
        expected_len: Option<u64>,
        inspector: &mut I,
    ) -> Result<Uploaded, UploadError<E, I::Error>>
    where
        S: Stream<Item = Result<Bytes, E>>,
        I: Inspect + ?Sized,
    {
        let part_size = self.settings.part_size.max(1);
        let mut progress = Progress::new(&self.settings, target, expected_len);
        let mut part = BytesMut::with_capacity(part_size);
        let mut total = 0u64;
        futures::pin_mut!(body);
        while let Some(next) = body.next().await {
            let chunk = next.map_err(|error| UploadError::Source {
                error,
                bytes: total,
            })?;
            inspector.inspect(&chunk).map_err(UploadError::Rejected)?;
            total += chunk.len() as u64;
            progress.tick(total);
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let n = (part_size - part.len()).min(rest.len());
                part.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if part.len() == part_size {
                    let full = std::mem::replace(&mut part, BytesMut::with_capacity(part_size));
                    upload.send_part(full.freeze()).await?;
                }
            }
        }
        if let Some(expected) = expected_len {
            if total != expected {
                return Err(UploadError::Incomplete {
                    got: total,
                    expected,
                });
            }
        }
        inspector.finish().map_err(UploadError::Rejected)?;
        let parts = if upload.started() {
            if !part.is_empty() {
                upload.send_part(part.freeze()).await?;
            }
            upload.complete().await?
        } else {
            self.put_small(target, part.freeze()).await?;
            0
        };
        progress.done(total);
        Ok(Uploaded {
            location: S3Location {
                bucket: target.bucket.clone(),
                key: target.key.clone(),
            },
            bytes: total,
            parts,
        })
    }

    async fn put_small(&self, target: &UploadTarget, body: Bytes) -> Result<(), S3Error> {
        self.s3
            .put_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .set_content_type(target.content_type.clone())
            .set_metadata(Some(target.metadata.clone()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("PutObject", &target.bucket, &target.key, e))?;
        Ok(())
    }

    /// Copies an object of `size` bytes server-side (the bytes never pass through this process):
    /// CopyObject up to 5 GiB, UploadPartCopy above.
    pub async fn copy(
        &self,
        from: &S3Location,
        size: u64,
        target: &UploadTarget,
    ) -> Result<Uploaded, S3Error> {
        let source = copy_source(from);
        let to = S3Location {
            bucket: target.bucket.clone(),
            key: target.key.clone(),
        };
        if size <= self.settings.single_copy_limit {
            self.s3
                .copy_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .copy_source(&source)
                .metadata_directive(MetadataDirective::Replace)
                .set_content_type(target.content_type.clone())
                .set_metadata(Some(target.metadata.clone()))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("CopyObject", &target.bucket, &target.key, e))?;
            return Ok(Uploaded {
                location: to,
                bytes: size,
                parts: 0,
            });
        }
        let mut upload = MultipartUpload::new(self, target);
        upload.max_in_flight = self.settings.copy_parts_in_flight.max(1);
        let result = async {
            let step = self.settings.copy_part_size.max(1);
            let mut start = 0u64;
            while start < size {
                let end = (start + step).min(size) - 1;
                upload.copy_part(&source, start, end).await?;
                start = end + 1;
            }
            upload.complete().await
        }
        .await;
        match result {
            Ok(parts) => Ok(Uploaded {
                location: to,
                bytes: size,
                parts,
            }),
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    /// Bytes `[start, start + len)` of an object (fewer at its end).
    pub async fn read_range(
        &self,
        loc: &S3Location,
        start: u64,
        len: u64,
    ) -> Result<Bytes, S3Error> {
        let end = start + len.max(1) - 1;
        let out = self
            .s3
            .get_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("GetObject", &loc.bucket, &loc.key, e))?;
        let data = out.body.collect().await.map_err(|e| S3Error {
            op: "GetObject",
            bucket: loc.bucket.clone(),
            key: loc.key.clone(),
            message: e.to_string(),
            status: None,
            transient: true,
        })?;
        Ok(data.into_bytes())
    }

    /// Runs the media check on an object of `size` bytes with range reads, jumping over the
    /// payload it does not need (an mp4 `mdat` before a trailing `moov`).
    pub async fn check_media(
        &self,
        loc: &S3Location,
        size: u64,
    ) -> Result<Result<MediaInfo, MediaError>, S3Error> {
        let reads = (self.settings.range_read_size, self.settings.part_size);
        check_media_by_ranges(loc, size, reads, |pos, len| self.read_range(loc, pos, len)).await
    }
}

/// Everything but RFC 3986's unreserved characters and `/`, which separates the key's parts.
const COPY_SOURCE_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

#[async_trait]
impl BlobStore for Blobs {
    async fn head(&self, loc: &S3Location) -> Result<Option<ObjectInfo>, S3Error> {
        Blobs::head(self, loc).await
    }
    async fn find_by_prefix(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<ObjectInfo>, S3Error> {
        Blobs::find_by_prefix(self, bucket, prefix).await
    }
    async fn upload(
        &self,
        target: &UploadTarget,
        body: SourceBody<'_>,
        expected_len: Option<u64>,
        inspector: &mut (dyn Inspect<Error = MediaError> + Send),
    ) -> Result<Uploaded, SourceUploadError> {
        self.upload_stream(target, body, expected_len, inspector)
            .await
    }
    async fn copy(
        &self,
        from: &S3Location,
        size: u64,
        target: &UploadTarget,
    ) -> Result<Uploaded, S3Error> {
        Blobs::copy(self, from, size, target).await
    }
    async fn check_media(
        &self,
        loc: &S3Location,
        size: u64,
    ) -> Result<Result<MediaInfo, MediaError>, S3Error> {
        Blobs::check_media(self, loc, size).await
    }
}

/// The media check by range reads of `[min, max]` bytes (`read(start, len)`), jumping over the
/// payload the check does not need; shared by every [`BlobStore`].
pub async fn check_media_by_ranges<F, Fut>(
    loc: &S3Location,
    size: u64,
    (min_read, max_read): (usize, usize),
    mut read: F,
) -> Result<Result<MediaInfo, MediaError>, S3Error>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Bytes, S3Error>>,
{
    let mut sniffer = Sniffer::new();
    let mut reads = 0u32;
    loop {
        if sniffer.verdict().is_some() {
            break;
        }
        if let Some(offset) = sniffer.resume_offset() {
            sniffer.jump_to(offset.min(size));
        }
        let pos = sniffer.position();
        if pos >= size {
            break;
        }
        let len = sniffer.bytes_wanted().clamp(min_read, max_read) as u64;
        let data = read(pos, len.min(size - pos)).await?;
        reads += 1;
        if data.is_empty() {
            break;
        }
        sniffer.feed(&data);
    }
    let result = sniffer.finish();
    info!(bucket = %loc.bucket, key = %loc.key, size, reads, ok = result.is_ok(), "media check by range reads");
    Ok(result)
}

/// `bucket/key` with the key percent-encoded, as CopySource wants it.
fn copy_source(from: &S3Location) -> String {
    format!(
        "{}/{}",
        from.bucket,
        utf8_percent_encode(&from.key, COPY_SOURCE_KEY)
    )
}

/// A multipart upload, created lazily with its first part, with its in-flight parts. If it is
/// dropped while started and neither completed nor aborted, it aborts itself in the background.
struct MultipartUpload {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    content_type: Option<String>,
    metadata: HashMap<String, String>,
    max_in_flight: usize,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, S3Error>>,
    done: Vec<CompletedPart>,
}

impl MultipartUpload {
    fn new(blobs: &Blobs, target: &UploadTarget) -> Self {
        Self {
            s3: blobs.s3.clone(),
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            content_type: target.content_type.clone(),
            metadata: target.metadata.clone(),
            max_in_flight: blobs.settings.max_in_flight.max(1),
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
        }
    }

    fn started(&self) -> bool {
        self.upload_id.is_some()
    }

    /// An error without an SDK error value (a missing field, a panicked task).
    fn other(&self, op: &'static str, message: String) -> S3Error {
        S3Error {
            op,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            message,
            status: None,
            transient: true,
        }
    }

    async fn upload_id(&mut self) -> Result<String, S3Error> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        self.abort_left_behind().await?;
        let out = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_content_type(self.content_type.clone())
            .set_metadata(Some(self.metadata.clone()))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", &self.bucket, &self.key, e))?;
        let id = out.upload_id().unwrap_or_default().to_owned();
        if id.is_empty() {
            return Err(self.other("CreateMultipartUpload", "no upload id in the answer".into()));
        }
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Waits for finished parts until fewer than `limit` are in flight.
    async fn drain_to(&mut self, limit: usize) -> Result<(), S3Error> {
        while self.in_flight.len() > limit {
            match self.in_flight.join_next().await {
                Some(Ok(part)) => self.done.push(part?),
                Some(Err(join)) => {
                    return Err(self.other("UploadPart", format!("part task failed: {join}")))
                }
                None => break,
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, body: Bytes) -> Result<(), S3Error> {
        let upload_id = self.upload_id().await?;
        self.drain_to(self.max_in_flight - 1).await?;
        let number = self.next_part;
        self.next_part += 1;
        let (s3, bucket, key) = (self.s3.clone(), self.bucket.clone(), self.key.clone());
        self.in_flight.spawn(async move {
            let out = s3
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("UploadPart", &bucket, &key, e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build())
        });
        Ok(())
    }

    /// Starts copying bytes `start..=end` of `source` as the next part, in the background like
    /// [`Self::send_part`]: S3 copies the parts at once, each one's time is S3's, not ours.
    async fn copy_part(&mut self, source: &str, start: u64, end: u64) -> Result<(), S3Error> {
        let upload_id = self.upload_id().await?;
        self.drain_to(self.max_in_flight - 1).await?;
        let number = self.next_part;
        self.next_part += 1;
        let (s3, bucket, key) = (self.s3.clone(), self.bucket.clone(), self.key.clone());
        let source = source.to_owned();
        self.in_flight.spawn(async move {
            let out = s3
                .upload_part_copy()
                .bucket(&bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(source)
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("UploadPartCopy", &bucket, &key, e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(
                    out.copy_part_result()
                        .and_then(|r| r.e_tag())
                        .map(str::to_owned),
                )
                .build())
        });
        Ok(())
    }

    /// Completes the upload; returns the number of parts.
    async fn complete(&mut self) -> Result<u32, S3Error> {
        let upload_id = self.upload_id().await?;
        self.drain_to(0).await?;
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let count = parts.len() as u32;
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                S3Error::from_sdk("CompleteMultipartUpload", &self.bucket, &self.key, e)
            })?;
        self.upload_id = None;
        Ok(count)
    }

    /// Aborts the unfinished multipart uploads of this key that an earlier attempt left behind:
    /// one that could not abort its own (S3 unreachable when it failed) or was killed with its
    /// function. The key names one recording's audio, so an upload of it is ours; a concurrent
    /// delivery of the same record that loses its upload here fails, is redelivered and then
    /// finds the object stored. One ListMultipartUploads, plus one abort per upload found.
    ///
    /// An S3-compatible store that does not implement the listing (s3s-fs, which the recording
    /// benchmark runs against, answers 501 `NotImplemented`) has nothing this step can find:
    /// the upload goes ahead, and the bucket's lifecycle rule is left to clean up, as it is
    /// for an upload whose abort failed.
    async fn abort_left_behind(&self) -> Result<(), S3Error> {
        let listed = match self
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(&self.key)
            .send()
            .await
        {
            Ok(listed) => listed,
            Err(e) if e.code() == Some("NotImplemented") => {
                warn!(bucket = %self.bucket, key = %self.key,
                    "the S3 store cannot list multipart uploads: none left behind can be aborted");
                return Ok(());
            }
            Err(e) => {
                return Err(S3Error::from_sdk(
                    "ListMultipartUploads",
                    &self.bucket,
                    &self.key,
                    e,
                ))
            }
        };
        for upload in listed.uploads() {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if key != self.key {
                continue;
            }
            abort_upload(&self.s3, &self.bucket, key, upload_id).await?;
            warn!(bucket = %self.bucket, key, upload_id, initiated = ?upload.initiated(),
                "aborted a multipart upload an earlier attempt left behind");
        }
        Ok(())
    }

    /// Stops the parts in flight and aborts the upload, if it was started.
    async fn abort(&mut self) {
        self.in_flight.shutdown().await;
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        match abort_upload(&self.s3, &self.bucket, &self.key, &upload_id).await {
            Ok(()) => info!(bucket = %self.bucket, key = %self.key, "multipart upload aborted"),
            Err(e) => {
                warn!(bucket = %self.bucket, key = %self.key, upload_id = %upload_id, error = %e,
                "could not abort the multipart upload; a bucket lifecycle rule must clean it up")
            }
        }
    }
}

async fn abort_upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), S3Error> {
    s3.abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("AbortMultipartUpload", bucket, key, e))?;
    Ok(())
}

impl Drop for MultipartUpload {
    fn drop(&mut self) {
        // Cancelled mid-upload (the invocation's future was dropped): abort in the background.
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            warn!(bucket = %self.bucket, key = %self.key, "dropped outside a runtime; multipart upload left behind");
            return;
        };
        let (s3, bucket, key) = (self.s3.clone(), self.bucket.clone(), self.key.clone());
        handle.spawn(async move {
            if let Err(e) = abort_upload(&s3, &bucket, &key, &upload_id).await {
                warn!(bucket = %bucket, key = %key, error = %e, "could not abort a cancelled upload");
            }
        });
    }
}

/// Progress lines on long transfers: at most one per interval, and only after enough bytes.
struct Progress<'a> {
    target: &'a UploadTarget,
    expected: Option<u64>,
    started: Instant,
    last_at: Instant,
    last_bytes: u64,
    interval: Duration,
    min_bytes: u64,
}

impl<'a> Progress<'a> {
    fn new(settings: &BlobSettings, target: &'a UploadTarget, expected: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            target,
            expected,
            started: now,
            last_at: now,
            last_bytes: 0,
            interval: settings.progress_interval,
            min_bytes: settings.progress_bytes,
        }
    }

    fn tick(&mut self, bytes: u64) {
        if self.last_at.elapsed() < self.interval || bytes - self.last_bytes < self.min_bytes {
            return;
        }
        self.last_at = Instant::now();
        self.last_bytes = bytes;
        self.log(bytes, "upload progress");
    }

    fn done(&self, bytes: u64) {
        self.log(bytes, "upload complete");
    }

    fn log(&self, bytes: u64, msg: &'static str) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let mib_per_s = (bytes as f64 / MIB as f64 / secs * 10.0).round() / 10.0;
        match self.expected.filter(|&e| e > 0) {
            Some(total) => {
                let percent = (bytes as f64 * 100.0 / total as f64).round() as u64;
                info!(bucket = %self.target.bucket, key = %self.target.key, bytes, total, percent, mib_per_s, "{msg}")
            }
            None => {
                info!(bucket = %self.target.bucket, key = %self.target.key, bytes, mib_per_s, "{msg}")
            }
        }
    }
}

#[cfg(test)]
mod tests;
