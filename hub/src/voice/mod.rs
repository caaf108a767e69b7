//! Voice clips: the visitor's voice messages (Ogg Opus from the door) and the household's
//! quick replies (Ogg or WebM Opus from a phone's MediaRecorder), checked and measured without
//! decoding, with their limits. Voice messages' files, rows, capability URLs and retention are
//! the snapshots' ([`crate::snapshots::MediaKind::Voice`]).

pub(crate) mod webm;

/// Largest upload. The door records at most `call.voice_message_secs` (≤ 60 s) of Opus at
/// 24 kbit/s, about 180 KiB; 512 KiB leaves room for a higher bitrate and Ogg framing while
/// one request cannot fill a disk (retention's `max_bytes` bounds the total).
pub(crate) const MAX_VOICE_BYTES: usize = 512 * 1024;
/// Longest accepted message: the door's own limit (60 s) plus a little for the encoder's
/// last frames.
pub(crate) const MAX_VOICE_MS: u64 = 62_000;

/// Opus's granule positions count 48 kHz samples, whatever the input rate.
const OPUS_GRANULE_HZ: u64 = 48_000;
/// Fixed part of an Ogg page header, before the segment table (RFC 3533).
const OGG_HEADER_BYTES: usize = 27;

/// Why bytes are not an acceptable voice message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VoiceError {
    #[error("the body is not Opus in Ogg (Ogg pages whose first packet is OpusHead) or, for a quick reply, in WebM (CodecID A_OPUS)")]
    NotOggOpus,
    #[error("the message is {0} ms long; at most {MAX_VOICE_MS} ms are kept")]
    TooLong(u64),
    #[error("the message holds no audio")]
    Empty,
}

/// The length of an Ogg Opus file in milliseconds, from its pages' granule positions and the
/// OpusHead pre-skip, after checking that it is Ogg Opus: every page well formed (capture
/// pattern, version 0, segment table within the bytes), one logical stream, the first packet
/// `OpusHead` version 1.
pub(crate) fn ogg_opus_ms(bytes: &[u8]) -> Result<u64, VoiceError> {
    let mut at = 0;
    let mut serial = None;
    let mut pre_skip = None;
    let mut last_granule = 0u64;
    while at < bytes.len() {
        let header = bytes
            .get(at..at + OGG_HEADER_BYTES)
            .ok_or(VoiceError::NotOggOpus)?;
        if &header[..4] != b"OggS" || header[4] != 0 {
            return Err(VoiceError::NotOggOpus);
        }
        let granule = u64::from_le_bytes(
            header[6..14]
                .try_into()
                .map_err(|_| VoiceError::NotOggOpus)?,
        );
        let page_serial = &header[14..18];
        if *serial.get_or_insert(page_serial) != page_serial {
            return Err(VoiceError::NotOggOpus);
        }
        let segments = usize::from(header[26]);
        let table = bytes
            .get(at + OGG_HEADER_BYTES..at + OGG_HEADER_BYTES + segments)
            .ok_or(VoiceError::NotOggOpus)?;
        let body_start = at + OGG_HEADER_BYTES + segments;
        let body_len: usize = table.iter().map(|s| usize::from(*s)).sum();
        let body = bytes
            .get(body_start..body_start + body_len)
            .ok_or(VoiceError::NotOggOpus)?;
        if pre_skip.is_none() {
            // OpusHead: magic, version 1, channels, pre-skip (u16 LE) (RFC 7845 section 5.1).
            if body.len() < 19 || &body[..8] != b"OpusHead" || body[8] != 1 {
                return Err(VoiceError::NotOggOpus);
            }
            pre_skip = Some(u64::from(u16::from_le_bytes([body[10], body[11]])));
        }
        // -1 marks a page on which no packet ends.
        if granule != u64::MAX {
            last_granule = last_granule.max(granule);
        }
        at = body_start + body_len;
    }
    let samples = last_granule.saturating_sub(pre_skip.ok_or(VoiceError::NotOggOpus)?);
    let ms = samples * 1000 / OPUS_GRANULE_HZ;
    if ms == 0 {
        return Err(VoiceError::Empty);
    }
    if ms > MAX_VOICE_MS {
        return Err(VoiceError::TooLong(ms));
    }
    Ok(ms)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One Ogg page (CRC left zero: the hub does not check it, the decoders at the ends do).
    fn page(serial: u32, granule: u64, body: &[u8]) -> Vec<u8> {
        let mut p = b"OggS\0\0".to_vec();
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&serial.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        let mut table = vec![255u8; body.len() / 255];
        table.push((body.len() % 255) as u8);
        p.push(table.len() as u8);
        p.extend_from_slice(&table);
        p.extend_from_slice(body);
        p
    }

    /// A minimal Ogg Opus stream of `ms` milliseconds (pre-skip 312).
    pub(crate) fn ogg_opus(ms: u64) -> Vec<u8> {
        let mut head = b"OpusHead\x01\x01".to_vec();
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let mut out = page(7, 0, &head);
        out.extend(page(7, 0, b"OpusTags\0\0\0\0\0\0\0\0"));
        out.extend(page(7, 312 + ms * 48, &[0xFC; 40]));
        out
    }

    #[test]
    fn the_length_comes_from_the_last_granule_minus_the_pre_skip() {
        assert_eq!(ogg_opus_ms(&ogg_opus(1500)), Ok(1500));
        assert_eq!(
            ogg_opus_ms(&ogg_opus(MAX_VOICE_MS + 1000)),
            Err(VoiceError::TooLong(MAX_VOICE_MS + 1000))
        );
        assert_eq!(ogg_opus_ms(&ogg_opus(0)), Err(VoiceError::Empty));
    }

    #[test]
    fn anything_else_is_refused() {
        let good = ogg_opus(1000);
        assert_eq!(
            ogg_opus_ms(&good[..good.len() - 1]),
            Err(VoiceError::NotOggOpus),
            "truncated"
        );
        assert_eq!(
            ogg_opus_ms(b"\xFF\xD8\xFF\xE0 a jpeg"),
            Err(VoiceError::NotOggOpus)
        );
        assert_eq!(ogg_opus_ms(&[]), Err(VoiceError::NotOggOpus));
        let mut vorbis = good.clone();
        vorbis[28..36].copy_from_slice(b"\x01vorbis\0");
        assert_eq!(ogg_opus_ms(&vorbis), Err(VoiceError::NotOggOpus));
        let mut two_streams = good.clone();
        two_streams.extend(page(8, 0, b"x"));
        assert_eq!(ogg_opus_ms(&two_streams), Err(VoiceError::NotOggOpus));
    }
}
