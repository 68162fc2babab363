#!/usr/bin/env bash
# Benchmarks of leaktracker against System and the peer allocators.
#
# Builds the bench crate (benches/, its own workspace) in release, runs every allocator x
# workload as paired alternating runs (system, X, system, X, ...), counts instructions
# with callgrind when valgrind is present, runs the scale binaries (live(), table growth,
# untagged frees beside tagged blocks, backtrace capture and a 100,000-block report), a
# soak with its System reference, and the axum service (examples/axum_service.rs as a
# benchmark: requests per second and callgrind instructions per request, per way of
# tagging requests), and prints one Markdown table (also written to benches/RESULTS.md).
#
# Usage: scripts/bench.sh [--quick] [--pairs N] [--no-callgrind] [--no-scale] [--no-soak]
#                         [--soak-secs N] [--only ALLOC[,ALLOC...]] [--out FILE]
#                         [--no-axum | --axum-only]
#   --quick      3 pairs, 10 s soaks, smaller callgrind runs: about 8 minutes.
#   default      7 pairs, 2 min soaks: about 35 minutes on 2 cores.
#   --axum-only  only the axum service section (about 6 minutes; --quick: 3), which then
#                replaces only that section of the output file.
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
AXUM=1
AXUM_ONLY=0
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
        --no-axum) AXUM=0 ;;
        --axum-only) AXUM_ONLY=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

command -v python3 >/dev/null || { echo "bench.sh needs python3" >&2; exit 1; }
if [ "$AXUM_ONLY" = 1 ]; then
    [ "$AXUM" = 1 ] || { echo "--axum-only and --no-axum exclude each other" >&2; exit 2; }
    SCALE_RUNS=0; SOAK=0
fi

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
for b in system lt-untagged lt-tagged stats-alloc tracking-allocator dhat scale-live scale-table scale-mixed scale-backtrace soak soak-system \
    axum-system axum-untagged axum-instrument axum-instrument-stacks axum-layer axum-registry; do
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
    [ "$AXUM_ONLY" = 1 ] && return 1
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

# The axum service (benches/src/service.rs: the service loop of examples/axum_service.rs,
# in-process client and server on 127.0.0.1, 2 tokio workers, concurrency 32), one binary
# per way of tagging requests. Time: paired alternating runs (axum-system, X, ...) of a
# fixed request count after a warm-up. Instructions: callgrind over the whole process
# (every thread), with N requests and with none (start-up, warm-up, shutdown), each run
# 3 times (--quick: once; counts vary by about 1% with thread interleaving): the
# difference of the medians divided by N is the cost of one request.
AXUM_RAW="$WORK/axum.tsv"  # label pair sys_ns x_ns sys_cpu x_cpu sys_rps x_rps
AXUM_CG="$WORK/axum-cg.tsv" # label requests instructions
AXUM_MD="$WORK/axum.md"
: >"$AXUM_RAW"; : >"$AXUM_CG"; : >"$AXUM_MD"
AXUM_ROWS=(axum-system axum-untagged axum-instrument axum-instrument-stacks axum-layer axum-registry)
AXUM_N=20000; AXUM_CG_N=2000; AXUM_CG_REPS=3
[ "$QUICK" = 1 ] && { AXUM_N=5000; AXUM_CG_REPS=1; }
if [ "$AXUM" = 1 ]; then
    axum1() { # axum1 BIN REQUESTS -> result line
        AXUM_REQUESTS="$2" timeout 600 "$BIN/$1" 2>>"$WORK/stderr.log" | grep '^alloc=' | tail -1
    }
    for label in "${AXUM_ROWS[@]}"; do
        log "axum $label: $PAIRS pairs of $AXUM_N requests"
        for ((p = 1; p <= PAIRS; p++)); do
            s="$(axum1 axum-system "$AXUM_N")"
            x="$(axum1 "$label" "$AXUM_N")"
            if [ -z "$s" ] || [ -z "$x" ] || [ "$(field checksum "$s")" != "$(field checksum "$x")" ]; then
                echo "axum: failed run or checksum mismatch: $label: [$s] vs [$x]" >&2
                exit 1
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$p" \
                "$(field ns "$s")" "$(field ns "$x")" \
                "$(field cpu_ns "$s")" "$(field cpu_ns "$x")" \
                "$(field rps "$s")" "$(field rps "$x")" >>"$AXUM_RAW"
        done
    done
    if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null; then
        for label in "${AXUM_ROWS[@]}"; do
            for ((r = 1; r <= AXUM_CG_REPS; r++)); do for n in 0 "$AXUM_CG_N"; do
                log "callgrind axum $label ($n requests, $r/$AXUM_CG_REPS)"
                out="$WORK/cg-axum.out"
                AXUM_REQUESTS="$n" timeout 1800 valgrind --tool=callgrind \
                    --callgrind-out-file="$out" "$BIN/$label" >/dev/null 2>>"$WORK/stderr.log"
                printf '%s\t%s\t%s\n' "$label" "$n" \
                    "$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1)" >>"$AXUM_CG"
            done; done
        done
    fi
    python3 - "$AXUM_RAW" "$AXUM_CG" "$PAIRS" "$AXUM_N" "$AXUM_CG_N" >"$AXUM_MD" <<'PY'
