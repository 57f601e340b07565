#!/bin/sh
# Session 42, kit d: the in-place one-pass blur on 12-row tiles (f12 = 8d720eb built with
# -DFFDP_BLUR_IP_FYT=12: two barriers a plane as main; ptxas radius 5: the bands' instance 32 /
# 272 spilled bytes -> none, the resident one's 8 / 8 -> none) against main (m): step_parts
# alternating at five grids, presets (the same files), the gigavoxel greedy's phases with both.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s42d}; W=/tmp/s42d_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s42d.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b42d; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s42d.tar.xz
sp() { awk -F'|' '/in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,22), $4, $5}'; }
for r in 1 2; do
  for g in "182 218 182" "256 256 256" "301 370 316" "504 504 256" "1008 1008 128"; do
    for v in f12 m; do
      f=$W/sp_${v}_$(echo $g | tr ' ' x).txt
      timeout 60 $B/$v/ffdp_step_parts $g > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
      echo "sp $v $g rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
    done
  done
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half f12" "half m" "med f12" "med m"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 60 $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 60 $B/m/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" | tee -a $W/summary.txt
for v in f12 m; do
  t=$(date +%s.%N); FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/$v/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_${v}_ --json $W/gv/register_$v.json > $W/gv/register_$v.log 2>&1
  echo "register $v rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_${v}_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|greedy level [345] phases|peak GPU|NCC fixed" $W/gv/register_$v.log | tee -a $W/summary.txt
  rm -f /tmp/gv/r_${v}_Warped*
  save
done
echo "warps f12 vs m: $(cmp /tmp/gv/r_f12_1Warp.nii /tmp/gv/r_m_1Warp.nii > /dev/null 2>&1 && echo identical || echo DIFFER)" | tee -a $W/summary.txt
save
