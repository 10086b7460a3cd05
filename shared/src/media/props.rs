//! Property tests: whatever bytes a recording holds (real encoder output and the generated
//! samples, with bytes flipped, cut out, inserted or the file cut short), the sniffer answers
//! without panicking, its buffer never grows past what the current step asked for and the step
//! never asks for more than [`MAX_BUFFERED`] (plus a box header), it never accounts for more bytes
//! than it was fed, and the answer does not depend on how the bytes were chunked.

use proptest::prelude::*;

use super::samples;
use super::*;

/// Largest step: a whole `moov` of `MAX_BUFFERED` bytes plus its 8-byte header (a 64-bit size
/// is dropped), or a Matroska `Tracks` body of `MAX_BUFFERED` bytes.
const MAX_STEP: usize = MAX_BUFFERED + 8;

fn seeds() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../../events/media/audio-faststart.m4a").to_vec(),
        include_bytes!("../../../events/media/av-moov-last.mp4").to_vec(),
        include_bytes!("../../../events/media/video-only.mp4").to_vec(),
        include_bytes!("../../../events/media/audio.mkv").to_vec(),
        include_bytes!("../../../events/media/av.webm").to_vec(),
        include_bytes!("../../../events/media/av-live.webm").to_vec(),
        include_bytes!("../../../events/media/audio.wav").to_vec(),
        include_bytes!("../../../events/media/audio.opus.ogg").to_vec(),
        include_bytes!("../../../events/media/audio.vorbis.ogg").to_vec(),
        include_bytes!("../../../events/media/audio.mp3").to_vec(),
        include_bytes!("../../../events/media/audio-bare.mp3").to_vec(),
        samples::mp4_audio(64),
        samples::webm(&[1, 2], b"webm"),
        samples::webm(&[2], b"matroska"),
        samples::wav(),
        samples::ogg(&[b"OpusHead\x01\x02", b"\x01vorbis\x00"]),
        samples::mp3(true),
        samples::mp3(false),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (index modulo length).
    Set(usize, u8),
    /// Remove up to `len` bytes from (index modulo length).
    Cut(usize, usize),
    /// Insert bytes at (index modulo length).
    Insert(usize, Vec<u8>),
    /// Keep only the first (index modulo length) bytes.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Cut(i, n)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if data.is_empty() {
            break;
        }
        let at = |i: usize| i % data.len();
        match m {
            Mutation::Set(i, b) => {
                let i = at(*i);
                data[i] = *b;
            }
            Mutation::Cut(i, n) => {
                let i = at(*i);
                let end = (i + n).min(data.len());
                data.drain(i..end);
            }
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Truncate(i) => {
                let n = at(*i);
                data.truncate(n);
            }
        }
    }
    data
}

/// Feeds `data` in chunks of `chunk` bytes, checking the bounds after every feed.
fn sniff_bounded(data: &[u8], chunk: usize) -> Result<MediaInfo, MediaError> {
    let mut s = Sniffer::new();
    let mut fed = 0u64;
    for c in data.chunks(chunk.max(1)) {
        s.feed(c);
        fed += c.len() as u64;
        assert!(
            s.want <= MAX_STEP,
            "a step asks for {} bytes, more than the {MAX_STEP} bound",
            s.want
        );
        assert!(
            s.buf.len() <= s.want,
            "buffered {} bytes for a step of {}",
            s.buf.len(),
            s.want
        );
        assert!(
            s.position() <= fed,
            "accounts for {} bytes after being fed {fed}",
            s.position()
        );
    }
    s.finish()
}

proptest! {
    #[test]
    fn mutated_containers_are_answered_within_the_buffer_bound(
        seed in 0usize..18,
        mutations in proptest::collection::vec(mutation(), 0..6),
        chunk in 1usize..512,
    ) {
        let data = mutate(seeds().swap_remove(seed), &mutations);
        let whole = sniff_bounded(&data, data.len());
        let chunked = sniff_bounded(&data, chunk);
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn arbitrary_bytes_are_answered_within_the_buffer_bound(
        prefix in prop_oneof![
            Just(Vec::new()),
            Just(b"OggS".to_vec()),
            Just(b"ID3".to_vec()),
            Just(vec![0x1A, 0x45, 0xDF, 0xA3]),
            Just(b"RIFF\0\0\0\0WAVE".to_vec()),
            Just(b"\0\0\0\x18ftyp".to_vec()),
            Just(b"\0\0\0\x01moov".to_vec()),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..256,
    ) {
        let data = [prefix, body].concat();
        let whole = sniff_bounded(&data, data.len());
        let chunked = sniff_bounded(&data, chunk);
        prop_assert_eq!(chunked, whole);
    }
}
