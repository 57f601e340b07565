#!/bin/sh
# Session 31, call 4: LNCC z windows in pairs (gpu_ops_z / ffdp_z / test_register_ranks_z:
# FFDP_LNCC_ZPAIR=1, an even plane's window and the next odd plane's share K - 1 planes, paired
# by absolute parity) against HEAD (gpu_ops / ffdp). Checks at 100^3 and 200^3 (z), 256^3
# alternating, presets alternating, 2 GPU ranks (z).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s31d}; W=/tmp/s31d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s31d.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b31d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s31d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100; do
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops_z $N > $W/check_z_$N.txt 2>&1; echo "gpu_ops_z $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_z_$N.txt | cut -c1-140; grep -E "agree|FAIL|slab vs whole" $W/check_z_$N.txt | cut -d'|' -f2,7 | cut -c1-120
done
save
rows='copy:|^\| lncc k=[3579] box (fwd\+bwd|fwd \+ both grads), lean'
n=0
for r in gpu_ops_z gpu_ops gpu_ops_z gpu_ops; do
  n=$((n+1))
  timeout 150 $B/$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E "$rows|agree|FAIL" $W/256_${n}_$r.txt | cut -d'|' -f2,4,6,7 | sed 's/lean kernel//' | cut -c1-100
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks_z > $W/ranks_np2_z.txt 2>&1
echo "ranks np2 z rc $?"; grep -E "checks" $W/ranks_np2_z.txt | tail -2
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
for c in med small; do
  eval args=\$$c
  for v in ffdp ffdp_z; do
    rm -f /tmp/o/${c}_*
    $B/$v register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${c}_$v.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$')"
  done
  save
done
save
