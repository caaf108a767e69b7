#!/bin/sh
# Remakes src/voice/prompt.ogg, the door's spoken prompt before a voice message, offline:
# espeak-ng (Debian package espeak-ng) speaks the text to a WAV, GStreamer encodes it as Opus
# in Ogg (mono, 24 kbit/s), and a short tone marks where the recording starts.
set -eu
out="${1:-$(dirname "$0")/../src/voice/prompt.ogg}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/speech.wav" \
  "Nobody can come to the door right now. Please leave a message after the tone."
gst-launch-1.0 -q concat name=c ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 \
  ! opusenc bitrate=24000 ! oggmux ! filesink location="$out" \
  filesrc location="$tmp/speech.wav" ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! c. \
  audiotestsrc wave=silence num-buffers=15 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 ! c. \
  audiotestsrc wave=sine freq=880 volume=0.4 num-buffers=20 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 ! c.
ls -l "$out"
