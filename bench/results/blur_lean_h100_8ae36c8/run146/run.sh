#!/bin/sh
# Session 28, call 7: the one-pass blur with 32-bit plane counters and stepped plane pointers
# (spill 64 -> 20 bytes at radius 5, 12 -> 0 with the norm) against f820cb7, alternating; checks
# at 100^3 and 200^3.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s28g}; W=/tmp/s28g_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28g.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b28g; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28g.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_$N.txt | cut -c1-120; grep -E "agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-120
done
for rep in 1 2; do
  for v in gpu_ops_f820cb7 gpu_ops; do
    timeout 100 $B/$v 256 > $W/ab_${v}_$rep.txt 2>&1
    echo "$v $rep: $(grep -E '^\| (blur vec3 sigma=1.(5|2)|blur vec3 \+ largest norm \(|blur vec3 one pass, y-blocked|mse fwd)' $W/ab_${v}_$rep.txt | cut -d'|' -f2,4,7 | tr '\n' ' ')"
    grep -E "agree|FAIL" $W/ab_${v}_$rep.txt
  done
done
for v in gpu_ops_f820cb7 gpu_ops; do
  timeout 100 $B/$v 192 > $W/ab192_$v.txt 2>&1
  echo "$v 192: $(grep -E '^\| (blur vec3 sigma=1.5|blur vec3 \+ largest norm \()' $W/ab192_$v.txt | cut -d'|' -f2,4 | tr '\n' ' ')"
done
save
