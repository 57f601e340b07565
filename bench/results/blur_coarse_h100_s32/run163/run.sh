#!/bin/sh
# Session 32, call 2: the final source (scalar blur by the y-blocked one pass, coarse Adam step
# from block tiles; gpu_ops_f, ffdp_f, test_register_ranks_f) against HEAD 55f5d0e (ffdp), and
# the scalar blur's 8-row tiles (gpu_ops_gD: FFDP_BLUR1_FYT=8). carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."  # archived here from .device/pack/s32b.sh, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s32b}; W=/tmp/s32b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s32b.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b32b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s32b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops_f $N > $W/check_f_$N.txt 2>&1; echo "check f $N rc $?: $(tail -1 $W/check_f_$N.txt)"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_f_$N.txt | cut -c1-140
done
save
rows='copy:|^\| blur scalar|^\| coarse adam|lncc k=5 box fwd \+ both grads, lean'
n=0
for r in f gD f; do
  n=$((n+1))
  timeout 150 $B/gpu_ops_$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E "$rows|FAIL" $W/256_${n}_$r.txt | cut -d'|' -f2,4,6,7 | cut -c1-110
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks_f > $W/ranks_np2_f.txt 2>&1
echo "ranks np2 f rc $?: $(grep -E 'checks' $W/ranks_np2_f.txt | tail -1)"
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
for c in med lean small; do
  eval args=\$$c
  n=0
  for v in ffdp ffdp_f ffdp_f ffdp; do
    n=$((n+1))
    [ $c = small ] && [ $n -gt 2 ] && continue
    rm -f /tmp/o/${c}_*
    $B/$v register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_${n}_$v.json > $W/${c}_${n}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_${n}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${c}_${n}_$v.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$')"
  done
  save
done
