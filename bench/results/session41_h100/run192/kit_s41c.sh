#!/bin/sh
# Session 41, third run. n2 = main + the deformable step smoothing the new warp out of place into
# the old warp's memory (no trade of the two fields; no extra memory), its blur out of place with
# one barrier a plane; b0 = run 191's b0 (579277b + the in-place wait fix). gpu_ops n2 (= the
# kernels of 027309f) at 100^3 and 256^3, step_parts n2/b0, presets n2/b0 (the same files
# expected), 2 GPU ranks with n2.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s41c}; W=/tmp/s41c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s41c.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b41; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s41v.tar.xz && tar -C $B -xJf $P/s41n.tar.xz
GPU_OPS_REPS=1 timeout 100 $B/n2/gpu_ops 100 > $W/gpu_ops_n1_100.txt 2>&1
echo "gpu_ops n2 100 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_n1_100.txt | head -3)" | tee -a $W/summary.txt
sp() { awk -F'|' '/blur|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,22), $4, $5}'; }
for v in n2 b0 n2 b0; do
  for g in "182 218 182" "256 256 256" "768 768 64"; do
    f=$W/sp_${v}_$(echo $g | tr ' ' x).txt
    $B/$v/ffdp_step_parts $g > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
    echo "sp $v $g rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
  done
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half"
gre="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
mkdir -p /tmp/o
i=0
for run in "half n2" "half b0" "half n2" "med n2" "med b0" "med n2" "lean n2" "lean b0" "gre n2" "gre b0"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s.*total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+|started in [0-9.]+ s' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E '(SyN|greedy) level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "${nccl:-/x/x}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/n2/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 n2 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
save
timeout 200 $B/n2/gpu_ops 256 > $W/gpu_ops_n1_256.txt 2>&1
echo "gpu_ops n2 256 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_n1_256.txt | head -3) $(grep -E '^\| blur' $W/gpu_ops_n1_256.txt | head -4 | cut -d'|' -f2,4,6 | tr '\n' ';')" | tee -a $W/summary.txt
save
