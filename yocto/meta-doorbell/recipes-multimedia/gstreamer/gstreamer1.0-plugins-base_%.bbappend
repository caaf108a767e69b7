# opusenc/opusdec (the call's audio codec) are in -base but off by default in oe-core.
PACKAGECONFIG:append:doorbell = " opus"
