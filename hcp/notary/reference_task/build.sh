#!/bin/sh
# Rebuild train.wasm from train.c with Debian bookworm's toolchain:
#   apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
# The output is reproducible (no timestamps or paths; symbols stripped), so a rebuild with the
# same toolchain is byte-identical to the committed train.wasm (tests check it when clang exists).
# Usage: build.sh [OUTPUT]   (default: train.wasm next to this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/train.wasm}
CC=${CC:-clang-14}
cd "$here"
"$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -ffp-contract=off \
  -Wl,--strip-all -o "$out" train.c
echo "built $out ($(wc -c < "$out") bytes)"
