#!/bin/sh
# Installs dependencies, builds, and registers the bundled small brain pair
# (T1_head_2mm -> MNI152_T1_2mm; moments, rigid, affine with MI, greedy with CC).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh
data=../shared/data/brain
mkdir -p out
./build/ffdp register -f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz -o out/small_ --json out/small.json
./build/ffdp info out/small_Warped.nii.gz
