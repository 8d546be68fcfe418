#!/usr/bin/env bash
# Certificates for the federation demo and the wf serve TLS tests: make-certs.sh DIR NAME...
# DIR/ca.pem (+ key) signs DIR/NAME.pem and DIR/NAME.key for each NAME (CN=NAME, subjectAltName
# 127.0.0.1 and localhost); DIR/rogue-ca.pem signs DIR/rogue-NAME.pem for the first NAME (the
# same CN from a CA the deployment does not trust).
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
ca() {  # ca NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() {  # leaf CA NAME OUT
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$3.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$3.key" -out "$3.csr" 2>/dev/null
  openssl x509 -req -in "$3.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 30 \
    -extfile "$3.ext" -out "$3.pem" 2>/dev/null
  chmod 600 "$3.key"
  rm -f "$3.csr" "$3.ext"
}
ca ca
ca rogue-ca
for name in "$@"; do leaf ca "$name" "$name"; done
leaf rogue-ca "$1" "rogue-$1"
