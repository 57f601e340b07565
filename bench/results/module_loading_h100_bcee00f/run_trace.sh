#!/bin/sh
# Session 26, call 7: where the medium SyN preset's time goes (bcee00f binaries of s26f): a
# trace (FFDP_TRACE=1) and, where nsys exists, its CUDA API and kernel summaries.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s26g}; W=/tmp/s26g_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26g.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name "libnccl.so.2" 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=8
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26f.tar.xz || exit 1
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
mkdir -p /tmp/o
$B/ffdp register $med -o /tmp/o/med_ --device cuda --json $W/med_warm.json > $W/med_warm.log 2>&1
FFDP_TRACE=1 $B/ffdp register $med -o /tmp/o/med_ --device cuda --json $W/med_trace.json > $W/med_trace.log 2>&1
echo "trace rc $?"; grep -c trace $W/med_trace.log
save
nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: $nsys"
if [ -n "$nsys" ]; then
  timeout 150 $nsys profile -o $W/med --force-overwrite true --stats=false $B/ffdp register $med -o /tmp/o/med_ --device cuda > $W/nsys_run.log 2>&1
  echo "nsys rc $?"
  timeout 120 $nsys stats --report cuda_api_sum,cuda_gpu_kern_sum,cuda_gpu_mem_time_sum --format csv -o $W/med $W/med.nsys-rep > $W/nsys_stats.log 2>&1
  echo "stats rc $?"; rm -f $W/med.nsys-rep $W/med.sqlite; ls $W
  head -25 $W/med_cuda_api_sum.csv 2>/dev/null | cut -c1-160
  head -25 $W/med_cuda_gpu_kern_sum.csv 2>/dev/null | cut -c1-200
fi
