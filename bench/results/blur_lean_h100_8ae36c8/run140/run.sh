#!/bin/sh
# Session 28, call 1: the y-blocked blur's tile shapes (FFDP_BLUR_ROWS) at 256^3 and 192^3 in
# gpu_ops, and ncu stall statistics of the default shape and of 16x2.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s28a}; W=/tmp/s28a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28a.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b28a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
timeout 150 $B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (blur|mse fwd)|agree|FAIL" $W/gpu_ops_256.txt | cut -c1-150
timeout 100 $B/gpu_ops 192 > $W/gpu_ops_192.txt 2>&1; echo "gpu_ops 192 rc $?"
grep -E "copy:|^\| (blur vec3 (sigma|y-blocked|\+ largest)|mse fwd)|agree|FAIL" $W/gpu_ops_192.txt | cut -c1-150
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for k in 16ELi4ELi4E 16ELi2ELi4E; do
  GPU_OPS_REPS=1 timeout 120 $ncu --kernel-name-base mangled --kernel-name "regex:blur_xyz3ILi5ELb0ELi$k" --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats \
    --section InstructionStats --section MemoryWorkloadAnalysis --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" $B/gpu_ops 256 > $W/ncu_$k.txt 2>&1
  echo "ncu $k rc $?"
  grep -E "Duration|Executed Instructions  |Registers Per|Achieved Occupancy|No Eligible|Eligible Warps|Issued Warp|Stall|Memory Throughput|L2 Hit|L1/TEX Hit|DRAM Throughput|Compute \(SM\)|issue_stalled" $W/ncu_$k.txt | head -60
done
