#!/bin/sh
# Session 42, kit g: ffdp's own huge-page volumes (volumes of 64 MB and more mapped 2 MB aligned,
# MADV_HUGEPAGE) against FFDP_HUGEPAGES=0, the gigavoxel greedy once each.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s42g}; W=/tmp/s42g_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s42g.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b42g; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s42g.tar.xz
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/h/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
for run in "huge 1" "small 0"; do
  set -- $run
  FFDP_HUGEPAGES=$2 FFDP_TRACE=1 timeout 40 $B/h/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ > $W/gv/register_$1.log 2>&1
  echo "register $1 rc $?; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|page-locked|loaded in|level build \(shrink 2|level 5: download|NCC fixed" $W/gv/register_$1.log | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
