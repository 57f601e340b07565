#!/bin/sh
# Session 33, call 3: HEAD 35161e0 as committed (gpu_ops_h, ffdp_h, test_register_ranks_h) measured
# as a whole, against the SyN loop with the loss read back while the step runs (ffdp_a,
# test_register_ranks_a); the registrations with FFDP_TRACE=1 (per-level iteration times).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."  # archived here from .device/pack/s33d.sh, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s33d}; W=/tmp/s33d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s33d.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b33d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s33c.tar.xz && tar -C $B -xJf $P/s33d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 150 $B/gpu_ops_h $N > $W/check_h_$N.txt 2>&1; echo "check h $N rc $?: $(tail -1 $W/check_h_$N.txt)"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_h_$N.txt | cut -c1-150
done
save
timeout 150 $B/gpu_ops_h 256 > $W/256_1_h.txt 2>&1; echo "== 256 h rc $?"
grep -E "copy:|^\| coarse|FAIL" $W/256_1_h.txt | cut -d'|' -f2,4,6,7 | cut -c1-130
save
for N in 48 96; do  # the kernels at the medium preset's coarse SyN levels' sizes (0.11 and 0.88 M voxels)
  timeout 100 $B/gpu_ops_h $N > $W/${N}_h.txt 2>&1; echo "== $N h rc $?"
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for r in h a; do
  timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
    -x FFDP_TEST_BRAINS=$D $B/test_register_ranks_$r > $W/ranks_np2_$r.txt 2>&1
  echo "ranks np2 $r rc $?: $(grep -E 'checks' $W/ranks_np2_$r.txt | tail -1)"
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8 FFDP_TRACE=1
mkdir -p /tmp/o
reg() {  # case, binary, run number
  eval args=\$$1
  rm -f /tmp/o/${1}_*
  t0=$(date +%s.%N)
  $B/$2 register $args -o /tmp/o/${1}_ --device cuda --json $W/${1}_${3}_$2.json > $W/${1}_${3}_$2.log 2>&1
  rc=$?
  echo "$(date +%s.%N) $t0" | awk '{printf "%.2f\n", $1 - $2}' > $W/${1}_${3}_$2.wall
  echo "$1 $2 rc $rc: $(tr '\r' '\n' < $W/${1}_${3}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${1}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${1}_${3}_$2.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$') wall $(cat $W/${1}_${3}_$2.wall 2>/dev/null | tail -1)"
  grep -E "iterations .* ms each" $W/${1}_${3}_$2.log | sed 's/^/   /'
}
for c in small med lean; do
  n=0; for v in ffdp_h ffdp_a ffdp_a ffdp_h ffdp_h ffdp_a; do n=$((n+1)); reg $c $v $n; done; save
done
n=0; for v in ffdp_h ffdp_a; do n=$((n+1)); reg half $v $n; done; save
