#!/bin/sh
# Session 37, first run: downloads of whole fields through page-locked staging (reg_cuda_download)
# against the driver's pageable path (FFDP_DOWNLOAD=pageable), alternating, on the medium SyN,
# 0.5 mm SyN and greedy medium presets: the traces' final/download lines and the same bits
# (f889715 = cb36bc0 + the staging).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s37a}; W=/tmp/s37a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s37a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b37a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s37a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
# gpu_ops of cb36bc0 (device_sms/device_attr in the launch paths: PTX unchanged) at 200^3 and 256^3
for n in 200; do
  timeout 100 $B/gpu_ops $n > $W/gpu_ops_$n.txt 2>&1
  echo "gpu_ops $n rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_$n.txt)" | tee -a $W/summary.txt
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
gmed="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
export FFDP_TRACE=1
mkdir -p /tmp/o
for run in "med staged" "med pageable" "half staged" "half pageable" "med pageable" "med staged" "half pageable" "half staged"; do
  set -- $run; c=$1; e=; [ $2 = pageable ] && e=pageable
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_DOWNLOAD=$e $B/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${c}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN final|level [0-9]+: download' $W/${c}_$2.log | sed 's/\[trace\] //' | tr '\n' ';')" | tee -a $W/summary.txt
  save
done
# Module loading: CUDA_MODULE_LOADING=EAGER loads every kernel when the warm-up thread creates the
# context (overlapping the image loading) instead of at each kernel's first launch in the stages
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
for run in "med lazy" "med eager" "small lazy" "small eager" "med eager" "med lazy" "small eager" "small lazy"; do
  set -- $run; c=$1; e=LAZY; [ $2 = eager ] && e=EAGER
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  CUDA_MODULE_LOADING=$e $B/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${c}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s, total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'linear level 1: |SyN level 1: [0-9]+ it|moments:' $W/${c}_$2.log | sed 's/\[trace\] //' | tr '\n' ';')" | tee -a $W/summary.txt
  save
done
