#!/bin/sh
# Session 26, call 5: the composition's own forward entry point bounded to 8 blocks of 128
# (new) against d5b054a (base), gpu_ops twice each, alternating; SyN presets with both ffdp
# (files must be identical); 2 GPU ranks. carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s26e}; W=/tmp/s26e_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26e.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26e.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for r in 1 2; do for v in base new; do
  $B/gpu_ops_$v 256 > $W/gpu_ops_${v}_${r}_256.txt 2>&1; echo "gpu_ops $v $r rc $?"
  grep -E "copy:|^\| (sample fwd \(|sample bwd \(du only\) \||compose fwd|sample fwd, image as|adam step \+ compose \()|agree|FAIL" $W/gpu_ops_${v}_${r}_256.txt | cut -c1-110
  save
done; done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export OMP_NUM_THREADS=8
for v in base new; do
  mkdir -p /tmp/o_$v
  for c in med half small; do
    eval args=\$$c
    $B/ffdp_$v register $args -o /tmp/o_$v/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ')"
  done
done
for f in /tmp/o_new/*; do b=$(basename $f); cmp -s $f /tmp/o_base/$b && echo "same $b" || echo "DIFF $b"; done | tee $W/same.txt | sort | uniq -c -w4
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
