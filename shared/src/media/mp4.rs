//! ISO base media (mp4, m4a, mov): top-level boxes are walked, `mdat` and other payload skipped,
//! and the `moov` box buffered whole to find a `trak` whose handler is `soun`.

use super::{be_u32, be_u64, fourcc, Container, MediaError, Sniffer, State, MAX_BUFFERED};

/// Box types an ISO media file may start with.
pub(super) const MP4_FIRST_BOXES: [[u8; 4]; 7] = [
    *b"ftyp", *b"moov", *b"mdat", *b"free", *b"wide", *b"skip", *b"pnot",
];

impl Sniffer {
    pub(super) fn step_mp4_box(&mut self, seen_ftyp: bool) {
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

    pub(super) fn step_mp4_moov(&mut self) {
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
