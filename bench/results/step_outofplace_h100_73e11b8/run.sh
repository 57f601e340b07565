#!/bin/sh
# Session 26, call 1: the deformable step smooths out of place through a whole-field ring (one
# process), with the one-pass kernel's new largest-norm epilogue. gpu_ops 256 (blur rows), the
# three SyN presets new vs old path (FFDP_STEP_BLUR=inplace FFDP_RING_MB=32: files must be
# identical), plans vs measured peaks, 2 GPU ranks. carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s26a}; W=/tmp/s26a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=8
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
$B/gpu_ops 256 > $W/gpu_ops_256.txt 2>&1; echo "gpu_ops 256 rc $?"
grep -E "copy:|^\| (blur vec3|largest norm|adam step \+ compose \()|agree|FAIL" $W/gpu_ops_256.txt | cut -c1-150
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
for c in med half small; do eval args=\$$c; $B/ffdp plan $args > $W/${c}_plan.txt 2>&1; grep -E "^  peak" $W/${c}_plan.txt; done
run() { # tag env...
  tag=$1; shift
  for c in med half small; do
    eval args=\$$c
    env "$@" $B/ffdp register $args -o /tmp/o_$tag/${c}_ --device cuda --json $W/${c}_$tag.json > $W/${c}_$tag.log 2>&1
    echo "$c $tag rc $?: $(tr '\r' '\n' < $W/${c}_$tag.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
  done
  save
}
mkdir -p /tmp/o_new1 /tmp/o_old1 /tmp/o_new2 /tmp/o_old2
run new1 FFDP_X=1
run old1 FFDP_STEP_BLUR=inplace FFDP_RING_MB=32
run new2 FFDP_X=1
run old2 FFDP_STEP_BLUR=inplace FFDP_RING_MB=32
for f in /tmp/o_new1/*; do b=$(basename $f); cmp -s $f /tmp/o_old1/$b && echo "same $b" || echo "DIFF $b"; done | tee $W/same.txt
python3 - $W <<'PY' || true
import json,sys,glob
for f in sorted(glob.glob(sys.argv[1]+'/*.json')):
    j=json.load(open(f)); print(f.split('/')[-1], 'reg %.3f s'%j['registration_seconds'], 'gpu peak %.1f MB'%j['gpu_peak_memory_mb'], 'ncc %.4f'%j['global_ncc'], [ '%s %.3f'%(s['kind'],s['seconds']) for s in j['stages']])
PY
$B/ffdp register $med -o /tmp/o_h/med_ --device cuda --state-resolution half --image-precision u16 --json $W/med_lean.json > $W/med_lean.log 2>&1
echo "med lean rc $?: $(tr '\r' '\n' < $W/med_lean.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+|peak GPU memory [0-9]+ MB' | tr '\n' ' ')"
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?"; grep -E "checks" $W/ranks_np2.txt | tail -2
