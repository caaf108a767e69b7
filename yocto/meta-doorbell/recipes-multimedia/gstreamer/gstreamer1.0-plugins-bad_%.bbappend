# WebRTC for doorbelld: webrtcbin needs libnice (meta-oe), DTLS (on by default), SRTP
# (libsrtp) and SCTP (bundled usrsctp, for the unlock data channel). webrtcdsp gives echo
# cancellation and noise suppression (webrtc-audio-processing, meta-multimedia). openh264 is
# the software H.264 fallback (meta-multimedia; LICENSE_FLAGS "commercial", accepted in
# conf/distro/doorbell.conf).
PACKAGECONFIG:append:doorbell = " webrtc srtp sctp webrtcdsp openh264"
