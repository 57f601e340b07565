#!/bin/sh
# Session 39, fourth run: the in-place blur on planes of more tiles than the resident blocks (bands
# of tile rows, the gigavoxel levels' path), which gpu_ops' 768x768x64 row put at 0.879 ms with the
# relaxed counters (run 188) against 0.809 in session 38. step_parts (the pipeline's ring size) at
# 768x768x64, 1024x1024x48 and 182x218x182 for old = main, new (relaxed every plane, 128 B apart),
# old32 (main's release/acquire every third plane, 128 B apart), p3 (relaxed every third plane),
# s8 (relaxed every plane, 32 B apart); alternating three times.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s39d}; W=/tmp/s39d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s39d.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b39d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s39d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
sp() { awk -F'|' '/blur in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,24), $4, $5}'; }
for round in 1 2 3; do
  for v in old new old32 p3 s8; do
    for g in "768 768 64" "1024 1024 48" "182 218 182"; do
      f=$W/sp_${v}_$(echo $g | tr ' ' x)_$round.txt
      $B/$v/ffdp_step_parts $g > $f 2>&1
      echo "sp $v $g rc $?: $(head -1 $f | grep -oE 'ring [0-9]+ planes') $(sp < $f)" | tee -a $W/summary.txt
    done
  done
  save
done
