#!/usr/bin/env bash
# Builds the doorbell firmware image from Debian 12 packages (run as root; no loop mounts, no
# device-mapper): mmdebstrap -> rootfs directory -> mkfs.ext4 -d / mkfs.vfat + mcopy -> one MBR
# disk image (sfdisk + dd) -> .img.zst + .bmap.
#
#   sudo image/build.sh [--arch amd64|arm64] [--deb FILE] [--out DIR] [--version V]
#                       [--keyring CA.pem] [--release]
#
# Partitions (MBR, as the Pi firmware needs): 1 boot (FAT: EFI GRUB on amd64, firmware on the
# Pi), 2 root A, 3 root B (ext4, read-only at run time), 4 data (ext4: /etc/doorbell,
# /var/lib/doorbell, RAUC status, SSH host key). Outputs in --out (default target/image/ARCH):
#   doorbell-ARCH.img.zst + doorbell-ARCH.img.bmap   the card / disk image
#   rootfs.ext4                                      the root file system (for RAUC bundles)
#   keys/                                            development CA + signing key (not --release)
# Without --deb it builds target/debian/doorbelld_*_ARCH.deb with scripts/build-deb.sh.
# Downloads are cached in $DOORBELL_IMAGE_CACHE (default /var/cache/doorbell-image).
set -euo pipefail
started=$(date +%s)
repo=$(cd "$(dirname "$0")/.." && pwd)
here=$repo/image

