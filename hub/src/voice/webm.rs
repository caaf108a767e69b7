//! Opus in WebM (what browsers' MediaRecorder writes): checked and measured without decoding.
//!
//! A flat walk over EBML elements: the masters that matter (EBML header, Segment, Info,
//! Tracks, TrackEntry, Cluster, BlockGroup) are entered, everything else is skipped by its
//! size. MediaRecorder writes the Segment and its Clusters with an unknown size and no
//! Duration, so the length is the last block's time (Cluster Timecode + the block's relative
//! timecode, in TimecodeScale units) plus one Opus frame.

use super::VoiceError;

const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const CODEC_ID: u32 = 0x86;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMECODE: u32 = 0xE7;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;
/// The length of one Opus frame as MediaRecorder writes them, added to the last block's start.
const LAST_FRAME_MS: u64 = 20;

/// A variable-length integer at `at`: (value, length). `keep_marker` for element ids.
fn vint(bytes: &[u8], at: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *bytes.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> len)
    };
    for i in 1..len {
        value = (value << 8) | u64::from(*bytes.get(at + i)?);
    }
    Some((value, len))
}

fn uint(data: &[u8]) -> u64 {
    data.iter().take(8).fold(0, |v, b| (v << 8) | u64::from(*b))
}

/// The length in milliseconds of an Opus-in-WebM file, after checking that it is one (DocType
/// `webm`, a track whose CodecID is `A_OPUS`, at least one block).
pub(crate) fn webm_opus_ms(bytes: &[u8]) -> Result<u64, VoiceError> {
    let bad = VoiceError::NotOggOpus;
    let (mut doc_webm, mut opus, mut scale_ns) = (false, false, 1_000_000u64);
    let (mut cluster_tc, mut last_tc, mut blocks) = (0u64, 0u64, 0usize);
    let mut at = 0;
    if vint(bytes, 0, true).map(|(id, _)| id) != Some(u64::from(EBML)) {
        return Err(bad);
    }
    while at < bytes.len() {
        let (id, id_len) = vint(bytes, at, true).ok_or(bad.clone())?;
        let (size, size_len) = vint(bytes, at + id_len, false).ok_or(bad.clone())?;
        let data_at = at + id_len + size_len;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        let id = u32::try_from(id).map_err(|_| bad.clone())?;
        if matches!(
            id,
            EBML | SEGMENT | INFO | TRACKS | TRACK_ENTRY | CLUSTER | BLOCK_GROUP
        ) {
            at = data_at;
            continue;
        }
        if unknown {
            return Err(bad);
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| data_at.checked_add(s))
            .filter(|end| *end <= bytes.len())
            .ok_or(bad.clone())?;
        let data = &bytes[data_at..end];
        match id {
            DOC_TYPE => doc_webm = data.split(|b| *b == 0).next() == Some(b"webm"),
            TIMECODE_SCALE => scale_ns = uint(data).max(1),
            CODEC_ID => opus |= data.split(|b| *b == 0).next() == Some(b"A_OPUS"),
            CLUSTER_TIMECODE => cluster_tc = uint(data),
            SIMPLE_BLOCK | BLOCK => {
                let (_, track_len) = vint(data, 0, false).ok_or(bad.clone())?;
                let rel = data.get(track_len..track_len + 2).ok_or(bad.clone())?;
                let rel = i64::from(i16::from_be_bytes([rel[0], rel[1]]));
                last_tc = last_tc.max(cluster_tc.saturating_add_signed(rel));
                blocks += 1;
            }
            _ => {}
        }
        at = end;
    }
    if !doc_webm || !opus {
        return Err(bad);
    }
    if blocks == 0 {
        return Err(VoiceError::Empty);
    }
    let ms = last_tc.saturating_mul(scale_ns) / 1_000_000 + LAST_FRAME_MS;
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TONE: &[u8] = include_bytes!("../../../tests/fixtures/voice/tone-1s.webm");

    #[test]
    fn a_webm_opus_file_is_measured() {
        let ms = webm_opus_ms(TONE).unwrap();
        assert!((950..=1100).contains(&ms), "{ms}");
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(webm_opus_ms(b"OggS"), Err(VoiceError::NotOggOpus));
        assert_eq!(
            webm_opus_ms(&TONE[..TONE.len() / 2]),
            Err(VoiceError::NotOggOpus)
        );
        let mut vorbis = TONE.to_vec();
        let at = vorbis.windows(6).position(|w| w == b"A_OPUS").unwrap();
        vorbis[at..at + 6].copy_from_slice(b"A_VORB");
        assert_eq!(webm_opus_ms(&vorbis), Err(VoiceError::NotOggOpus));
    }
}
