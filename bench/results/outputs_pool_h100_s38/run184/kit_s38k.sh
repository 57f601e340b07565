#!/bin/sh
# Session 38, run 11: the stored field write (ffdp_warp_save_ants, 301x370x316, 423 MB, 16
# threads, a new file each time) into the disk's page cache (/tmp) against tmpfs (/dev/shm), and
# dd of 423 MB into each: is the plateau of runs 182-183 the file system's?
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s38k}; W=/tmp/s38k_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38k.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b38k; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38k.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
df -h /tmp /dev/shm | tee -a $W/summary.txt
mount | grep -E " / | /tmp | /dev/shm " | tee -a $W/summary.txt
mkdir -p /tmp/wf /dev/shm/wf
for run in tmp shm tmp shm tmp shm; do
  d=/tmp/wf; [ $run = shm ] && d=/dev/shm/wf
  rm -f $d/*
  echo "dd 423 MB to $d: $(dd if=/dev/zero of=$d/dd.bin bs=1M count=403 2>&1 | tail -1)" | tee -a $W/summary.txt
  rm -f $d/*
  echo "field to $d: $(FFDP_FIELD_GZ_LEVEL=0 OMP_NUM_THREADS=16 NREP=1 $B/wb $d/w.nii.gz 301 370 316 | tr '\n' ' ')" | tee -a $W/summary.txt
  rm -f $d/*
done
echo "field to /tmp, level 0, 1 thread: $(FFDP_FIELD_GZ_LEVEL=0 OMP_NUM_THREADS=1 NREP=1 $B/wb /dev/shm/wf/w.nii.gz 301 370 316 | tr '\n' ' ') (shm)" | tee -a $W/summary.txt
rm -rf /dev/shm/wf
