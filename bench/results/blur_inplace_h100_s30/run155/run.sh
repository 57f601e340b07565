#!/bin/sh
# Session 30, call 3: what the in-place one-pass blur loses against out of place (0.30 vs 0.20 ms
# at 256^3, run 154): counters published with release stores and polled with acquire loads
# (gpu_ops, the default) against relaxed ones (g_relaxed), no synchronisation at all (g_nosync:
# racy, timing only) and a release every third plane (g_pub3); a71b796's gpu_ops_old again (its
# blur + largest norm row ran 0.269 where the new binary's ran 0.330 in run 154); ncu of the
# in-place and out-of-place radius-5 kernels; the in-place rows at 192^3 (near the medium
# preset's finest level, whose SyN did not get faster in run 154); nsys of the medium preset,
# old and new ffdp (where the blur's time goes by level).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s30d}; W=/tmp/s30d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s30d.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b30d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s30d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
rows='copy:|^\| (blur vec3 (sigma=1.5 |\+ largest norm \(|in place, (ring|two))|mi 32 mattes \(|largest norm alone)|agree|FAIL'
n=0
for v in gpu_ops gpu_ops_old g_relaxed g_nosync g_pub3 gpu_ops; do
  n=$((n+1))
  timeout 90 $B/$v 256 > $W/${n}_$v.txt 2>&1; echo "== $v rc $?"
  grep -E "$rows" $W/${n}_$v.txt | cut -d'|' -f2,4,6,7 | sed -e 's/(vs out of place: bits)//' -e 's/ (FFDP_BLUR_INPLACE=ring; bits)//' | cut -c1-110
  save
done
for v in gpu_ops gpu_ops_old; do
  timeout 90 $B/$v 192 > $W/192_$v.txt 2>&1; echo "== 192 $v rc $?"
  grep -E "$rows" $W/192_$v.txt | cut -d'|' -f2,4,6,7 | sed -e 's/(vs out of place: bits)//' -e 's/ (FFDP_BLUR_INPLACE=ring; bits)//' | cut -c1-110
done
save
D=$PWD/.device/data
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
NSYS=$(command -v nsys || find /usr/local /opt -name nsys -type f 2>/dev/null | head -1)
echo "nsys: $NSYS"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
mkdir -p /tmp/o
for v in ffdp_old ffdp; do
  if [ -n "$NSYS" ]; then
    OMP_NUM_THREADS=8 timeout 120 $NSYS profile -o $W/nsys_$v --force-overwrite true --stats=false $B/$v register $med -o /tmp/o/m_ --device cuda > $W/nsys_$v.log 2>&1
    timeout 60 $NSYS stats --report cuda_gpu_kern_sum --format csv $W/nsys_$v.nsys-rep > $W/kern_$v.csv 2>/dev/null
    echo "$v: $(head -c 0 /dev/null)"; head -14 $W/kern_$v.csv | cut -d, -f1,2,3,4,9 | cut -c1-150
    rm -f $W/nsys_$v.nsys-rep $W/nsys_$v.sqlite
  fi
done
save
for k in 1 0; do
  GPU_OPS_REPS=3 timeout 150 ncu --kernel-name-base demangled --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section InstructionStats --section LaunchStats --section SchedulerStats \
    -k "regex:blur_xyz3<\(int\)5, \(bool\)0, \(int\)2, \(int\)16, \(int\)4, \(bool\)$k>" -c 1 $B/gpu_ops 256 > $W/ncu_ip$k.txt 2>&1
  echo "ncu ip=$k rc $?"; grep -E "Duration|Registers Per|Achieved Occupancy|Issued Ipc|Executed Instructions  |No Eligible|Memory Throughput|DRAM Throughput|L1/TEX Hit|L2 Hit|Grid Size|Stall" $W/ncu_ip$k.txt | head -16
  save
done
