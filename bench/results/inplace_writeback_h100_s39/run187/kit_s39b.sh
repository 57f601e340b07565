#!/bin/sh
# Session 39, second run. new = main 8a4e8ce + relaxed block counters in the in-place blur (dense
# counters, every plane) + output files' write-out started every 32 MB (sync_file_range) before
# the fsync; old = main. (1) wb: one 423 MB field to ext4 /tmp and tmpfs, with write-out + fsync
# (default), FFDP_WRITEBACK=0 (main's behaviour), FFDP_FSYNC=0 FFDP_WRITEBACK=0 (no durability).
# (2) ffdp old / new / new WB=0 / new no fsync on the 0.5 mm and medium SyN presets, outputs'
# times, the same files expected. (3) step_parts old / new (in-place blur). (4) gpu_ops 100 / 200
# checks and 256 of new. (5) 2 GPU ranks.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s39b}; W=/tmp/s39b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s39b.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b39b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s39b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
mkdir -p /tmp/wf /dev/shm/wf
for rep in 1 2; do
  for mode in default wb0 nosync; do
    for dir in /tmp/wf /dev/shm/wf; do
      rm -f $dir/w.nii.gz; sync
      case $mode in default) e="";; wb0) e="FFDP_WRITEBACK=0";; nosync) e="FFDP_WRITEBACK=0 FFDP_FSYNC=0";; esac
      r=$(env $e NREP=1 $B/new/wb $dir/w.nii.gz 301 370 316 2>&1 | tr '\n' ' ')
      echo "wb $mode $dir: $r" | tee -a $W/summary.txt
    done
  done
done
rm -rf /tmp/wf /dev/shm/wf
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1
mkdir -p /tmp/o
i=0
for run in "half old" "half new" "half wb0" "half nosync" "half nosync" "half wb0" "half new" "half old" "med old" "med new" "med wb0" "med nosync" "med nosync" "med wb0" "med new" "med old"; do
  set -- $run; c=$1; v=$2; i=$((i+1))
  eval args=\$$c
  bin=$B/new/ffdp; e=""
  case $v in old) bin=$B/old/ffdp;; wb0) e="FFDP_WRITEBACK=0";; nosync) e="FFDP_WRITEBACK=0 FFDP_FSYNC=0";; esac
  rm -f /tmp/o/${c}_*; sync
  env $e $bin register $args -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s.*total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'outputs:' $W/${i}_${c}_$v.log | grep trace | sed 's/.*outputs: //') $(grep -E 'SyN level 3: [0-9]+ it' $W/${i}_${c}_$v.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
done
save
unset FFDP_TRACE
sp() { awk -F'|' '/blur in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,24), $4, $5}'; }
for v in old new old new; do
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
