use super::samples::*;
use super::*;

/// Feeds `data` in chunks of every given size and checks all answers agree.
fn sniff(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let whole = {
        let mut s = Sniffer::new();
        s.feed(data);
        s.finish()
    };
    for chunk in [1, 3, 7, 64, 4096] {
        let mut s = Sniffer::new();
        for c in data.chunks(chunk) {
            s.feed(c);
        }
        assert_eq!(s.finish(), whole, "chunks of {chunk} bytes disagree");
    }
    whole
}

fn info(container: Container, codec: Option<&str>) -> Result<MediaInfo, MediaError> {
    Ok(MediaInfo {
        container,
        audio_codec: codec.map(str::to_owned),
    })
}

#[test]
fn mp4_with_moov_first_has_audio() {
    let file = cat(&[
        ftyp(),
        moov(&[trak(b"vide", b"avc1"), trak(b"soun", b"mp4a")]),
        mdat(5000),
    ]);
    assert_eq!(sniff(&file), info(Container::Mp4, Some("mp4a")));
}

#[test]
fn mp4_with_moov_at_the_end_has_audio() {
    let file = cat(&[ftyp(), mdat(20_000), moov(&[trak(b"soun", b"Opus")])]);
    assert_eq!(sniff(&file), info(Container::Mp4, Some("Opus")));
}

#[test]
fn mp4_answers_as_soon_as_moov_is_read() {
    let head = cat(&[ftyp(), moov(&[trak(b"soun", b"mp4a")])]);
    let mut s = Sniffer::new();
    s.feed(&head);
    assert_eq!(s.verdict(), Some(&info(Container::Mp4, Some("mp4a"))));
}

#[test]
fn mp4_with_only_video_is_refused_as_without_audio() {
    let file = cat(&[ftyp(), moov(&[trak(b"vide", b"avc1")]), mdat(100)]);
    let err = sniff(&file).unwrap_err();
    assert_eq!(
        err,
        MediaError::NoAudio {
            container: Container::Mp4
        }
    );
    assert_eq!(err.to_string(), "mp4 without an audio track");
}

#[test]
fn mp4_with_a_64_bit_mdat_size_is_walked() {
    let mut big = vec![0, 0, 0, 1];
    big.extend_from_slice(b"mdat");
    big.extend_from_slice(&(16u64 + 300).to_be_bytes());
    big.extend_from_slice(&[0u8; 300]);
    let file = cat(&[ftyp(), big, moov(&[trak(b"soun", b"mp4a")])]);
    assert_eq!(sniff(&file), info(Container::Mp4, Some("mp4a")));
}

#[test]
fn mp4_cut_before_its_moov_is_truncated() {
    let file = cat(&[ftyp(), mdat(1000)]);
    let cut = &file[..600];
    assert!(matches!(
        sniff(cut),
        Err(MediaError::Truncated {
            container: Container::Mp4,
            ..
        })
    ));
}

#[test]
fn mp4_moov_larger_than_the_cap_is_refused_without_buffering_it() {
    let mut file = ftyp();
    file.extend_from_slice(&((MAX_BUFFERED as u32) + 9).to_be_bytes());
    file.extend_from_slice(b"moov");
    let mut s = Sniffer::new();
    s.feed(&file);
    assert!(matches!(
        s.verdict(),
        Some(Err(MediaError::TooLarge { .. }))
    ));
}

#[test]
fn range_reader_can_jump_over_mdat_to_a_trailing_moov() {
    let payload = 50_000_000u64;
    let mut file = ftyp();
    file.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
    file.extend_from_slice(b"mdat");
    let moov_at = file.len() as u64 + payload;
    let tail = moov(&[trak(b"soun", b"mp4a")]);

    let mut s = Sniffer::new();
    s.feed(&file);
    assert_eq!(s.resume_offset(), Some(moov_at));
    assert!(s.jump_to(moov_at));
    s.feed(&tail);
    assert_eq!(s.finish(), info(Container::Mp4, Some("mp4a")));
}

#[test]
fn jump_outside_a_skip_is_refused() {
    let mut s = Sniffer::new();
    s.feed(&ftyp());
    assert!(!s.jump_to(1_000_000));
}

#[test]
fn webm_with_an_audio_track_is_accepted() {
    assert_eq!(
        sniff(&webm(&[1, 2], b"webm")),
        info(Container::Webm, Some("A_OPUS"))
    );
}

#[test]
fn matroska_doctype_is_reported_as_mkv() {
    assert_eq!(
        sniff(&webm(&[2], b"matroska")),
        info(Container::Matroska, Some("A_OPUS"))
    );
}