import sys, statistics, collections
raw, cg, pairs, n, cg_n = sys.argv[1:]
what = {
    "axum-system": "System allocator",
    "axum-untagged": "TrackingAllocator, nothing tagged",
    "axum-instrument": "every request under `instrument`, no stacks",
    "axum-instrument-stacks": "`instrument` + a stack per tagged block, as a report or gate captures them by default (all blocks, depth 128)",
    "axum-layer": "`LeakLayer`: every request tagged by its span (`registry().with(LeakLayer)`), no stacks",
    "axum-registry": "reference for `LeakLayer`: the same `registry()` and spans, no layer, nothing tagged",
}
rows = collections.OrderedDict()
for line in open(raw):
    label, p, sn, xn, sc, xc, sr, xr = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append((int(sn), int(xn), int(sc), int(xc), float(sr), float(xr)))
runs_cg = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(cg):
    label, req, count = line.rstrip("\n").split("\t")
    if count:
        runs_cg[label][int(req)].append(int(count))
instr = {l: {r: statistics.median(c) for r, c in d.items()} for l, d in runs_cg.items()}
reps = max((len(c) for d in runs_cg.values() for c in d.values()), default=0)
def per_request(label):
    c = instr.get(label, {})
    if 0 in c and int(cg_n) in c:
        return (c[int(cg_n)] - c[0]) / int(cg_n)
    return None
base = per_request("axum-system")
print("<!-- axum-service -->")
print("## The axum service: requests per second and instructions per request")
print()
print(f"`examples/axum_service.rs`'s service loop (benches/src/service.rs): axum 0.8 server and hyper-util "
      f"client in one process on 127.0.0.1, 2 tokio workers, concurrency 32, 4 pooled connections with "
      f"mpsc tasks, JSON routes, lazy regexes, a `tracing` span per request. Time: median of {pairs} "
      f"paired runs (axum-system, X, ...) of {n} requests after a 256-request warm-up; the ratio of "
      f"wall time per request (and of CPU time, all threads) to System's in the same pair, min–max of "
      f"the pairs. Instructions: callgrind, all threads, (run with {cg_n} requests − run with none) / "
      f"{cg_n}, medians of {reps} runs each, against System's.")
print()
print("| configuration | instructions / request | vs System | time / request vs System | min–max | CPU vs System | requests/s (System) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
labels = list(dict.fromkeys(list(rows) + list(instr)))
for label in labels:
    pr = per_request(label)
    ins = f"{pr:,.0f}" if pr is not None else "–"
    ins_r = f"{pr / base:.3f}×" if pr is not None and base else "–"
    runs = rows.get(label, [])
    if runs:
        ratios = [r[1] / r[0] for r in runs]
        cpu = statistics.median(r[3] / r[2] for r in runs if r[2])
        rps = statistics.median(r[5] for r in runs)
        srps = statistics.median(r[4] for r in runs)
        t = f"{statistics.median(ratios):.3f}× | {min(ratios):.2f}–{max(ratios):.2f} | {cpu:.3f}× | {rps:,.0f} ({srps:,.0f})"
    else:
        t = "– | | – | –"
    print(f"| {label}: {what.get(label, '')} | {ins} | {ins_r} | {t} |")
print("<!-- /axum-service -->")
PY
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

if [ "$AXUM_ONLY" = 1 ]; then
    # Only the axum section is new: it replaces its part of the output file (between its
    # markers), or is appended to it; the rest of the file stays as it was.
    {
        echo "Machine: $CPU, $CORES cores; $RUSTC; valgrind: $VALGRIND; leaktracker $COMMIT; load average at start / end: $LOAD_START / $LOAD_END. Produced by \`scripts/bench.sh --axum-only$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%d)."
        echo
        cat "$AXUM_MD"
    } >"$WORK/axum-full.md"
    cat "$WORK/axum-full.md"
    [ -f "$OUT" ] || echo "# Benchmark results" >"$OUT"
    python3 - "$OUT" "$WORK/axum-full.md" <<'PY'
import sys, re
out, new = sys.argv[1:]
text, section = open(out).read(), open(new).read().strip()
heading = "## The axum service: requests per second and instructions per request"
body = section[section.index("<!-- axum-service -->"):]
machine = section[:section.index("<!-- axum-service -->")].strip()
# The machine line goes inside the markers, under the heading.
body = body.replace(heading + "\n", heading + "\n\n" + machine + "\n", 1)
pat = re.compile(r"<!-- axum-service -->.*?<!-- /axum-service -->", re.S)
text = pat.sub(lambda m: body, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + body + "\n"
open(out, "w").write(text)
PY
    log "axum section written to $OUT"
    exit 0
fi
[ -s "$AXUM_MD" ] && { echo; cat "$AXUM_MD"; } >>"$WORK/table.md"
cat "$WORK/table.md"
{
    echo "# Benchmark results"
    echo
    echo "Produced by \`scripts/bench.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%d)."
    echo
    cat "$WORK/table.md"
} >"$OUT"
log "written to $OUT"
