# Multi-stage build of the aetherius binary; the final image is Debian slim
# with the binary, CA certificates, OpenSSL (the Kafka sink's TLS) and curl
# (the design document's troubleshooting: `kubectl exec … -- curl
# localhost:9090/metrics`), run as a non-root user. Its arguments may be the
# document's: `--cluster-id=$(CLUSTER_ID) --config=/etc/aetherius/watcher-config.yaml`.
#
#   docker build -t aetherius:0.1.0 .
#
# The built-in plugins are Wasm components built by host/build.rs (plain
# `cargo build --target wasm32-wasip2`) and embedded in the binary; they are
# also compiled to machine code here (`aetherius plugin precompile`), so that
# a start compiles nothing: a pod starts in tens of milliseconds instead of
# ~1 s and never holds Cranelift's memory. A start on a CPU that lacks
# features of the build machine's finds no artifact for itself and compiles
# into its cache volume as before.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aetherius \
 && cp target/release/aetherius /aetherius \
 && /aetherius plugin precompile --out /plugins

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 aetherius \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent aetherius
COPY --from=build /aetherius /usr/local/bin/aetherius
COPY --from=build /plugins /usr/local/lib/aetherius/plugins
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/aetherius"]
CMD ["run", "--config", "/etc/aetherius/config/config.yaml"]