#[test]
fn webm_with_only_video_is_refused_as_without_audio() {
    assert_eq!(
        sniff(&webm(&[1], b"webm")),
        Err(MediaError::NoAudio {
            container: Container::Webm
        })
    );
}

#[test]
fn webm_cut_inside_tracks_is_truncated() {
    let file = webm(&[2], b"webm");
    let tracks_at = file
        .windows(4)
        .position(|w| w == [0x16, 0x54, 0xAE, 0x6B])
        .unwrap();
    assert!(matches!(
        sniff(&file[..tracks_at + 8]),
        Err(MediaError::Truncated {
            container: Container::Webm,
            ..
        })
    ));
}

#[test]
fn wav_with_a_fmt_chunk_is_accepted() {
    assert_eq!(sniff(&wav()), info(Container::Wav, None));
}

#[test]
fn ogg_opus_and_vorbis_are_accepted() {
    assert_eq!(
        sniff(&ogg(&[b"OpusHead\x01\x02"])),
        info(Container::Ogg, Some("opus"))
    );
    assert_eq!(
        sniff(&ogg(&[b"\x80theora...", b"\x01vorbis\0\0\0\0"])),
        info(Container::Ogg, Some("vorbis"))
    );
}

#[test]
fn ogg_with_only_theora_video_is_refused_as_without_audio() {
    assert_eq!(
        sniff(&ogg(&[b"\x80theora video"])),
        Err(MediaError::NoAudio {
            container: Container::Ogg
        })
    );
}

#[test]
fn mp3_with_and_without_id3_is_accepted() {
    assert_eq!(sniff(&mp3(true)), info(Container::Mp3, Some("mp3")));
    assert_eq!(sniff(&mp3(false)), info(Container::Mp3, Some("mp3")));
}

#[test]
fn id3_tag_followed_by_text_is_malformed_mp3() {
    let mut file = mp3(true);
    file.truncate(310);
    file.extend_from_slice(b"this is not a frame");
    assert!(matches!(
        sniff(&file),
        Err(MediaError::Malformed {
            container: Container::Mp3,
            ..
        })
    ));
}

#[test]
fn text_is_refused_from_its_first_bytes_naming_what_it_starts_with() {
    let mut s = Sniffer::new();
    s.feed(b"Hello, this is a text file and not a recording.\n");
    let err = s.verdict().cloned().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a media container (starts with text \"Hello, this \")"
    );
}

#[test]
fn binary_garbage_is_described_in_hex() {
    let err = sniff(&[
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
    ])
    .unwrap_err();
    assert!(err.to_string().contains("bytes 000102030405"), "{err}");
}

#[test]
fn empty_and_tiny_files_are_refused() {
    assert_eq!(sniff(b""), Err(MediaError::Empty));
    assert!(matches!(sniff(b"hi"), Err(MediaError::NotMedia { .. })));
}

#[test]
fn detect_names_containers_from_their_first_bytes() {
    assert_eq!(detect(&ftyp()), Some(Container::Mp4));
    assert_eq!(detect(&webm(&[2], b"webm")[..40]), Some(Container::Webm));
    assert_eq!(detect(&wav()[..12]), Some(Container::Wav));
    assert_eq!(detect(b"OggS\0\x02"), Some(Container::Ogg));
    assert_eq!(detect(&mp3(false)[..4]), Some(Container::Mp3));
    assert_eq!(detect(b"<html><body>"), None);
}

/// Real files written by ffmpeg (see events/media/README.md).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../events/media/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn real_files_with_audio_are_accepted_with_their_codec() {
    for (name, container, codec) in [
        ("av-moov-last.mp4", Container::Mp4, Some("mp4a")),
        ("audio-faststart.m4a", Container::Mp4, Some("mp4a")),
        ("av.webm", Container::Webm, Some("A_OPUS")),
        ("av-live.webm", Container::Webm, Some("A_OPUS")),
        ("audio.mkv", Container::Matroska, Some("A_FLAC")),
        ("audio.opus.ogg", Container::Ogg, Some("opus")),
        ("audio.vorbis.ogg", Container::Ogg, Some("vorbis")),
        ("audio.wav", Container::Wav, None),
        ("audio.mp3", Container::Mp3, Some("mp3")),
        ("audio-bare.mp3", Container::Mp3, Some("mp3")),
    ] {
        assert_eq!(sniff(&fixture(name)), info(container, codec), "{name}");
    }
}

#[test]
fn real_video_only_files_are_refused_as_without_audio() {
    for (name, container) in [
        ("video-only.mp4", Container::Mp4),
        ("video-only.webm", Container::Webm),
    ] {
        assert_eq!(
            sniff(&fixture(name)),
            Err(MediaError::NoAudio { container }),
            "{name}"
        );
    }
}
