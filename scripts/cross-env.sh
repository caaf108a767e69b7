#!/usr/bin/env bash
# Docker-free cross-compiling for the Pi (aarch64, Debian 12 userland), as CI does it.
#
#   source scripts/cross-env.sh     # installs what is missing, builds the sysroot once,
#                                    # exports cargo/pkg-config settings for aarch64
#   cargo build --release --target aarch64-unknown-linux-gnu --bins
#   cargo test --target aarch64-unknown-linux-gnu   # runs under qemu-aarch64
#
# How (see ../shared/PLATFORM.md): the arm64 -dev packages are NOT installed with apt (they
# have no Multi-Arch field and would remove the amd64 ones); mmdebstrap extracts them into a
# sysroot under target/. The arm64 runtime libraries and GStreamer plugins ARE installed with
# apt (Multi-Arch: same), so the cross-built binaries and tests run under qemu-aarch64.
# Developers with Docker can use cross-rs instead (cross.toml).

set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOORBELL_SYSROOT="${DOORBELL_SYSROOT:-$_root/target/sysroot-arm64}"
_sudo=""; [[ $(id -u) -eq 0 ]] || _sudo="sudo"

_need_apt=()
for _pkg in mmdebstrap gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file libc6:arm64 \
  libgstreamer1.0-0:arm64 libgstreamer-plugins-base1.0-0:arm64 libgstreamer-plugins-bad1.0-0:arm64 \
  gstreamer1.0-plugins-base:arm64 gstreamer1.0-plugins-good:arm64 gstreamer1.0-plugins-bad:arm64 \
  gstreamer1.0-plugins-ugly:arm64 gstreamer1.0-nice:arm64 gstreamer1.0-libav:arm64; do
  dpkg-query -W -f='${Status}' "$_pkg" 2>/dev/null | grep -q "install ok installed" || _need_apt+=("$_pkg")
done
if ((${#_need_apt[@]})); then
  echo "cross: installing ${_need_apt[*]}" >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || $_sudo dpkg --add-architecture arm64
  $_sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $_sudo apt-get install -y -q --no-install-recommends "${_need_apt[@]}" >&2
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
  rustup target add aarch64-unknown-linux-gnu >&2

if [[ ! -f $DOORBELL_SYSROOT/.complete ]]; then
  echo "cross: building the arm64 sysroot in $DOORBELL_SYSROOT (once)" >&2
  rm -rf "$DOORBELL_SYSROOT"
  mkdir -p "$(dirname "$DOORBELL_SYSROOT")"
  # The machine's own Debian mirror, so this works wherever apt works.
  # (|| true: a missing sources.list or head closing the pipe must not end a `set -e` shell)
  # Only active lines (one-line `deb URL` or deb822 `URIs:`), never comments; not -security.
  _mirror=${DOORBELL_DEBIAN_MIRROR:-$(grep -rhE '^[[:space:]]*(deb|URIs:)[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?$' | grep -v -e security -e snapshot | head -n1 || true)}
  _mirror=${_mirror:-http://deb.debian.org/debian}
  # Checked explicitly: this file is sourced, so `set -e` may not apply (e.g. `source … &&`).
  # A few tries, because one failed `apt-get update` inside mmdebstrap aborts the whole run.
  for _try in 1 2 3; do
    rm -rf "$DOORBELL_SYSROOT"
    if mmdebstrap --quiet --variant=extract --architectures=arm64 \
      --include=libgstreamer1.0-dev,libgstreamer-plugins-base1.0-dev,libgstreamer-plugins-bad1.0-dev,libc6-dev \
      bookworm "$DOORBELL_SYSROOT" "deb $_mirror bookworm main" >&2 &&
      [[ -f $DOORBELL_SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig/gstreamer-1.0.pc ]]; then
      touch "$DOORBELL_SYSROOT/.complete"
      break
    fi
    echo "cross: building the sysroot failed (try $_try of 3)" >&2
  done
  if [[ ! -f $DOORBELL_SYSROOT/.complete ]]; then
    echo "cross: cannot build the arm64 sysroot with mmdebstrap; see the messages above" >&2
    return 1 2>/dev/null || exit 1
  fi
fi

export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu="$DOORBELL_SYSROOT"
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu="$DOORBELL_SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$DOORBELL_SYSROOT/usr/share/pkgconfig"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$DOORBELL_SYSROOT"
# No -L: with libc6:arm64 installed, qemu finds /lib/ld-linux-aarch64.so.1 itself (and -L
# /usr/aarch64-linux-gnu would hang on a mismatched ld.so).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
# The arm64 plugin scanner cannot be exec'd under qemu-user.
export GST_REGISTRY_FORK=no
unset _root _sudo _need_apt _pkg _mirror _try
