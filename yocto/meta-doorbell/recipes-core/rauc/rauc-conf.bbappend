# The doorbell's /etc/rauc/system.conf and the keyring devices trust for updates.
# The keyring comes from DOORBELL_RAUC_KEYRING_DIR (conf/distro/doorbell.conf): the development
# CA by default, the production CA for a release (checked below).
FILESEXTRAPATHS:prepend:doorbell := "${THISDIR}/files:${DOORBELL_RAUC_KEYRING_DIR}:"
RAUC_KEYRING_FILE:doorbell = "ca.cert.pem"
DOORBELL_RAUC_KEYRING:doorbell = "${DOORBELL_RAUC_KEYRING_DIR}/${RAUC_KEYRING_FILE}"

# system.conf names the machine (compatible string), so the package is machine-specific.
PACKAGE_ARCH:doorbell = "${MACHINE_ARCH}"

do_install:append:doorbell() {
    sed -i -e 's/@@DOORBELL_RAUC_COMPATIBLE@@/${DOORBELL_RAUC_COMPATIBLE}/' \
        ${D}${sysconfdir}/rauc/system.conf
    if grep -q '@@' ${D}${sysconfdir}/rauc/system.conf; then
        bbfatal "system.conf still has an unreplaced @@placeholder@@"
    fi
}

# A release image must not trust the development CA: anyone holding the (public, throwaway)
# development key could then install firmware on it.
# The check is a no-op outside DOORBELL_RELEASE = "1", which only the doorbell distro sets.
# nooelint: oelint.vars.noncoreoverride - function definitions cannot carry a distro override
python doorbell_check_keyring() {
    import doorbell.signing
    doorbell.signing.check_release_keys(d, bb, ["DOORBELL_RAUC_KEYRING"])
}
do_install[prefuncs] += "doorbell_check_keyring"
do_install[vardeps] += "DOORBELL_RAUC_COMPATIBLE DOORBELL_RELEASE DOORBELL_RAUC_KEYRING"
