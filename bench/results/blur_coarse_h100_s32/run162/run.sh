#!/bin/sh
# Session 32, call 1: HEAD (55f5d0e: the committed pairs mix; ffdp, test_register_ranks) end to
# end; lncc_box.cu with the G ring in shared memory + z pairs everywhere (gA) and + G pairs (gB);
# scalar blur by the y-blocked one pass (every gpu_ops build); the coarse Adam step from block
# tiles (gC; ffdp_c, test_register_ranks_c also have the scalar blur: must give HEAD's bits).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."  # archived here from .device/pack/s32a.sh, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s32a}; W=/tmp/s32a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s32a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b32a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s32a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for r in g0 gB gC gA; do for N in 100 200; do
  [ $r = gA ] && [ $N = 200 ] && continue
  GPU_OPS_REPS=1 timeout 100 $B/gpu_ops_$r $N > $W/check_${r}_$N.txt 2>&1; echo "check $r $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_${r}_$N.txt | cut -c1-140; grep -E "FAIL|slab vs whole" $W/check_${r}_$N.txt | cut -d'|' -f2,7 | cut -c1-120
done; done
save
rows='copy:|^\| lncc k=[3579] box (fwd\+bwd|fwd \+ both grads), lean|^\| blur scalar|^\| coarse adam'
n=0
for r in g0 gA gB gC g0 gA gB gC; do
  n=$((n+1))
  timeout 150 $B/gpu_ops_$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E "$rows|FAIL" $W/256_${n}_$r.txt | cut -d'|' -f2,4,6,7 | sed 's/lean kernel//' | cut -c1-100
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for v in "" _c; do
  timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
    -x FFDP_TEST_BRAINS=$D $B/test_register_ranks$v > $W/ranks_np2$v.txt 2>&1
  echo "ranks np2 $v rc $?"; grep -E "checks" $W/ranks_np2$v.txt | tail -2
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
for c in med small half lean; do
  eval args=\$$c
  for v in ffdp ffdp_c ffdp_gB; do
    [ $c = half -o $c = lean ] && [ $v = ffdp_gB ] && continue
    rm -f /tmp/o/${c}_*
    $B/$v register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${c}_$v.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$')"
  done
  save
done
save
