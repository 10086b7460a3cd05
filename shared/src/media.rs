//! Incremental check that a file is a media container with at least one audio track.
//!
//! [`Sniffer`] is fed the bytes of a file in order as they stream past (`feed`), and answers at
//! `finish`. It never holds the file: it walks the container's top-level structure, skips payload
//! (an mp4 `mdat`, a Matroska `Cluster`, a RIFF `data` chunk) without copying it, and buffers only
//! the one element that describes the tracks (mp4 `moov`, Matroska `Tracks`), capped at
//! [`MAX_BUFFERED`]. Because it knows what it skips, a caller reading an object by ranges can ask
//! for the next offset it needs ([`Sniffer::resume_offset`]) and jump there, so an mp4 whose
//! `moov` sits at the end is checked without reading the `mdat` in between.
//!
//! Recognised: mp4/m4a/mov (a `trak` whose `hdlr` is `soun`), webm/mkv (a `TrackEntry` with
//! `TrackType` 2), wav (RIFF/WAVE with a `fmt ` chunk), ogg (a beginning-of-stream page of
//! Opus, Vorbis, FLAC or Speex), mp3 (an MPEG audio frame, after an optional ID3v2 tag).

use std::fmt;

/// Most bytes the sniffer buffers for one element (`moov`, `Tracks`, an ID3 tag is skipped, not
/// buffered). Real `moov` boxes of multi-hour recordings are a few MiB.
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// How far past an ID3 tag (padding) we look for the first MPEG audio frame.
const MP3_SYNC_SEARCH: u64 = 64 * 1024;

/// The kind of container found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// ISO base media: mp4, m4a, mov.
    Mp4,
    Webm,
    Matroska,
    Wav,
    Ogg,
    Mp3,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Webm => "webm",
            Container::Matroska => "mkv",
            Container::Wav => "wav",
            Container::Ogg => "ogg",
            Container::Mp3 => "mp3",
        }
    }

    /// File extension for objects of this kind.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Webm => "video/webm",
            Container::Matroska => "video/x-matroska",
            Container::Wav => "audio/wav",
            Container::Ogg => "audio/ogg",
            Container::Mp3 => "audio/mpeg",
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the sniffer found: the container and the codec of the first audio track, when the
/// container names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub container: Container,
    pub audio_codec: Option<String>,
}

/// Why a file is not usable audio. Every variant is permanent: the same bytes give the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the file is empty")]
    Empty,
    #[error("not a media container (starts with {found})")]
    NotMedia { found: String },
    #[error("{container} without an audio track")]
    NoAudio { container: Container },
    #[error("{container} file ends before {what}")]
    Truncated {
        container: Container,
        what: &'static str,
    },
    #[error("{container} file is malformed: {reason}")]
    Malformed {
        container: Container,
        reason: String,
    },
    #[error("{container} {what} of {size} bytes is larger than the {limit} bytes the check reads")]
    TooLarge {
        container: Container,
        what: &'static str,
        size: u64,
        limit: usize,
    },
}

