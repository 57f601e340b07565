#!/bin/sh
# Session 28, call 4: the blur with its index work hoisted (y-blocked one pass at two blocks an
# SM; the in-place ring's xy and z kernels, FFDP_BLUR_XY=indexed A/B): checks at 100^3 and
# 200^3, the table at 256^3, presets A/B, 2 GPU ranks.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s28d}; W=/tmp/s28d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28d.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b28d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_$N.txt | cut -c1-120; grep -E "agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-120
done
timeout 150 $B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (blur vec3|mse fwd|sample fwd \()|agree|FAIL" $W/gpu_ops_256.txt | grep -v "check only" | cut -c1-130
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
for rep in 1 2; do
  for c in med half small lean; do
    for v in new old; do
      if [ $v = old ]; then export FFDP_BLUR_XY=indexed; else unset FFDP_BLUR_XY; fi
      eval args=\$$c
      mkdir -p /tmp/o_$v
      $B/ffdp register $args -o /tmp/o_$v/${c}_ --device cuda --json $W/${c}_${v}_$rep.json > $W/${c}_${v}_$rep.log 2>&1
      echo "$c $v $rep rc $?: $(tr '\r' '\n' < $W/${c}_${v}_$rep.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
    done
    unset FFDP_BLUR_XY
    for f in /tmp/o_new/${c}_*; do cmp -s $f /tmp/o_old/$(basename $f) || echo "  differs: $(basename $f)"; done
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
