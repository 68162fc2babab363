#!/usr/bin/env bash
# The example service's self-test in a shipped profile, both halves of the verdict:
# a correct run (300 requests, /debug/leaks, /debug/leaks/pprof and /metrics read and
# checked) lists no request live and exits 0 with no leak; the same run with the planted
# bug (one request in 50 kept in a global buffer) lists exactly those 6 requests, live and
# at exit, and exits 3.
#   scripts/example-selftest.sh [PROFILE]   (default: ship-lt)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-ship-lt}"
cargo build --quiet --profile "$profile" --features metrics --example axum_service
exe="target/$profile/examples/axum_service"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run() { # NAME ARGS... -> status in $status, report in $out/NAME.txt
    local name="$1"; shift
    set +e
    LEAKTRACKER_REPORT="$out/$name.txt" LEAKTRACKER_EXIT_CODE=3 \
        timeout 300 "$exe" --self-test 300 "$@" >"$out/$name.out" 2>&1
    status=$?
    set -e
    cat "$out/$name.out"
}

run clean
if [ "$status" -ne 0 ] || ! grep -q '): no leaks$' "$out/clean.txt"; then
    echo "FAILED: the correct service exited $status; its report:"; cat "$out/clean.txt"; exit 1
fi
for want in ' resources listed (0 requests, 4 others' '/debug/leaks/pprof: ' '/metrics: 4 live database connections'; do
    grep -q "$want" "$out/clean.out" || { echo "FAILED: no \`$want\` in the self-test's output"; cat "$out/clean.out"; exit 1; }
done
echo "ok: the correct service reports no leak"

run leak --leak
first="$(head -1 "$out/leak.txt")"
leaked="$(grep -c '^  request-[0-9]* ' "$out/leak.txt" || true)"
if [ "$status" -ne 3 ] || [ "$leaked" -ne 6 ] || ! grep -q ': 6 resources, 6 blocks, ' <<<"$first"; then
    echo "FAILED: with the planted leak: status $status, $leaked requests listed; the report:"
    cat "$out/leak.txt"; exit 1
fi
bad="$(grep '^  request-[0-9]* ' "$out/leak.txt" | awk '{print $1}' | sed 's/request-//' | awk '$1 % 50 != 0' | wc -l)"
[ "$bad" -eq 0 ] || { echo "FAILED: a request that kept nothing is listed"; cat "$out/leak.txt"; exit 1; }
grep -q ' resources listed (6 requests, 4 others' "$out/leak.out" ||
    { echo "FAILED: the live report (/debug/leaks) does not list exactly the 6 requests"; exit 1; }
echo "ok: the planted leak is reported as exactly its 6 requests (every 50th), live and at exit (status 3)"
