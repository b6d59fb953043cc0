#!/usr/bin/env bash
# tocsin — SPDX-License-Identifier: MIT
#
# The test command (README): configure and build with -Werror, run the cmocka
# unit tests (ctest) and the end-to-end suite (pytest, Debian's python3)
# against that build.
#   bash tests/run.sh              build/ (RelWithDebInfo)
#   bash tests/run.sh --sanitize   build-asan/ (ASan + UBSan)
# Extra arguments go to pytest, e.g. `bash tests/run.sh -- -k resume`.
# TOCSIN_RUN_BUILD_DIR overrides the build directory name.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
sanitize=OFF
build=build
while [[ $# -gt 0 ]]; do
    case $1 in
        --sanitize) sanitize=ON; build=build-asan; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
build=${TOCSIN_RUN_BUILD_DIR:-$build}

if [[ $sanitize == ON ]]; then
    # abort_on_error: a finding is a failure even where the exit code is ignored;
    # the e2e fixture also fails any test whose tocsind log holds a report.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

jobs=$(nproc 2>/dev/null || echo 2)
echo "== configure + build ($build, sanitize=$sanitize)"
cmake -S "$root" -B "$root/$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOCSIN_WERROR=ON -DTOCSIN_SANITIZE=$sanitize -DTOCSIN_TESTS=ON
cmake --build "$root/$build" -j "$jobs"

echo "== unit tests (ctest)"
(cd "$root/$build" && ctest --output-on-failure -j "$jobs" --timeout 120)

echo "== end-to-end tests (pytest)"
# Debian's interpreter: the first python3 on PATH may lack the packages.
TOCSIN_BUILD_DIR="$root/$build" /usr/bin/python3 -m pytest -q "$root/tests/e2e" "$@"
