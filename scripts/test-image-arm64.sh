#!/usr/bin/env bash
# Boots the arm64 firmware image under qemu-system-aarch64 -M virt (TCG: there is no arm64 KVM
# here) until doorbelld's embedded hub answers /healthz through QEMU's port forwarding.
# Run as root (the image build needs it):
#   bash scripts/test-image-arm64.sh            # cross build, image build, boot
#   DOORBELL_IMAGE_SKIP_BUILD=1 bash scripts/test-image-arm64.sh   # boot target/image/arm64
#
# The Pi's firmware boots the kernel directly from the boot partition; QEMU's virt board has no
# such firmware, so this boots the same kernel and initrd (read from root slot A with debugfs, no
# mount) with QEMU's -kernel, and root= the same PARTUUID. Everything after the kernel (initrd,
# systemd, the read-only root, the data partition's bind mounts, doorbelld under its sandboxing
# with simulated GPIO and test sources) is the image as flashed. Not emulated: the Pi's firmware,
# camera, I2S audio, Wi-Fi.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root (mmdebstrap --mode=root)" >&2; exit 1; }
# Guest time to a healthy hub under TCG: the first boot makes the identity and the TLS key.
HEALTHZ_TIMEOUT_SEC=${HEALTHZ_TIMEOUT_SEC:-1500}
HUB_PORT=8443 # the embedded hub's port in the image's /etc/doorbell/doorbell.toml
DISK_ID=deb1d00b # image/build.sh
out=target/image/arm64
start=$(date +%s)

if [[ ${DOORBELL_IMAGE_SKIP_BUILD:-0} != 1 ]]; then
  # qemu-user-static's binfmt entries run the arm64 maintainer scripts inside mmdebstrap.
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  # No systemd-binfmt on the build machines: register the package's entry by hand (same format).
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] ||
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
  # shellcheck source=cross-env.sh
  source scripts/cross-env.sh
  cargo build --release --locked --target aarch64-unknown-linux-gnu --bin doorbelld
  bash image/build.sh --arch arm64
fi
built=$(date +%s)

work=$(mktemp -d)
qemu_pid=""
cleanup() {
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null || true
  [[ -n ${DOORBELL_KEEP_VM:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
zstd -q -d --sparse "$out/doorbell-arm64.img.zst" -o "$work/disk.img"
kernel=$(debugfs -R 'ls -p /boot' "$out/rootfs.ext4" 2>/dev/null | awk -F/ '$6 ~ /^vmlinuz-/ { print $6 }' | sort -V | tail -n1)
[[ -n $kernel ]] || { echo "no /boot/vmlinuz-* in $out/rootfs.ext4" >&2; exit 1; }
debugfs -R "dump /boot/$kernel $work/vmlinuz" "$out/rootfs.ext4" 2>/dev/null
debugfs -R "dump /boot/initrd.img-${kernel#vmlinuz-} $work/initrd.img" "$out/rootfs.ext4" 2>/dev/null
[[ -s $work/initrd.img ]] || { echo "no initrd for $kernel" >&2; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -accel tcg,thread=multi -smp 2 -m 1024 \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=PARTUUID=$DISK_ID-02 ro rauc.slot=A console=ttyAMA0 panic=10" \
  -drive "file=$work/disk.img,format=raw,if=virtio,cache=unsafe" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:$HUB_PORT" -device virtio-net-pci,netdev=n0 \
  -device virtio-rng-pci -display none -monitor none -serial "file:$work/console.log" &
qemu_pid=$!
booted=$(date +%s)
deadline=$((booted + HEALTHZ_TIMEOUT_SEC))
until curl -sfk --max-time 5 "https://127.0.0.1:$port/healthz" >"$work/healthz"; do
  if ! kill -0 "$qemu_pid" 2>/dev/null; then
    echo "QEMU exited before the hub answered" >&2; tail -n 40 "$work/console.log" >&2; exit 1
  fi
  if (($(date +%s) > deadline)); then
    echo "no /healthz after ${HEALTHZ_TIMEOUT_SEC} s" >&2; tail -n 40 "$work/console.log" >&2; exit 1
  fi
  # Polled: the guest's hub gives no signal but answering; bounded by the deadline above.
  sleep 5
done
echo "arm64 image: hub /healthz answered $(($(date +%s) - booted)) s after QEMU started (TCG): $(cat "$work/healthz")"
grep -a -m1 -E 'Started doorbelld|doorbelld.service' "$work/console.log" || true
echo "arm64 image: build $((built - start)) s, boot to /healthz $(($(date +%s) - booted)) s"
