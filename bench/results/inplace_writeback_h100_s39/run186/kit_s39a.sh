#!/bin/sh
# Session 39, first run: the in-place blur's block counters. Variants of blur_split.cu (the rest of
# the build the same): old = FFDP_AB_SYNC=0 (release stores every 3rd plane, blocking acquire
# polls: main 8a4e8ce), nopeek = relaxed stores every plane, blocking relaxed polls, new = relaxed
# stores every plane + the neighbours' counters copied ahead (cp.async) each plane, ldg = new +
# the field's loads through the read-only path. (1) step_parts at 182x218x182 and 256^3 for each,
# alternating twice. (2) gpu_ops 100/200 (checks) and 256 of new, 256 of ldg. (3) ffdp old/new
# alternating on the medium and 0.5 mm SyN presets with phase times; outputs must be the same.
# (4) SASS of new's in-place kernel (spills).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s39a}; W=/tmp/s39a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s39a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b39a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s39a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
sp() { awk -F'|' '/blur in place|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,24), $4, $5}'; }
for round in 1 2; do
  for v in old nopeek new ldg; do
    for g in "182 218 182" "256 256 256"; do
      $B/$v/ffdp_step_parts $g > $W/sp_${v}_$(echo $g | tr ' ' x)_$round.txt 2>&1
      echo "sp $v $g rc $?: $(sp < $W/sp_${v}_$(echo $g | tr ' ' x)_$round.txt)" | tee -a $W/summary.txt
    done
  done
done
save
for n in 100 200; do
  GPU_OPS_REPS=1 timeout 120 $B/new/gpu_ops $n > $W/gpu_ops_new_$n.txt 2>&1
  echo "gpu_ops new $n rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_new_$n.txt | head -3)" | tee -a $W/summary.txt
done
save
ip() { grep -E "^\| blur vec3 (sigma=1.5|in place, ring (20|48|64)|in place, 768|out of place, 768)" $1 | cut -d'|' -f2,4,6,8 | tr '\n' ';'; }
for v in new ldg; do
  timeout 150 $B/$v/gpu_ops 256 > $W/gpu_ops_${v}_256.txt 2>&1
  echo "gpu_ops $v 256 rc $?: $(grep -E 'CHECK|all kernels|FAIL' $W/gpu_ops_${v}_256.txt | head -3) $(ip $W/gpu_ops_${v}_256.txt)" | tee -a $W/summary.txt
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1 FFDP_TRACE_PHASES=1
mkdir -p /tmp/o
for run in "med old" "med new" "half old" "half new" "med new" "med old" "half new" "half old"; do
  set -- $run; c=$1; v=$2
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  $B/$v/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$v.log 2>&1
  echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 3 phases' $W/${c}_$v.log | sed 's/.*iterations)://') $(grep -E 'SyN level 3: [0-9]+ it' $W/${c}_$v.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
done
save
unset FFDP_TRACE FFDP_TRACE_PHASES
if command -v cuobjdump > /dev/null || [ -x /usr/local/cuda/bin/cuobjdump ]; then
  CO=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
  $CO -sass $B/new/blur_split_ops.o > $W/blur_split_new.sass 2>&1
  awk '/Function : .*blur_xyz3ILi5ELb0ELi2ELi16ELi4ELi1ELi3E/{p=1} /Function :/ && !/ILi5ELb0ELi2ELi16ELi4ELi1ELi3E/{p=0} p' $W/blur_split_new.sass > $W/ip5.sass
  echo "sass ip5: $(wc -l < $W/ip5.sass) lines, LDL $(grep -c LDL $W/ip5.sass) STL $(grep -c STL $W/ip5.sass) BAR $(grep -c BAR $W/ip5.sass) LDGSTS $(grep -c LDGSTS $W/ip5.sass)" | tee -a $W/summary.txt
  xz -9 $W/blur_split_new.sass
fi
save
