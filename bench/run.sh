#!/usr/bin/env bash
# run.sh — the one command for the side-by-side benchmarks (bench/README.md).
#
# Installs what is missing (troupe's build dependencies through
# tools/setup.sh; the peers erlang-base and libcaf-dev, plus g++ and time),
# builds troupe and the benchmark programs in release mode, compiles the
# Erlang modules, runs every row of bench/cases.txt for each implementation
# in turn (troupe, erlang, caf, troupe, erlang, caf, ...) --reps times, and
# prints the table (bench/table.py). Raw result lines are kept in
# <build>/bench-results/.
#
# Usage: bash bench/run.sh [--quick] [--only CASE|WORKLOAD]... [--reps N]
#                          [--impls a,b] [--build DIR] [--no-install]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

size=full
reps=
only=()
impls_filter=
build="$root/build-bench"
install=1

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) size=quick ;;
        --full) size=full ;;
        --only) only+=("${2:?--only needs a case or workload}"); shift ;;
        --reps) reps="${2:?--reps needs a number}"; shift ;;
        --impls) impls_filter="${2:?--impls needs a list}"; shift ;;
        --build) build="${2:?--build needs a directory}"; shift ;;
        --no-install) install=0 ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
if [ -z "$reps" ]; then
    if [ "$size" = quick ]; then reps=3; else reps=5; fi
fi
case "$reps" in ''|*[!0-9]*|0) echo "run.sh: --reps must be a positive integer" >&2; exit 2 ;; esac
# A run that takes longer than this is killed and reported as failed.
if [ "$size" = quick ]; then run_timeout=120; else run_timeout=300; fi

log() { echo "bench: $*" >&2; }

# ---- install -----------------------------------------------------------------

install_missing() {
    bash "$root/tools/setup.sh" >&2
    local missing=() p status
    for p in erlang-base libcaf-dev g++ time; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$status" = installed ] || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install ${missing[*]}"; exit 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

[ "$install" = 1 ] && install_missing

# ---- build -------------------------------------------------------------------

if [ ! -f "$build/build.ninja" ]; then
    log "configuring $build"
    meson setup "$build" "$root" --buildtype=release -Dbench=true -Dtests=false >/dev/null
else
    meson configure "$build" --buildtype=release -Dbench=true -Dtests=false >/dev/null
fi
log "building"
ninja -C "$build" >/dev/null
ebin="$build/bench/ebin"
mkdir -p "$ebin"
erlc -o "$ebin" "$here"/erlang/*.erl

# ---- implementations ----------------------------------------------------------

# Prints the command line (one word per line) that runs workload $2 with the
# arguments $3... for implementation $1.
impl_command() {
    local impl=$1 workload=$2
    shift 2
    case "$impl" in
        troupe | caf | nng)
            # nng: the raw nng baseline of the cross-process rows (bench/nng).
            printf '%s\n' "$build/bench/${impl}_$workload" "$@" ;;
        erlang)
            # +S 2: two schedulers for the two cores. +P raises the process
            # limit (default 262,144) for the workloads that need it.
            printf '%s\n' erl -noshell +S 2
            case "$workload" in skynet | spawnmem) printf '%s\n' +P 2000000 ;; esac
            printf '%s\n' -pa "$ebin" -run "bench_$workload" main "$@" ;;
        *)
            echo "run.sh: no command for implementation $impl" >&2; return 1 ;;
    esac
}

# ---- rows ----------------------------------------------------------------------

rows=()
while read -r name workload impls quick full; do
    case "$name" in '' | '#'*) continue ;; esac
    if [ "${#only[@]}" -gt 0 ]; then
        keep=0
        for o in "${only[@]}"; do
            [ "$o" = "$name" ] || [ "$o" = "$workload" ] && keep=1
        done
        [ "$keep" = 1 ] || continue
    fi
    if [ -n "$impls_filter" ]; then
        kept=
        for i in ${impls//,/ }; do
            case ",$impls_filter," in *",$i,"*) kept="$kept${kept:+,}$i" ;; esac
        done
        impls=$kept
        [ -n "$impls" ] || continue
    fi
    if [ "$size" = quick ]; then args=$quick; else args=$full; fi
    rows+=("$name $workload $impls $args")
done <"$here/cases.txt"
[ "${#rows[@]}" -gt 0 ] || { echo "run.sh: no case matches --only ${only[*]}" >&2; exit 2; }

# ---- run -----------------------------------------------------------------------

outdir="$build/bench-results"
mkdir -p "$outdir"
results="$outdir/run-$(date +%Y%m%d-%H%M%S).txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
    echo "META size=$size reps=$reps cores=$(nproc) date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "META troupe=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
         "erlang=OTP-$(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().')" \
         "caf=$(dpkg-query -W -f='${Version}' libcaf-dev 2>/dev/null || echo unknown)" \
         "nng=$(dpkg-query -W -f='${Version}' libnng-dev 2>/dev/null || echo unknown)"
} >"$results"

# The two-node Erlang rows need epmd; start it once, outside every timed run
# (each module also starts it if it is missing).
for row in "${rows[@]}"; do
    read -r _ workload impls _ <<<"$row"
    case "$workload,$impls," in x*erlang,*) epmd -daemon; break ;; esac
done

log "$size size, $reps repetitions, ${#rows[@]} rows; results in $results"
started=$SECONDS
for ((rep = 1; rep <= reps; rep++)); do
    for row in "${rows[@]}"; do
        read -r name workload impls args <<<"$row"
        for impl in ${impls//,/ }; do
            mapfile -t cmd < <(impl_command "$impl" "$workload" ${args//,/ })
            rc=0
            # time reports the largest resident set of timeout and what it
            # waited for, i.e. the benchmark program's peak RSS.
            /usr/bin/time -f '%M' -o "$tmp/rss" timeout "$run_timeout" \
                "${cmd[@]}" >"$tmp/out" 2>"$tmp/err" || rc=$?
            line=$(grep -m1 '^RESULT ' "$tmp/out" || true)
            rss=$(tail -n1 "$tmp/rss" 2>/dev/null || echo 0)
            if [ "$rc" -eq 0 ] && [ -n "$line" ] && [[ "$line" == *" check=ok"* ]]; then
                echo "$line case=$name rep=$rep peak_rss_kb=$rss" >>"$results"
                log "rep $rep/$reps $name $impl: $(sed -n 's/.* metric=\([^ ]*\) value=\([^ ]*\).*/\1 \2/p' <<<"$line"), peak RSS ${rss} KB"
            else
                echo "FAIL impl=$impl workload=$workload case=$name rep=$rep rc=$rc" >>"$results"
                log "rep $rep/$reps $name $impl: FAILED (exit $rc)"
                tail -n 5 "$tmp/err" | sed 's/^/    /' >&2
            fi
        done
    done
done
log "done in $((SECONDS - started)) s"
ln -sf "$(basename "$results")" "$outdir/latest.txt"
python3 "$here/table.py" "$results"
