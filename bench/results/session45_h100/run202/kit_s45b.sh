#!/bin/sh
# Kit s45b (session 45, binaries of dbfbbe7): (1) the 0.5 mm preset and the medium SyN with the
# level images taken on the device (default) against uploaded again (FFDP_KEEP_LEVEL=0): the same
# files expected; (2) the gigavoxel greedy (run 193's schedule) new (parallel read, levels taken)
# / old (FFDP_PARALLEL_READ=0 FFDP_KEEP_LEVEL=0 FFDP_LOAD_RANGE=0) / new, each printing loading, the in-place
# normalization (its range now found by the load), the level setups and the registration; the first two runs' affine and the first
# 2 GB of their warps compared.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s45b}; W=/tmp/s45b_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s45b.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b45b; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s45b.tar.xz
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half 1" "half 0" "med 1" "med 0"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_KEEP_LEVEL=$v FFDP_TRACE=1 timeout 60 $B/s/ffdp register $args -o /tmp/o/${c}_ --device cuda --json $W/n${i}_${c}_$v.json > $W/n${i}_${c}_$v.log 2>&1
  echo "$c keep_level=$v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level [0-9]: buffers|device buffers' $W/n${i}_${c}_$v.log | cut -c1-110 | tr '\n' ';')" | tee -a $W/summary.txt
done
save
rm -rf /tmp/o
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/s/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
i=0
for run in "new 1" "old 0" "new2 1"; do
  set -- $run; i=$((i+1))
  t=$(date +%s.%N); FFDP_PARALLEL_READ=$2 FFDP_KEEP_LEVEL=$2 FFDP_LOAD_RANGE=$2 FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/s/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/r${i}_$1.json > $W/gv/r${i}_$1.log 2>&1
  echo "register $i $1 rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12) warp $(head -c 2000000000 /tmp/gv/r_$1_1Warp.nii | md5sum | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|loaded in|normalized in place|moments:|greedy level [345]: (buffers|device)|greedy level [45].*iterations|level 5: download|stage 3 done|NCC fixed|peak GPU" $W/gv/r${i}_$1.log | cut -c1-200 | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
