#!/usr/bin/env bash
# Benchmarks of leaktracker against System and the peer allocators.
#
# Builds the bench crate (benches/, its own workspace) in release, runs every allocator x
# workload as paired alternating runs (system, X, system, X, ...), counts instructions
# with callgrind when valgrind is present, runs the scale binaries (live(), table growth,
# untagged frees beside tagged blocks, backtrace capture and a 100,000-block report) and a
# soak with its System reference, and prints one Markdown table (also written to
# benches/RESULTS.md).
#
# Usage: scripts/bench.sh [--quick] [--pairs N] [--no-callgrind] [--no-scale] [--no-soak]
#                         [--soak-secs N] [--only ALLOC[,ALLOC...]] [--out FILE]
#   --quick      3 pairs, 10 s soaks, smaller callgrind runs: about 6 minutes.
#   default      7 pairs, 2 min soaks: about 30 minutes on 2 cores.
# Needs: cargo, python3; valgrind (optional) for the instruction ratios.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/benches"
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$BENCH/target}"
BIN="$CARGO_TARGET_DIR/release"

PAIRS=7
QUICK=0
CALLGRIND=1
SCALE_RUNS=1
SOAK=1
SOAK_SECS=120
ONLY=""
OUT="$BENCH/RESULTS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; PAIRS=3; SOAK_SECS=10 ;;
        --pairs) PAIRS="$2"; shift ;;
        --no-callgrind) CALLGRIND=0 ;;
        --no-scale) SCALE_RUNS=0 ;;
        --no-soak) SOAK=0 ;;
        --soak-secs) SOAK_SECS="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

command -v python3 >/dev/null || { echo "bench.sh needs python3" >&2; exit 1; }

WORK="$(mktemp -d /tmp/leaktracker-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
RAW="$WORK/raw.tsv"        # label workload pair sys_ns x_ns sys_rss x_rss sys_cpu x_cpu
CG="$WORK/callgrind.tsv"   # label workload scale instructions
: >"$RAW"; : >"$CG"
log() { echo "[bench] $*" >&2; }

LOAD_START="$(cut -d" " -f1-3 /proc/loadavg)"
log "building the bench crate (release)"
(cd "$BENCH" && cargo build --release --locked) >"$WORK/build.log" 2>&1 || {
    cat "$WORK/build.log" >&2; echo "build failed" >&2; exit 1; }
for b in system lt-untagged lt-tagged stats-alloc tracking-allocator dhat scale-live scale-table scale-mixed scale-backtrace soak soak-system; do
    [ -x "$BIN/$b" ] || { echo "missing binary $BIN/$b (build failed?)" >&2; exit 1; }
done

# Rows: label | binary | environment | scale (percent of the full workload).
# dhat captures a backtrace per block (~50x slower): it runs at 10% size, paired with
# System at the same size, so its ratios stay comparable.
ROWS=(
    "system|system||100"
    "lt-untagged|lt-untagged||100"
    "lt-tagged|lt-tagged||100"
    "lt-tagged+bt|lt-tagged|LEAKTRACKER_BACKTRACE=1|100"
    "lt-tagged+bt/64|lt-tagged|LEAKTRACKER_BACKTRACE=sample:64|100"
    "stats-alloc|stats-alloc||100"
    "tracking-allocator|tracking-allocator||100"
    "dhat|dhat||10"
)
WORKLOADS=(churn threads realloc app)

field() { # field KEY LINE
    sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}

# One run: prints its result line (stdout of the binary).
run1() { # run1 BIN ENV SCALE WORKLOAD
    local bin="$1" envs="$2" scale="$3" wl="$4"
    env $envs BENCH_SCALE="$scale" "$BIN/$bin" "$wl" 2>>"$WORK/stderr.log" | grep '^alloc=' | tail -1
}

selected() { # selected LABEL
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    [ "$1" = system ]
}

