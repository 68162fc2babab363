#!/usr/bin/env bash
# Runs test binaries under valgrind memcheck and fails on any invalid read or write, use
# of uninitialised memory, bad free or other memcheck error. Leaks are not errors here:
# the tracker's tables are mapped once and intentionally never freed.
#
#   scripts/memcheck.sh                 the core set (below)
#   scripts/memcheck.sh table_cap zeroed   only these test targets (names of tests/*.rs)
#
# Environment:
#   MEMCHECK_TIMEOUT   seconds per binary before it counts as hung (default 600)
#   MEMCHECK_RELEASE   1: build and check the release profile instead of the test profile
#   MEMCHECK_LOGS      directory for valgrind's logs (default target/memcheck)
#
# Children the tests start (re-runs of their own binary, the exit-report tests) are
# checked too (--trace-children=yes): a memcheck error in a child makes it exit 99, which
# fails the test that started it. Compilers, cargo and system tools the tests run are not
# (--trace-children-skip), nor forked children (fork tests are not in the set).
#
# Prints one line per binary and exits non-zero when any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind is not installed" >&2
    exit 2
fi

TIMEOUT="${MEMCHECK_TIMEOUT:-600}"
target_dir="${CARGO_TARGET_DIR:-target}"
LOGS="${MEMCHECK_LOGS:-$target_dir/memcheck}"
mkdir -p "$LOGS"

if [ "$#" -gt 0 ]; then
    tests=("$@")
else
    # The core set: the walkthrough, every fork-free reliability test, the stress tests,
    # scopes and realloc paths, and the exit-report paths (children under memcheck too).
    tests=()
    # (Not tests/stress_clear_vs_realloc.rs: a race demonstration with a wall-clock
    # deadline, which memcheck's slowdown turns into a run without any check.)
    for f in tests/walkthrough_*.rs tests/reentrancy_*.rs tests/scope_*.rs \
             tests/realloc_*.rs; do
        tests+=("$(basename "$f" .rs)")
    done
    tests+=(stress_two_threads table_cap inner_null inner_allocator model_two_threads zeroed align_all rc_arc
            retrack errors_no_heap_block exit_code exit_process_exit exit_other_threads)
fi

profile_args=()
if [ "${MEMCHECK_RELEASE:-0}" = 1 ]; then
    profile_args=(--release)
fi

test_args=()
for t in "${tests[@]}"; do
    if [ ! -f "tests/$t.rs" ]; then
        echo "memcheck: no test target tests/$t.rs" >&2
        exit 2
    fi
    test_args+=(--test "$t")
done

echo "memcheck: building ${#tests[@]} test binaries" >&2
# One line per artifact: "name executable" for every test binary built.
build_json="$(cargo test --no-run --message-format=json "${profile_args[@]}" "${test_args[@]}")"
declare -A exe
while read -r name path; do
    exe[$name]="$path"
done < <(printf '%s\n' "$build_json" |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null
                  and (.target.kind | index("test")))
           | "\(.target.name) \(.executable)"')

# A model test's case count under memcheck (each case is ~50x slower than natively).
export MODEL_CASES="${MODEL_CASES:-40}"
export RUST_BACKTRACE=0

failed=0
total_start=$(date +%s)
for t in "${tests[@]}"; do
    bin="${exe[$t]:-}"
    if [ -z "$bin" ]; then
        printf 'FAIL  %-40s not built\n' "$t"
        failed=$((failed + 1))
        continue
    fi
    rm -f "$LOGS/$t".*.log
    start=$(date +%s)
    set +e
    timeout --kill-after=10 "$TIMEOUT" valgrind --tool=memcheck --error-exitcode=99 \
        --errors-for-leak-kinds=none --leak-check=summary --track-origins=yes \
        --trace-children=yes --child-silent-after-fork=yes --fair-sched=yes \
        --trace-children-skip='/usr/*,/bin/*,/sbin/*,*/.rustup/*,*/.cargo/*,*rustc*,*cargo*' \
        --log-file="$LOGS/$t.%p.log" "$bin" --test-threads=1 -q >"$LOGS/$t.out" 2>&1
    code=$?
    set -e
    secs=$(( $(date +%s) - start ))
    # Errors found in this process and in every child it started.
    errors=$(cat "$LOGS/$t".*.log 2>/dev/null |
        sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' |
        awk '{ s += $1 } END { print s + 0 }')
    procs=$(ls "$LOGS/$t".*.log 2>/dev/null | wc -l)
    if [ "$code" -eq 0 ] && [ "$errors" -eq 0 ]; then
        printf 'ok    %-40s %4ss  0 errors  (%s process%s)\n' "$t" "$secs" "$procs" \
            "$([ "$procs" -eq 1 ] && echo "" || echo "es")"
    else
        why="exit $code"
        [ "$code" -eq 99 ] && why="memcheck errors"
        [ "$code" -eq 124 ] || [ "$code" -eq 137 ] && why="timed out after ${TIMEOUT}s"
        printf 'FAIL  %-40s %4ss  %s errors  (%s; logs: %s/%s.*.log, output: %s/%s.out)\n' \
            "$t" "$secs" "$errors" "$why" "$LOGS" "$t" "$LOGS" "$t"
        failed=$((failed + 1))
    fi
done
echo "memcheck: ${#tests[@]} binaries, $failed failed, $(( $(date +%s) - total_start ))s"
[ "$failed" -eq 0 ]
