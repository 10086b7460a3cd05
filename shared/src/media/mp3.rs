//! MP3: an optional ID3v2 tag is skipped, then the first MPEG audio frame header is looked for
//! (past any zero padding, up to [`MP3_SYNC_SEARCH`] bytes).

use super::{Container, MediaError, Sniffer, State};

/// How far past an ID3 tag (padding) we look for the first MPEG audio frame.
const MP3_SYNC_SEARCH: u64 = 64 * 1024;

impl Sniffer {
    pub(super) fn step_id3(&mut self) {
        let b = &self.buf;
        let size = b[6..10]
            .iter()
            .fold(0u64, |acc, &x| (acc << 7) | u64::from(x & 0x7F));
        let footer = if b[5] & 0x10 != 0 { 10 } else { 0 };
        self.skip = size + footer;
        self.next(State::MpegSync { searched: 0 }, 4);
    }

    pub(super) fn step_mpeg_sync(&mut self, searched: u64) {
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
}

/// Length in bytes of the MPEG audio frame (layer I-III) whose header is `h`, when `h` is a
/// valid header.
pub(super) fn mpeg_frame_len(h: &[u8]) -> Option<u32> {
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
