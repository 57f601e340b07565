#!/bin/sh
# Session 34, call 2: ffdp_n (main + phase clock FFDP_TRACE_PHASES, gzip made by the deflating
# threads) against ffdp_m (521a8a4): SyN/greedy phase traces; output writing m/n alternating
# (same bytes expected); wt_old/wt_new: one 87 MB field to .nii.gz at 8 and 16 threads.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s34b}; W=/tmp/s34b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s34b.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
B=/tmp/b34b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s34b.tar.xz || exit 1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; lscpu | grep -E "Model name|Thread|Core|Socket|MHz" ; } | tee $W/device.txt
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks_n > $W/ranks_np2_n.txt 2>&1
echo "ranks np2 n rc $?: $(grep -E 'checks' $W/ranks_np2_n.txt | tail -1)" | tee -a $W/summary.txt
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
gmed="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
export OMP_NUM_THREADS=16 FFDP_TRACE=1
mkdir -p /tmp/o
reg() {  # case, binary, run number
  eval args=\$$1
  rm -f /tmp/o/${1}_*
  t0=$(date +%s.%N)
  $B/$2 register $args -o /tmp/o/${1}_ --device cuda --json $W/${1}_${3}_$2.json > $W/${1}_${3}_$2.log 2>&1
  rc=$?
  echo "$(date +%s.%N) $t0" | awk '{printf "%.2f\n", $1 - $2}' > $W/${1}_${3}_$2.wall
  echo "$1 $2 $3 rc $rc: $(tr '\r' '\n' < $W/${1}_${3}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${1}_* 2>/dev/null | md5sum | cut -c1-12) wall $(cat $W/${1}_${3}_$2.wall)" | tee -a $W/summary.txt
  grep -E "\[trace\] outputs|phases|level [0-9]: [0-9]+ iterations" $W/${1}_${3}_$2.log | sed "s/^/   /" | tee -a $W/summary.txt
}
# phases (the events' own cost is in these runs only)
for c in med lean small gmed half; do FFDP_TRACE_PHASES=1 reg $c ffdp_n p; done; save
# output writing, m/n alternating, 16 threads
n=0; for v in ffdp_m ffdp_n ffdp_n ffdp_m ffdp_m ffdp_n; do n=$((n+1)); reg med $v $n; done; save
n=0; for v in ffdp_m ffdp_n; do n=$((n+1)); reg half $v $n; done; save
for t in 8 16; do for v in old new old new; do echo "wt_$v $t: $(OMP_NUM_THREADS=$t $B/wt_$v /tmp/o/wt_$v.nii.gz | tr '\n' ' ')" | tee -a $W/summary.txt; done; done
md5sum /tmp/o/wt_*.nii.gz | tee -a $W/summary.txt
save
