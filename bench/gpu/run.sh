#!/bin/sh
# Build the CUDA operators and the check/bench program with nvcc + gcc only (no NIfTI needed),
# then run it. Used on the GPU machine:  sh bench/gpu/run.sh [N]
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-/tmp/ffdp-gpu}
mkdir -p $B
for f in src/ops/sample_cpu.c src/ops/lncc_cpu.c src/ops/mi_cpu.c src/ops/mse_cpu.c src/ops/blur_cpu.c \
         src/ops/kernels1d.c src/ops/warp_fold.c src/ops/compose_cpu.c src/core/geometry.c src/reg/coarse_moments.c src/ops/code16.c; do
  gcc -std=c11 -O3 -fopenmp -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -c $f -o $B/$(basename $f .c).o &
done
wait
nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo -Iinclude -Isrc -Xcompiler -fopenmp \
  bench/gpu/gpu_ops.cu src/ops/sample.cu src/ops/mse.cu src/ops/mi.cu src/ops/blur.cu src/ops/blur_split.cu src/ops/lncc.cu src/ops/lncc_box.cu src/ops/field_step.cu src/ops/coarse_adam.cu src/ops/code16.cu src/ops/ops_setup.cu \
  $B/*.o -o $B/gpu_ops -lgomp
[ -n "${NORUN:-}" ] && exit 0
$B/gpu_ops "${1:-256}"