arch=amd64 deb="" out="" version="" keyring="" release=${DOORBELL_RELEASE:-0}
while (($#)); do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --deb) deb=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --keyring) keyring=$(realpath "$2"); shift 2 ;;
    --release) release=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ $arch == amd64 || $arch == arm64 ]] || { echo "--arch amd64 or arm64" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run as root (mmdebstrap --mode=root, file ownership)" >&2; exit 1; }
out=$(mkdir -p "${out:-$repo/target/image/$arch}" && realpath "${out:-$repo/target/image/$arch}")
version=${version:-$(git -C "$repo" describe --always --dirty 2>/dev/null || echo dev)-$(date -u +%Y%m%d%H%M%S)}
cache=${DOORBELL_IMAGE_CACHE:-/var/cache/doorbell-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Sizes in MiB. A root slot holds the whole system (GStreamer's plugins-bad pulls in Mesa and
# LLVM: about 1.1 GiB used) with room for updates to grow; updates replace it whole.
BOOT_MB=128 ROOT_MB=2048 DATA_MB=256
# Fixed MBR disk id: GRUB's kernel command line and RAUC's slots name partitions by PARTUUID.
DISK_ID=deb1d00b
COMPATIBLE=doorbell-$arch

# Signing. Development builds trust a throwaway CA made here (never committed); a release must be
# given the production CA and refuses the development one (same guard as the Yocto layer).
if [[ $release == 1 ]]; then
  [[ -n $keyring ]] || { echo "--release needs --keyring with the production CA" >&2; exit 1; }
  DOORBELL_RELEASE=1 python3 "$here/check-release-keys.py" "$keyring" "$out/keys"
elif [[ -z $keyring ]]; then
  bash "$repo/yocto/scripts/make-dev-keys.sh" "$out/keys" >/dev/null
  keyring=$out/keys/ca.cert.pem
fi

if [[ -z $deb ]]; then
  target=$([[ $arch == arm64 ]] && echo aarch64-unknown-linux-gnu || true)
  bin=$repo/target/${target:+$target/}release/doorbelld
  [[ -x $bin ]] || { echo "no $bin: cargo build --release${target:+ --target $target} first" >&2; exit 1; }
  deb=$(bash "$repo/scripts/build-deb.sh" $target | sed -n 's/^built \(.*\.deb\) .*/\1/p')
fi
[[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || { echo "$deb is not $arch" >&2; exit 1; }

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$cache/apt-$arch"

# doorbelld's run-time dependencies (Cargo.toml's package.metadata.deb) come from the archive;
# the rest is what an appliance needs: systemd with networkd/resolved (mDNS), RAUC, SSH (off by
# default), and the kernel. rauc-service is the D-Bus service that `rauc install` and
# `rauc status mark-good` talk to (Debian ships it apart from the command); RAUC's GRUB backend
# runs grub-editenv (grub-common) to switch slots.
packages=(systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd iproute2 kmod
  e2fsprogs dosfstools ca-certificates openssh-server rauc rauc-service grub-common initramfs-tools
  libgstreamer1.0-0 libgstreamer-plugins-base1.0-0 libgstreamer-plugins-bad1.0-0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-nice gstreamer1.0-alsa)
if [[ $arch == amd64 ]]; then
  packages+=(linux-image-amd64)
else
  packages+=(linux-image-arm64 raspi-firmware firmware-brcm80211 wpasupplicant gstreamer1.0-libcamera)
fi
# The Pi's boot files: raspi-firmware's hooks copy the kernel, initrd and DTBs to /boot/firmware.
mkdir -p "$work/setup/etc/default"
printf 'ROOTPART=PARTUUID=%s-02\nCONSOLES="serial0,115200 tty1"\n' "$DISK_ID" >"$work/setup/etc/default/raspi-firmware"

echo "== mmdebstrap ($arch): ${#packages[@]} packages, cache $cache/apt-$arch"
t0=$(date +%s)
IFS=,
mmdebstrap --mode=root --variant=apt --architectures="$arch" \
  --components="main non-free-firmware" --include="${packages[*]}" \
  --aptopt='Acquire::Retries "3"' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-include=/usr/share/doc/doorbelld/*' \
  --skip=download/empty \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives "$1"/etc/default' \
  --setup-hook="sync-in '$cache/apt-$arch' /var/cache/apt/archives/" \
  --setup-hook="copy-in '$work/setup/etc/default/raspi-firmware' /etc/default" \
  --essential-hook='mkdir -p "$1"/etc/sysusers.d' \
  --essential-hook="sync-in '$here/overlay/common/etc/sysusers.d' /etc/sysusers.d" \
  --customize-hook="sync-out /var/cache/apt/archives '$cache/apt-$arch'" \
  --customize-hook="copy-in '$deb' /tmp" \
  --customize-hook='chroot "$1" sh -c "dpkg -i /tmp/doorbelld_*.deb && rm /tmp/doorbelld_*.deb"' \
  bookworm "$root" \
  "deb $mirror bookworm main non-free-firmware" \
  "deb $mirror bookworm-updates main non-free-firmware" \
  "deb $security bookworm-security main non-free-firmware"
unset IFS
echo "mmdebstrap: $(($(date +%s) - t0)) s"

# --- the appliance's configuration -------------------------------------------------------
cp -a "$here/overlay/common/." "$root/"
[[ -d $here/overlay/$arch ]] && cp -a "$here/overlay/$arch/." "$root/"
# Debian's rauc ships no /etc/rauc.
mkdir -p "$root/etc/rauc"
sed -e "s/@COMPATIBLE@/$COMPATIBLE/" -e "s/@DISK_ID@/$DISK_ID/g" "$here/rauc-system.conf" >"$root/etc/rauc/system.conf"
install -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"
echo "$version" >"$root/etc/doorbell-image-version"
systemctl --root="$root" enable systemd-networkd systemd-resolved systemd-timesyncd \
  doorbelld doorbell-health doorbell-debug-shell ssh >/dev/null
systemctl --root="$root" disable apt-daily.timer apt-daily-upgrade.timer e2scrub_reap \
  e2scrub_all.timer >/dev/null 2>&1 || true
[[ $arch == arm64 ]] && systemctl --root="$root" enable wpa_supplicant@wlan0 >/dev/null
# No password for anyone: root is locked, there is no other login. SSH needs a key from the
# boot partition; the debug shell needs the kernel command line.
chroot "$root" passwd -l root >/dev/null
# Identities made on first boot, never baked into the image.
rm -f "$root"/etc/ssh/ssh_host_* "$root/var/lib/dbus/machine-id"
: >"$root/etc/machine-id"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# Mount points: the root is read-only, so every bind-mount target must exist in it.
mkdir -p "$root/data" "$root/boot/firmware" "$root/var/lib/doorbell"

# --- data partition: the persistent state, first-boot defaults ---------------------------
data=$work/data
mkdir -p "$data/lib-doorbell" "$data/ssh" "$data/rauc"
cp -a "$root/etc/doorbell" "$data/etc-doorbell"
cp -a "$root/var/lib/systemd" "$data/systemd"
chown 900:900 "$data/lib-doorbell"
chmod 0700 "$data/lib-doorbell" "$data/ssh"
echo "$version" >"$data/image-version"

# --- boot partition -----------------------------------------------------------------------
boot=$work/boot
mkdir -p "$boot"
if [[ $arch == amd64 ]]; then
  mkdir -p "$boot/EFI/BOOT"
  grub_modules=(part_msdos fat ext2 normal linux configfile loadenv test echo regexp sleep serial terminal gzio)
  grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$boot/EFI/BOOT/BOOTX64.EFI" \
    "${grub_modules[@]}" all_video efi_gop
  # Also BIOS boot (GRUB in the MBR and the gap before partition 1), same grub.cfg: the QEMU
  # tests boot this way, because OVMF cannot run under nested KVM on the CI machines (see
  # image/test/vm.mjs).
  grub-mkimage -O i386-pc -p '(hd0,msdos1)/EFI/BOOT' -o "$work/core.img" biosdisk "${grub_modules[@]}"
  sed "s/@DISK_ID@/$DISK_ID/g" "$here/grub.cfg" >"$boot/EFI/BOOT/grub.cfg"
  # RAUC's GRUB protocol: ORDER, x_OK, x_TRY (rauc/contrib/grub.conf). Slot A ships good.
  grub-editenv "$boot/EFI/BOOT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
else
  cp -a "$root/boot/firmware/." "$boot/"
  cat "$repo/hw/config.txt" >>"$boot/config.txt"
  printf '\n# Wi-Fi: put a wpa_supplicant.conf next to this file (README, "Firmware image").\n' >>"$boot/config.txt"
  find "$root/boot/firmware" -mindepth 1 -delete
fi

# --- file systems and the disk ------------------------------------------------------------
used=$(du -sm --apparent-size "$root" | cut -f1)
echo "root file system: $used MiB used of a $ROOT_MB MiB slot"
((used * 100 / ROOT_MB < 90)) || { echo "the root file system does not fit its slot: raise ROOT_MB" >&2; exit 1; }
rootfs=$out/rootfs.ext4
rm -f "$rootfs"
mkfs.ext4 -q -L rootfs -d "$root" -E root_owner=0:0 "$rootfs" "${ROOT_MB}M"
mkfs.ext4 -q -L doorbell-data -d "$data" "$work/data.ext4" "${DATA_MB}M"
mkfs.vfat -C -n DOORBELL "$work/boot.vfat" $((BOOT_MB * 1024)) >/dev/null
mcopy -s -i "$work/boot.vfat" "$boot"/* ::/

img=$out/doorbell-$arch.img
rm -f "$img"
truncate -s $((1 + BOOT_MB + 2 * ROOT_MB + DATA_MB))M "$img"
sfdisk -q "$img" <<EOF
label: dos
label-id: 0x$DISK_ID
1MiB,${BOOT_MB}MiB,ef,*
,${ROOT_MB}MiB,83
,${ROOT_MB}MiB,83
,${DATA_MB}MiB,83
EOF
if [[ $arch == amd64 ]]; then
  # boot.img's code (not the partition table) in the MBR; core.img from sector 1, where boot.img
  # looks for it (grub-mkimage writes core.img's own length into its first sector).
  (($(stat -c %s "$work/core.img") < 1024 * 1024 - 512)) || { echo "core.img does not fit before partition 1" >&2; exit 1; }
  dd if=/usr/lib/grub/i386-pc/boot.img of="$img" bs=440 count=1 conv=notrunc status=none
  dd if="$work/core.img" of="$img" bs=512 seek=1 conv=notrunc status=none
fi
put() { dd if="$1" of="$img" bs=1M seek="$2" conv=notrunc,sparse status=none; }
put "$work/boot.vfat" 1
put "$rootfs" $((1 + BOOT_MB))
put "$work/data.ext4" $((1 + BOOT_MB + 2 * ROOT_MB))

bmaptool -q create -o "$img.bmap" "$img"
rm -f "$img.zst"
zstd -q -T0 -10 "$img" -o "$img.zst"
raw_mb=$(du -m --apparent-size "$img" | cut -f1) allocated_mb=$(du -m "$img" | cut -f1)
# The raw image is 4.4 GiB (sparse): keep only the compressed one (tests decompress it).
rm -f "$img"
echo "$version" >"$out/version"
echo "== built $img.zst ($arch, $version)"
echo "   raw $raw_mb MiB ($allocated_mb MiB allocated), compressed $(du -m "$img.zst" | cut -f1) MiB, root file system $used MiB"
echo "   build time $(($(date +%s) - started)) s"
