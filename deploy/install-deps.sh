#!/usr/bin/env bash
# tocsin — SPDX-License-Identifier: MIT
#
# Installs, with apt-get (Debian 12), everything tocsin needs to build, run
# its quick start and run its tests. Used by deploy/quickstart.sh and
# tests/run.sh --install. The packaged redis-server service is kept from
# starting: tocsin starts its own Redis where it needs one.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

packages=(
    build-essential cmake pkg-config
    librdkafka-dev libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libhiredis-dev
    libjansson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
    redis-server kcat curl openssl
    python3-pytest python3-websockets python3-redis python3-confluent-kafka
    python3-aiosmtpd python3-jsonschema python3-yaml python3-selenium
    chromium chromium-driver nodejs nginx-light libnginx-mod-nchan python3-pytest-xdist
    clang-format systemd
    # tests/run.sh --fuzz: clang's libFuzzer and sanitizer runtimes are in
    # libclang-rt-14-dev, only a Recommends of clang (not installed here);
    # llvm-14 brings llvm-symbolizer for readable stacks. --valgrind: valgrind.
    # (--tsan uses gcc's libtsan2, which build-essential already brings.)
    clang libclang-rt-14-dev llvm-14 valgrind
)

# A policy-rc.d that says "no" keeps services from starting during the
# install (there may be no init system here); only our own file is removed.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=true
fi
cleanup() {
    if $own_policy; then $SUDO rm -f "$policy"; fi
}
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
