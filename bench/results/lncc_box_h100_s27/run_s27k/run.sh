#!/bin/sh
# Session 27, call 11: the lean LNCC's tile experiments at 256^3 (FFDP_LNCC_TILE: by4, ty8x2,
# ty8x3sr) against the default 16-row tile, in one gpu_ops.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s27k}; W=/tmp/s27k_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27k.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b27k; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27k.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
timeout 150 $B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (lncc k=5 box (fwd\+bwd|fwd \+ both grads)(,|\s\|)|mse fwd)|agree|FAIL" $W/gpu_ops_256.txt | cut -c1-130
