#!/bin/sh
# Session 38, third run: does the pool warm-up only move the first stream-ordered allocation's
# cost from the first metric into the warm-up thread, which is the critical path of "loading"?
# ffdp_n traces the warm-up (context, memory pool); FFDP_WARM_POOL=0 leaves the pool out.
# host_api: the process's first cudaMalloc and cudaMallocAsync.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38c}; W=/tmp/s38c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38c.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38c; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for k in 1 2 3; do $B/host_api 2>&1 | head -4 | tail -3 | tee -a $W/summary.txt; done
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
export FFDP_TRACE=1
mkdir -p /tmp/o
i=0
for run in "small n" "small n0" "small n0" "small n" "small n" "small n0" "small n0" "small n" "med n" "med n0" "med n0" "med n"; do
  i=$((i+1)); set -- $run; c=$1; e=; [ $2 = n0 ] && e=0
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_WARM_POOL=$e $B/ffdp_n register $args -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$2.log | grep -oE 'started in [0-9.]+ s|registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s, total [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'device warm-up|linear level 1: [0-9]+ it' $W/${i}_${c}_$2.log | head -2 | sed 's/\[trace\] //; s/ iterations//' | tr '\n' ';')" | tee -a $W/summary.txt
done
