#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: kcat (the Debian build,
# librdkafka 2.0.2), nftables (network partitions inside a private network namespace)
# and openssl (test certificates) from apt, the Python clients in a venv inside the
# repo, and kafkajs from npm into compat/node.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1 || [ ! -f /usr/include/librdkafka/rdkafka.h ] \
    || ! command -v nft >/dev/null 2>&1 || ! command -v unshare >/dev/null 2>&1 \
    || ! command -v openssl >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # kcat for compat/kcat; librdkafka-dev for the benchmark's load generator;
    # nftables and util-linux (unshare) for the network-partition tests; openssl for
    # scripts/dev-certs (the TLS tests' certificates).
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat librdkafka-dev python3-venv \
        nftables util-linux iproute2 openssl >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r compat/python/requirements.txt

if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
(cd compat/node && npm ci --no-audit --no-fund --loglevel=error)
