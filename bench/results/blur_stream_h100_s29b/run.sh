#!/bin/sh
# Session 29, call 2: gpu_ops of HEAD 6cc3c66 + the composition bound 10 (base) against the
# working tree (n10: blur_xyz3's x and y sums streamed — each staged value loaded once and
# added into the sums it belongs to, no spill at radius 5; the linear stage's per-thread sums
# in float; Adam + composition bounded to 10 blocks; n8: the same with 8 blocks), alternating;
# checks at 100^3 and 200^3 for n10; ncu of the linear stage's planes kernel.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s29b}; W=/tmp/s29b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s29b.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b29b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s29b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  for v in g_n10 g_n8; do
  GPU_OPS_REPS=1 timeout 100 $B/$v $N > $W/check${N}_$v.txt 2>&1; echo "$v $N rc $?: $(grep -E 'agree|FAIL' $W/check${N}_$v.txt | head -2)"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check${N}_$v.txt | cut -c1-120
  done
done
save
n=0
for rep in 1 2; do
for v in g_base g_n10 g_n8; do
  n=$((n+1))
  timeout 100 $B/$v 256 > $W/ab_${n}_$v.txt 2>&1
  echo "$v: $(grep -E '^\| (blur vec3 sigma=1.(5|2) \||blur vec3 \+ largest norm \(|blur vec3 one pass, y-blocked rows \(|sample bwd, linear|adam step \+ compose \(|compose fwd \(|mse fwd)' $W/ab_${n}_$v.txt | cut -d'|' -f2,4,6,7 | tr '\n' ' ')"
  grep -E "agree|FAIL|copy:" $W/ab_${n}_$v.txt | tr '\n' ' '; echo
  save
done
done
ncu --section SpeedOfLight --section Occupancy --section WarpStateStats --section InstructionStats --section ComputeWorkloadAnalysis --section LaunchStats \
  -k regex:planes_kernel -c 1 $B/g_n10 256 > $W/ncu_planes.txt 2>&1
echo "ncu rc $?"; grep -E "Duration|Registers|Achieved Occupancy|Issued Ipc|Executed Instructions  |No Eligible|Theoretical Occ" $W/ncu_planes.txt | head -20
