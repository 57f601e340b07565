#!/bin/sh
# Session 42, kit b: (1) gpu_ops of p = 3bbbaff + blur_at.cu (the pyramid's smoothing at the
# resampled points only) at 100^3 and 256^3; (2) presets p vs n2 (main's kernels): the same files
# expected, level traces; (3) step_parts i12 vs n2 (s41e, the one-barrier in-place A/B) and n2 at
# 1008x1008x128 (the bands); (4) the gigavoxel greedy (run 193's) with p: phases, the level
# builds' parts, FFDP_PYRAMID_AT=0 against the default (the same affine and NCC expected), and
# FFDP_PIN=0.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s42b}; W=/tmp/s42b_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s42b.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b42; rm -rf $B && mkdir -p $B && for t in s41n s41i s42p; do tar -C $B -xJf $P/$t.tar.xz; done
for n in 100 256; do
  GPU_OPS_REPS=$([ $n = 100 ] && echo 1 || echo 3) timeout 120 $B/p/gpu_ops $n > $W/gpu_ops_p_$n.txt 2>&1
  echo "gpu_ops p $n rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_p_$n.txt | head -2) | $(grep -E 'blur_at|sigma 10.7' $W/gpu_ops_p_$n.txt | cut -c1-160 | tr '\n' ';')" | tee -a $W/summary.txt
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half p" "half n2" "med p" "med n2"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 60 $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
sp() { awk -F'|' '/in place|whole|out of place/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,22), $4, $5}'; }
for v in i12 n2 i12 n2; do
  for g in "182 218 182" "256 256 256"; do
    f=$W/sp_${v}_$(echo $g | tr ' ' x).txt
    timeout 60 $B/$v/ffdp_step_parts $g > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
    echo "sp $v $g rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
  done
done
f=$W/sp_n2_1008x1008x128.txt
timeout 60 $B/n2/ffdp_step_parts 1008 1008 128 > $f 2>&1
echo "sp n2 1008x1008x128 rc $?: $(tail -12 $f | sp)" | tee -a $W/summary.txt
save
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 60 $B/p/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" | tee -a $W/summary.txt
for run in "at 1 1" "full 0 1" "nopin 1 0"; do
  set -- $run
  t=$(date +%s.%N); FFDP_PYRAMID_AT=$2 FFDP_PIN=$3 FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/p/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/register_$1.json > $W/gv/register_$1.log 2>&1
  echo "register $1 rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  cp /tmp/gv/r_$1_0GenericAffine.txt $W/gv/ 2>/dev/null
  grep -E "registration [0-9.]+ s|greedy level [45].*(phases|iterations)|level build|page-locked|moments:|download|peak GPU|NCC fixed" $W/gv/register_$1.log | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
