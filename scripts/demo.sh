#!/usr/bin/env bash
# Sets everything up, builds Aetherius and replays the bundled sample of
# Kubernetes Events through the default pipeline (config/default.yaml):
# StandardEvent JSON lines on stdout, a summary on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bin aetherius
exec ./target/release/aetherius --log-format text replay \
    --config config/default.yaml --input examples/events.jsonl "$@"