NA="$WORK/na.txt"; : >"$NA"
for row in "${ROWS[@]}"; do
    IFS='|' read -r label bin envs scale <<<"$row"
    selected "$label" || continue
    if [ -n "$envs" ]; then
        # Does the binary honour the setting? (`backtraces=` on its line says what is in force.)
        probe="$(run1 "$bin" "$envs" 1 churn)"
        if [ "$(field backtraces "$probe")" = "Off" ]; then
            log "$label: the binary reports backtraces=Off with $envs: n/a"
            echo "$label" >>"$NA"
            continue
        fi
    fi
    for wl in "${WORKLOADS[@]}"; do
        log "$label $wl: $PAIRS pairs"
        for ((p = 1; p <= PAIRS; p++)); do
            s="$(run1 system "" "$scale" "$wl")"
            x="$(run1 "$bin" "$envs" "$scale" "$wl")"
            if [ "$(field checksum "$s")" != "$(field checksum "$x")" ]; then
                echo "checksum mismatch: $label $wl: [$s] vs [$x]" >&2
                exit 1
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$wl" "$p" \
                "$(field ns "$s")" "$(field ns "$x")" \
                "$(field maxrss_kb "$s")" "$(field maxrss_kb "$x")" \
                "$(field cpu_ns "$s")" "$(field cpu_ns "$x")" >>"$RAW"
        done
    done
done

# Callgrind: instructions of the workload body only (toggle-collect on `measured`), at a
# reduced size; ratios to System at the same size.
if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null; then
    CG_SCALE=10; CG_SCALE_DHAT=2
    [ "$QUICK" = 1 ] && { CG_SCALE=5; CG_SCALE_DHAT=1; }
    cg1() { # cg1 BIN ENV SCALE WORKLOAD -> instructions
        local out="$WORK/cg.out"
        env $2 BENCH_SCALE="$3" valgrind --tool=callgrind --callgrind-out-file="$out" \
            --collect-atstart=no '--toggle-collect=leaktracker_bench::measured*' \
            "$BIN/$1" "$4" >/dev/null 2>>"$WORK/stderr.log"
        sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1
    }
    declare -A SYS_DONE=()
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label bin envs scale <<<"$row"
        selected "$label" || continue
        grep -qx "$label" "$NA" && continue
        s=$CG_SCALE; [ "$label" = dhat ] && s=$CG_SCALE_DHAT
        for wl in "${WORKLOADS[@]}"; do
            if [ -z "${SYS_DONE[$s.$wl]:-}" ]; then
                printf 'system@%s\t%s\t%s\t%s\n' "$s" "$wl" "$s" "$(cg1 system "" "$s" "$wl")" >>"$CG"
                SYS_DONE[$s.$wl]=1
            fi
            log "callgrind $label $wl (${s}%)"
            printf '%s\t%s\t%s\t%s\n' "$label" "$wl" "$s" "$(cg1 "$bin" "$envs" "$s" "$wl")" >>"$CG"
        done
    done
else
    log "valgrind not found or --no-callgrind: no instruction ratios"
fi

SCALE_OUT="$WORK/scale.txt"; : >"$SCALE_OUT"
if [ "$SCALE_RUNS" = 1 ]; then
    log "scale: live() at 10k/100k/1M blocks in 1,000 resources"
    "$BIN/scale-live" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
    log "scale: table growth to 10,000,000 tagged blocks"
    "$BIN/scale-table" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
    log "scale: untagged alloc/free pairs beside 0/10k/100k/1M live tagged blocks"
    "$BIN/scale-mixed" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
    log "scale: backtrace capture cost; a report of 100,000 leaked blocks with backtraces"
    "$BIN/scale-backtrace" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
fi
if [ "$SOAK" = 1 ]; then
    log "soak: ${SOAK_SECS}s"
    "$BIN/soak" --secs "$SOAK_SECS" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
    log "soak reference (System, same load): ${SOAK_SECS}s"
    "$BIN/soak-system" --secs "$SOAK_SECS" >>"$SCALE_OUT" 2>>"$WORK/stderr.log"
fi

CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
CORES="$(nproc)"
RUSTC="$(rustc --version)"
VALGRIND="$(valgrind --version 2>/dev/null || echo none)"
LOAD_START="$LOAD_START"
LOAD_END="$(cut -d" " -f1-3 /proc/loadavg)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"

