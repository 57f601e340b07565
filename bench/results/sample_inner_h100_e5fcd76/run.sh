#!/bin/sh
# Session 26, call 3: the trilinear lookup's interior path (no per-tap predicates, immediate x
# steps from four row pointers): gpu_ops of 38a57ad (base), the change (new) and the change with
# the forward kernel bounded to 8 blocks of 128 (c); new also has the 16-bit codes four a thread; ncu instruction counts; the SyN presets
# with base and new ffdp (files must be identical); 2 GPU ranks.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s26c}; W=/tmp/s26c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26c.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for v in base new c; do
  $B/gpu_ops_$v 256 > $W/gpu_ops_${v}_256.txt 2>&1; echo "gpu_ops $v rc $?"
  grep -E "copy:|^\| (sample (fwd|bwd)|compose fwd|adam step \+ compose \(|encode|decode)|agree|FAIL" $W/gpu_ops_${v}_256.txt | grep -v "z-blocks\|not loaded" | cut -c1-120
  save
done
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$ncu" ]; then
  for v in base new; do
    GPU_OPS_REPS=1 timeout 120 $ncu --kernel-name-base mangled --kernel-name "regex:sample_fwd_kernelILi1EfLb1|sample_fwd_kernelILi3EfLb1|sample_bwd_kernelILi1ELb0EfLb1" \
      --launch-skip 0 --launch-count 12 --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
      --section InstructionStats $B/gpu_ops_$v 256 > $W/ncu_$v.txt 2>&1
    echo "ncu $v rc $?"; grep -E "^  void|Duration|Executed Instructions  |Registers Per|Achieved Occupancy|No Eligible" $W/ncu_$v.txt | sed 's/(<unnamed>::DevWarp.*//' | head -60
  done
  GPU_OPS_REPS=1 timeout 100 $ncu --kernel-name-base mangled --kernel-name "regex:sample_bwd_planes_kernelILi1" --launch-skip 0 --launch-count 6 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section InstructionStats \
    --section MemoryWorkloadAnalysis $B/gpu_ops_new 256 > $W/ncu_planes.txt 2>&1
  echo "ncu planes rc $?"; grep -E "^  void|Duration|Executed Instructions  |Registers Per|Achieved Occupancy|No Eligible" $W/ncu_planes.txt | sed 's/(<unnamed>::DevWarp.*//' | head -40
  save
fi
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
for v in base new; do
  mkdir -p /tmp/o_$v
  for c in med half small lean; do
    eval args=\$$c
    $B/ffdp_$v register $args -o /tmp/o_$v/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
  done
done
for f in /tmp/o_new/*; do b=$(basename $f); cmp -s $f /tmp/o_base/$b && echo "same $b" || echo "DIFF $b"; done | tee $W/same.txt
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
