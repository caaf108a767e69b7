# Mounts that every root file system (A or B, from the wic image or a RAUC bundle) needs:
# the FAT boot partition (U-Boot's environment, written by RAUC through fw_setenv) and the data
# partition under the overlays. See wic/doorbell-ab.wks.in.
do_install:append:doorbell() {
    cat >> ${D}${sysconfdir}/fstab <<'FSTAB'
LABEL=boot   /boot  vfat  defaults,noatime,umask=0077  0  2
LABEL=data   /data  ext4  defaults,noatime,nodev,nosuid  0  2
FSTAB
}
