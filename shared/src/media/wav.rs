//! RIFF/WAVE: chunks are skipped until the `fmt ` chunk, which is what makes the file audio.

use super::{fourcc, le_u32, Container, MediaError, Sniffer, State};

impl Sniffer {
    pub(super) fn step_riff_chunk(&mut self) {
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
}
