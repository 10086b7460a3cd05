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

mod matroska;
mod mp3;
mod mp4;
mod ogg;
mod wav;

use mp3::mpeg_frame_len;
use mp4::MP4_FIRST_BOXES;

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

    /// Runs the step the buffer is complete for; each container family's steps live in its module.
    fn step(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Detect);
        match state {
            State::Detect => self.step_detect(),
            State::Mp4Box { seen_ftyp } => self.step_mp4_box(seen_ftyp),
            State::Mp4Moov => self.step_mp4_moov(),
            State::EbmlHeader { in_segment } => self.step_ebml(in_segment),
            State::EbmlDocType => self.step_ebml_doctype(),
            State::MkvTracks => self.step_mkv_tracks(),
            State::RiffChunk => self.step_riff_chunk(),
            State::OggPage { audio_codec } => self.step_ogg_page(audio_codec),
            State::OggSegments { audio_codec, bos } => self.step_ogg_segments(audio_codec, bos),
            State::OggPacket {
                audio_codec,
                bos,
                rest,
            } => self.step_ogg_packet(audio_codec, bos, rest),
            State::Id3 => self.step_id3(),
            State::MpegSync { searched } => self.step_mpeg_sync(searched),
            State::Done(r) => self.state = State::Done(r),
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
}

pub mod samples;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
