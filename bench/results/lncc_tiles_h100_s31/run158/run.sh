#!/bin/sh
# Session 31, call 1: LNCC box k=3/5 tile shapes (A/B builds of lncc_box.cu): g0 = the committed
# shape (32x16, register rings, one 512-thread block an SM); g24 = 32x24 with the raw ring in
# shared memory (768 threads, 80 registers); g12 = 32x12 SR, two blocks an SM; g8 = 32x8 SR, three
# blocks; g16s = 32x16 SR. Check at 100^3 (every binary), then 256^3 alternating.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s31a}; W=/tmp/s31a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s31a.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b31a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s31a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for r in g0 g24 g12 g8 g16s; do
  GPU_OPS_REPS=1 timeout 100 $B/$r 100 > $W/check_100_$r.txt 2>&1; echo "== 100 $r rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_100_$r.txt | cut -c1-140; grep -E "lncc.*(odd|grids|slab|mask)|FAIL" $W/check_100_$r.txt | cut -d'|' -f2,7 | cut -c1-120
done
save
n=0
for r in g0 g24 g12 g8 g16s g0 g24; do
  n=$((n+1))
  timeout 150 $B/$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E 'copy:|^\| lncc k=[35] box (fwd\+bwd|fwd \+ both)' $W/256_${n}_$r.txt | grep -v march | cut -d'|' -f2,4,6,7 | cut -c1-110
  save
done
