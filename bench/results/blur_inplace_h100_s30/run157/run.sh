#!/bin/sh
# Session 30, call 5: the in-place one-pass blur on planes of more tiles than the resident slots
# (bands of tile rows, each band's rows above it saved first): gpu_ops checks at 100^3 and 200^3
# (new rows: 640x520x24, a 600x560x30 slab with halo planes, 768x768x64 timed; FFDP_BLUR_INPLACE=one
# makes a fallback an error), the 256^3 table, a71b796's gpu_ops_old alongside.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s30f}; W=/tmp/s30f_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s30f.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b30f; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s30f.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 90 $B/gpu_ops $N > $W/check_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_$N.txt | cut -c1-140; grep -E "agree|FAIL|x[0-9]+x" $W/check_$N.txt | cut -d'|' -f2,7 | cut -c1-140
done
save
rows='copy:|^\| (blur vec3 (sigma=1.5 |in place|out of place)|largest norm alone)|agree|FAIL'
for v in gpu_ops gpu_ops_old gpu_ops; do
  timeout 90 $B/$v 256 > $W/256_$v.txt 2>&1; echo "== $v rc $?"
  grep -E "$rows" $W/256_$v.txt | cut -d'|' -f2,4,6,7 | sed -e 's/(vs out of place: bits)//' | cut -c1-120
  save
done
