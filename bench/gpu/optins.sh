#!/bin/sh
# On the GPU machine: the same registrations with the opt-in kernel switches off and on, output
# files compared byte for byte and registration times side by side. A switch that is faster in
# gpu_ops's A/B rows becomes a default only if these files are identical too.
#   BIN=dir holding ffdp (built for sm_90, e.g. by bench/gpu/e2e.sh), OUT=results dir,
#   OPTINS="VAR=value ..." (default: every switch not yet measured), CASES="med half small",
#   DEVICE=cuda (cpu: a check of the script itself; the switches are CUDA-only).
#   carry: .device/deps .device/data [the BIN folder]
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-optins_out}
BIN=${BIN:-/tmp/ffdp-build}
# (FFDP_LNCC_TASKS=s3 regroups the loss's per-thread sums: its last bits may move a convergence
# test by an iteration, so its files may differ where the gradient's bits do not)
OPTINS=${OPTINS:-FFDP_BLUR_BANKS=padded FFDP_LNCC_TASKS=both}
CASES=${CASES:-med half}
data=$PWD/.device/data
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
[ -x "$BIN/ffdp" ] || { echo "no ffdp under BIN=$BIN"; exit 1; }
mkdir -p "$OUT/json"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz --transform Rigid $cc --transform Affine $cc"
med="$med --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $data/ch2better.nii.gz -m $data/T1_head_2mm.nii.gz --syn"
small="-f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz --syn"
echo "switches: $OPTINS"
for side in off on; do
  rm -rf /tmp/optins_$side && mkdir -p /tmp/optins_$side  # no files of an earlier run to compare
  for c in $CASES; do
    eval args=\$$c
    if [ $side = on ]; then
      env $OPTINS "$BIN/ffdp" register $args -o /tmp/optins_$side/${c}_ --device ${DEVICE:-cuda} \
        --json "$OUT/json/${c}_$side.json" > "$OUT/${c}_$side.log" 2>&1
    else
      "$BIN/ffdp" register $args -o /tmp/optins_$side/${c}_ --device ${DEVICE:-cuda} \
        --json "$OUT/json/${c}_$side.json" > "$OUT/${c}_$side.log" 2>&1
    fi
    echo "$c $side: rc $? $(grep -o 'registration [0-9.]* s' "$OUT/${c}_$side.log") $(grep -o 'NCC fixed vs warped [0-9.]*' "$OUT/${c}_$side.log")"
  done
done
for f in /tmp/optins_off/*; do
  cmp -s "$f" "/tmp/optins_on/$(basename "$f")" && echo "same   $(basename "$f")" || echo "DIFFER $(basename "$f")"
done
