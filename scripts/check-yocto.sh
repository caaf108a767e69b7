#!/usr/bin/env bash
# Offline checks of the Yocto layer and the RAUC update chain (a real Yocto build needs the
# network and hours; these need neither). Installs what it needs, skipping what is there:
# apt: rauc, squashfs-tools, openssl, e2fsprogs; pip (into a venv in ~/.cache, never the
# system Python): kas, oelint-adv, jsonschema. One line per check; exit 1 on any failure.
#
#   bash scripts/check-yocto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

APT_PACKAGES=(rauc squashfs-tools openssl e2fsprogs python3-venv)
# Pinned so that a new linter release cannot turn CI red overnight; bump deliberately.
PIP_PACKAGES=(kas==5.5 oelint-adv==9.11.2 jsonschema==4.26.0)
VENV=${DOORBELL_YOCTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/doorbell-yocto/venv}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
stamp="$VENV/.doorbell-requirements"
if [[ ! -x $VENV/bin/python || $(cat "$stamp" 2>/dev/null) != "${PIP_PACKAGES[*]}" ]]; then
  echo "installing into $VENV: ${PIP_PACKAGES[*]}"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
  echo "${PIP_PACKAGES[*]}" >"$stamp"
fi
PY="$VENV/bin/python"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0
# check NAME COMMAND...: one line per check; the command's output only when it fails.
check() {
  local name=$1; shift
  local start=$SECONDS
  if "$@" >"$work/out" 2>&1; then
    printf 'ok    %-44s %3ss\n' "$name" $((SECONDS - start))
    passes=$((passes + 1))
  else
    printf 'FAIL  %-44s %3ss\n' "$name" $((SECONDS - start))
    sed 's/^/      /' "$work/out"
    failures=$((failures + 1))
  fi
}

# --- the layer -----------------------------------------------------------------------------
oelint() {
  # .oelint.cfg (release, constants, suppressed rules with reasons) is read from the cwd.
  (cd yocto && mapfile -t files < <(find meta-doorbell \( -name '*.bb' -o -name '*.bbappend' -o -name '*.inc' \) | sort) &&
    "$VENV/bin/oelint-adv" --quiet "${files[@]}")
}
check "oelint-adv on meta-doorbell" oelint

check "kas files against kas's JSON schema" "$PY" yocto/scripts/check-kas.py

kas_schema_rejects_typo() {
  # The schema check must catch a misspelled key (proves it is not vacuous).
  sed 's/^machine:/machnie:/' yocto/kas/doorbell-rpi4.yml >"$work/bad-kas.yml"
  if "$PY" yocto/scripts/check-kas.py "$work/bad-kas.yml" 2>"$work/bad-kas.err"; then
    echo "check-kas.py accepted 'machnie:'"; return 1
  fi
  grep -q "schema: (top): Additional properties are not allowed ('machnie' was unexpected)" "$work/bad-kas.err"
}
check "kas check rejects a misspelled key" kas_schema_rejects_typo

# --- crates.inc vs Cargo.lock ---------------------------------------------------------------
check "doorbelld-crates.inc matches Cargo.lock" \
  python3 yocto/scripts/gen-crates-inc.py \
  --check yocto/meta-doorbell/recipes-doorbell/doorbelld/doorbelld-crates.inc

stale_crates_inc_fails() {
  # Bump the first crates.io package's version in a copy of Cargo.lock: the committed .inc is
  # then stale, and the check must fail and name the command that fixes it.
  python3 - "$root/Cargo.lock" "$work/Cargo.lock" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r'(name = "[^"]+"\nversion = ")([^"]+)("\nsource = "registry\+)', text)
bumped = m.group(2) + ".1" if m.group(2).count(".") < 3 else m.group(2) + "1"
open(sys.argv[2], "w").write(text[:m.start(2)] + bumped + text[m.end(2):])
PY
  if python3 yocto/scripts/gen-crates-inc.py --lock "$work/Cargo.lock" \
      --check yocto/meta-doorbell/recipes-doorbell/doorbelld/doorbelld-crates.inc 2>"$work/stale.err"; then
    echo "the check passed on a stale crates.inc"; return 1
  fi
  grep -q 'is stale' "$work/stale.err" && grep -q 'fix: python3 yocto/scripts/gen-crates-inc.py --output' "$work/stale.err"
}
check "a stale crates.inc fails the check" stale_crates_inc_fails

