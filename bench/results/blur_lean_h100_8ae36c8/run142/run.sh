#!/bin/sh
# Session 28, call 3: the y-blocked blur's variants (FFDP_BLUR_XYZ: indexed = before, lean1 =
# hoisted + cp.async staging at one block an SM, two*, 12x3* = two blocks an SM) at 256^3, 192^3, 128^3.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s28c}; W=/tmp/s28c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28c.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b28c; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for n in 256 192 128; do
  timeout 150 $B/gpu_ops $n > $W/gpu_ops_$n.txt 2>&1; echo "gpu_ops $n rc $?"
  grep -E "copy:|^\| (blur vec3 (sigma|y-blocked|\+ largest|one pass)|mse fwd)|agree|FAIL" $W/gpu_ops_$n.txt | grep -v "check only" | cut -c1-120
done
