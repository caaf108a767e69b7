# Where fw_printenv/fw_setenv (and so RAUC) find U-Boot's environment: the uboot.env file on
# the FAT boot partition, 16 KiB (CONFIG_ENV_SIZE of the Pi's U-Boot defconfigs).
FILESEXTRAPATHS:prepend:doorbell := "${THISDIR}/files:"
SRC_URI:append:doorbell = " file://fw_env.config"

do_install:append:doorbell() {
    install -d ${D}${sysconfdir}
    install -m 0644 ${WORKDIR}/fw_env.config ${D}${sysconfdir}/fw_env.config
}

FILES:${PN}-bin:append:doorbell = " ${sysconfdir}/fw_env.config"
