#!/usr/bin/env bash
# Sets everything up and runs every check and test: formatting, lints, the
# guest SDK and default plugins' unit tests and the SDK's docs, the example
# plugin built with `cargo component build`, and the host's unit and
# integration tests, the latter against real servers and tools
# (scripts/test-servers.sh) — among them scaffolded plugins built both ways
# and the Python example built with componentize-py (tests/plugin_kit.rs).
#
#   scripts/test.sh          # everything (what CI runs)
#   scripts/test.sh --unit   # unit tests only: no servers, no cargo-component
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

if [[ ${1:-} == --unit ]]; then
    ./scripts/setup.sh
    step "guest SDK and default plugins: unit tests (native)"
    cargo test --manifest-path plugins/Cargo.toml --workspace --quiet --target-dir target/wasm
    step "host: unit tests"
    cargo test --workspace --exclude aetherius-tests --lib --quiet
    exit 0
fi

./scripts/setup.sh --tests
# The real servers the integration tests run against (etcd, kube-apiserver,
# nats-server, Tansu); cached outside the repository after the first run.
./scripts/test-servers.sh

step "formatting"
cargo fmt --all --check
cargo fmt --manifest-path plugins/Cargo.toml --all --check
cargo fmt --manifest-path tests/plugins/Cargo.toml --all --check

step "guest SDK and default plugins: unit tests (native)"
cargo test --manifest-path plugins/Cargo.toml --workspace --quiet --target-dir target/wasm

step "guest SDK: docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --manifest-path plugins/Cargo.toml -p aetherius-sdk \
    --no-deps --quiet --target-dir target/wasm

step "example plugin: cargo component build"
(cd examples/custom-plugin && cargo component build --release --quiet)

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "host: unit and integration tests"
cargo test --workspace
