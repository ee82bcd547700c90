#!/usr/bin/env bash
# setup.sh — installs the Debian 12 packages troupe needs to build, test and
# fuzz, and only those that are missing. A machine that already has them does
# no apt work at all. Needs root (or sudo) only when something is missing.
# Works from any directory; safe to run any number of times.
set -euo pipefail

packages=(
    build-essential    # gcc, make, libc headers
    meson
    ninja-build
    pkg-config
    cmake              # meson finds nng through its CMake config (Debian has no nng.pc)
    libnng-dev
    libmsgpack-dev
    nng-utils          # nngcat, a ready-made nng peer for tests
    libmbedtls-dev     # HMAC and certificate checks for node links (nng's TLS uses it too)
    openssl            # node-link tests make their TLS certificates with it
    clang              # libFuzzer targets
    libclang-rt-14-dev # clang's sanitizer and libFuzzer runtimes
    clang-format       # tools/format-check.sh
    valgrind
    python3            # tools/test.sh reads meson's test logs with it
    bc                 # examples/calc_port runs it as a port
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all ${#packages[@]} packages present"
    exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "setup: missing packages and not root (no sudo): ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
