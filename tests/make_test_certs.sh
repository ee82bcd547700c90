#!/bin/sh
# make_test_certs.sh DIR — writes the TLS material the node-link tests use
# into DIR (which must exist), with the openssl command-line tool:
#
#   ca.pem, ca.key               a test CA
#   node.pem, node.key           a node certificate signed by that CA
#   rogue-ca.pem, rogue-ca.key   another CA nobody trusts
#   rogue.pem, rogue.key         a node certificate signed by the rogue CA
#
# Keys are ECDSA P-256 (quick to make, and mbed TLS 2.28 takes them with
# TLS 1.2). Certificates last two days: they are made afresh for each run.
set -eu
dir=$1

make_ca() { # name common-name
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$dir/$1.key" -out "$dir/$1.pem" -days 2 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

make_leaf() { # name ca common-name
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$3" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' \
        >"$dir/$1.ext"
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$2.pem" -CAkey "$dir/$2.key" \
        -CAcreateserial -out "$dir/$1.pem" -days 2 -extfile "$dir/$1.ext" 2>/dev/null
    rm -f "$dir/$1.csr" "$dir/$1.ext"
}

make_ca ca "troupe test CA"
make_ca rogue-ca "troupe rogue CA"
make_leaf node ca localhost
make_leaf rogue rogue-ca localhost
