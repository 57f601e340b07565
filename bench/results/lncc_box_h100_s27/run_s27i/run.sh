#!/bin/sh
# Session 27, call 9: the linear stage's backward failed its check at 200^3 (run 136): the same
# sizes with cb5085f's gpu_ops (before the sampler's z-last coordinates) and the new one.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s27i}; W=/tmp/s27i_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27i.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b27i; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27i.tar.xz || exit 1
for N in 200 100 136; do
  for v in base new; do
    bin=$B/gpu_ops; [ $v = base ] && bin=$B/base/gpu_ops
    GPU_OPS_REPS=1 timeout 100 $bin $N > $W/gpu_ops_${N}_$v.txt 2>&1; echo "gpu_ops $N $v rc $?"
    awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_${N}_$v.txt | cut -c1-120
    grep -E "linear stage|dA per plane" $W/gpu_ops_${N}_$v.txt | cut -c1-120
  done
  save
done
