#!/usr/bin/env bash
# test.sh — installs what is missing, then builds and runs the whole test
# suite three ways, each in its own build directory under build-ci/:
#
#   plain  debugoptimized
#   asan   AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer
#   tsan   ThreadSanitizer
#
# and, when clang is present, builds the libFuzzer targets (build-ci/fuzz)
# and runs each for FUZZ_SECONDS, then checks the code style (.clang-format).
# It prints a summary per configuration and
# ends with exactly one line "N passed, N failed". The exit status is non-zero
# when anything failed. A configuration that does not configure or build
# counts as one failed test, and so does one that runs no test at all.
#
# Environment: FUZZ_SECONDS (default 30; 0 skips fuzzing), TEST_JOBS (tests
# run at once, default 2), CC (compiler for the three suites; default cc).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
TEST_JOBS=${TEST_JOBS:-2}
CI_DIR=build-ci

if ! bash tools/setup.sh; then
    echo "test: setup failed"
    echo "0 passed, 1 failed"
    exit 1
fi

# Sanitizer settings for every test process (meson test passes the
# environment through; it only fills in its own defaults when these are unset).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp

total_passed=0
total_failed=0
summary=()

# record NAME PASSED FAILED SKIPPED NOTE — adds one configuration's result.
record()
{
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
    local line
    line=$(printf '%-6s %4d passed, %4d failed, %4d skipped' "$1" "$2" "$3" "$4")
    [ -n "$5" ] && line="$line  ($5)"
    summary+=("$line")
}

# configure DIR MESON-OPTIONS... — sets up DIR, reusing it when it exists.
configure()
{
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" && return 0
        echo "test: reconfiguring $dir failed; starting it afresh"
    fi
    rm -rf "$dir"
    meson setup "$dir" "$@"
}

# parse_testlog FILE — prints "passed failed skipped" on the first line, then
# the name and result of each failed test, one a line.
parse_testlog()
{
    python3 - "$1" <<'PY'
import json
import sys

passed = failed = skipped = 0
bad = []
try:
    with open(sys.argv[1], encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                test = json.loads(line)
            except ValueError:
                failed += 1
                bad.append("<unreadable line in testlog.json>")
                continue
            result = test.get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:  # FAIL, TIMEOUT, UNEXPECTEDPASS, ERROR, INTERRUPT, ...
                failed += 1
                bad.append("%s (%s)" % (test.get("name", "?"), result))
except FileNotFoundError:
    pass
print(passed, failed, skipped)
for name in bad:
    print(name)
PY
}

# run_suite NAME TIMEOUT-MULTIPLIER MESON-OPTIONS... — configures, builds and
# runs the suite in build-ci/NAME. Runs meson test under the command in the
# array WRAP (may be empty).
run_suite()
{
    local name=$1 mult=$2
    shift 2
    local dir=$CI_DIR/$name
    echo
    echo "==== $name: configure and build ($*)"
    if ! configure "$dir" "$@"; then
        record "$name" 0 1 0 "meson setup failed"
        return
    fi
    if ! ninja -C "$dir"; then
        record "$name" 0 1 0 "build failed"
        return
    fi
    echo "==== $name: meson test"
    rm -f "$dir/meson-logs/testlog.json"
    local rc=0
    # The 'stress' suite (link flapping) is run by hand; see tests/meson.build.
    "${WRAP[@]}" meson test -C "$dir" --no-rebuild --print-errorlogs --no-suite stress \
        --num-processes "$TEST_JOBS" --timeout-multiplier "$mult" || rc=$?

    local counts passed failed skipped note=""
    mapfile -t counts < <(parse_testlog "$dir/meson-logs/testlog.json")
    read -r passed failed skipped <<<"${counts[0]:-0 0 0}"
    if [ "${#counts[@]}" -gt 1 ]; then
        note="failed: $(printf '%s; ' "${counts[@]:1}")"
        note=${note%; }
    fi
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        note="meson test exited with status $rc"
    elif [ $((passed + failed + skipped)) -eq 0 ]; then
        failed=1
        note="no tests ran"
    fi
    [ "${#WRAP[@]}" -gt 0 ] && note="${note:+$note; }run under ${WRAP[*]}"
    record "$name" "$passed" "$failed" "$skipped" "$note"
}

# tsan_wrapper — ThreadSanitizer refuses to start on kernels that place
# mappings where it expects its shadow memory ("unexpected memory mapping",
# seen with high vm.mmap_rnd_bits). Runs a tiny TSan program; if it only
# works with address-space randomisation off, sets WRAP to setarch -R.
tsan_wrapper()
{
    WRAP=()
    local tmp
    tmp=$(mktemp -d)
    cat >"$tmp/t.c" <<'C'
#include <pthread.h>
static int shared;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *bump(void *arg)
{
    pthread_mutex_lock(&lock);
    shared++;
    pthread_mutex_unlock(&lock);
    return arg;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, bump, NULL);
    bump(NULL);
    pthread_join(t, NULL);
    return shared == 2 ? 0 : 1;
}
C
    if ! ${CC:-cc} -fsanitize=thread -pthread -o "$tmp/t" "$tmp/t.c" >"$tmp/log" 2>&1; then
        echo "test: cannot build a TSan program:"
        cat "$tmp/log"
    elif "$tmp/t" >"$tmp/log" 2>&1; then
        echo "test: TSan runs as is"
    elif setarch "$(uname -m)" -R "$tmp/t" >/dev/null 2>&1; then
        echo "test: TSan needs ASLR off here ($(head -n 1 "$tmp/log")); using setarch -R"
        WRAP=(setarch "$(uname -m)" -R)
    else
        echo "test: a trivial TSan program fails here:"
        cat "$tmp/log"
    fi
    rm -rf "$tmp"
}

