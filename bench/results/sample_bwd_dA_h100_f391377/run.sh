#!/bin/sh
# Session 26, call 2: sampler backward with the affine gradient (partials entry-major, 12-block
# reduction) and the linear stage's planes kernel (two rows at a time, FFDP_PLANES_ILP=2 row)
# against the kernels of 16098b8 (gpu_ops_base); ncu of the three kernels at 256^3.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s26b}; W=/tmp/s26b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26b.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for v in base new; do
  $B/gpu_ops_$v 256 > $W/gpu_ops_${v}_256.txt 2>&1; echo "gpu_ops $v rc $?"
  grep -E "copy:|^\| (sample (fwd|bwd)|mse fwd|compose fwd \()|agree|FAIL" $W/gpu_ops_${v}_256.txt | grep -v "16-bit\|z-blocks" | cut -c1-150
  save
done
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$ncu" ]; then
  GPU_OPS_REPS=1 timeout 200 $ncu --kernel-name-base mangled --kernel-name "regex:sample_bwd_planes_kernelILi1|sample_bwd_kernelILi1ELb1EfLb1|reduce12_kernel|sample_fwd_kernelILi1EfLb1" \
    --launch-skip 0 --launch-count 16 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section InstructionStats --section MemoryWorkloadAnalysis $B/gpu_ops_new 256 > $W/ncu_sample.txt 2>&1
  echo "ncu rc $?"; grep -E "^  [a-z_].*\(|Duration|Issued Ipc Active|Executed Instructions  |Registers Per|Achieved Occupancy|Memory Throughput|No Eligible" $W/ncu_sample.txt | head -120
fi
