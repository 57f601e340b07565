#!/bin/sh
# Session 26, call 8: lazy against eager kernel loading (CUDA_MODULE_LOADING) for the medium and
# small presets, bcee00f binaries (s26f): registration, device start and total seconds.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."  # archived here from .device/pack/, where it ran two levels below the root
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s26h}; W=/tmp/s26h_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s26h.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name "libnccl.so.2" 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=8
B=/tmp/b; mkdir -p $B && tar -C $B -xJf $P/s26f.tar.xz || exit 1
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
for rep in 1 2 3; do for mode in LAZY EAGER; do for c in med small; do
  eval args=\$$c
  CUDA_MODULE_LOADING=$mode $B/ffdp register $args -o /tmp/o/${c}_ --device cuda --json $W/${c}_${mode}_$rep.json > $W/${c}_${mode}_$rep.log 2>&1
done; done; done
python3 - $W <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/*.json')):
    j=json.load(open(f)); print(f.split('/')[-1], 'reg %.3f'%j['registration_seconds'], 'load %.3f'%j['load_seconds'], 'init %.3f'%j['device_init_seconds'], 'total %.3f'%j['total_seconds'], [ '%s %.3f'%(s['kind'],s['seconds']) for s in j['stages']])
PY
