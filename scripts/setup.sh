#!/usr/bin/env bash
# Installs what building Aetherius needs, reusing what is there: the C
# toolchain with the headers the bundled librdkafka builds against (zlib,
# OpenSSL) and the wasm32-wasip2 Rust target (the built-in plugins are built
# for it). With --tests, also what the tests use: cargo-component (cached in
# ~/.cargo/bin; a cold install takes ~11 minutes on 2 cores).
#
#   scripts/setup.sh           # to build and run (scripts/demo.sh)
#   scripts/setup.sh --tests   # to run every test (scripts/test.sh)
set -euo pipefail

tests=
case "${1:-}" in
    --tests) tests=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--tests]" >&2
        exit 2
        ;;
esac

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# The Kafka sink's librdkafka is built from source by rdkafka-sys.
BUILD_PACKAGES=(build-essential pkg-config zlib1g-dev libssl-dev)
missing=()
for package in "${BUILD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi

if [[ -z $tests ]]; then
    log "ready: $(rustc --version)"
    exit 0
fi

CARGO_COMPONENT_VERSION=0.21.1
if ! cargo component --version 2>/dev/null | grep -q "$CARGO_COMPONENT_VERSION"; then
    log "installing cargo-component $CARGO_COMPONENT_VERSION (once; ~11 min on 2 cores)"
    cargo install cargo-component --locked --version "$CARGO_COMPONENT_VERSION"
fi
log "ready: $(rustc --version), $(cargo component --version)"
