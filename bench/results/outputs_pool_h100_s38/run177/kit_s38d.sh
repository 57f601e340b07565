#!/bin/sh
# Session 38, fourth run: (1) the first cudaMallocAsync of a process from the device's default
# pool against a pool of its own (no maximum; 1 GB maximum), three processes each, alternating;
# (2) libdeflate's aggregate throughput on a 182x218x182 displacement-like field in 1 MiB
# members, levels 0 and 1, on 1-16 threads (what the .nii.gz field writer can reach here).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s38d}; W=/tmp/s38d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38d.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b38d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for k in 1 2 3; do
  $B/host_api 2>&1 | sed -n 2,3p | tee -a $W/summary.txt
  $B/host_api pool 0 2>&1 | tee -a $W/summary.txt
  $B/host_api pool 1024 2>&1 | tee -a $W/summary.txt
done
nproc | sed 's/^/nproc /' | tee -a $W/summary.txt
lscpu | grep -E "Model name|Thread|Core|Socket" | tee -a $W/summary.txt
$B/ldp 2>&1 | tee -a $W/summary.txt
