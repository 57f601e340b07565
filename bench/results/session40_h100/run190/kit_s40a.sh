#!/bin/sh
# Session 40, first run. (1) Session 39's landed mix (772cfc6's kernels and writers) = n0 below,
# its 2 GPU ranks with session 39's test binary. (2) n1 = 82f545b (row-wise folding count; small inputs load
# while the device starts) + the in-place blur's largest norm from shuffles; n0 = the same with
# FFDP_BLUR_IP_NORM=0 (82f545b's kernels). Presets 0.5 mm and medium n1/n0 alternating, n1's GPU
# fit checks after loading (--gpu-memory 0.1: refused; 0.5 on medium: savers added), step_parts
# and gpu_ops n1 / n0. (3) The disk's write speed. (4) The gigavoxel end to end of n1 (1008^3,
# deep schedule, .nii outputs, traces): last measured in session 17 (H200, 161b278).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s40a}; W=/tmp/s40a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s40a.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
rm -rf /tmp/b40 && mkdir -p /tmp/b40 && tar -C /tmp/b40 -xJf $P/s40v.tar.xz
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for run in "half n1" "half n0" "half n1" "med n1" "med n0" "med n1"; do
  set -- $run; c=$1; v=$2; i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 /tmp/b40/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_$v.log | grep -oE 'registration [0-9.]+ s.*total [0-9.]+ s\)|NCC fixed vs warped [0-9.]+|started in [0-9.]+ s' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'outputs:' $W/n${i}_${c}_$v.log | grep trace | sed 's/.*outputs: //') $(grep -E 'SyN level 3 phases' $W/n${i}_${c}_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
F=/tmp/b40/n1/ffdp
$F register $half -o /tmp/o/cap_ --device cuda --gpu-memory 0.1 > $W/cap01.log 2>&1
echo "half --gpu-memory 0.1 rc $?: $(tail -1 $W/cap01.log | cut -c1-220); files: $(ls /tmp/o/cap_* 2>/dev/null | wc -l)" | tee -a $W/summary.txt
$F register $med -o /tmp/o/cap_ --device cuda --gpu-memory 0.5 --json $W/cap05.json > $W/cap05.log 2>&1
echo "med --gpu-memory 0.5 rc $?: $(grep -o 'note: .*' $W/cap05.log | cut -c1-200) | $(grep -oE 'NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' $W/cap05.log | tr '\n' ' ')" | tee -a $W/summary.txt
save
sp() { awk -F'|' '/blur in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,24), $4, $5}'; }
for v in n1 n0 n1; do
  for g in "182 218 182" "256 256 256"; do
    /tmp/b40/$v/ffdp_step_parts $g > $W/sp_${v}_$(echo $g | tr ' ' x).txt 2>&1
    echo "sp $v $g rc $?: $(sp < $W/sp_${v}_$(echo $g | tr ' ' x).txt)" | tee -a $W/summary.txt
  done
done
for n in 100; do
  GPU_OPS_REPS=1 timeout 120 /tmp/b40/n1/gpu_ops $n > $W/gpu_ops_n1_$n.txt 2>&1
  echo "gpu_ops n1 $n rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_n1_$n.txt | head -3)" | tee -a $W/summary.txt
done
timeout 150 /tmp/b40/n1/gpu_ops 256 > $W/gpu_ops_n1_256.txt 2>&1
echo "gpu_ops n1 256 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_n1_256.txt | head -3) $(grep -E '^\| blur vec3 in place, ring 32' $W/gpu_ops_n1_256.txt | cut -d'|' -f2,4,6,8)" | tee -a $W/summary.txt
save
# 2 GPU ranks on one GPU with session 39's test binary (772cfc6 = n0's kernels)
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "${nccl:-/x/x}")
tar -C /tmp/b40 -xJf $P/s40r.tar.xz
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D /tmp/b40/new/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 (772cfc6) rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
save
mkdir -p /tmp/gv
df -h /tmp | tail -1 > $W/disk.txt
dd if=/dev/zero of=/tmp/gv/dd bs=64M count=64 conv=fsync 2>> $W/disk.txt; rm -f /tmp/gv/dd
save
# the pair and the registration of bench/gigavoxel/run.sh (SCHEDULE=deep), without its Dice steps
mkdir -p $W/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 90 /tmp/b40/bin/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" >> $W/gv/steps.txt
save
t=$(date +%s.%N); FFDP_TRACE=1 timeout 150 /tmp/b40/bin/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_ --json $W/gv/register.json > $W/gv/register.log 2>&1
echo "register rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" >> $W/gv/steps.txt
ls -la /tmp/gv >> $W/gv/steps.txt
save
