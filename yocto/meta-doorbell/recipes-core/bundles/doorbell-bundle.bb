SUMMARY = "RAUC update bundle with the doorbell image's root file system"
DESCRIPTION = "A signed dm-verity bundle that `rauc install` writes to the inactive root \
file system slot of a doorbell (see recipes-core/rauc/files/system.conf)."
LICENSE = "MIT"

inherit bundle

# Must equal system.conf's compatible (both come from DOORBELL_RAUC_COMPATIBLE).
RAUC_BUNDLE_COMPATIBLE = "${DOORBELL_RAUC_COMPATIBLE}"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION = "Doorbell firmware ${DISTRO_VERSION} for ${MACHINE}"
# verity: the device checks every block it reads against the signed root hash; system.conf
# accepts nothing else (bundle-formats=-plain).
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "doorbell-image"
RAUC_SLOT_rootfs[fstype] = "ext4"

# Development signing key and certificate (issued by the development CA), made by
# yocto/scripts/make-dev-keys.sh; never committed. A release overrides both in local.conf with
# the production key, ideally on a token: RAUC_KEY_FILE = "pkcs11:token=...;object=..."
# (RAUC signs through PKCS#11), and never with files from this repository.
RAUC_KEY_FILE ?= "${DOORBELL_DEV_KEYS_DIR}/development-1.key.pem"
RAUC_CERT_FILE ?= "${DOORBELL_DEV_KEYS_DIR}/development-1.cert.pem"

python doorbell_check_signing() {
    import os
    import doorbell.signing
    # Refuse to sign a release with development material (bb.fatal inside).
    doorbell.signing.check_release_keys(d, bb, ["RAUC_KEY_FILE", "RAUC_CERT_FILE"])
    for var in ("RAUC_KEY_FILE", "RAUC_CERT_FILE"):
        path = d.getVar(var)
        if not path.startswith("pkcs11:") and not os.path.exists(path):
            bb.fatal("%s = %s does not exist. For a development bundle run "
                     "yocto/scripts/make-dev-keys.sh once; a release sets %s in local.conf."
                     % (var, path, var))
}
do_bundle[prefuncs] += "doorbell_check_signing"
do_bundle[vardeps] += "DOORBELL_RELEASE DOORBELL_DEV_KEYS_DIR"
