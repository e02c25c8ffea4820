# shellcheck shell=bash
# Test PKI with openssl, for the local kube-apiserver (kube-local.sh) and the one-node
# cluster (cluster-local.sh): P-256 keys (PKCS#8), CAs valid ten years, leaves one year,
# random serials. Each function writes into the current directory.
#
#   pki_key FILE                          a private key
#   pki_ca NAME SUBJECT                   NAME.key and a self-signed NAME.crt
#   pki_leaf NAME CA SUBJECT EXTENSION…   NAME.key and NAME.crt signed by CA.crt/CA.key,
#                                         with basicConstraints CA:FALSE and the extensions
#                                         given (openssl extension lines)
pki_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

pki_ca() {
  pki_key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 3650 -subj "$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

pki_leaf() {
  local name=$1 ca=$2 subject=$3
  shift 3
  pki_key "$name.key"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "$subject"
  printf '%s\n' basicConstraints=critical,CA:FALSE "$@" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
