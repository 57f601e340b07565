#!/bin/sh
# Session 41, first run. The one-pass blur with one barrier a plane (staged and x-filtered rows
# double-buffered by plane parity; FFDP_BLUR_1BAR=1) = b1, against b0 = main (two barriers) with
# the in-place wait decided before the barrier (both builds have that). (1) b1 checked at 100^3
# (every kernel against the CPU, in place = out of place bits). (2) step_parts b0/b1 alternating
# at 182x218x182, 256^3 and 768x768x64 (bands). (3) The blur kernels' SASS (instruction mix).
# (4) Presets 0.5 mm and medium b1/b0 (files must match). (5) 2 GPU ranks with b1. (6) gpu_ops
# 256 of b1.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s41a}; W=/tmp/s41a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s41a.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b41; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s41v.tar.xz
GPU_OPS_REPS=1 timeout 100 $B/b1/gpu_ops 100 > $W/gpu_ops_b1_100.txt 2>&1
echo "gpu_ops b1 100 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_b1_100.txt | head -3)" | tee -a $W/summary.txt
sp() { awk -F'|' '/blur|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,22), $4, $5}'; }
for v in b0 b1 b0 b1; do
  for g in "182 218 182" "256 256 256" "768 768 64"; do
    f=$W/sp_${v}_$(echo $g | tr ' ' x).txt
    $B/$v/ffdp_step_parts $g > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
    echo "sp $v $g rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
  done
done
save
CUO=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null)
for v in b0 b1; do
  $CUO -sass $B/$v/blur_split.cu.o 2>/dev/null | awk '/Function : .*blur_xyz3ILi5ELb0ELi2ELi16ELi4ELi[01]ELi3E/ {p=1} /Function : / && !/blur_xyz3ILi5ELb0ELi2ELi16ELi4ELi[01]ELi3E/ {p=0} p' | xz > $W/sass_$v.txt.xz
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half b1" "half b0" "half b1" "med b1" "med b0" "med b1"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s.*total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "${nccl:-/x/x}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/b1/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 b1 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
save
timeout 150 $B/b1/gpu_ops 256 > $W/gpu_ops_b1_256.txt 2>&1
echo "gpu_ops b1 256 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_b1_256.txt | head -3) $(grep -E '^\| blur' $W/gpu_ops_b1_256.txt | head -4 | cut -d'|' -f2,4,6 | tr '\n' ';')" | tee -a $W/summary.txt
save
