#!/bin/sh
# Session 42, kit f (kit e again, three runs each, alternating): the gigavoxel greedy (main 26a8777's ffdp) with the C library's large
# allocations on transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1: madvise on the
# mmap'd chunks) against without, alternating: the host's part of the registration (page-locking
# the inputs, the levels' host copies, the field download) and the outputs.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s42f}; W=/tmp/s42f_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s42f.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
{ cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag; ldd --version | head -1; } > $W/host.txt 2>&1
cat $W/host.txt | tee -a $W/summary.txt
B=/tmp/b42e; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s42e.tar.xz
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 60 $B/m/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" | tee -a $W/summary.txt
for run in "b1 0" "t1 1" "b2 0" "t2 1" "b3 0" "t3 1"; do
  set -- $run
  if [ $2 = 1 ]; then export GLIBC_TUNABLES=glibc.malloc.hugetlb=1; else unset GLIBC_TUNABLES; fi
  t=$(date +%s.%N); FFDP_TRACE=1 timeout 90 $B/m/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/register_$1.json > $W/gv/register_$1.log 2>&1
  echo "register $1 rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|page-locked|moments:|level build \(shrink [24]|greedy level [45]: (device|download|[0-9]+ iter)|outputs:|loaded in" $W/gv/register_$1.log | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
unset GLIBC_TUNABLES
