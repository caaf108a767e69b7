# Replace meta-raspberrypi's boot script with RAUC's A/B slot selection (bootloader=uboot).
FILESEXTRAPATHS:prepend:doorbell := "${THISDIR}/files:"
