#!/bin/sh
# Session 33, call 1: coarse Adam restriction from block tiles and the step marching chunks of
# planes (gpu_ops_n, ffdp_n, test_register_ranks_n) against d7d963e (ffdp_f, from s32c.tar.xz);
# the linear stage's row loop unrolled 2 and 4 (gpu_ops_u2, _u4); then s32c's fatbin A/B
# (ffdp_f vs ffdp_nc: blur_split.cu built with -compress-mode=none).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."  # archived here from .device/pack/s33a.sh, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s33a}; W=/tmp/s33a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s33a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b33a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s33a.tar.xz && tar -C $B -xJf $P/s32c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 150 $B/gpu_ops_n $N > $W/check_n_$N.txt 2>&1; echo "check n $N rc $?: $(tail -1 $W/check_n_$N.txt)"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_n_$N.txt | cut -c1-150
  grep -E "coarse" $W/check_n_$N.txt | cut -d'|' -f2,4,7 | cut -c1-150
done
save
rows='copy:|^\| coarse|linear stage'
n=0
for r in n u2 u4 n; do
  n=$((n+1))
  timeout 150 $B/gpu_ops_$r 256 > $W/256_${n}_$r.txt 2>&1; echo "== 256 $r rc $?"
  grep -E "$rows|FAIL" $W/256_${n}_$r.txt | cut -d'|' -f2,4,6,7 | cut -c1-130
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks_n > $W/ranks_np2_n.txt 2>&1
echo "ranks np2 n rc $?: $(grep -E 'checks' $W/ranks_np2_n.txt | tail -1)"
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
reg() {  # case, binary, run number
  eval args=\$$1
  rm -f /tmp/o/${1}_*
  $B/$2 register $args -o /tmp/o/${1}_ --device cuda --json $W/${1}_${3}_$2.json > $W/${1}_${3}_$2.log 2>&1
  echo "$1 $2 rc $?: $(tr '\r' '\n' < $W/${1}_${3}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${1}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${1}_${3}_$2.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$')"
}
n=0; for v in ffdp_f ffdp_n ffdp_n ffdp_f ffdp_f ffdp_n; do n=$((n+1)); reg lean $v $n; done; save
n=0; for v in ffdp_f ffdp_n; do n=$((n+1)); reg med $v $n; done; save
# the fatbin A/B (s32c): registrations alternating, blur_split.cu's module compressed (ffdp_f) or not (ffdp_nc)
for c in small med; do
  n=10; for v in ffdp_f ffdp_nc ffdp_nc ffdp_f ffdp_f ffdp_nc; do n=$((n+1)); reg $c $v $n; done; save
done
