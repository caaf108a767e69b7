//! VP8 in the door's offer and in the phone's answer.
//!
//! webrtcbin (1.22) offers what its video input carries, H.264 only: it builds the video
//! line from the caps on its sink pad, and codec preferences are intersected with those caps.
//! So VP8 is added to the offer's text, after H.264 (the first format is the preferred one),
//! before the offer becomes the local description. A phone that decodes H.264 keeps it; one
//! that does not (Debian's Firefox, which cannot download its OpenH264 plugin offline) answers
//! VP8, and only then does the door encode VP8 for it (`super::Vp8Feed`).

use gstreamer_sdp as gst_sdp;

/// The encoding name in `a=rtpmap` (RFC 7741).
const VP8: &str = "VP8";
/// The dynamic payload type range (RFC 3551).
const DYNAMIC_PT: std::ops::RangeInclusive<u32> = 96..=127;

/// Adds VP8 as the last format of the offer's video line, with the same RTCP feedback as the
/// first (H.264) format. Returns the payload type used: the lowest dynamic one that no line
/// of the offer uses (webrtcbin numbers its own formats, RTX and FEC from 96 up).
pub(crate) fn offer_vp8(sdp: &mut gst_sdp::SDPMessageRef) -> Option<u32> {
    let used: Vec<u32> = sdp
        .medias()
        .flat_map(|m| {
            m.formats()
                .filter_map(|f| f.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    let pt = DYNAMIC_PT.clone().find(|pt| !used.contains(pt))?;
    // Port 0 here is `bundle-only` (audio is BUNDLE's tag), not a rejected line.
    let media = sdp.medias_mut().find(|m| m.media() == Some("video"))?;
    let first = media.format(0)?.to_owned();
    let feedback: Vec<String> = media
        .attributes()
        .filter(|a| a.key() == "rtcp-fb")
        .filter_map(|a| {
            a.value()?
                .strip_prefix(&format!("{first} "))
                .map(str::to_owned)
        })
        .collect();
    media.add_format(&pt.to_string());
    media.add_attribute("rtpmap", Some(&format!("{pt} {VP8}/90000")));
    for fb in feedback {
        media.add_attribute("rtcp-fb", Some(&format!("{pt} {fb}")));
    }
    Some(pt)
}

/// What the phone chose for the video line of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnsweredVideo {
    /// H.264 (or anything else the door sends as it is), or no video line at all.
    AsOffered,
    /// VP8 only, with this payload type: the phone lacks H.264.
    Vp8(u32),
    /// The video line is rejected (port 0): audio and the data channel carry on.
    Rejected,
}

/// Reads the answer's video line. A phone that lists H.264 at all gets H.264 (it is what
/// every session already receives); VP8 is chosen only when it is the phone's only video codec.
pub(crate) fn answered_video(sdp: &gst_sdp::SDPMessageRef) -> AnsweredVideo {
    let Some(media) = sdp.medias().find(|m| m.media() == Some("video")) else {
        return AnsweredVideo::AsOffered;
    };
    // Port 0 is either "rejected" or "bundled on the tag's transport" (RFC 8843 answers
    // bundled lines so): only a line outside the BUNDLE group is rejected.
    let bundled = media
        .attribute_val("mid")
        .is_some_and(|mid| bundle_mids(sdp).any(|m| m == mid));
    if media.port() == 0 && !bundled {
        return AnsweredVideo::Rejected;
    }
    let mut vp8 = None;
    let mut other = false;
    for format in media.formats() {
        let Ok(pt) = format.parse::<u32>() else {
            continue;
        };
        match encoding_name(media, pt) {
            Some(name) if name.eq_ignore_ascii_case(VP8) => vp8 = vp8.or(Some(pt)),
            // RTX, RED and FEC ride along with whichever codec is chosen.
            Some(name)
                if ["rtx", "red", "ulpfec", "flexfec-03"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n)) => {}
            _ => other = true,
        }
    }
    match vp8 {
        Some(pt) if !other => AnsweredVideo::Vp8(pt),
        _ => AnsweredVideo::AsOffered,
    }
}

/// The attributes webrtcbin 1.22 wants on every m-line of an answer, rejected ones included
/// ("media 1 is missing or contains an empty 'ice-ufrag' attribute" fails the whole answer).
const TRANSPORT_ATTRIBUTES: [&str; 4] = ["ice-ufrag", "ice-pwd", "setup", "fingerprint"];

/// Gives every rejected line of `answer` (port 0, outside BUNDLE: a phone without a codec in
/// common for it) the transport attributes of the line that carries the transport, so that
/// webrtcbin accepts the answer; a rejected line sends nothing either way. Returns how many
/// lines were filled in.
pub(crate) fn fill_rejected_lines(answer: &mut gst_sdp::SDPMessageRef) -> usize {
    let mids: Vec<String> = bundle_mids(answer).map(str::to_owned).collect();
    let rejected = |m: &gst_sdp::SDPMediaRef| {
        m.port() == 0
            && !m
                .attribute_val("mid")
                .is_some_and(|mid| mids.iter().any(|b| b == mid))
    };
    let Some(carrier) = answer.medias().find(|m| !rejected(m)) else {
        return 0;
    };
    let transport: Vec<(&str, String)> = TRANSPORT_ATTRIBUTES
        .iter()
        .filter_map(|key| Some((*key, carrier.attribute_val(key)?.to_owned())))
        .collect();
    let mut filled = 0;
    for media in answer.medias_mut() {
        if !rejected(media) {
            continue;
        }
        for (key, value) in &transport {
            if media.attribute_val(key).is_none() {
                media.add_attribute(key, Some(value));
            }
        }
        filled += 1;
    }
    filled
}

/// The mids of the message's `a=group:BUNDLE` lines.
fn bundle_mids(sdp: &gst_sdp::SDPMessageRef) -> impl Iterator<Item = &str> {
    sdp.attributes()
        .filter(|a| a.key() == "group")
        .filter_map(|a| a.value()?.strip_prefix("BUNDLE "))
        .flat_map(str::split_whitespace)
}

/// The encoding name `a=rtpmap:<pt> <name>/<clock>` gives `pt`.
fn encoding_name(media: &gst_sdp::SDPMediaRef, pt: u32) -> Option<&str> {
    let prefix = format!("{pt} ");
    media
        .attributes()
        .filter(|a| a.key() == "rtpmap")
        .find_map(|a| a.value()?.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split('/').next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer as gst;

    const OFFER: &str = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio0 video1 application2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:audio0\r\na=rtpmap:111 OPUS/48000/2\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:video1\r\na=rtpmap:96 H264/90000\r\n\
        a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:application2\r\n";

    fn parse(text: &str) -> gst_sdp::SDPMessage {
        gst::init().unwrap();
        gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap()
    }

    #[test]
    fn vp8_follows_h264_on_a_free_payload_type_with_the_same_feedback() {
        // The video line is `bundle-only` (port 0): VP8 is added all the same.
        let mut offer = parse(OFFER);
        assert_eq!(offer_vp8(&mut offer), Some(98), "96 and 97 are taken");
        let text = offer.as_text().unwrap();
        assert!(
            text.contains("m=video 0 UDP/TLS/RTP/SAVPF 96 97 98\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:98 VP8/90000\r\n"), "{text}");
        assert!(
            text.contains("a=rtcp-fb:98 nack pli\r\na=rtcp-fb:98 ccm fir\r\n"),
            "{text}"
        );
        assert!(
            text.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
            "audio untouched: {text}"
        );
    }

    fn answer(video_line: &str, rtpmaps: &str) -> gst_sdp::SDPMessage {
        parse(&format!(
            "v=0\r\no=- 2 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             a=rtpmap:111 opus/48000/2\r\n{video_line}\r\n{rtpmaps}"
        ))
    }

    #[test]
    fn a_rejected_line_gets_the_transport_attributes_webrtcbin_wants() {
        // Firefox's answer to an offer whose video it cannot decode.
        let mut firefox = parse(
            "v=0\r\no=- 2 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB\r\n\
             a=group:BUNDLE audio0 application2\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio0\r\na=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=setup:active\r\n\
             m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=inactive\r\na=mid:video1\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:application2\r\na=ice-ufrag:u1\r\n",
        );
        assert_eq!(fill_rejected_lines(&mut firefox), 1);
        let video = firefox.media(1).unwrap();
        assert_eq!(video.attribute_val("ice-ufrag"), Some("u1"));
        assert_eq!(video.attribute_val("ice-pwd"), Some("p1"));
        assert_eq!(video.attribute_val("setup"), Some("active"));
        assert_eq!(video.port(), 0, "still rejected");
        assert_eq!(answered_video(&firefox), AnsweredVideo::Rejected);
        // Chromium's answer: nothing rejected, nothing changed.
        let mut chromium = parse(OFFER);
        let before = chromium.as_text().unwrap();
        assert_eq!(fill_rejected_lines(&mut chromium), 0);
        assert_eq!(chromium.as_text().unwrap(), before);
    }

    #[test]
    fn the_answer_says_which_video_the_phone_takes() {
        let chromium = answer(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98",
            "a=rtpmap:96 H264/90000\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:98 VP8/90000\r\n",
        );
        assert_eq!(answered_video(&chromium), AnsweredVideo::AsOffered);
        let firefox = answer(
            "m=video 9 UDP/TLS/RTP/SAVPF 98",
            "a=rtpmap:98 VP8/90000\r\n",
        );
        assert_eq!(answered_video(&firefox), AnsweredVideo::Vp8(98));
        let rejected = answer("m=video 0 UDP/TLS/RTP/SAVPF 0", "a=mid:video1\r\n");
        assert_eq!(answered_video(&rejected), AnsweredVideo::Rejected);
        let bundled = parse(
            "v=0\r\no=- 2 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio0 video1\r\n\
             m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:video1\r\na=rtpmap:98 VP8/90000\r\n",
        );
        assert_eq!(answered_video(&bundled), AnsweredVideo::Vp8(98));
        let no_video = parse("v=0\r\no=- 2 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
        assert_eq!(answered_video(&no_video), AnsweredVideo::AsOffered);
    }
}
