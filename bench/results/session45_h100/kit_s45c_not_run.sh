#!/bin/sh
# Kit s45c (session 45, binaries of 189770f): the linear stages drop the pyramid's level copies
# (run 202 showed their measured peaks 5-15 MB higher with the copies held): the presets and
# the gigavoxel greedy once, their files and peaks against run 202.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s45c}; W=/tmp/s45c_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s45c.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b45c; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s45c.tar.xz
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
for c in half med; do
  eval args=\$$c
  FFDP_TRACE=1 timeout 60 $B/s/ffdp register $args -o /tmp/o/${c}_ --device cuda --json $W/$c.json > $W/$c.log 2>&1
  echo "$c rc $?: $(tr '\r' '\n' < $W/$c.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | peaks $(grep -oE '"gpu_peak_memory_mb":[^,]*' $W/$c.json | tr -d '\t' | cut -d: -f2 | tr '\n' ' ')" | tee -a $W/summary.txt
done
save
rm -rf /tmp/o
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/s/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/s/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_ --json $W/gv/r.json > $W/gv/r.log 2>&1
echo "register rc $?; affine $(md5sum < /tmp/gv/r_0GenericAffine.txt | cut -c1-12) warp $(head -c 2000000000 /tmp/gv/r_1Warp.nii | md5sum | cut -c1-12) | peaks $(grep -oE '"gpu_peak_memory_mb":[^,]*' $W/gv/r.json | tr -d '\t' | cut -d: -f2 | tr '\n' ' ')" | tee -a $W/summary.txt
grep -E "registration [0-9.]+ s|loaded in|normalized in place|stage 3 done|NCC fixed" $W/gv/r.log | cut -c1-200 | tee -a $W/summary.txt
