#!/bin/sh
# Session 39, third run: the in-place blur's counters one to a memory line. new = main 8a4e8ce +
# relaxed counters every plane, 128 bytes apart (FFDP_AB_CSTRIDE 32) + the outputs' early
# write-out; s4 / s8: counters 16 / 32 bytes apart; old32: release/acquire every third plane (main's
# scheme) 128 bytes apart; old = main. (1) step_parts for each, alternating. (2) ffdp old / new on
# the 0.5 mm and medium SyN presets (the same files). (3) gpu_ops 100 / 200 / 256 of new. (4) 2
# GPU ranks.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s39c}; W=/tmp/s39c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s39c.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b39b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s39c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1 FFDP_TRACE_PHASES=1
mkdir -p /tmp/o
i=0
for run in "half old" "half new" "half new" "half old" "med old" "med new" "med new" "med old"; do
  set -- $run; c=$1; v=$2; i=$((i+1))
  eval args=\$$c
  bin=$B/new/ffdp; e=""
  case $v in old) bin=$B/old/ffdp;; wb0) e="FFDP_WRITEBACK=0";; nosync) e="FFDP_WRITEBACK=0 FFDP_FSYNC=0";; esac
  rm -f /tmp/o/${c}_*; sync
  env $e $bin register $args -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s.*total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'outputs:' $W/${i}_${c}_$v.log | grep trace | sed 's/.*outputs: //') $(grep -E 'SyN level 3 phases' $W/${i}_${c}_$v.log | sed 's/.*iterations)://') $(grep -E 'SyN level 3: [0-9]+ it' $W/${i}_${c}_$v.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
done
save
unset FFDP_TRACE FFDP_TRACE_PHASES
sp() { awk -F'|' '/blur in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,24), $4, $5}'; }
for v in old new s4 s8 old32 old new s4 s8 old32; do
  for g in "182 218 182" "256 256 256"; do
    $B/$v/ffdp_step_parts $g > $W/sp_${v}_$(echo $g | tr ' ' x).txt 2>&1
    echo "sp $v $g rc $?: $(sp < $W/sp_${v}_$(echo $g | tr ' ' x).txt)" | tee -a $W/summary.txt
  done
done
save
for n in 100 200; do
  GPU_OPS_REPS=1 timeout 120 $B/new/gpu_ops $n > $W/gpu_ops_new_$n.txt 2>&1
  echo "gpu_ops new $n rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_new_$n.txt | head -3)" | tee -a $W/summary.txt
done
ip() { grep -E "^\| blur vec3 (sigma=1.5|in place, ring (20|48|64)|in place, 768|out of place, 768)" $1 | cut -d'|' -f2,4,6,8 | tr '\n' ';'; }
timeout 150 $B/new/gpu_ops 256 > $W/gpu_ops_new_256.txt 2>&1
echo "gpu_ops new 256 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_new_256.txt | head -3) $(ip $W/gpu_ops_new_256.txt)" | tee -a $W/summary.txt
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/new/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
save
