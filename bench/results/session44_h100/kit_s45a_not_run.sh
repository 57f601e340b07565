#!/bin/sh
# Kit s45a (prepared in session 44, binaries of 871de5f): the host-side parts before the registration
# at 1008^3: the NIfTI inputs read by every thread (default) against one thread
# (FFDP_PARALLEL_READ=0), and the in-place normalization (its range pass now vectorized; the
# trace line "inputs normalized in place" is new). Expect loading well under runs 199-201's
# 2.2-2.9 s and the normalization under ~0.45 s (the gap between "stage 3 done" and the
# registration time in run 201). Then ffdp_transfer at 12 GB for continuity with run 201.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s45a}; W=/tmp/s45a_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s45a.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b45; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s45a.tar.xz
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/s/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
i=0
for run in "parallel 1" "onethread 0" "parallel2 1"; do
  set -- $run; i=$((i+1))
  FFDP_PARALLEL_READ=$2 FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/s/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/r${i}_$1.json > $W/gv/r${i}_$1.log 2>&1
  echo "register $i $1 rc $?; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|loaded in|normalized in place|moments:|stage 3 done|level 5: download|NCC fixed" $W/gv/r${i}_$1.log | cut -c1-200 | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
timeout 40 $B/s/ffdp_transfer 12288 > $W/transfer.txt 2>&1; echo "transfer rc $?" | tee -a $W/summary.txt
grep -E "staged|check" $W/transfer.txt | tee -a $W/summary.txt
