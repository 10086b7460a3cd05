//! Minimal valid containers built byte by byte, for tests and benchmarks: the smallest
//! structures each parser must walk. `mdat` payloads are filler, not decodable media.

pub fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

pub fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

pub fn trak(handler: &[u8; 4], format: &[u8; 4]) -> Vec<u8> {
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(handler);
    hdlr.extend_from_slice(&[0u8; 13]);
    let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
    stsd.extend_from_slice(&mp4_box(format, &[0u8; 28]));
    let stbl = mp4_box(b"stbl", &mp4_box(b"stsd", &stsd));
    let minf = mp4_box(b"minf", &stbl);
    let mdia = mp4_box(
        b"mdia",
        &cat(&[mp4_box(b"mdhd", &[0u8; 24]), mp4_box(b"hdlr", &hdlr), minf]),
    );
    mp4_box(b"trak", &cat(&[mp4_box(b"tkhd", &[0u8; 84]), mdia]))
}

pub fn ftyp() -> Vec<u8> {
    mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41")
}

pub fn moov(traks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = mp4_box(b"mvhd", &[0u8; 100]);
    for t in traks {
        body.extend_from_slice(t);
    }
    mp4_box(b"moov", &body)
}

pub fn mdat(len: usize) -> Vec<u8> {
    mp4_box(b"mdat", &vec![0x55; len])
}

/// An EBML element with a one-byte size or an 8-byte size.
pub fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut b = id.to_vec();
    if body.len() < 127 {
        b.push(0x80 | body.len() as u8);
    } else {
        b.push(0x01);
        b.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
    }
    b.extend_from_slice(body);
    b
}

pub const UNKNOWN_SIZE: u8 = 0xFF;

pub fn webm(track_types: &[u8], doctype: &[u8]) -> Vec<u8> {
    let header = ebml(
        &[0x1A, 0x45, 0xDF, 0xA3],
        &cat(&[ebml(&[0x42, 0x86], &[1]), ebml(&[0x42, 0x82], doctype)]),
    );
    let entries: Vec<Vec<u8>> = track_types
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let codec: &[u8] = if t == 2 { b"A_OPUS" } else { b"V_VP8" };
            ebml(
                &[0xAE],
                &cat(&[
                    ebml(&[0xD7], &[i as u8 + 1]),
                    ebml(&[0x83], &[t]),
                    ebml(&[0x86], codec),
                ]),
            )
        })
        .collect();
    let tracks = ebml(&[0x16, 0x54, 0xAE, 0x6B], &entries.concat());
    let info = ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        &ebml(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
    );
    let mut cluster = vec![0x1F, 0x43, 0xB6, 0x75, UNKNOWN_SIZE];
    cluster.extend_from_slice(&ebml(&[0xE7], &[0]));
    cluster.extend_from_slice(&ebml(&[0xA3], &[0x81; 100]));
    // Live recordings (MediaRecorder, Daily) write the Segment with an unknown size.
    let mut segment = vec![0x18, 0x53, 0x80, 0x67, UNKNOWN_SIZE];
    segment.extend_from_slice(&cat(&[info, tracks, cluster]));
    cat(&[header, segment])
}

pub fn riff_chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = id.to_vec();
    b.extend_from_slice(&(body.len() as u32).to_le_bytes());
    b.extend_from_slice(body);
    if body.len() % 2 == 1 {
        b.push(0);
    }
    b
}

pub fn wav() -> Vec<u8> {
    let chunks = cat(&[
        riff_chunk(b"LIST", b"INFOISFT\x03\0\0\0ab\0"),
        riff_chunk(
            b"fmt ",
            &[1, 0, 1, 0, 0x44, 0xAC, 0, 0, 0x88, 0x58, 1, 0, 2, 0, 16, 0],
        ),
        riff_chunk(b"data", &[0u8; 64]),
    ]);
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
    b.extend_from_slice(b"WAVE");
    b.extend_from_slice(&chunks);
    b
}

pub fn ogg_page(bos: bool, packet: &[u8]) -> Vec<u8> {
    let mut b = b"OggS\0".to_vec();
    b.push(if bos { 0x02 } else { 0 });
    b.extend_from_slice(&[0u8; 8 + 4 + 4 + 4]);
    let mut segs = Vec::new();
    let mut left = packet.len();
    loop {
        let s = left.min(255);
        segs.push(s as u8);
        left -= s;
        if s < 255 {
            break;
        }
    }
    b.push(segs.len() as u8);
    b.extend_from_slice(&segs);
    b.extend_from_slice(packet);
    b
}

pub fn ogg(first_packets: &[&[u8]]) -> Vec<u8> {
    let mut b: Vec<u8> = first_packets
        .iter()
        .flat_map(|p| ogg_page(true, p))
        .collect();
    b.extend_from_slice(&ogg_page(false, b"comment header"));
    b
}

/// MPEG-1 layer III, 128 kbit/s, 44.1 kHz: 417-byte frames.
pub const MP3_FRAME_HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0x64];

pub fn mp3(with_id3: bool) -> Vec<u8> {
    let mut b = Vec::new();
    if with_id3 {
        b.extend_from_slice(b"ID3\x04\x00\x00");
        // Syncsafe size 300: a tag with some padding after the frames.
        b.extend_from_slice(&[0, 0, 2, 44]);
        b.extend_from_slice(&ebml(b"T", b"title frame"));
        b.resize(10 + 300, 0);
    }
    for _ in 0..3 {
        b.extend_from_slice(&MP3_FRAME_HEADER);
        b.extend_from_slice(&[0u8; 413]);
    }
    b
}

/// An mp4 with an audio track whose `mdat` holds `payload` filler bytes and whose `moov` comes
/// last (the layout that forces a reader to pass the whole payload): returns the bytes before
/// the payload and the bytes after it, so that large files can be generated as a stream.
pub fn mp4_audio_moov_last(payload: u64) -> (Vec<u8>, Vec<u8>) {
    let mut head = ftyp();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&(payload + 16).to_be_bytes());
    (head, moov(&[trak(b"soun", b"mp4a")]))
}

/// A complete mp4 with an audio track and `payload` filler bytes, moov last.
pub fn mp4_audio(payload: usize) -> Vec<u8> {
    let (head, tail) = mp4_audio_moov_last(payload as u64);
    let mut b = head;
    b.resize(b.len() + payload, 0x55);
    b.extend_from_slice(&tail);
    b
}
