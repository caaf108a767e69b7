SUMMARY = "Doorbell appliance image: doorbelld on a read-only root with RAUC A/B updates"
DESCRIPTION = "doorbelld with its GStreamer plugins, RAUC and U-Boot's A/B boot script on a \
read-only root; configuration and state on a data partition."
LICENSE = "MIT"

inherit core-image

# The Pi 4 and the Zero 2 W (64-bit): both have the V4L2 hardware H.264 encoder that the
# daemon prefers, a CSI camera connector and I2S on the 40-pin header.
COMPATIBLE_MACHINE = "^(raspberrypi4-64|raspberrypi0-2w-64)$"

# read-only-rootfs: nothing on / changes at run time, so A/B slots stay byte-identical to the
# bundle that installed them; writable state lives on the data partition (overlays).
IMAGE_FEATURES += "read-only-rootfs"
# debug-tweaks (empty root password) and ssh only for development images: add
# EXTRA_IMAGE_FEATURES = "debug-tweaks ssh-server-dropbear" in local.conf, never in a release.

IMAGE_INSTALL = "\
    packagegroup-core-boot \
    doorbelld \
    rauc \
    libubootenv-bin \
    kernel-image \
    alsa-utils-alsamixer \
    ${CORE_IMAGE_EXTRA_INSTALL} \
    "
# kernel-image: U-Boot boots the kernel from /boot of the active slot (see boot.cmd.in), so
# an update replaces the kernel and its modules together.

# Slot sizes. The root file system image must fit a slot: IMAGE_ROOTFS_MAXSIZE (KiB) fails
# the build before a bundle could be made that no device can install.
DOORBELL_ROOTFS_SIZE_MB ?= "768"
DOORBELL_DATA_SIZE_MB ?= "512"
IMAGE_ROOTFS_MAXSIZE = "${@int(d.getVar('DOORBELL_ROOTFS_SIZE_MB')) * 1024}"

# ext4: the slot image that doorbell-bundle packs; wic.bz2 + wic.bmap: the card to flash.
IMAGE_FSTYPES = "ext4 wic.bz2 wic.bmap"
WKS_FILE = "doorbell-ab.wks.in"
WKS_FILE_DEPENDS:append = " e2fsprogs-native"
WICVARS:append = " DOORBELL_ROOTFS_SIZE_MB DOORBELL_DATA_SIZE_MB"
