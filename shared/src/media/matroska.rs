//! Matroska and WebM (EBML): the EBML header's DocType tells them apart, elements of the Segment
//! are skipped until `Tracks`, which is buffered to find a `TrackEntry` of type audio.

use super::{Container, MediaError, Sniffer, State, MAX_BUFFERED};

const EBML_HEADER: u32 = 0x1A45_DFA3;
const EBML_DOCTYPE: u32 = 0x4282;
const MKV_SEGMENT: u32 = 0x1853_8067;
const MKV_TRACKS: u32 = 0x1654_AE6B;
const MKV_CLUSTER: u32 = 0x1F43_B675;
const MKV_TRACK_ENTRY: u32 = 0xAE;
const MKV_TRACK_TYPE: u32 = 0x83;
const MKV_CODEC_ID: u32 = 0x86;
const MKV_TRACK_TYPE_AUDIO: u8 = 2;

impl Sniffer {
    pub(super) fn step_ebml(&mut self, in_segment: bool) {
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

    pub(super) fn step_ebml_doctype(&mut self) {
        let body = std::mem::take(&mut self.buf);
        let container = match ebml_children(&body)
            .find(|(id, _)| *id == EBML_DOCTYPE)
            .map(|(_, v)| v)
        {
            Some(b"matroska") => Container::Matroska,
            Some(b"webm") | None => Container::Webm,
            Some(other) => {
                let reason = format!("unknown DocType {:?}", String::from_utf8_lossy(other));
                return self.fail(MediaError::Malformed {
                    container: Container::Matroska,
                    reason,
                });
            }
        };
        self.container = Some(container);
        self.next(State::EbmlHeader { in_segment: false }, 1);
    }

    pub(super) fn step_mkv_tracks(&mut self) {
        let tracks = std::mem::take(&mut self.buf);
        let container = self.container.unwrap_or(Container::Webm);
        match mkv_audio_track(&tracks) {
            Some(codec) => self.ok(container, codec),
            None => self.fail(MediaError::NoAudio { container }),
        }
    }

    fn mkv_malformed(&self, reason: &str) -> MediaError {
        MediaError::Malformed {
            container: self.container.unwrap_or(Container::Webm),
            reason: reason.into(),
        }
    }
}

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
