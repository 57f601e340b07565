#!/bin/sh
# Session 26, call 9: z-blocks of the fused Adam + composition (FFDP_SAMPLE_ZB over the whole
# bench: 16, 32 = default, 64), bcee00f binaries (s26f). carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s26i}; W=/tmp/s26i_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26i.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26f.tar.xz || exit 1
for zb in 32 64 16 32 64; do
  FFDP_SAMPLE_ZB=$zb $B/gpu_ops 256 > $W/gpu_ops_zb${zb}_$$.txt 2>&1
  echo "zb $zb: $(grep -E '^\| adam step \+ compose \(|^\| adam step alone' $W/gpu_ops_zb${zb}_$$.txt | awk -F'|' '{printf "%s %s ms %s; ", $2, $4, $6}')"
  mv $W/gpu_ops_zb${zb}_$$.txt $W/gpu_ops_zb${zb}_$(date +%s).txt
done
