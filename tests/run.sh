#!/usr/bin/env bash
# tocsin — SPDX-License-Identifier: MIT
#
# The test command (README): build with -Werror, run the cmocka unit tests
# (ctest) and the end-to-end suite (pytest with Debian's python3, against real
# redis-server, Kafka protocol and WebSocket peers), then the same on an
# AddressSanitizer + UndefinedBehaviorSanitizer build.
#   bash tests/run.sh --install     install the Debian packages first (README, CI)
#   bash tests/run.sh               both builds: build/ and build-asan/
#   bash tests/run.sh --plain       build/ only (RelWithDebInfo)
#   bash tests/run.sh --sanitize    build-asan/ only
# Arguments after -- go to pytest, e.g. `bash tests/run.sh --plain -- -k resume`.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
install=false
passes=(plain sanitize)
while [[ $# -gt 0 ]]; do
    case $1 in
    --install) install=true; shift ;;
    --plain) passes=(plain); shift ;;
    --sanitize) passes=(sanitize); shift ;;
    -h | --help) sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) echo "tests/run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

if $install; then
    echo "== installing packages"
    bash deploy/install-deps.sh
fi

jobs=$(nproc 2>/dev/null || echo 2)
export PYTHONDONTWRITEBYTECODE=1

run_pass() { # run_pass plain|sanitize [pytest args...]
    local pass=$1 build=build sanitize=OFF
    shift
    if [[ $pass == sanitize ]]; then
        build=build-asan
        sanitize=ON
        # abort_on_error: a finding is a failure even where an exit code is
        # ignored; the e2e fixture also fails a test whose tocsind log has one.
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
    fi
    echo "== configure + build ($build, sanitize=$sanitize)"
    cmake -S "$root" -B "$root/$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTOCSIN_WERROR=ON -DTOCSIN_SANITIZE=$sanitize -DTOCSIN_TESTS=ON >/dev/null
    cmake --build "$root/$build" -j "$jobs" >/dev/null
    echo "== unit tests (ctest, $build)"
    (cd "$root/$build" && ctest --output-on-failure -j "$jobs" --timeout 180)
    echo "== end-to-end tests (pytest, $build)"
    # Debian's interpreter: the first python3 on PATH may lack the packages.
    # Most e2e time is waiting (Kafka group joins, retry schedules), and every
    # test has its own tocsind, Kafka and Redis prefix: three workers cut the
    # wall time by ~3x on 2 cores (TOCSIN_E2E_WORKERS=0 runs them one by one).
    local workers=()
    if [[ ${TOCSIN_E2E_WORKERS:-3} != 0 ]] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
        workers=(-n "${TOCSIN_E2E_WORKERS:-3}")
    fi
    TOCSIN_BUILD_DIR="$root/$build" /usr/bin/python3 -m pytest -q -c "$root/tests/e2e/pytest.ini" \
        "${workers[@]}" "$root/tests/e2e" "$@"
}

start=$(date +%s)
# The browser client's pure logic (clients/js), with node's own test runner.
echo "== browser client unit tests (node --test)"
node --test "$root/tests/js/"
for pass in "${passes[@]}"; do
    run_pass "$pass" "$@"
done
echo "== all tests passed in $(($(date +%s) - start))s (${passes[*]})"
