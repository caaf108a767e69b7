# nicesrc/nicesink for webrtcbin's ICE transport. oe-core packages the plugin inside `libnice`
# itself (FILES:${PN} += "${libdir}/gstreamer-1.0/*.so").
PACKAGECONFIG:append:doorbell = " gstreamer"
