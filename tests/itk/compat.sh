#!/bin/sh
# ffdp's transform files read by ITK reproduce ffdp's images: a short SyN on the small pair,
# then ITK resamples forward (warp, affine) and inverse ([affine,1], inverse warp) and
# itk_compat compares with ffdp's Warped.nii.gz and `ffdp apply` output.
set -u
ffdp=$1 checker=$2
data=$(dirname "$0")/../../../shared/data/brain
[ -f "$data/MNI152_T1_2mm.nii.gz" ] || { echo "shared brains not found; skipping"; exit 77; }
F=$data/MNI152_T1_2mm.nii.gz M=$data/T1_head_2mm.nii.gz
mkdir -p compat
"$ffdp" register -f $F -m $M -o compat/c_ -q --threads 2 \
  --transform Affine --convergence [60x30,1e-6,10] \
  --transform "SyN[0.5,1.5,1.5]" --metric CC[5] --convergence [40x20,1e-6,10] --shrink-factors 4x2 || exit 1
"$ffdp" apply -i $F -r $M -t "[compat/c_0GenericAffine.txt,1]" -t compat/c_1InverseWarp.nii.gz -o compat/fim.nii.gz || exit 1
exec "$checker" $F $M compat/c_0GenericAffine.txt compat/c_1Warp.nii.gz compat/c_Warped.nii.gz \
  compat/c_1InverseWarp.nii.gz compat/fim.nii.gz
