#!/bin/sh
# Session 27, call 4: (1) the sampler's coordinates with z last (B·[x y 0 1] hoisted, S·u as
# multiply-adds, z a double counter) against HEAD cb5085f's gpu_ops, alternating twice;
# (2) the lean box LNCC for k = 7 and 9 (raw ring in shared memory) against the march kernel;
# (3) presets, CC[9] on the small pair with both kernels and on 2 GPU ranks (cmp), 2 GPU ranks test.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s27d}; W=/tmp/s27d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27d.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b27d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for r in 1 2; do
  for v in base new; do
    bin=$B/gpu_ops; [ $v = base ] && bin=$B/base/gpu_ops
    timeout 150 $bin 256 > $W/gpu_ops_256_${v}_$r.txt 2>&1; echo "gpu_ops $v $r rc $?"
    grep -E "copy:|^\| (sample fwd \(|sample bwd \((du only|du, dA)\) |sample bwd, linear|compose fwd \(|adam step \+ compose \(|sample fwd, image)|agree|FAIL" $W/gpu_ops_256_${v}_$r.txt | cut -c1-110
    save
  done
done
grep -E "^\| lncc" $W/gpu_ops_256_new_2.txt | cut -c1-140
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
c9="--metric CC[9] --convergence [200x100x50,1e-6,10]"
small9="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --transform Rigid[0.1] $c9 --transform Affine[0.1] $c9 --transform SyN[0.5,1.5,1.5] $c9 --shrink-factors 4x2x1"
med9="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $c9 --transform Affine[0.1] $c9 --transform SyN[0.5,1.5,1.5] $c9 --shrink-factors 4x2x1"
export OMP_NUM_THREADS=8
for k in lean march; do
  for c in med half small small9 med9; do
    eval args=\$$c
    FFDP_LNCC_KERNEL=$k $B/ffdp register $args -o /tmp/o/${c}_${k}_ --device cuda --json $W/${c}_$k.json > $W/${c}_$k.log 2>&1
    echo "$c $k rc $?: $(tr '\r' '\n' < $W/${c}_$k.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun="mpirun --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4"
timeout 120 $mpirun -np 2 $B/ffdp register $small9 -o /tmp/o/small9_np2_ --device cuda --json $W/small9_np2.json > $W/small9_np2.log 2>&1
echo "small9 np2 rc $?: $(tr '\r' '\n' < $W/small9_np2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ')"
for f in /tmp/o/small9_lean_*; do g=$(echo $f | sed 's/small9_lean_/small9_np2_/'); cmp -s $f $g && echo "same $(basename $f)" || echo "DIFFERS $(basename $f)"; done | tee $W/small9_np2_cmp.txt
timeout 90 $mpirun -np 2 -x FFDP_TEST_DEVICE=cuda -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