# run_fuzz — builds the libFuzzer targets with clang and runs each one for
# FUZZ_SECONDS; each run counts as one test.
run_fuzz()
{
    local dir=$CI_DIR/fuzz
    if [ "$FUZZ_SECONDS" = 0 ]; then
        summary+=("fuzz   skipped (FUZZ_SECONDS=0)")
        return
    fi
    if ! command -v clang >/dev/null 2>&1; then
        summary+=("fuzz   skipped (no clang)")
        return
    fi
    echo
    echo "==== fuzz: configure and build"
    if ! CC=clang configure "$dir" -Dfuzz=true -Ddefault_library=static \
        -Dtests=false -Dbench=false; then
        record fuzz 0 1 0 "meson setup failed"
        return
    fi
    if ! ninja -C "$dir"; then
        record fuzz 0 1 0 "build failed"
        return
    fi
    local passed=0 failed=0 bad="" exe name log rc
    local -a targets=()
    for exe in "$dir"/tests/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
    done
    if [ "${#targets[@]}" -eq 0 ]; then
        record fuzz 0 1 0 "no fuzz targets were built"
        return
    fi
    mkdir -p "$dir/artifacts" "$dir/meson-logs"
    for exe in "${targets[@]}"; do
        name=$(basename "$exe")
        log=$dir/meson-logs/$name.log
        mkdir -p "$dir/corpus/$name"
        rm -f "$dir/artifacts/$name-"* # only this run's findings are reported
        # New inputs go to the first directory; a checked-in seed corpus,
        # if there is one, is only read.
        local -a dirs=("$dir/corpus/$name")
        [ -d "tests/fuzz/corpus/$name" ] && dirs+=("tests/fuzz/corpus/$name")
        echo "==== fuzz: $name for ${FUZZ_SECONDS}s (log: $log)"
        rc=0
        "$exe" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$dir/artifacts/$name-" "${dirs[@]}" >"$log" 2>&1 || rc=$?
        if [ "$rc" -eq 0 ]; then
            passed=$((passed + 1))
            grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
        else
            failed=$((failed + 1))
            bad="$bad $name"
            echo "---- $name failed (status $rc); end of its log:"
            tail -n 60 "$log"
            local artifact
            for artifact in "$dir/artifacts/$name-"*; do
                [ -e "$artifact" ] && echo "artifact: $artifact"
            done
        fi
    done
    local note="${FUZZ_SECONDS}s each"
    [ "$failed" -gt 0 ] && note="failed:$bad; $note"
    record fuzz "$passed" "$failed" 0 "$note"
}

WRAP=()
run_suite plain 1 -Dbuildtype=debugoptimized -Db_sanitize=none -Dtests=true
WRAP=()
run_suite asan 3 -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false -Dtests=true
tsan_wrapper
run_suite tsan 5 -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false -Dtests=true
WRAP=()
run_fuzz

# The code style is part of the contract: one counted check.
echo "==== format"
if bash tools/format-check.sh; then
    record format 1 0 0 ""
else
    record format 0 1 0 "run: bash tools/format-check.sh --fix FILE..."
fi

echo
echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
