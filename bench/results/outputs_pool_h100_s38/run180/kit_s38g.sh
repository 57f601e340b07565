#!/bin/sh
# Session 38, run 7: one process writes the transforms (affine, warp, inverse warp) in a thread of
# its own while folding and Warped are computed (ffdp_n), against one after the other
# (FFDP_OUTPUTS_OVERLAP=0, as b0f4f77 and as ranks do), alternating, on the small, medium and
# 0.5 mm SyN presets; the 0.5 mm also with --field-compression 1. Outputs' time, totals, the
# same file bytes.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38g}; W=/tmp/s38g_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38g.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38g; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38g.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1
mkdir -p /tmp/o
i=0
for run in "small ov" "small seq" "small seq" "small ov" "med ov" "med seq" "med seq" "med ov" "half ov" "half seq" "half seq" "half ov" "half ov1" "half seq1"; do
  i=$((i+1)); set -- $run; c=$1; e=; x=
  case $2 in seq*) e=0;; esac
  case $2 in *1) x="--field-compression 1";; esac
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_OUTPUTS_OVERLAP=$e $B/ffdp_n register $args $x -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s, total [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') | $(grep -E 'outputs: folding' $W/${i}_${c}_$2.log | sed 's/\[trace\] outputs: //') | files $(cat /tmp/o/${c}_* | md5sum | cut -c1-12)" | tee -a $W/summary.txt
done