/// Recognises a container from the first bytes of a file (at least 12 are needed to tell them
/// all apart; fewer answer `None`). Used to name an object before the full check has finished.
pub fn detect(prefix: &[u8]) -> Option<Container> {
    if prefix.len() >= 12 && prefix.starts_with(b"RIFF") && &prefix[8..12] == b"WAVE" {
        return Some(Container::Wav);
    }
    if prefix.starts_with(b"OggS") {
        return Some(Container::Ogg);
    }
    if prefix.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // webm vs mkv is only known from the DocType inside the header; webm is what browsers
        // and Daily produce.
        return Some(if contains(prefix, b"matroska") {
            Container::Matroska
        } else {
            Container::Webm
        });
    }
    if prefix.len() >= 8 && MP4_FIRST_BOXES.contains(&fourcc(&prefix[4..8])) {
        return Some(Container::Mp4);
    }
    if prefix.starts_with(b"ID3") || (prefix.len() >= 4 && mpeg_frame_len(&prefix[..4]).is_some()) {
        return Some(Container::Mp3);
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Box types an ISO media file may start with.
const MP4_FIRST_BOXES: [[u8; 4]; 7] = [
    *b"ftyp", *b"moov", *b"mdat", *b"free", *b"wide", *b"skip", *b"pnot",
];

fn fourcc(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Bytes the sniffer must read before deciding what comes next.
#[derive(Debug)]
enum State {
    /// The first bytes of the file.
    Detect,
    /// At a top-level box header (8 bytes, 16 with a 64-bit size).
    Mp4Box {
        seen_ftyp: bool,
    },
    /// Buffering the whole `moov` box (its size is `want`).
    Mp4Moov,
    /// At an EBML element header inside the EBML root or the Segment.
    EbmlHeader {
        in_segment: bool,
    },
    /// Buffering the EBML header element's body to read its DocType.
    EbmlDocType,
    /// Buffering the Tracks element.
    MkvTracks,
    /// At a RIFF chunk header (8 bytes).
    RiffChunk,
    /// At an Ogg page header (27 bytes, then the segment table, then the first packet's start).
    OggPage {
        audio_codec: Option<&'static str>,
    },
    OggSegments {
        audio_codec: Option<&'static str>,
        bos: bool,
    },
    OggPacket {
        audio_codec: Option<&'static str>,
        bos: bool,
        rest: u64,
    },
    /// ID3v2 tag header (10 bytes).
    Id3,
    /// Looking for an MPEG frame header, skipping zero padding, `searched` bytes so far.
    MpegSync {
        searched: u64,
    },
    Done(Result<MediaInfo, MediaError>),
}

/// The incremental checker. See the module documentation.
#[derive(Debug)]
pub struct Sniffer {
    state: State,
    /// Bytes collected for the current step; a step runs when it holds `want` bytes.
    buf: Vec<u8>,
    want: usize,
    /// Payload bytes still to pass over without looking; `u64::MAX` means "to the end".
    skip: u64,
    /// Bytes of the file seen (fed or jumped over) so far.
    pos: u64,
    /// Matroska DocType once read.
    container: Option<Container>,
    /// First bytes, kept to describe a file that is not media.
    head: [u8; 12],
    head_len: usize,
    /// End offset of the Matroska Segment, when its size is known.
    segment_end: Option<u64>,
}

impl Default for Sniffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sniffer {
    pub fn new() -> Self {
        Self {
            state: State::Detect,
            buf: Vec::with_capacity(64),
            want: 12,
            skip: 0,
            pos: 0,
            container: None,
            head: [0; 12],
            head_len: 0,
            segment_end: None,
        }
    }

    /// The answer, once known before the end of the file (a text file is refused from its first
    /// bytes; an mp4 with `moov` first is accepted long before its `mdat` ends).
    pub fn verdict(&self) -> Option<&Result<MediaInfo, MediaError>> {
        match &self.state {
            State::Done(r) => Some(r),
            _ => None,
        }
    }

    /// The container recognised so far, before the verdict.
    pub fn container(&self) -> Option<Container> {
        match &self.state {
            State::Done(Ok(info)) => Some(info.container),
            _ => self.container,
        }
    }

    /// Bytes of the file accounted for so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The offset of the next byte the sniffer needs, when it is skipping payload it does not
    /// need to see; `None` when it needs the very next byte (or is done, or skips to the end).
    pub fn resume_offset(&self) -> Option<u64> {
        if self.skip == 0 || self.skip == u64::MAX || self.verdict().is_some() {
            return None;
        }
        Some(self.pos.saturating_add(self.skip))
    }

    /// How many more bytes the current step needs (a hint for range reads).
    pub fn bytes_wanted(&self) -> usize {
        self.want.saturating_sub(self.buf.len()).max(1)
    }

    /// Jumps forward to `offset` without feeding the bytes in between; only within a skip
    /// ([`Sniffer::resume_offset`]). Returns whether the jump was allowed.
    pub fn jump_to(&mut self, offset: u64) -> bool {
        if offset < self.pos || offset - self.pos > self.skip {
            return false;
        }
        self.skip -= offset - self.pos;
        self.pos = offset;
        true
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.head_len < self.head.len() {
            let n = (self.head.len() - self.head_len).min(data.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
            self.head_len += n;
        }
        while !data.is_empty() && !matches!(self.state, State::Done(_)) {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                if self.skip != u64::MAX {
                    self.skip -= n as u64;
                }
                self.pos += n as u64;
                data = &data[n..];
                continue;
            }
            let n = (self.want - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            self.pos += n as u64;
            data = &data[n..];
            if self.buf.len() == self.want {
                self.step();
            }
        }
    }

    /// The answer at the end of the file.
    pub fn finish(mut self) -> Result<MediaInfo, MediaError> {
        // A step may be decidable with fewer bytes than it asked for at the end of the file.
        if !matches!(self.state, State::Done(_)) && !self.buf.is_empty() {
            self.step_at_eof();
        }
        match std::mem::replace(&mut self.state, State::Detect) {
            State::Done(r) => r,
            State::Detect => Err(if self.head_len == 0 {
                MediaError::Empty
            } else {
                self.not_media()
            }),
            State::Mp4Box { seen_ftyp } => Err(if seen_ftyp {
                MediaError::Truncated {
                    container: Container::Mp4,
                    what: "its moov box (no track list)",
                }
            } else {
                MediaError::Malformed {
                    container: Container::Mp4,
                    reason: "no moov box".into(),
                }
            }),
            State::Mp4Moov => Err(MediaError::Truncated {
                container: Container::Mp4,
                what: "the end of its moov box",
            }),
            State::EbmlHeader { .. } | State::EbmlDocType | State::MkvTracks => {
                Err(MediaError::Truncated {
                    container: self.container.unwrap_or(Container::Webm),
                    what: "its Tracks element",
                })
            }
            State::RiffChunk => Err(MediaError::Truncated {
                container: Container::Wav,
                what: "its fmt chunk",
            }),
            State::OggPage { audio_codec }
            | State::OggSegments { audio_codec, .. }
            | State::OggPacket { audio_codec, .. } => match audio_codec {
                Some(codec) => Ok(MediaInfo {
                    container: Container::Ogg,
                    audio_codec: Some(codec.into()),
                }),
                None => Err(MediaError::Truncated {
                    container: Container::Ogg,
                    what: "its stream headers",
                }),
            },
            State::Id3 | State::MpegSync { .. } => Err(MediaError::Truncated {
                container: Container::Mp3,
                what: "its first audio frame",
            }),
        }
    }

    fn done(&mut self, result: Result<MediaInfo, MediaError>) {
        self.state = State::Done(result);
        self.buf = Vec::new();
        self.skip = 0;
    }

    fn ok(&mut self, container: Container, codec: Option<String>) {
        self.done(Ok(MediaInfo {
            container,
            audio_codec: codec,
        }));
    }

    fn fail(&mut self, e: MediaError) {
        self.done(Err(e));
    }

    /// Next step reads `n` fresh bytes.
    fn next(&mut self, state: State, n: usize) {
        self.state = state;
        self.buf.clear();
        self.want = n;
    }

    fn not_media(&self) -> MediaError {
        let head = &self.head[..self.head_len];
        let printable = head
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\n' || b == b'\r' || b == b'\t');
        let found = if printable {
            format!("text {:?}", String::from_utf8_lossy(head))
        } else {
            format!("bytes {}", hex::encode(head))
        };
        MediaError::NotMedia { found }
    }

    fn step_at_eof(&mut self) {
        if let State::Detect = self.state {
            let buf = std::mem::take(&mut self.buf);
            match detect(&buf) {
                Some(Container::Mp3) if buf.len() >= 4 && !buf.starts_with(b"ID3") => {
                    self.ok(Container::Mp3, Some("mp3".into()))
                }
                _ => {
                    let e = self.not_media();
                    self.fail(e)
                }
            }
        }
    }

    fn step(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Detect);
        match state {
            State::Detect => self.step_detect(),
            State::Mp4Box { seen_ftyp } => self.step_mp4_box(seen_ftyp),
            State::Mp4Moov => {
                let moov = std::mem::take(&mut self.buf);
                match mp4_audio_track(&moov[8..]) {
                    Ok(Some(codec)) => self.ok(Container::Mp4, codec),
                    Ok(None) => self.fail(MediaError::NoAudio {
                        container: Container::Mp4,
                    }),
                    Err(reason) => self.fail(MediaError::Malformed {
                        container: Container::Mp4,
                        reason,
                    }),
                }
            }
            State::EbmlHeader { in_segment } => self.step_ebml(in_segment),
            State::EbmlDocType => {
                let body = std::mem::take(&mut self.buf);
                let container = match ebml_children(&body)
                    .find(|(id, _)| *id == EBML_DOCTYPE)
                    .map(|(_, v)| v)
                {
                    Some(b"matroska") => Container::Matroska,
                    Some(b"webm") | None => Container::Webm,
                    Some(other) => {
                        let reason =
                            format!("unknown DocType {:?}", String::from_utf8_lossy(other));
                        return self.fail(MediaError::Malformed {
                            container: Container::Matroska,
                            reason,
                        });
                    }
                };
                self.container = Some(container);
                self.next(State::EbmlHeader { in_segment: false }, 1);
            }
            State::MkvTracks => {
                let tracks = std::mem::take(&mut self.buf);
                let container = self.container.unwrap_or(Container::Webm);
                match mkv_audio_track(&tracks) {
                    Some(codec) => self.ok(container, codec),
                    None => self.fail(MediaError::NoAudio { container }),
                }
            }
            State::RiffChunk => {
                let id = fourcc(&self.buf[0..4]);
                let size = u64::from(le_u32(&self.buf[4..8]));
                if &id == b"fmt " {
                    // The fmt chunk is what makes a RIFF/WAVE file audio.
                    return self.ok(Container::Wav, None);
                }
                if &id == b"data" {
                    return self.fail(MediaError::Malformed {
                        container: Container::Wav,
                        reason: "data chunk before the fmt chunk".into(),
                    });
                }
                // Chunks are padded to an even size.
                self.skip = size + (size & 1);
                self.next(State::RiffChunk, 8);
            }
            State::OggPage { audio_codec } => {
                if &self.buf[0..4] != b"OggS" {
                    return self.ogg_end(audio_codec);
                }
                let bos = self.buf[5] & 0x02 != 0;
                if !bos {
                    // Every stream's first page comes before any other page: the set is complete.
                    return self.ogg_end(audio_codec);
                }
                let nsegs = usize::from(self.buf[26]);
                if nsegs == 0 {
                    return self.next(State::OggPage { audio_codec }, 27);
                }
                self.next(State::OggSegments { audio_codec, bos }, nsegs);
            }
            State::OggSegments { audio_codec, bos } => {
                let total: u64 = self.buf.iter().map(|&b| u64::from(b)).sum();
                let head = total.min(8) as usize;
                if head == 0 {
                    return self.next(State::OggPage { audio_codec }, 27);
                }
                self.next(
                    State::OggPacket {
                        audio_codec,
                        bos,
                        rest: total - head as u64,
                    },
                    head,
                );
            }
            State::OggPacket {
                mut audio_codec,
                bos,
                rest,
            } => {
                if bos && audio_codec.is_none() {
                    audio_codec = ogg_audio_codec(&self.buf);
                }
                self.skip = rest;
                self.next(State::OggPage { audio_codec }, 27);
            }
            State::Id3 => {
                let b = &self.buf;
                let size = b[6..10]
                    .iter()
                    .fold(0u64, |acc, &x| (acc << 7) | u64::from(x & 0x7F));
                let footer = if b[5] & 0x10 != 0 { 10 } else { 0 };
                self.skip = size + footer;
                self.next(State::MpegSync { searched: 0 }, 4);
            }
            State::MpegSync { searched } => {
                if mpeg_frame_len(&self.buf).is_some() {
                    return self.ok(Container::Mp3, Some("mp3".into()));
                }
                if self.buf[0] == 0 && searched < MP3_SYNC_SEARCH {
                    // Tag padding: slide one byte.
                    let rest = self.buf[1..].to_vec();
                    self.next(
                        State::MpegSync {
                            searched: searched + 1,
                        },
                        4,
                    );
                    self.buf.extend_from_slice(&rest);
                    return;
                }
                self.fail(MediaError::Malformed {
                    container: Container::Mp3,
                    reason: "no MPEG audio frame after the ID3 tag".into(),
                });
            }
            State::Done(r) => self.state = State::Done(r),
        }
    }

    fn ogg_end(&mut self, audio_codec: Option<&'static str>) {
        match audio_codec {
            Some(c) => self.ok(Container::Ogg, Some(c.into())),
            None => self.fail(MediaError::NoAudio {
                container: Container::Ogg,
            }),
        }
    }

    fn step_detect(&mut self) {
        let Some(container) = detect(&self.buf) else {
            let e = self.not_media();
            return self.fail(e);
        };
        let first = std::mem::take(&mut self.buf);
        self.container = Some(container);
        // Re-run the first bytes through the container's own states.
        self.pos -= first.len() as u64;
        match container {
            Container::Mp4 => self.next(State::Mp4Box { seen_ftyp: false }, 8),
            Container::Webm | Container::Matroska => {
                self.next(State::EbmlHeader { in_segment: false }, 1)
            }
            Container::Wav => {
                self.pos += 12;
                self.next(State::RiffChunk, 8);
                return self.feed_internal(&first[12..]);
            }
            Container::Ogg => self.next(State::OggPage { audio_codec: None }, 27),
            Container::Mp3 if first.starts_with(b"ID3") => self.next(State::Id3, 10),
            Container::Mp3 => self.next(State::MpegSync { searched: 0 }, 4),
        }
        self.feed_internal(&first);
    }

    /// `feed` without touching the remembered head bytes.
    fn feed_internal(&mut self, data: &[u8]) {
        let head_len = self.head_len;
        self.head_len = self.head.len();
        self.feed(data);
        self.head_len = head_len;
    }

    fn step_mp4_box(&mut self, seen_ftyp: bool) {
        let size32 = be_u32(&self.buf[0..4]);
        let kind = fourcc(&self.buf[4..8]);
        let (size, header) = match size32 {
            1 => {
                if self.buf.len() < 16 {
                    self.state = State::Mp4Box { seen_ftyp };
                    self.want = 16;
                    return;
                }
                (be_u64(&self.buf[8..16]), 16u64)
            }
            0 => (u64::MAX, 8),
            n => (u64::from(n), 8),
        };
        if size < header {
            return self.fail(MediaError::Malformed {
                container: Container::Mp4,
                reason: format!(
                    "box {:?} declares {size} bytes",
                    String::from_utf8_lossy(&kind)
                ),
            });
        }
        let seen_ftyp = seen_ftyp || &kind == b"ftyp";
        if &kind == b"moov" {
            if size > MAX_BUFFERED as u64 {
                return self.fail(MediaError::TooLarge {
                    container: Container::Mp4,
                    what: "moov box",
                    size,
                    limit: MAX_BUFFERED,
                });
            }
            // Keep the header so the buffer's length matches the box size; drop any largesize.
            let keep = self.buf[..8].to_vec();
            self.state = State::Mp4Moov;
            self.buf.clear();
            self.buf.extend_from_slice(&keep);
            self.want = (size - header + 8) as usize;
            self.buf.reserve(self.want - self.buf.len());
            return;
        }
        if size == u64::MAX {
            // Last box, to the end of the file: no moov after it.
            return self.fail(MediaError::Malformed {
                container: Container::Mp4,
                reason: "no moov box".into(),
            });
        }
        self.skip = size - header;
        self.next(State::Mp4Box { seen_ftyp }, 8);
    }

    fn step_ebml(&mut self, in_segment: bool) {
        let Some(id_len) = vint_len(self.buf[0]) else {
            return self.fail(self.mkv_malformed("invalid element id"));
        };
        if id_len > 4 {
            return self.fail(self.mkv_malformed("element id longer than 4 bytes"));
        }
        if self.buf.len() < id_len + 1 {
            self.want = id_len + 1;
            self.state = State::EbmlHeader { in_segment };
            return;
        }
        let Some(size_len) = vint_len(self.buf[id_len]) else {
            return self.fail(self.mkv_malformed("invalid element size"));
        };
        if self.buf.len() < id_len + size_len {
            self.want = id_len + size_len;
            self.state = State::EbmlHeader { in_segment };
            return;
        }
        let id = self.buf[..id_len]
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let size = vint_value(&self.buf[id_len..id_len + size_len]);
        let container = self.container.unwrap_or(Container::Webm);
        match (id, in_segment) {
            (EBML_HEADER, false) => {
                let Some(size) = size.filter(|&s| s <= 4096) else {
                    return self.fail(self.mkv_malformed("EBML header of unusable size"));
                };
                self.next(State::EbmlDocType, size as usize);
                if size == 0 {
                    self.step();
                }
            }
            (MKV_SEGMENT, false) => {
                self.segment_end = size.map(|s| self.pos + s);
                self.next(State::EbmlHeader { in_segment: true }, 1);
            }
            (MKV_TRACKS, true) => match size {
                Some(s) if s > MAX_BUFFERED as u64 => self.fail(MediaError::TooLarge {
                    container,
                    what: "Tracks element",
                    size: s,
                    limit: MAX_BUFFERED,
                }),
                Some(0) => self.fail(MediaError::NoAudio { container }),
                Some(s) => self.next(State::MkvTracks, s as usize),
                None => self.fail(self.mkv_malformed("Tracks element of unknown size")),
            },
            (_, _) => match size {
                Some(s) => {
                    self.skip = s;
                    self.next(State::EbmlHeader { in_segment }, 1);
                }
                None if id == MKV_CLUSTER => self.fail(MediaError::Malformed {
                    container,
                    reason: "media data (a Cluster) before the track list".into(),
                }),
                None => self.fail(self.mkv_malformed("element of unknown size")),
            },
        }
    }

    fn mkv_malformed(&self, reason: &str) -> MediaError {
        MediaError::Malformed {
            container: self.container.unwrap_or(Container::Webm),
            reason: reason.into(),
        }
    }
}

const EBML_HEADER: u32 = 0x1A45_DFA3;
const EBML_DOCTYPE: u32 = 0x4282;
const MKV_SEGMENT: u32 = 0x1853_8067;
const MKV_TRACKS: u32 = 0x1654_AE6B;
const MKV_CLUSTER: u32 = 0x1F43_B675;
const MKV_TRACK_ENTRY: u32 = 0xAE;
const MKV_TRACK_TYPE: u32 = 0x83;
const MKV_CODEC_ID: u32 = 0x86;
const MKV_TRACK_TYPE_AUDIO: u8 = 2;

/// Length of an EBML variable-size integer from its first byte.
fn vint_len(first: u8) -> Option<usize> {
    let n = first.leading_zeros() as usize + 1;
    (n <= 8).then_some(n)
}

/// Value of an EBML size vint (marker bit removed); `None` for "unknown size" (all ones).
fn vint_value(b: &[u8]) -> Option<u64> {
    let len = b.len();
    let mask = if len >= 8 { 0 } else { 0xFFu8 >> len };
    let mut v = u64::from(b[0] & mask);
    for &x in &b[1..] {
        v = (v << 8) | u64::from(x);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    (v != all_ones).then_some(v)
}

/// Iterates over the `(id, body)` children of an EBML master element's body held in memory;
/// stops at the first malformed or truncated child.
fn ebml_children(mut body: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        let id_len = vint_len(*body.first()?)?;
        if id_len > 4 || body.len() < id_len + 1 {
            return None;
        }
        let id = body[..id_len]
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let size_len = vint_len(body[id_len])?;
        let start = id_len + size_len;
        if body.len() < start {
            return None;
        }
        let size = usize::try_from(vint_value(&body[id_len..start])?).ok()?;
        let end = start.checked_add(size)?;
        if body.len() < end {
            return None;
        }
        let child = &body[start..end];
        body = &body[end..];
        Some((id, child))
    })
}

/// The codec (if named) of the first audio TrackEntry in a Tracks body.
fn mkv_audio_track(tracks: &[u8]) -> Option<Option<String>> {
    ebml_children(tracks)
        .filter(|(id, _)| *id == MKV_TRACK_ENTRY)
        .find_map(|(_, entry)| {
            let is_audio = ebml_children(entry)
                .any(|(id, v)| id == MKV_TRACK_TYPE && v.last() == Some(&MKV_TRACK_TYPE_AUDIO));
            is_audio.then(|| {
                ebml_children(entry)
                    .find(|(id, _)| *id == MKV_CODEC_ID)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            })
        })
}

/// Iterates over the `(type, body)` boxes of an in-memory mp4 box body.
fn mp4_boxes(mut body: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), String>> {
    std::iter::from_fn(move || {
        if body.is_empty() {
            return None;
        }
        if body.len() < 8 {
            body = &[];
            return Some(Err("truncated box header inside moov".into()));
        }
        let kind = fourcc(&body[4..8]);
        let (size, header) = match be_u32(&body[0..4]) {
            1 if body.len() >= 16 => (be_u64(&body[8..16]), 16),
            0 => (body.len() as u64, 8),
            n => (u64::from(n), 8),
        };
        if size < header as u64 || size > body.len() as u64 {
            body = &[];
            return Some(Err(format!(
                "box {:?} inside moov declares {size} bytes",
                String::from_utf8_lossy(&kind)
            )));
        }
        let size = size as usize;
        let child = &body[header..size];
        body = &body[size..];
        Some(Ok((kind, child)))
    })
}

fn mp4_child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    for b in mp4_boxes(body) {
        let (k, child) = b?;
        if &k == kind {
            return Ok(Some(child));
        }
    }
    Ok(None)
}

