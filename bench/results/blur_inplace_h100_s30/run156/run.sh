#!/bin/sh
# Session 30, call 4: the in-place one-pass blur with counters published every third plane and
# polls that pause 64 ns when a neighbour is behind (gpu_ops, the default), against every second
# plane (g_pub2), every plane (g_pub1), no pause (g_nosleep) and the poll by the first warp before
# the second barrier (g_fold: no barrier of its own); small volumes keep the two
# passes (grids under one block an SM, chunks under 4R planes). a71b796's gpu_ops_old and ffdp_old
# alongside: checks at 100^3 and 200^3, 256^3 and 192^3 rows, the presets alternating (bits by
# checksum), 2 GPU ranks.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s30e}; W=/tmp/s30e_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s30e.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b30e; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s30e.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 90 $B/gpu_ops $N > $W/check_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check_$N.txt | cut -c1-140; grep -E "agree|FAIL" $W/check_$N.txt | cut -c1-120
done
save
rows='copy:|^\| (blur vec3 (sigma=1.5 |\+ largest norm \(|in place, (ring|two))|largest norm alone)|agree|FAIL'
n=0
for v in gpu_ops gpu_ops_old g_pub2 g_nosleep g_pub1 g_fold gpu_ops; do
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
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
for c in med half lean small; do
  eval args=\$$c
  reps="ffdp_old ffdp ffdp_old ffdp"; [ $c = lean -o $c = small ] && reps="ffdp_old ffdp"
  for v in $reps; do
    rm -f /tmp/o/${c}_*
    $B/$v register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* 2>/dev/null | md5sum | cut -c1-12) syn $(tr -d '\n\t ' < $W/${c}_$v.json | grep -oE '"kind":"syn","iterations":[0-9]+,"seconds":[0-9.]+' | grep -oE '[0-9.]+$')"
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
