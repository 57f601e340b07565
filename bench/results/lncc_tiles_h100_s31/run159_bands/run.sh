#!/bin/sh
# Session 30, call 6: bands spread evenly (768^2 planes: 5 bands of 10 tile rows, not 4 of 11
# and one of 4), and a 1024x1024x128 case timed: bands, the ring, out of place; check at 100^3,
# the 256^3 table twice.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s30g}; W=/tmp/s30g_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s30g.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b30g; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s30g.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
GPU_OPS_REPS=1 timeout 120 $B/gpu_ops 100 > $W/check_100.txt 2>&1; echo "gpu_ops 100 rc $?"
awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_100.txt | cut -c1-140; grep -E "agree|FAIL|x[0-9]+x[0-9]+," $W/check_100.txt | cut -d'|' -f2,7 | cut -c1-140
save
n=0
for r in gpu_ops gpu_ops_f gpu_ops; do
  n=$((n+1))
  timeout 150 $B/$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E 'copy:|^\| (blur vec3 (sigma=1.5 |in place|out of place))|agree|FAIL' $W/256_${n}_$r.txt | cut -d'|' -f2,4,6,7 | cut -c1-130
  save
done
