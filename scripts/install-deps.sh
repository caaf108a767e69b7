#!/usr/bin/env bash
# Installs what building, running and testing doorbelld needs on Debian 12 / Ubuntu, skipping
# what is already there. Safe to run again. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # build
  build-essential pkg-config
  # GStreamer 1.22: webrtcbin, encoders, Opus, ICE (nice), ALSA/Pulse I/O
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-libav gstreamer1.0-tools
  gstreamer1.0-alsa gstreamer1.0-pulseaudio
  # the phones in end-to-end tests (Firefox ESR: the one without H.264, driven by
  # puppeteer-core), and the test runner's JavaScript engine
  chromium firefox-esr nodejs npm
  # systemd-analyze, to check the units offline
  systemd
  # the NAT test bed: namespaces, veth, NAT, delay; python3 runs its delay line where the kernel
  # has no netem; coturn is the external TURN server it tests,
  # and turnserver/turnutils_uclient are the reference tools of hub/tests/turn_relay.rs and
  # hub/examples/turn_bench.rs (Debian does not start the service)
  iproute2 iptables python3 coturn
  # Let's Encrypt's ACME test server, which hub/tests/acme.rs runs on loopback
  pebble
  # the firmware image (image/build.sh) and its booted tests under QEMU: Debian bootstrap,
  # file systems without mounting, GRUB (EFI and BIOS), RAUC bundles, bmap, QEMU and OVMF
  mmdebstrap e2fsprogs dosfstools mtools fdisk grub-efi-amd64-bin grub-pc-bin grub-common rauc
  squashfs-tools bmap-tools zstd qemu-system-x86 ovmf
  # the arm64 image: its maintainer scripts under qemu-user (binfmt), its boot under -M virt
  qemu-user-static qemu-system-arm
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A machine that already has a newer Node.js (e.g. from NodeSource) keeps it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do [[ $pkg == nodejs || $pkg == npm ]] || filtered+=("$pkg"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "Rust is not installed: see https://rustup.rs (rustup), then run this again." >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# playwright-core drives Debian's Chromium (it never downloads a browser of its own).
if [[ ! -d tests/e2e/node_modules/playwright-core ]]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
# TypeScript checks the phone app's JSDoc types (`tsc --noEmit`); the app itself has no build.
if [[ ! -x web/node_modules/.bin/tsc ]]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
