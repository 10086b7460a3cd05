//! Ogg: the beginning-of-stream pages come first; the start of each one's first packet names
//! its codec (Opus, Vorbis, FLAC, Speex). Packet payload is skipped.

use super::{Container, MediaError, Sniffer, State};

impl Sniffer {
    pub(super) fn step_ogg_page(&mut self, audio_codec: Option<&'static str>) {
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

    pub(super) fn step_ogg_segments(&mut self, audio_codec: Option<&'static str>, bos: bool) {
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

    pub(super) fn step_ogg_packet(
        &mut self,
        mut audio_codec: Option<&'static str>,
        bos: bool,
        rest: u64,
    ) {
        if bos && audio_codec.is_none() {
            audio_codec = ogg_audio_codec(&self.buf);
        }
        self.skip = rest;
        self.next(State::OggPage { audio_codec }, 27);
    }

    fn ogg_end(&mut self, audio_codec: Option<&'static str>) {
        match audio_codec {
            Some(c) => self.ok(Container::Ogg, Some(c.into())),
            None => self.fail(MediaError::NoAudio {
                container: Container::Ogg,
            }),
        }
    }
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
