#!/bin/sh
# Session 38, run 9: what bounds writing a stored .nii.gz field: the page cache's speed for one
# writer (dd of 846 MB), and ffdp's field writer (wb_field_write.c: ffdp_warp_save_ants of a
# 301x370x316 field, 423 MB) at levels 0 and 1 on 1-16 threads.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s38i}; W=/tmp/s38i_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38i.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b38i; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38i.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
mkdir -p /tmp/wf
for k in 1 2; do
  rm -f /tmp/wf/dd.bin
  dd if=/dev/zero of=/tmp/wf/dd.bin bs=1M count=846 2>&1 | tail -1 | sed 's/^/dd 846 MB: /' | tee -a $W/summary.txt
done
rm -f /tmp/wf/dd.bin
free -g | head -2 | tee -a $W/summary.txt
for lv in 0 1; do
  for t in 1 2 4 8 16; do
    rm -f /tmp/wf/w.nii.gz
    echo "level $lv threads $t: $(FFDP_FIELD_GZ_LEVEL=$lv OMP_NUM_THREADS=$t NREP=2 $B/wb /tmp/wf/w.nii.gz 301 370 316 | tr '\n' ' ') $(ls -l /tmp/wf/w.nii.gz | awk '{print $5}')" | tee -a $W/summary.txt
  done
done
