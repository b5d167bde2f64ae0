#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Generates the TLS material of the test broker's secure listener with the
# openssl CLI, into DIR:
#   ca.pem ca.key             the test CA (trusted by broker and clients)
#   broker.pem broker.key     the broker's certificate (SAN 127.0.0.1, localhost)
#   broker.p12                the same as a PKCS#12 keystore for the JVM
#   client.pem client.key     a client certificate signed by the CA
#   client.enc.key            the same key, encrypted (PKCS#8, AES-256)
#   client.key.password       its password (a file, as a mounted secret)
#   password                  the keystore password
# Usage: gen-certs.sh DIR [CA_NAME]
# With CA_NAME other than the default the script makes an independent CA
# with the same file layout: a CA nobody trusts, for the refusal tests.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [CA_NAME]}
ca_name=${2:-acme-hookd test CA}
mkdir -p "$dir"
cd "$dir"
umask 077

# EC P-256 keys: quick to make, understood by OpenSSL and the JVM alike.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=$ca_name" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -out ca.pem

issue() { # name subject extensions
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue broker "/CN=localhost" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
issue client "/CN=acme-hookd-test-client" \
  "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"

openssl rand -hex 16 > client.key.password
openssl pkcs8 -topk8 -in client.key -v2 aes-256-cbc -passout "file:client.key.password" -out client.enc.key
openssl rand -hex 16 > password
openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
  -passout "pass:$(cat password)" -out broker.p12
chmod 644 ca.pem broker.pem client.pem
