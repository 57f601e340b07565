#!/bin/sh
# On the GPU machine: the checks that made LNCC's z running sums the default for box windows
# k = 7 and 9 (session 14, bench/gpu/NOTES.md run 91; FFDP_LNCC_RS=0 keeps the rings): the
# kernel rows against the CPU at 256^3 and 97^3, then medium greedy CC[9] with the running sums
# on 1 process and on 2 GPU ranks (they must write the same bytes: the fixed-point sums do not
# depend on where a rank's slab starts). Run it again after any change to src/ops/lncc.cu.
#   carry: .device/deps .device/data .device/bin  (BIN holds gpu_ops and ffdp built for sm_90)
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-lncc_rs_out} BIN=${BIN:-$PWD/.device/bin}
mkdir -p "$OUT"
data=$PWD/.device/data
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=8
for n in 256 97; do
  "$BIN/gpu_ops" $n > "$OUT/gpu_ops_$n.txt" 2>&1
  echo "gpu_ops $n: rc $?"; grep -E "copy:|lncc|agree|FAIL" "$OUT/gpu_ops_$n.txt"
done
c9="--metric CC[9] --convergence [200x100x50,1e-6,10]"
export FFDP_LNCC_RS=1
for np in 1 2; do
  launch=""
  [ $np -gt 1 ] && launch="mpirun --allow-run-as-root --oversubscribe -np $np -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS -x FFDP_LNCC_RS"
  timeout 200 $launch "$BIN/ffdp" register -f "$data/MNI152_T1_1mm_brain.nii.gz" -m "$data/t1_brain.nii.gz" \
    --transform Rigid $c9 --transform Affine $c9 --transform "Greedy[0.5,1.5,1.5]" $c9 --shrink-factors 4x2x1 \
    --device cuda -o /tmp/rs${np}_ --json "$OUT/medium_cc9_rs_np$np.json" > "$OUT/medium_cc9_rs_np$np.log" 2>&1
  echo "== medium greedy CC[9] with running sums, $np rank(s): rc $?"
  tr '\r' '\n' < "$OUT/medium_cc9_rs_np$np.log" | grep -E "stage 3 |registration|NCC|error" | tail -3
done
same=1
for f in /tmp/rs1_*; do cmp -s "$f" "$(echo "$f" | sed 's|/tmp/rs1_|/tmp/rs2_|')" || same=0; done
echo "1 vs 2 ranks with the running sums: $([ $same = 1 ] && echo "every output byte-identical" || echo "OUTPUTS DIFFER")"
