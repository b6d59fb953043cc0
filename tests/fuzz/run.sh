#!/usr/bin/env bash
# tocsin — SPDX-License-Identifier: MIT
#
# Fuzzes every target of tests/fuzz with libFuzzer: configures a clang build
# (build-fuzz, -DTOCSIN_FUZZ=ON: libFuzzer, ASan, UBSan), builds the targets,
# and runs each for N seconds (default 20) from its corpus. New inputs go to a
# temporary directory, never into the repository. A crash, a broken invariant,
# a leak or an input slower than 10 s fails the run and prints the reproducer.
#   bash tests/fuzz/run.sh [SECONDS] [TARGET...]   e.g. run.sh 60 event filter
# Environment: TOCSIN_FUZZ_BUILD (build dir, default build-fuzz),
# TOCSIN_FUZZ_JOBS (targets fuzzed at once, default 1).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
secs=${1:-20}
shift || true
case $secs in
-h | --help) sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*[!0-9]* | '') echo "run.sh: SECONDS must be a number (try --help)" >&2; exit 2 ;;
esac
build=${TOCSIN_FUZZ_BUILD:-build-fuzz}
jobs=${TOCSIN_FUZZ_JOBS:-1}
start=$SECONDS

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for src in tests/fuzz/fuzz_*.c; do
        name=${src#tests/fuzz/fuzz_}
        targets+=("${name%.c}")
    done
fi

echo "== configuring $build (clang, libFuzzer, ASan, UBSan)"
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DTOCSIN_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
echo "== building the fuzz targets"
ninja -C "$build" fuzz >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-fuzz.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# fuzz_one NAME: one target; the new corpus dir comes first, so libFuzzer
# writes there and only reads the repository's. Its exit status goes to
# $work/NAME/rc, as jobs may run in parallel.
fuzz_one() {
    local name=$1 exe="$build/tests/fuzz/fuzz_$1" dir="$work/$1" rc=0
    local seeds=("tests/fuzz/corpus/$name")
    # The event fixtures of the differential schema test are seeds too.
    [[ $name == event ]] && seeds+=(tests/data/events/valid tests/data/events/invalid)
    mkdir -p "$dir/new" "$dir/artifacts"
    if [[ ! -x $exe ]]; then
        echo "no such target: $name" >"$dir/log"
        echo 1 >"$dir/rc"
        return
    fi
    "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/new" "${seeds[@]}" >"$dir/log" 2>&1 || rc=$?
    echo "$rc" >"$dir/rc"
}

running=0
for name in "${targets[@]}"; do
    echo "== fuzzing $name for ${secs}s"
    fuzz_one "$name" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=()
for name in "${targets[@]}"; do
    dir="$work/$name"
    [[ $(cat "$dir/rc" 2>/dev/null) == 0 ]] || failed+=("$name")
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' || true)
    new=$(find "$dir/new" -type f | wc -l)
    printf '   %-16s %10s execs, %4d new inputs\n' "$name" "${runs:-?}" "$new"
done

elapsed=$((SECONDS - start))
if [[ ${#failed[@]} -gt 0 ]]; then
    for name in "${failed[@]}"; do
        dir="$work/$name"
        echo
        echo "== FAILED: $name (log: $dir/log)"
        grep -E 'invariant broken|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' \
            "$dir/log" | head -5 || true
        for a in "$dir"/artifacts/*; do
            [[ -e $a ]] || continue
            echo "   reproducer: $a"
            echo "   replay it:  $build/tests/fuzz/fuzz_$name $a"
            echo "   keep it:    cp $a tests/fuzz/corpus/$name/<what-it-found>"
        done
    done
    echo
    echo "fuzzing failed after ${elapsed}s; work directory kept: $work"
    exit 1
fi
echo "no crash in ${#targets[@]} targets after ${elapsed}s; new inputs in $work/<target>/new"
