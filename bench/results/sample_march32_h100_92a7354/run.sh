#!/bin/sh
# Session 28, call 9: 92a7354 (the sampler forward's z-march in 32-bit steps with stepped u and
# out pointers) against 36dc86c, alternating twice at 256^3; checks at 100^3 and 200^3; presets
# (once) and 2 GPU ranks with 92a7354.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s28i}; W=/tmp/s28i_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s28i.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b28i; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s28i.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_$N.txt | cut -c1-120; grep -E "agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-120
done
for rep in 1 2; do
  for v in gpu_ops_36dc86c gpu_ops; do
    timeout 100 $B/$v 256 > $W/ab_${v}_$rep.txt 2>&1
    echo "$v $rep: $(grep -E '^\| (sample fwd \(|sample fwd, image as 16|compose fwd \(|mse fwd|blur vec3 sigma=1.5 )' $W/ab_${v}_$rep.txt | cut -d'|' -f2,4,6 | tr '\n' ' ')"
    grep -E "agree|FAIL" $W/ab_${v}_$rep.txt
  done
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
for c in med half small lean; do
  eval args=\$$c
  $B/ffdp register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_1.json > $W/${c}_1.log 2>&1
  echo "$c rc $?: $(tr '\r' '\n' < $W/${c}_1.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
