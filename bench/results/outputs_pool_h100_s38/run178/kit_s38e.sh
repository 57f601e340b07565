#!/bin/sh
# Session 38, fifth run: the registration outputs with the displacement fields written as stored
# deflate blocks (FFDP_FIELD_GZ_LEVEL=0: valid .nii.gz, no compression) against level 1 (the
# default), alternating, on the medium SyN pair and the 0.5 mm SyN preset: the outputs' time
# (trace: folding, Warped, transforms), the files' sizes, the same registration bits.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38e}; W=/tmp/s38e_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38e.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38e; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38e.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1
mkdir -p /tmp/o
i=0
for run in "med 1" "med 0" "med 0" "med 1" "half 1" "half 0" "half 0" "half 1"; do
  i=$((i+1)); set -- $run; c=$1
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_FIELD_GZ_LEVEL=$2 $B/ffdp_n register $args -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$2.log 2>&1
  echo "$c level $2 rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s, total [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') | $(grep -E 'outputs: folding' $W/${i}_${c}_$2.log | sed 's/\[trace\] //') | $(ls -l /tmp/o/${c}_1Warp.nii.gz /tmp/o/${c}_1InverseWarp.nii.gz | awk '{printf "%s ", $5}') | $(cat /tmp/o/${c}_0GenericAffine.txt | md5sum | cut -c1-12)" | tee -a $W/summary.txt
done
df -h /tmp | tail -1 | tee -a $W/summary.txt
