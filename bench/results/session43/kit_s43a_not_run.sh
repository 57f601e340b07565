#!/bin/sh
# (Archived copy: it runs as .device/pack/s43a.sh beside s43a.tar.xz, the binaries of 160ff14
# (ffdp, ffdp_make_pair, ffdp_step_parts from a Release build, sm_90), with .device/deps and .device/data
# as bench/gpu/NOTES.md describes; OUT=$OUT sh .device/pack/s43a.sh, carry .device. Not run:
# no device was lent in session 43.)
# Session 43, kit a: the spare field (the deformable step's gradient smoothed out of place into a
# field of its own where the memory allows, on planes of >= 2^17 voxels). (1) step_parts at
# 1008x1008x128 and 256^3: the bits check (two steps in place vs into the spare field) and the
# whole step both ways; (2) a 768x768x96 pair, greedy with spare vs FFDP_SPARE_FIELD=0: the same
# output files expected; (3) 0.5 mm preset (no spare: planes 301x370): run 194's files expected;
# (4) gigavoxel greedy (run 193's schedule): default (spare + huge pages), FFDP_SPARE_FIELD=0,
# FFDP_HUGEPAGES=0, FFDP_PIN_FIELD=0 (the last level's host field pageable), default again: phases, level 5 per iteration, affine and NCC.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s43a}; W=/tmp/s43a_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s43a.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b43; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s43a.tar.xz
sp() { awk -F'|' '/in place|whole|out of place/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,30), $4, $5}'; }
for g in "1008 1008 128"; do
  f=$W/sp_$(echo $g | tr ' ' x).txt
  timeout 60 $B/s/ffdp_step_parts $g > $f 2>&1; rc=$?
  echo "sp $g rc $rc: $(grep check $f | cut -c1-140) | $(sp < $f)" | tee -a $W/summary.txt
done
save
mkdir -p /tmp/o /tmp/sm
timeout 40 $B/s/ffdp_make_pair --size 768x768x96 -o /tmp/sm/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/small_generate.log 2>&1
echo "small generate rc $?" | tee -a $W/summary.txt
mi="--metric MI[32] --convergence [100x50,1e-6,10] --shrink-factors 8x4"
sst="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [50x30x20,1e-6,10] --shrink-factors 4x2x1"
for v in spare none; do
  e=1; [ $v = none ] && e=0
  rm -f /tmp/o/sm_*; sync
  FFDP_SPARE_FIELD=$e FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 60 $B/s/ffdp register -f /tmp/sm/pair/fixed.nii -m /tmp/sm/pair/moving.nii $sst --device cuda --output-format nii -o /tmp/o/sm_ --json $W/small_$v.json > $W/small_$v.log 2>&1
  rc=$?; echo "  json: $(grep -oE '"(gpu_plan_peak_mb|gpu_budget_mb|gpu_peak_memory_mb)":[[:space:]]*[0-9.e+]+' $W/small_$v.json | tr '\n' ' ')" | tee -a $W/summary.txt
  echo "small $v rc $rc: $(tr '\r' '\n' < $W/small_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') files $(cat /tmp/o/sm_* | md5sum | cut -c1-12) | $(grep -E 'greedy level 3 phases' $W/small_$v.log | sed 's/.*iterations)://')" | tee -a $W/summary.txt
done
save
rm -rf /tmp/sm /tmp/o; save
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
timeout 40 $B/s/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $?" | tee -a $W/summary.txt
i=0
for run in "spare 1 1 1" "none 0 1 1" "pageable 1 1 0" "small 1 0 1"; do
  set -- $run; i=$((i+1))
  t=$(date +%s.%N); FFDP_SPARE_FIELD=$2 FFDP_HUGEPAGES=$3 FFDP_PIN_FIELD=$4 FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/s/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_$1_ --json $W/gv/r${i}_$1.json > $W/gv/r${i}_$1.log 2>&1
  echo "register $i $1 rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_$1_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
  grep -E "registration [0-9.]+ s|page-locked|pageable|loaded in|greedy level [45].*(phases|iterations)|level 5: download|pyramid: |NCC fixed|peak GPU" $W/gv/r${i}_$1.log | cut -c1-200 | tee -a $W/summary.txt
  echo "  json: $(grep -oE '"(gpu_plan_peak_mb|gpu_budget_mb|gpu_peak_memory_mb)":[[:space:]]*[0-9.e+]+' $W/gv/r${i}_$1.json | tr '\n' ' ')" | tee -a $W/summary.txt
  rm -f /tmp/gv/r_$1_*Warp* /tmp/gv/r_$1_Warped*
  save
done
