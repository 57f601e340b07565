#!/bin/sh
# Session 44, kit b: staged copies (binaries of aaddeb2). (1) ffdp_transfer: driver vs staged vs page-locked
# copies at 300 MB, 4 GB, 12 GB, checked byte for byte; (2) 0.5 mm preset and medium pair, staged
# vs FFDP_STAGED_COPY=0 (the same files expected); (3) gigavoxel greedy (run 193's schedule):
# staged, driver (FFDP_STAGED_COPY=0: inputs page-locked as before), staged again.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s44b}; W=/tmp/s44b_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s44b.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b44; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s44b.tar.xz
timeout 90 $B/s/ffdp_transfer > $W/transfer.txt 2>&1; echo "transfer rc $?" | tee -a $W/summary.txt
cat $W/transfer.txt | tee -a $W/summary.txt
FFDP_STAGED_STREAM=0 timeout 40 $B/s/ffdp_transfer 12288 > $W/transfer_memcpy.txt 2>&1
echo "memcpy out of the ring rc $?: $(grep -E 'staged|check' $W/transfer_memcpy.txt | tr -s ' ' | tr '\n' ';')" | tee -a $W/summary.txt
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half 1" "half 0"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_STAGED_COPY=$v FFDP_TRACE=1 timeout 60 $B/s/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c staged=$v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN final: download|page-locked' $W/n${i}_${c}_$v.log | cut -c1-80 | tr '\n' ';')" | tee -a $W/summary.txt
done
save
rm -rf /tmp/o
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/s/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
i=0
for run in "staged 1" "driver 0"; do
  set -- $run; i=$((i+1))
  t=$(date +%s.%N); FFDP_STAGED_COPY=$2 FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/s/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/r${i}_$1.json > $W/gv/r${i}_$1.log 2>&1
  echo "register $i $1 rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12) warp $(head -c 2000000000 /tmp/gv/r_$1_1Warp.nii | md5sum | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|page-locked|loaded in|level image \(shrink 26|greedy level [45].*(phases|iterations)|level 5: download|pyramid: |stage 3 done|outputs:|NCC fixed|peak GPU" $W/gv/r${i}_$1.log | cut -c1-200 | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
