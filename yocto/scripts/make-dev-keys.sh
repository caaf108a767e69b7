#!/usr/bin/env bash
# Makes a throwaway development PKI for RAUC bundles: a CA (the keyring development images
# trust) and one signing key + certificate issued by it.
#
#   yocto/scripts/make-dev-keys.sh [OUT_DIR]     (default: yocto/keys/dev)
#
# Writes ca.cert.pem, ca.key.pem, development-1.cert.pem, development-1.key.pem. Every subject
# carries O=Doorbell Development, which doorbell.signing uses (with the directory) to refuse
# these files in a DOORBELL_RELEASE = "1" build. Nothing here is committed (.gitignore): each
# developer and each CI run makes its own. A release key never lives in this repository.
# Existing files are kept, so development devices keep accepting your bundles.
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")/.." && pwd)/keys/dev"}
days=${DOORBELL_DEV_KEY_DAYS:-3650}
mkdir -p "$out"
cd "$out"
umask 077

if [[ -s ca.key.pem && -s ca.cert.pem && -s development-1.key.pem && -s development-1.cert.pem ]]; then
  echo "make-dev-keys: keeping the existing development keys in $out"
  exit 0
fi

ext=$(mktemp)
trap 'rm -f "$ext" development-1.csr.pem' EXIT
cat >"$ext" <<'EXT'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key.pem -out ca.cert.pem -days "$days" \
  -subj "/O=Doorbell Development/CN=Doorbell Development CA" \
  -config "$ext" -extensions ca 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout development-1.key.pem -out development-1.csr.pem \
  -subj "/O=Doorbell Development/CN=Doorbell Development Signing 1" 2>/dev/null
openssl x509 -req -in development-1.csr.pem -CA ca.cert.pem -CAkey ca.key.pem \
  -CAcreateserial -out development-1.cert.pem -days "$days" \
  -extfile "$ext" -extensions signer 2>/dev/null
rm -f ca.cert.srl
chmod 0644 ca.cert.pem development-1.cert.pem
echo "make-dev-keys: development CA and signing key written to $out"
