#!/bin/sh
# Session 38, second run: where the first iteration of the first linear level spends its ~8 ms
# (ffdp_n: main + the first two evaluations of each linear level traced step by step, and the
# stream-ordered pool's first memory mapped by the warm-up thread; FFDP_WARM_POOL=0 leaves it
# out) against ffdp_b (main a8f5f97), alternating, on the small SyN and medium CC presets.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38b}; W=/tmp/s38b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38b.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
export FFDP_TRACE=1
mkdir -p /tmp/o
i=0
for run in "small b" "small n" "small n0" "small b" "small n" "small n0" "med b" "med n" "med n0" "med n" "small n" "small b"; do
  i=$((i+1)); set -- $run; c=$1; bin=ffdp_$2; e=; [ $2 = n0 ] && bin=ffdp_n e=0
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_WARM_POOL=$e $B/$bin register $args -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'linear level 1: [0-9]+ it|linear evaluation|moments:' $W/${i}_${c}_$2.log | head -4 | sed 's/\[trace\] //; s/ iterations//' | tr '\n' ';')" | tee -a $W/summary.txt
done
