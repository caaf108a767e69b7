# VP8 for phones that decode no H.264 (doorbelld's media.vp8, on by default): vp8enc is in the
# -vpx package, built only with libvpx (oe-core), which oe-core leaves off by default.
PACKAGECONFIG:append:doorbell = " vpx"
