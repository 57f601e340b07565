#!/bin/sh
# Session 41, fourth run: the gigavoxel end to end with main 445578d (one barrier a plane out of
# place; the step's warp smoothing out of place instead of the bands in place), as run 190
# (bench/gigavoxel/run.sh's deep schedule, .nii outputs, no Dice steps): 1008^3 generated pair.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s41d}; W=/tmp/s41d_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s41d.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b41; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s41g.tar.xz
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 90 $B/g/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" >> $W/gv/steps.txt
save
t=$(date +%s.%N); FFDP_TRACE=1 timeout 150 $B/g/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_ --json $W/gv/register.json > $W/gv/register.log 2>&1
echo "register rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" >> $W/gv/steps.txt
ls -la /tmp/gv >> $W/gv/steps.txt
grep -E "registration [0-9.]+ s|greedy level 5|peak GPU|NCC fixed" $W/gv/register.log | tail -6 | tee -a $W/gv/steps.txt
save
