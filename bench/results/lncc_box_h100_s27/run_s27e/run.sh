#!/bin/sh
# Session 27, call 5: does the lean box LNCC keep N ranks = one process? gpu_ops at 128^3 with
# the new slab-vs-whole-volume bit comparison (k = 5, 9; lean and march), and the CLI on one
# GPU with 1 and 2 ranks (small pair CC[9] and --syn, medium CC[5]) with each kernel, cmp'd.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s27e}; W=/tmp/s27e_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27e.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b27e; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27e.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
timeout 100 $B/gpu_ops 128 > $W/gpu_ops_128.txt 2>&1; echo "gpu_ops 128 rc $?"
grep -E "slab|agree|FAIL" $W/gpu_ops_128.txt | cut -c1-130
save
c9="--metric CC[9] --convergence [200x100x50,1e-6,10]"; cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
small9="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --transform Rigid[0.1] $c9 --transform Affine[0.1] $c9 --transform SyN[0.5,1.5,1.5] $c9 --shrink-factors 4x2x1"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun="mpirun --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_LNCC_KERNEL"
for k in lean march; do
  export FFDP_LNCC_KERNEL=$k
  for c in small9 small med; do
    eval args=\$$c
    OMP_NUM_THREADS=8 timeout 60 $B/ffdp register $args -o /tmp/o/${c}_${k}_np1_ --device cuda --json $W/${c}_${k}_np1.json > $W/${c}_${k}_np1.log 2>&1
    timeout 120 $mpirun -np 2 $B/ffdp register $args -o /tmp/o/${c}_${k}_np2_ --device cuda --json $W/${c}_${k}_np2.json > $W/${c}_${k}_np2.log 2>&1
    r=""; for f in /tmp/o/${c}_${k}_np1_*; do g=$(echo $f | sed 's/_np1_/_np2_/'); cmp -s $f $g && r="$r same" || r="$r DIFF:$(basename $f | sed 's/.*_np1_//')"; done
    echo "$c $k np1 vs np2:$r" | tee -a $W/cmp.txt
  done
  save
done
