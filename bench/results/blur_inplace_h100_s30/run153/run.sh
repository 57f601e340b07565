#!/bin/sh
# Session 30, call 1 (s30a folded in): the one-pass blur in place (cooperative grid, neighbour
# counters, z-zones in the ring) — gpu_ops of the working tree (new) against a71b796's (old):
# checks at 100^3 and 200^3, the tables at 256^3; the presets with ffdp old and new alternating
# (times, NCC, output checksums: the bits must not move); 2 GPU ranks with the new binaries.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s30b}; W=/tmp/s30b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s30b.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b30b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s30b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  GPU_OPS_REPS=1 timeout 90 $B/gpu_ops $N > $W/gpu_ops_$N.txt 2>&1; echo "gpu_ops $N rc $?"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/gpu_ops_$N.txt | cut -c1-140; grep -E "agree|FAIL" $W/gpu_ops_$N.txt | cut -c1-120
  grep -E "in place" $W/gpu_ops_$N.txt | cut -d'|' -f2,7 | cut -c1-140
done
save
rows='copy:|^\| (blur vec3 (sigma=1.5 |\+ largest norm \(|in place)|lncc k=5 box fwd\+bwd \||mi 32 mattes \(|mse fwd|sample fwd \(|sample bwd \((du only|du, dA)\) |sample bwd, linear|compose fwd \(|adam step \+ compose \()|agree|FAIL'
for v in gpu_ops gpu_ops_old; do
  timeout 90 $B/$v 256 > $W/${v}_256.txt 2>&1; echo "$v 256 rc $?"
  grep -E "$rows" $W/${v}_256.txt | cut -d'|' -f2,4,6,7 | cut -c1-150
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
lean="$med --state-resolution half --image-precision u16"
export OMP_NUM_THREADS=8
mkdir -p /tmp/o
for c in med half small lean; do
  eval args=\$$c
  for v in ffdp_old ffdp ffdp_old ffdp; do
    rm -f /tmp/o/${c}_*
    $B/$v register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_$v.json > $W/${c}_$v.log 2>&1
    echo "$c $v rc $?: $(tr '\r' '\n' < $W/${c}_$v.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ') $(cat /tmp/o/${c}_* 2>/dev/null | md5sum | cut -c1-12)"
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
save
