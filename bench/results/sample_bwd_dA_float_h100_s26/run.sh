#!/bin/sh
# Session 26, call 10: the sampler backward's affine gradient with per-thread sums in float
# (v1: 8 blocks of 128 per SM as before; v2: 9 blocks) against bcee00f (base), alternating.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s26j}; W=/tmp/s26j_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26j.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26j.tar.xz || exit 1
for r in 1 2; do for v in base v1 v2; do
  $B/gpu_ops_$v 256 > $W/gpu_ops_${v}_$r.txt 2>&1
  echo "$v $r: $(grep -E '^\| sample bwd \(du, dA\) \||^\| sample bwd \(du only\) \|' $W/gpu_ops_${v}_$r.txt | awk -F'|' '{printf "%s %s ms %s err %s; ", $2, $4, $6, $7}') $(grep -c 'agree with the CPU' $W/gpu_ops_${v}_$r.txt)"
  save
done; done
