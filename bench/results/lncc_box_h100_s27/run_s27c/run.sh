#!/bin/sh
# Session 27, call 3: lean box LNCC v3 (32-bit offsets from the block's first plane, loads straight into
# the ring, one-instruction reciprocal, no branches on full rounds): kernel table at 256^3,
# presets with each kernel, 2 GPU ranks, SASS and the ncu source pages of the k = 5 kernels.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s27c}; W=/tmp/s27c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27c.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b27b; mkdir -p $B && tar -C $B -xJf $P/s27c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
timeout 150 $B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (lncc|mse fwd)|agree|FAIL" $W/gpu_ops_256.txt | cut -c1-130
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export OMP_NUM_THREADS=8
for k in lean march; do
  for c in med half small; do
    eval args=\$$c
    FFDP_LNCC_KERNEL=$k $B/ffdp register $args -o /tmp/o/${c}_${k}_ --device cuda --json $W/${c}_$k.json > $W/${c}_$k.log 2>&1
    echo "$c $k rc $?: $(tr '\r' '\n' < $W/${c}_$k.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
  done
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
cuobjdump -sass $B/gpu_ops 2>/dev/null | awk '/Function : /{p=/lncc_box_kernel/} p' > $W/sass_lncc_box.txt; xz -9 $W/sass_lncc_box.txt
GPU_OPS_REPS=1 timeout 200 ncu --kernel-name-base mangled --kernel-name regex:lncc_box_kernelILi2ELi16ELi3E --launch-count 1 \
  --section SourceCounters --section InstructionStats --page source --print-source sass --csv $B/gpu_ops 256 > $W/ncu_src_lncc_box_k5.csv 2>&1
echo "ncu rc $?"; xz -9 $W/ncu_src_lncc_box_k5.csv
GPU_OPS_REPS=1 timeout 200 ncu --kernel-name-base mangled --kernel-name regex:lncc_box_kernelILi2ELi16ELi5E --launch-count 1 \
  --section SourceCounters --section InstructionStats --page source --print-source sass --csv $B/gpu_ops 256 > $W/ncu_src_lncc_box_k5_ng5.csv 2>&1
echo "ncu rc $?"; xz -9 $W/ncu_src_lncc_box_k5_ng5.csv; ls -la $W