/// `Some(codec)` when the moov body has a `trak` whose handler is `soun`.
fn mp4_audio_track(moov: &[u8]) -> Result<Option<Option<String>>, String> {
    for b in mp4_boxes(moov) {
        let (kind, trak) = b?;
        if &kind != b"trak" {
            continue;
        }
        let Some(mdia) = mp4_child(trak, b"mdia")? else {
            continue;
        };
        let Some(hdlr) = mp4_child(mdia, b"hdlr")? else {
            continue;
        };
        // Full box: version+flags (4), pre_defined (4), handler_type (4).
        if hdlr.len() < 12 || &hdlr[8..12] != b"soun" {
            continue;
        }
        let codec = mp4_child(mdia, b"minf")?
            .map(|minf| mp4_child(minf, b"stbl"))
            .transpose()?
            .flatten()
            .map(|stbl| mp4_child(stbl, b"stsd"))
            .transpose()?
            .flatten()
            // version+flags (4), entry_count (4), then the first entry's size (4) and format.
            .filter(|stsd| stsd.len() >= 16)
            .map(|stsd| String::from_utf8_lossy(&stsd[12..16]).trim().to_owned());
        return Ok(Some(codec));
    }
    Ok(None)
}

fn ogg_audio_codec(packet_start: &[u8]) -> Option<&'static str> {
    const KNOWN: [(&[u8], &str); 4] = [
        (b"OpusHead", "opus"),
        (b"\x01vorbis", "vorbis"),
        (b"\x7fFLAC", "flac"),
        (b"Speex   ", "speex"),
    ];
    KNOWN
        .iter()
        .find(|(magic, _)| packet_start.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Length in bytes of the MPEG audio frame (layer I-III) whose header is `h`, when `h` is a
/// valid header.
fn mpeg_frame_len(h: &[u8]) -> Option<u32> {
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0x03; // 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    let layer = (h[1] >> 1) & 0x03; // 1: III, 2: II, 3: I
    let bitrate_idx = usize::from(h[2] >> 4);
    let rate_idx = usize::from((h[2] >> 2) & 0x03);
    let padding = u32::from((h[2] >> 1) & 0x01);
    if version == 1 || layer == 0 || bitrate_idx == 0 || bitrate_idx == 15 || rate_idx == 3 {
        return None;
    }
    const RATES: [[u32; 3]; 3] = [
        [11025, 12000, 8000],
        [22050, 24000, 16000],
        [44100, 48000, 32000],
    ];
    let rate = RATES[match version {
        0 => 0,
        2 => 1,
        _ => 2,
    }][rate_idx];
    const V1: [[u32; 14]; 3] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const V2: [[u32; 14]; 2] = [
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let layer_row = 3 - usize::from(layer); // 0: I, 1: II, 2: III
    let kbps = if version == 3 {
        V1[layer_row][bitrate_idx - 1]
    } else {
        V2[usize::from(layer_row != 0)][bitrate_idx - 1]
    };
    let bits = kbps * 1000;
    Some(match layer_row {
        0 => (12 * bits / rate + padding) * 4,
        2 if version != 3 => 72 * bits / rate + padding,
        _ => 144 * bits / rate + padding,
    })
}

pub mod samples;

#[cfg(test)]
mod tests;
