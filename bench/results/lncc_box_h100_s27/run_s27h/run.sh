#!/bin/sh
# Session 27, call 8: gpu_ops with the lean LNCC's odd-grid check (203x117x37, 19x23x5,
# 33x17x12, k = 3..9, mask, both gradients) at 256^3, then the whole table at 200^3 and 192^3
# (the medium preset's finest SyN level has 7.2 M voxels) for the SyN iteration's budget.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s27h}; W=/tmp/s27h_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27h.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b27h; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27h.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 256 200 192; do
  timeout 150 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  grep -E "copy:|odd|grids|agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-130
  save
done
grep -E "^\| (sample fwd \(|sample bwd \(du only\) \||lncc k=5 box fwd \+ both grads \||blur vec3 in place, ring|blur vec3 \+ largest|adam step \+ compose \(|mse fwd)" $W/gpu_ops_200.txt | cut -c1-110
