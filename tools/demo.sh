#!/usr/bin/env bash
# demo.sh — installs what is missing, builds troupe in ./build and runs the
# main demo. Works from any directory; the build lands in the repository.
set -euo pipefail

# The demo program, relative to the build directory.
DEMO=examples/demo

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash tools/setup.sh

if [ -f build/build.ninja ]; then
    echo "demo: reusing build/"
elif [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build # an earlier set-up did not finish
else
    meson setup build
fi
ninja -C build

echo "demo: running $DEMO"
exec "./build/$DEMO" "$@"
