#!/usr/bin/env bash
# tocsin — SPDX-License-Identifier: MIT
#
# The test command (README): build with -Werror, run the cmocka unit tests
# (ctest) and the end-to-end suite (pytest with Debian's python3, against real
# redis-server, Kafka protocol and WebSocket peers); the units again under
# valgrind; everything again on an AddressSanitizer + UndefinedBehaviorSanitizer
# build; the units and the threaded e2e tests on a ThreadSanitizer build; and a
# short libFuzzer run of every fuzz target (clang).
#   bash tests/run.sh --install     install the Debian packages first (README, CI)
#   bash tests/run.sh               every pass below, in this order
#   bash tests/run.sh --plain       build/ (RelWithDebInfo): ctest + pytest
#   bash tests/run.sh --valgrind    build/: ctest under valgrind memcheck
#   bash tests/run.sh --sanitize    build-asan/ (ASan + UBSan): ctest + pytest
#   bash tests/run.sh --tsan        build-tsan/ (TSan): ctest + the e2e files
#                                   that run threads (email, ingest, shutdown)
#   bash tests/run.sh --fuzz        build-fuzz/: every fuzz target (tests/fuzz)
#   --fuzz-seconds N                seconds per fuzz target (default 10)
# Pass options combine (--plain --fuzz runs those two). Arguments after --
# go to pytest in the plain and sanitize passes, e.g.
# `bash tests/run.sh --plain -- -k resume`. Each pass prints its time.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
install=false
passes=()
fuzz_seconds=10
while [[ $# -gt 0 ]]; do
    case $1 in
    --install) install=true; shift ;;
    --plain | --valgrind | --sanitize | --tsan | --fuzz) passes+=("${1#--}"); shift ;;
    --fuzz-seconds)
        [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "tests/run.sh: --fuzz-seconds needs a number" >&2; exit 2; }
        fuzz_seconds=$2
        shift 2
        ;;
    -h | --help) awk 'NR > 3 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    --) shift; break ;;
    *) echo "tests/run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
[[ ${#passes[@]} -gt 0 ]] || passes=(plain valgrind sanitize tsan fuzz)

if $install; then
    echo "== installing packages"
    bash deploy/install-deps.sh
fi

jobs=$(nproc 2>/dev/null || echo 2)
export PYTHONDONTWRITEBYTECODE=1

# build DIR SANITIZE: configure and build one build directory.
build() {
    echo "== configure + build ($1, sanitize=$2)"
    cmake -S "$root" -B "$root/$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTOCSIN_WERROR=ON -DTOCSIN_SANITIZE="$2" -DTOCSIN_TESTS=ON >/dev/null
    cmake --build "$root/$1" -j "$jobs" >/dev/null
}

units() { # units DIR
    echo "== unit tests (ctest, $1)"
    (cd "$root/$1" && ctest --output-on-failure -j "$jobs" --timeout 180)
}

# e2e DIR [pytest args...]: Debian's interpreter (the first python3 on PATH
# may lack the packages). Most e2e time is waiting (Kafka group joins, retry
# schedules), and every test has its own tocsind, Kafka and Redis prefix:
# three workers cut the wall time by ~3x on 2 cores (TOCSIN_E2E_WORKERS=0
# runs them one by one).
e2e() {
    local dir=$1 workers=()
    shift
    echo "== end-to-end tests (pytest, $dir)"
    if [[ ${TOCSIN_E2E_WORKERS:-3} != 0 ]] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
        workers=(-n "${TOCSIN_E2E_WORKERS:-3}")
    fi
    TOCSIN_BUILD_DIR="$root/$dir" /usr/bin/python3 -m pytest -q -c "$root/tests/e2e/pytest.ini" \
        "${workers[@]}" "$@"
}

pass_plain() {
    build build OFF
    units build
    e2e build "$root/tests/e2e" "$@"
}

# abort_on_error: a finding is a failure even where an exit code is ignored;
# the e2e fixture also fails a test whose tocsind log has one.
pass_sanitize() {
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
    build build-asan ON
    units build-asan
    e2e build-asan "$root/tests/e2e" "$@"
}

# The units (the SMTP thread, librdkafka's threads in the ingest units) and
# the e2e tests that run tocsind's threads: the SMTP sender (delivery, two
# nodes, restarts and the shutdown while the server stalls), Kafka ingest
# with its dead letters, and the publishing API's producer. A report makes
# the program exit 66 (ctest) and fails the e2e test (its log is checked).
pass_tsan() {
    export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp:second_deadlock_stack=1}
    build build-tsan thread
    units build-tsan
    local email="$root/tests/e2e/test_email.py"
    e2e build-tsan "$email::test_delivery_mime_and_headers" \
        "$email::test_three_nodes_send_each_mail_once" "$email::test_pending_mail_survives_restart" \
        "$email::test_sigterm_while_server_delays_end_of_data" "$email::test_4xx_retried_5xx_failed" \
        "$root/tests/e2e/test_dlq.py" "$root/tests/e2e/test_publish_api.py"
}

# Every ctest case of build/ under valgrind memcheck (ctest -T memcheck, so
# each test keeps its environment and timeout; valgrind's log of test N is
# build/Testing/Temporary/MemoryChecker.N.log). Child processes (redis-server,
# the SMTP test server) are not traced.
pass_valgrind() {
    build build OFF
    echo "== unit tests under valgrind (ctest -T memcheck, build)"
    local rc=0
    (cd "$root/build" && ctest -j "$jobs" --timeout 900 -T memcheck \
        --overwrite MemoryCheckCommand=/usr/bin/valgrind \
        --overwrite "MemoryCheckCommandOptions=--error-exitcode=1 --leak-check=full --num-callers=30 --suppressions=$root/tests/valgrind.supp") || rc=$?
    if [[ $rc != 0 ]]; then
        grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]' \
            "$root"/build/Testing/Temporary/MemoryChecker.*.log 2>/dev/null |
            while read -r log; do
                echo "---- $log"
                grep -E '^==[0-9]+== ' "$log" | head -60
            done
        return "$rc"
    fi
}

# tests/fuzz/run.sh: a clang build (build-fuzz), then every target for
# fuzz_seconds from its corpus, as many at once as there are cores. New
# inputs go to a temporary directory, never into the repository.
pass_fuzz() {
    TOCSIN_FUZZ_JOBS=${TOCSIN_FUZZ_JOBS:-$jobs} bash "$root/tests/fuzz/run.sh" "$fuzz_seconds"
}

start=$(date +%s)
times=()
# The browser client's pure logic (clients/js), with node's own test runner.
echo "== browser client unit tests (node --test)"
node --test "$root/tests/js/"
for pass in "${passes[@]}"; do
    t0=$(date +%s)
    "pass_$pass" "$@"
    times+=("$pass $(($(date +%s) - t0))s")
    echo "== $pass pass took $(($(date +%s) - t0))s"
done
echo "== all tests passed in $(($(date +%s) - start))s (${times[*]})"
