#!/bin/sh
# Session 41, fifth run: the in-place one-pass blur with one barrier a plane on 12-row tiles
# (FFDP_BLUR_1BAR_IP=1 FFDP_BLUR_IP_FYT=12; ptxas: radius 5 8 bytes stored / 96 loaded) = i12,
# against n2 (main: two barriers in place, 16-row tiles). gpu_ops i12 at 100^3 (in place = out of
# place bits), step_parts alternating, presets (the same files expected).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s41e}; W=/tmp/s41e_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s41e.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b41; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s41n.tar.xz && tar -C $B -xJf $P/s41i.tar.xz
GPU_OPS_REPS=1 timeout 100 $B/i12/gpu_ops 100 > $W/gpu_ops_i12_100.txt 2>&1
echo "gpu_ops i12 100 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_i12_100.txt | head -3)" | tee -a $W/summary.txt
sp() { awk -F'|' '/in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,22), $4, $5}'; }
for v in i12 n2 i12 n2; do
  for g in "182 218 182" "256 256 256" "301 370 316"; do
    f=$W/sp_${v}_$(echo $g | tr ' ' x).txt
    $B/$v/ffdp_step_parts $g > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
    echo "sp $v $g rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
  done
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half i12" "half n2" "med i12" "med n2"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
