#!/usr/bin/env bash
# The leaktracker CI gate, for projects that do not install the `leaktracker` tool.
#
#   scripts/leak-gate.sh [--min-age D] [--ignore P]... [--report-dir DIR] [--wait D] -- COMMAND...
#   scripts/leak-gate.sh -- cargo test
#
# Runs COMMAND with per-process JSON exit reports (LEAKTRACKER_REPORT=<dir>/leaks-<run>-%p.json,
# only this run's count), waits (up to --wait, default 10s) for the processes COMMAND left
# running, prints one summary of every process's leaks and fails if a process leaked or
# COMMAND failed: it is `leaktracker gate`, and it takes the same arguments.
#
# Which tool it runs, first found:
#   1. $LEAKTRACKER_BIN, if set;
#   2. `leaktracker` on the PATH;
#   3. a build of leaktracker's sources with `cargo build --features cli`: the sources are
#      $LEAKTRACKER_SRC if set, else the crate this script belongs to (when it sits in
#      leaktracker's own scripts/), else the `leaktracker` package the current project
#      depends on (found with `cargo metadata`). The build goes to
#      ${LEAKTRACKER_TARGET_DIR:-target/leak-gate} and is reused by later runs.
#
# Exit status: COMMAND's status when it failed, 1 when a process leaked, 0 otherwise,
# 2 when the gate itself cannot run.
set -euo pipefail

die() {
    echo "leak-gate: $*" >&2
    exit 2
}

tool=""
if [[ -n "${LEAKTRACKER_BIN:-}" ]]; then
    [[ -x "$LEAKTRACKER_BIN" ]] || die "LEAKTRACKER_BIN=$LEAKTRACKER_BIN is not an executable"
    tool="$LEAKTRACKER_BIN"
elif command -v leaktracker >/dev/null 2>&1 && leaktracker --help 2>/dev/null | grep -q "leaktracker gate"; then
    tool="$(command -v leaktracker)"
else
    command -v cargo >/dev/null 2>&1 || die "no leaktracker tool and no cargo to build it"
    src="${LEAKTRACKER_SRC:-}"
    if [[ -z "$src" ]]; then
        here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
        if [[ -f "$here/Cargo.toml" ]] && grep -q '^name = "leaktracker"' "$here/Cargo.toml"; then
            src="$here"
        else
            # The leaktracker package of the current project's dependency graph.
            manifest="$(cargo metadata --format-version 1 2>/dev/null \
                | tr ',' '\n' \
                | grep -o '"manifest_path":"[^"]*/leaktracker[^"/]*/Cargo.toml"' \
                | head -n 1 | sed 's/^"manifest_path":"//; s/"$//')" || true
            [[ -n "$manifest" ]] || die "cannot find leaktracker's sources: set LEAKTRACKER_SRC or LEAKTRACKER_BIN"
            src="$(dirname "$manifest")"
        fi
    fi
    [[ -f "$src/Cargo.toml" ]] || die "LEAKTRACKER_SRC=$src has no Cargo.toml"
    target="${LEAKTRACKER_TARGET_DIR:-target/leak-gate}"
    echo "leak-gate: building the leaktracker tool from $src" >&2
    cargo build --quiet --features cli --bin leaktracker \
        --manifest-path "$src/Cargo.toml" --target-dir "$target" >&2 \
        || die "building the leaktracker tool failed"
    tool="$target/debug/leaktracker"
fi

exec "$tool" gate "$@"
