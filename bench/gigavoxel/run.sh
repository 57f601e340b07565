#!/bin/sh
# On the GPU machine: a gigavoxel multimodal pair from ffdp_make_pair, registered at native
# resolution on NP GPUs (default 1; NP > 1: `mpirun -np NP`, one rank per GPU, NCCL halos when
# each rank has its own GPU) with MI rigid + affine, then greedy CC; labels carried through the
# result and compared with ffdp_dice. BIN holds ffdp, ffdp_make_pair and ffdp_dice (built for
# sm_90); SIZE (default 1008x1008x1008, 1.02 Gvox; the issue-6 target is 1536x1536x1536 on
# NP=2 H200); WORK a scratch directory with ~60 GB free per gigavoxel;
# TAR=1: $OUT comes back as one tar file; SCHEDULE=deep: linear stages at shrink 32/16/8 and a five-level greedy pyramid (16..1)
# instead of the --greedy preset (built for clinical voxel sizes); EXTRA: more `register` options
# (e.g. EXTRA="--image-exchange local").
#   carry: .device/deps .device/bin .device/data
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-gv_out} BIN=${BIN:-$PWD/.device/bin} SIZE=${SIZE:-1008x1008x1008} WORK=${WORK:-/tmp/gv}
mkdir -p "$OUT" "$WORK"
# TAR=1: leave one $OUT.tar instead of the folder (the GPU machine returns only a few files)
[ -n "${TAR:-}" ] && trap 'tar -C "$OUT" -cf "$OUT.tar" . && rm -rf "$OUT"' EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
NP=${NP:-1} launch=""
if [ "$NP" -gt 1 ]; then
  nccl=$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -1)
  export LD_LIBRARY_PATH=$(dirname "${nccl:-/x/x}"):$LD_LIBRARY_PATH NCCL_NVLS_ENABLE=0
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / NP ))}
  launch="mpirun --allow-run-as-root --oversubscribe -np $NP -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS"
  launch="$launch ${FFDP_TRACE:+-x FFDP_TRACE}"
fi
now() { date +%s.%N; }
step() { # name, command...
  name=$1; shift
  t=$(now); "$@" > "$OUT/$name.log" 2>&1; rc=$?
  awk -v n="$name" -v r=$rc -v a="$t" -v b="$(now)" 'BEGIN { printf "%-10s rc %d  %6.1f s\n", n, r, b - a }' | tee -a "$OUT/steps.txt"
  tail -3 "$OUT/$name.log"
  return $rc
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
df -h "$WORK" | tail -1
[ -f /usr/share/mricron/templates/ch2better.nii.gz ] || anat="--anatomy $PWD/.device/data/ch2better.nii.gz --labels $PWD/.device/data/aal.nii.gz"
step generate "$BIN/ffdp_make_pair" --size "$SIZE" -o "$WORK/pair" ${anat:-} || exit 1
stages="--greedy"
if [ "${SCHEDULE:-}" = deep ]; then
  mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
  stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5]
    --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
fi
step plan "$BIN/ffdp" plan -f "$WORK/pair/fixed.nii" -m "$WORK/pair/moving.nii" $stages --gpus "$NP" ${EXTRA:-} \
  --json "$OUT/plan.json"
step before "$BIN/ffdp_dice" "$WORK/pair/fixed_labels.nii" "$WORK/pair/moving_labels.nii" --json "$OUT/dice_before.json"
step register $launch "$BIN/ffdp" register -f "$WORK/pair/fixed.nii" -m "$WORK/pair/moving.nii" $stages --device cuda \
  --output-format nii -o "$WORK/r_" --json "$OUT/register.json" ${EXTRA:-} || exit 1
rm -f "$WORK/r_Warped.nii"
# the labels through the result on the same ranks: each reads only the warp and label planes its share reaches
step apply $launch "$BIN/ffdp" apply -i "$WORK/pair/moving_labels.nii" -r "$WORK/pair/fixed.nii" -o "$WORK/wl.nii" \
  -t "$WORK/r_1Warp.nii" -t "$WORK/r_0GenericAffine.txt" -n label -v 1
step after "$BIN/ffdp_dice" "$WORK/pair/fixed_labels.nii" "$WORK/wl.nii" --json "$OUT/dice_after.json"
