#!/bin/sh
# Session 28, call 10: the scalar sampler forward bounded to 10 or 12 blocks of 128 an SM
# (45 / 40 registers, no spill, where 56 gave 9) against 36dc86c: base, b12, b10, base at 256^3;
# checks of b10 and b12 at 100^3.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s28j}; W=/tmp/s28j_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28j.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b28j; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28j.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for v in gpu_ops_b10 gpu_ops_b12; do
  GPU_OPS_REPS=1 timeout 60 $B/$v 100 > $W/check100_$v.txt 2>&1; echo "$v 100 rc $?: $(grep -E 'agree|FAIL' $W/check100_$v.txt | head -2)"
done
n=0
for v in gpu_ops_36dc86c gpu_ops_b12 gpu_ops_b10 gpu_ops_36dc86c; do
  n=$((n+1))
  timeout 80 $B/$v 256 > $W/ab_${n}_$v.txt 2>&1
  echo "$v: $(grep -E '^\| (sample fwd \(|sample fwd, image as 16-bit codes \(|compose fwd \(|mse fwd)' $W/ab_${n}_$v.txt | cut -d'|' -f2,4,6 | tr '\n' ' ')"
  grep -E "agree|FAIL" $W/ab_${n}_$v.txt
  save
done
