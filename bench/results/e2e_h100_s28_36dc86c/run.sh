#!/bin/sh
# Session 28, call 8: the final binaries of 36dc86c (one-pass blur with 32-bit plane counters and
# the second x item's offsets derived): checks at 100^3 and 200^3, the table at 256^3, presets
# (twice), 2 GPU ranks, and the blur rows against run 146's binary (i32) and f820cb7, alternating.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s28h}; W=/tmp/s28h_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28h.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b28h; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28h.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_$N.txt | cut -c1-120; grep -E "agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-120
done
timeout 150 $B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (blur vec3 (sigma|in place, ring (32|256)|\+ largest norm \(|y-blocked)|lncc k=(5|9) box (fwd\+bwd|fwd \+ both grads)(,|\s\|)|mi 32 mattes \(|mse fwd|sample fwd \(|sample bwd \((du only|du, dA)\) |sample bwd, linear|encode 16|decode 16|compose fwd \(|adam step \+ compose \()|agree|FAIL" $W/gpu_ops_256.txt | cut -c1-130
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
for rep in 1 2; do
  for c in med half small lean; do
    eval args=\$$c
    $B/ffdp register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_$rep.json > $W/${c}_$rep.log 2>&1
    echo "$c $rep rc $?: $(tr '\r' '\n' < $W/${c}_$rep.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
# the blur rows of 36dc86c against run 146's (without the derived x offsets) and f820cb7's
for rep in 1 2; do
  for v in gpu_ops_f820cb7 gpu_ops_i32 gpu_ops; do
    timeout 100 $B/$v 256 > $W/ab_${v}_$rep.txt 2>&1
    echo "$v $rep: $(grep -E '^\| (blur vec3 sigma=1.(5|2) |blur vec3 \+ largest norm \(|mse fwd)' $W/ab_${v}_$rep.txt | cut -d'|' -f2,4 | tr '\n' ' ')"
  done
done
save