python3 - "$RAW" "$CG" "$NA" "$SCALE_OUT" "$PAIRS" "$CPU" "$CORES" "$RUSTC" "$VALGRIND" "$COMMIT" "$QUICK" "$LOAD_START / $LOAD_END" >"$WORK/table.md" <<'PY'
import sys, statistics, collections
raw, cg, na, scale_out, pairs, cpu, cores, rustc, valgrind, commit, quick, load = sys.argv[1:]
rows = collections.OrderedDict()
for line in open(raw):
    label, wl, p, sn, xn, sr, xr, sc, xc = line.rstrip("\n").split("\t")
    rows.setdefault((label, wl), []).append((int(sn), int(xn), int(sr), int(xr), int(sc), int(xc)))
instr = {}
for line in open(cg):
    label, wl, scale, n = line.rstrip("\n").split("\t")
    if n:
        instr[(label, wl)] = (int(scale), int(n))
na = [l.strip() for l in open(na) if l.strip()]

def ratio_instr(label, wl):
    if (label, wl) not in instr:
        return "–"
    scale, n = instr[(label, wl)]
    base = instr.get((f"system@{scale}", wl))
    if not base or not base[1]:
        return "–"
    return f"{n / base[1]:.3f}×"

workloads = ["churn", "threads", "realloc", "app"]
print(f"Machine: {cpu}, {cores} cores; {rustc}; valgrind: {valgrind}; leaktracker {commit} "
      f"(plus uncommitted work in the tree, if any); load average at start / end: {load}.")
print(f"Time: median of {pairs} paired runs (System, X, System, X, …) of the X/System ratio, "
      "with the min–max of the per-pair ratios. Instructions: callgrind, workload body only, "
      "at a reduced size (10% of full; dhat 2%; --quick: 5% / 1%). "
      "CPU: the same ratio of user+system CPU time (less sensitive than wall time to other load "
      "on a shared machine). RSS: peak (`ru_maxrss`) of X, median, MiB.")
print()
print("| allocator | workload | time vs System | min–max | CPU vs System | instructions vs System | peak RSS MiB (System) | median time ms |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
ratio_med = {}
for (label, wl), runs in rows.items():
    ratios = [r[1] / r[0] for r in runs]
    med = statistics.median(ratios)
    cpu_med = statistics.median(r[5] / r[4] for r in runs if r[4])
    xms = statistics.median(r[1] for r in runs) / 1e6
    ratio_med[(label, wl)] = (med, cpu_med)
    xr = statistics.median(r[3] for r in runs) / 1024
    sr = statistics.median(r[2] for r in runs) / 1024
    name = label + (" (10% size)" if label == "dhat" else "")
    print(f"| {name} | {wl} | {med:.3f}× | {min(ratios):.2f}–{max(ratios):.2f} | {cpu_med:.3f}× | "
          f"{ratio_instr(label, wl)} | {xr:.1f} ({sr:.1f}) | {xms:.0f} |")
for label in na:
    for wl in workloads:
        print(f"| {label} | {wl} | n/a | | n/a | n/a | | |")
print()
if na:
    print("n/a: " + ", ".join(na) + " — the binary reports `backtraces=Off` with the variable set "
          "(LEAKTRACKER_BACKTRACE not read at start-up yet).")
    print()
print("Two threads: each thread of `threads` does the whole of `churn`, so with perfect scaling "
      "`threads` takes as long as `churn`. Scaling against System = (ratio on `threads`) / (ratio on "
      "`churn`), wall and CPU (1.00: scales as well as System; above: the allocator adds "
      "contention):")
parts = []
for label in dict.fromkeys(l for l, _ in rows):
    if (label, "threads") in ratio_med and (label, "churn") in ratio_med:
        w = ratio_med[(label, "threads")][0] / ratio_med[(label, "churn")][0]
        c = ratio_med[(label, "threads")][1] / ratio_med[(label, "churn")][1]
        parts.append(f"{label} {w:.2f} / {c:.2f}")
print("; ".join(parts) + ".")
scale = open(scale_out).read().strip()
if scale:
    print()
    print("Scale and soak:")
    print()
    print("```")
    print(scale)
    print("```")
PY

cat "$WORK/table.md"
{
    echo "# Benchmark results"
    echo
    echo "Produced by \`scripts/bench.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%d)."
    echo
    cat "$WORK/table.md"
} >"$OUT"
log "written to $OUT"
