#!/bin/sh
# Session 34, call 1: main 521a8a4 (ffdp_m) against branch s34-host-overlap (45756af, ffdp_o): greedy
# loop reads loss back async; SyN final second inversion overlaps the first download. FFDP_TRACE=1.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s34a}; W=/tmp/s34a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s34a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b34a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s34a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for r in m o; do
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
gsmall="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --greedy"
gmed="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
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
  grep -E "SyN final|level [0-9]: [0-9]+ iterations" $W/${1}_${3}_$2.log | sed "s/^/   /"
}
for c in gsmall gmed med small; do
  n=0; for v in ffdp_m ffdp_o ffdp_o ffdp_m; do n=$((n+1)); reg $c $v $n; done; save
done
n=0; for v in ffdp_m ffdp_o; do n=$((n+1)); reg half $v $n; done; save
# where the medium preset's output time goes: as is, fsync a no-op, outputs on /dev/shm, 16 threads
outs() {  # tag, then env assignments
  t=$1; shift
  for i in 1 2; do
    rm -f /tmp/o/med_* /dev/shm/med_*
    o=/tmp/o/med_; [ "$t" = shm ] && o=/dev/shm/med_
    env "$@" $B/ffdp_m register $med -o $o --device cuda > $W/outs_${t}_$i.log 2>&1
    echo "outs $t $i: $(grep -E '\[trace\] outputs' $W/outs_${t}_$i.log) | $(grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s' $W/outs_${t}_$i.log)"
  done
}
outs asis X=1
outs nofsync LD_PRELOAD=$P/nofsync.so
outs shm X=1
outs t16 OMP_NUM_THREADS=16
save