# --- release signing guard (lib/doorbell/signing.py, called by the bundle and rauc-conf) ----
signing_guard() {
  bash yocto/scripts/make-dev-keys.sh "$work/keys" >/dev/null
  cp "$work/keys/development-1.cert.pem" "$work/copied-dev.cert.pem"
  "$PY" - "$root/yocto/meta-doorbell/lib" "$work" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from doorbell import signing
work = sys.argv[2]

class Fatal(Exception):
    pass

class BB:
    @staticmethod
    def fatal(msg):
        raise Fatal(msg)

class D(dict):
    def getVar(self, name):
        return self.get(name)

def run(release, key, cert):
    d = D(DOORBELL_RELEASE=release, DOORBELL_DEV_KEYS_DIR=f"{work}/keys",
          RAUC_KEY_FILE=key, RAUC_CERT_FILE=cert)
    try:
        signing.check_release_keys(d, BB, ["RAUC_KEY_FILE", "RAUC_CERT_FILE"])
        return "built"
    except Fatal:
        return "refused"

dev_key, dev_cert = f"{work}/keys/development-1.key.pem", f"{work}/keys/development-1.cert.pem"
cases = [
    ("development build, development key", "0", dev_key, dev_cert, "built"),
    ("release, development key", "1", dev_key, dev_cert, "refused"),
    ("release, development cert copied elsewhere", "1", "pkcs11:token=t;object=o", f"{work}/copied-dev.cert.pem", "refused"),
    ("release, key unset", "1", "", "/nonexistent/release.cert.pem", "refused"),
    ("release, token key + release cert", "1", "pkcs11:token=t;object=o", "/nonexistent/release.cert.pem", "built"),
]
bad = [(n, got) for n, r, k, c, want in cases if (got := run(r, k, c)) != want]
for n, got in bad:
    print(f"{n}: {got}")
sys.exit(1 if bad else 0)
PY
}
check "release build refuses development keys" signing_guard

# --- RAUC: sign, verify, reject tampering -------------------------------------------------
compatible="doorbell-ci-test"
rauc_build_and_verify() {
  [[ -s $work/keys/ca.cert.pem ]] || bash yocto/scripts/make-dev-keys.sh "$work/keys" >/dev/null
  # system.conf as rauc-conf installs it, pointed at the test keyring: Debian's rauc parses it
  # strictly (an unknown key is an error), so this also checks the file itself.
  sed -e "s/@@DOORBELL_RAUC_COMPATIBLE@@/$compatible/" \
      -e "s#^path=/etc/rauc/ca.cert.pem#path=$work/keys/ca.cert.pem#" \
      yocto/meta-doorbell/recipes-core/rauc/files/system.conf >"$work/system.conf"
  # A small root file system: an ext4 image with incompressible content (a verity bundle's
  # squashfs must be larger than one 4 KiB block).
  mkdir -p "$work/rootfs/etc" "$work/content"
  echo "doorbell CI test rootfs" >"$work/rootfs/etc/issue"
  head -c 65536 /dev/urandom >"$work/rootfs/noise"
  mkfs.ext4 -q -F -d "$work/rootfs" -L rootfs "$work/content/rootfs.ext4" 4M
  cat >"$work/content/manifest.raucm" <<MF
[update]
compatible=$compatible
version=0.0.0-ci

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MF
  rauc bundle --cert="$work/keys/development-1.cert.pem" --key="$work/keys/development-1.key.pem" \
    --keyring="$work/keys/ca.cert.pem" "$work/content" "$work/test.raucb"
  rauc --conf="$work/system.conf" info --keyring="$work/keys/ca.cert.pem" --output-format=shell \
    "$work/test.raucb" >"$work/info"
  grep -qx "RAUC_MF_COMPATIBLE='$compatible'" "$work/info"
  # The bundle format the device accepts (system.conf: bundle-formats=-plain).
  grep -qx "RAUC_MF_BUNDLE_FORMAT='verity'" "$work/info"
  rauc extract --keyring="$work/keys/ca.cert.pem" "$work/test.raucb" "$work/extracted"
  cmp "$work/content/rootfs.ext4" "$work/extracted/rootfs.ext4"
}
check "rauc bundle signed by a test CA, verified" rauc_build_and_verify

flip_byte() {  # flip_byte FILE OFFSET
  python3 - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, "rb").read())
b[off] ^= 0xFF
open(path, "wb").write(b)
PY
}

rauc_rejects_flipped_payload() {
  # One byte inside the payload (the squashfs at the start of the bundle). The signature only
  # covers the manifest with the verity root hash, so this is caught when the data is read:
  # by dm-verity on the device, by the hash tree check in `rauc extract` here.
  cp "$work/test.raucb" "$work/payload.raucb"
  flip_byte "$work/payload.raucb" 2000
  if rauc extract --keyring="$work/keys/ca.cert.pem" "$work/payload.raucb" "$work/x1" >"$work/x1.log" 2>&1; then
    echo "rauc extract accepted a bundle with a flipped payload byte"; return 1
  fi
  grep -q 'corrupted' "$work/x1.log"
}
check "rauc rejects a flipped byte in the payload" rauc_rejects_flipped_payload

rauc_rejects_flipped_signature() {
  # One byte inside the CMS signature (the bundle ends with it and its 8-byte size).
  cp "$work/test.raucb" "$work/sig.raucb"
  local size
  size=$(stat -c %s "$work/sig.raucb")
  flip_byte "$work/sig.raucb" $((size - 8 - 100))
  ! rauc info --keyring="$work/keys/ca.cert.pem" "$work/sig.raucb"
}
check "rauc rejects a flipped byte in the signature" rauc_rejects_flipped_signature

rauc_rejects_other_ca() {
  # A bundle is only as good as the keyring: another CA's devices must refuse it.
  bash yocto/scripts/make-dev-keys.sh "$work/other-keys" >/dev/null
  ! rauc info --keyring="$work/other-keys/ca.cert.pem" "$work/test.raucb"
}
check "rauc rejects a bundle from another CA" rauc_rejects_other_ca

echo "check-yocto: $passes passed, $failures failed"
((failures == 0))
