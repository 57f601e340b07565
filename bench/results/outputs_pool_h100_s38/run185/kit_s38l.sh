#!/bin/sh
# Session 38, run 12: append patterns into a new 423 MB file on ext4 (/tmp) and tmpfs (wt.c).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s38l}; W=/tmp/s38l_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38l.tar . ; }
trap save EXIT
B=/tmp/b38l; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38l.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
mkdir -p /tmp/wt /dev/shm/wt
echo "ext4 /tmp:" | tee -a $W/summary.txt; $B/wt /tmp/wt 2>&1 | tee -a $W/summary.txt
echo "tmpfs /dev/shm:" | tee -a $W/summary.txt; $B/wt /dev/shm/wt 2>&1 | tee -a $W/summary.txt
rm -rf /dev/shm/wt
