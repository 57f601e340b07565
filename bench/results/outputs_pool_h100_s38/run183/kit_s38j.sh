#!/bin/sh
# Session 38, run 10: stored field members made all at once and then appended in order by one
# thread (the new default for level 0) against the ordered loop (FFDP_GZ_STORED_WRITE=ordered),
# ffdp_warp_save_ants of a 301x370x316 field (423 MB) to a new file each time, alternating.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s38j}; W=/tmp/s38j_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38j.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b38j; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38j.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
mkdir -p /tmp/wf
i=0
for run in "new 16" "ordered 16" "ordered 16" "new 16" "new 8" "ordered 8" "new 16" "ordered 16" "new 4" "ordered 4"; do
  i=$((i+1)); set -- $run
  rm -f /tmp/wf/*.nii.gz
  echo "$1 threads $2: $(FFDP_GZ_STORED_WRITE=$1 OMP_NUM_THREADS=$2 NREP=1 $B/wb /tmp/wf/w$i.nii.gz 301 370 316 | tr '\n' ' ') $(ls -l /tmp/wf/w$i.nii.gz | awk '{print $5}') $(md5sum < /tmp/wf/w$i.nii.gz | cut -c1-12)" | tee -a $W/summary.txt
done
