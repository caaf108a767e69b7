"""Release-signing guard for meta-doorbell.

A bundle signed with the development key, or an image whose RAUC keyring trusts the development
CA, must never ship. Recipes call `check_release_keys(d, ...)` from an anonymous python function;
when DOORBELL_RELEASE = "1" it stops the build with bb.fatal if any of the named files lies in
DOORBELL_DEV_KEYS_DIR or carries the development marker in its subject.

Kept free of bitbake imports (the `bb` module is passed in) so that
scripts/check-yocto.sh can unit-test it with a stand-in datastore.
"""
import base64
import os
import re

# make-dev-keys.sh puts this in every development certificate's subject (O=...).
DEV_MARKER = "Doorbell Development"


def _is_dev_file(path, dev_dir):
    if not path:
        return False
    if path.startswith("pkcs11:"):
        # A token (HSM, smart card): never the throwaway development key.
        return False
    real = os.path.realpath(path)
    dev = os.path.realpath(dev_dir) if dev_dir else None
    if dev and (real == dev or real.startswith(dev + os.sep)):
        return True
    try:
        with open(real, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return False
    return DEV_MARKER.encode() in data or any(DEV_MARKER.encode() in der for der in _pem_blobs(data))


def _pem_blobs(data):
    """The DER bytes of every PEM block (a subject is only readable after base64 decoding)."""
    blobs = []
    for m in re.finditer(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", data, re.S):
        try:
            blobs.append(base64.b64decode(b"".join(m.group(1).split()), validate=False))
        except ValueError:
            continue
    return blobs


def check_release_keys(d, bb, variables):
    """Fail the build if a release would use development signing material.

    `variables` names datastore variables holding file paths (or PKCS#11 URIs), e.g.
    ["RAUC_KEY_FILE", "RAUC_CERT_FILE"]. Returns the list of offending variables (empty when
    the build may go on), after calling bb.fatal for a release build with any offender.
    """
    if d.getVar("DOORBELL_RELEASE") != "1":
        return []
    dev_dir = d.getVar("DOORBELL_DEV_KEYS_DIR") or ""
    offenders = []
    for var in variables:
        value = d.getVar(var) or ""
        if not value:
            offenders.append("%s (unset)" % var)
        elif _is_dev_file(value, dev_dir):
            offenders.append("%s = %s" % (var, value))
    if offenders:
        bb.fatal(
            "DOORBELL_RELEASE = \"1\" but development signing material is configured: %s. "
            "A release is signed with the production key (a PKCS#11 URI such as "
            "RAUC_KEY_FILE = \"pkcs11:token=doorbell;object=release\" or files kept outside this "
            "repository) and its images trust only the production CA: set RAUC_KEY_FILE, "
            "RAUC_CERT_FILE and DOORBELL_RAUC_KEYRING_DIR in the release build's local.conf."
            % "; ".join(offenders)
        )
    return offenders
