#!/bin/sh
# A build without the CUDA backend and for the x86-64 baseline (no AVX2): what a user without
# nvcc, or one who copies binaries to older machines, gets. It must compile cleanly (-Werror)
# and register the small test pair to the same files as the default build: the -march choice
# changes speed, never bits (ISO C: no FMA contraction).
set -u
src=$1 ref_ffdp=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake -S "$src" -B "$tmp/b" -DCMAKE_BUILD_TYPE=Release -DFFDP_ENABLE_CUDA=OFF -DFFDP_CPU_ARCH=x86-64 \
  > "$tmp/log" 2>&1 || { cat "$tmp/log"; echo "FAIL: configure"; exit 1; }
cmake --build "$tmp/b" --target ffdp_cli -j2 >> "$tmp/log" 2>&1 || { tail -40 "$tmp/log"; echo "FAIL: build"; exit 1; }
grep -q "built with -march=x86-64$" "$tmp/log" || { echo "FAIL: FFDP_CPU_ARCH was not applied"; exit 1; }
"$tmp/b/ffdp" register --device cuda -f x -m y -o "$tmp/o" > "$tmp/cuda.log" 2>&1 && { echo "FAIL: --device cuda accepted"; exit 1; }
grep -q "no CUDA backend\|no CUDA device\|cannot\|no such" "$tmp/cuda.log" || { cat "$tmp/cuda.log"; echo "FAIL: no clear message for --device cuda"; exit 1; }
fixed=$PWD/ranks_fixed.nii.gz moving=$PWD/ranks_moving.nii.gz # the mpi fixture's pair
for b in portable default; do
  f=$tmp/b/ffdp
  [ "$b" = default ] && f=$ref_ffdp
  OMP_NUM_THREADS=2 "$f" register -f "$fixed" -m "$moving" -o "$tmp/${b}_" --output-format nii -q \
    --transform Affine[0.005] --metric MI[32] --convergence [10x5,1e-6,10] --shrink-factors 2x1 \
    --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [10x5,1e-6,10] --shrink-factors 2x1 \
    > "$tmp/$b.log" 2>&1 || { cat "$tmp/$b.log"; echo "FAIL: $b build's register"; exit 1; }
done
for x in 1Warp.nii Warped.nii 0GenericAffine.txt; do
  cmp -s "$tmp/portable_$x" "$tmp/default_$x" || { echo "FAIL: $x differs between the portable and the default build"; exit 1; }
done
echo "ok: CPU-only x86-64 build compiles and writes the default build's files"
