#!/bin/sh
# Accuracy on the shared brain pairs through the CLI, thresholds asserted (bench/accuracy.md).
#   small:  T1_head_2mm -> MNI152_T1_2mm, --syn preset (MI rigid/affine, CC SyN)
#   small_half: the same with the Adam moments on the coarse grid (--state-resolution half)
#   small_lean: the same with coarse bf16 moments and the images as 16-bit codes
#   medium: t1_brain -> MNI152_T1_1mm_brain, CC throughout, SyN 200x100x50 at 4x2x1
# usage: pairs.sh FFDP small|small_half|small_lean|medium
ffdp=$1 which=$2
data=$(dirname "$0")/../../../shared/data/brain
[ -f "$data/MNI152_T1_2mm.nii.gz" ] || { echo "shared brains not found at $data; skipping"; exit 77; }
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
if [ "$which" = small ]; then
  set -- -f "$data/MNI152_T1_2mm.nii.gz" -m "$data/T1_head_2mm.nii.gz" --syn
  ncc_min=0.954 secs_max=120   # target 60 s on 2 threads; 2x margin for a loaded CI machine
elif [ "$which" = small_half ]; then  # the Adam moments on the coarse grid (--state-resolution half)
  set -- -f "$data/MNI152_T1_2mm.nii.gz" -m "$data/T1_head_2mm.nii.gz" --syn --state-resolution half
  ncc_min=0.970 secs_max=120   # measured 0.9738 (bench/accuracy.md); full state 0.9736
elif [ "$which" = small_lean ]; then  # the leanest state: coarse bf16 moments, images as 16-bit codes
  set -- -f "$data/MNI152_T1_2mm.nii.gz" -m "$data/T1_head_2mm.nii.gz" --syn --state-resolution half \
    --state-precision bf16 --image-precision u16
  ncc_min=0.970 secs_max=120   # bench/accuracy.md
else
  set -- -f "$data/MNI152_T1_1mm_brain.nii.gz" -m "$data/t1_brain.nii.gz" \
    --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc --shrink-factors 4x2x1
  ncc_min=0.957 secs_max=600   # target 300 s
fi
mkdir -p acc_out
"$ffdp" register "$@" -o "acc_out/${which}_" --threads 2 --json "acc_out/$which.json" || exit 1
num() { sed -n "s/.*\"$1\":[[:space:]]*\([-0-9.eE+]*\).*/\1/p" "acc_out/$which.json"; }
ncc=$(num global_ncc) fold=$(num folding_fraction) secs=$(num registration_seconds)
echo "$which: NCC $ncc (min $ncc_min), folding $fold (max 0.0005), registration $secs s (max $secs_max)"
awk -v n="$ncc" -v f="$fold" -v s="$secs" -v nm="$ncc_min" -v sm="$secs_max" \
  'BEGIN { exit !(n >= nm && f < 0.0005 && s < sm) }' || { echo "FAIL: $which below target"; exit 1; }
