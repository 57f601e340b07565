#!/bin/sh
# On the GPU machine: N GPU ranks against one GPU process, with binaries built elsewhere for
# sm_90 (BIN holds ffdp and test_register_ranks). Ranks take the host's GPUs in turn; on a
# one-GPU machine they share it and halos go through host memory ("mpi-staged"); with a GPU
# per rank they go over NCCL. Results land in $OUT (or ./ranks_out).
#   carry: .device/deps .device/data .device/bin      env: NP="1 2 3" (rank counts)
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-ranks_out} BIN=${BIN:-$PWD/.device/bin}
mkdir -p "$OUT"
trap 'tar -C "$OUT" -cf "$OUT.tar" . && rm -rf "$OUT"' EXIT # one file back from the machine
data=$PWD/.device/data
nccl=$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
mpirun="mpirun --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
echo "nccl: ${nccl:-none}"
# 1. the agreement test: every stage on N ranks against one process, on the GPUs
for np in ${NP:-1 2 3}; do
  echo "== test_register_ranks, $np GPU ranks"
  timeout 300 $mpirun -np $np -x FFDP_TEST_DEVICE=cuda -x FFDP_TEST_BRAINS="$data" "$BIN/test_register_ranks" 2>&1 \
    | tee "$OUT/agree_np$np.txt" | grep -v "^\[" | tail -15
done
# 2. the CLI on the small and medium pairs, 1 process vs N ranks, timings in JSON
small="-f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz"
medium="-f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
[ -n "${SKIP_CLI:-}" ] && exit 0
for np in 1 ${NP_CLI:-2}; do
  for pair in small medium; do
    eval args=\$$pair
    launch=""; [ $np -gt 1 ] && launch="$mpirun -np $np"
    timeout 300 $launch "$BIN/ffdp" register $args --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" \
      $cc --shrink-factors 4x2x1 --device cuda -o /tmp/r${np}_${pair}_ --json "$OUT/cli_${pair}_np$np.json" \
      > "$OUT/cli_${pair}_np$np.log" 2>&1
    echo "== $pair SyN, $np rank(s): rc $?"; grep -E "stage|registration|ranks|NCC|error" "$OUT/cli_${pair}_np$np.log"
  done
done
# 3. NCCL asked for where ranks share a GPU: a clear error, every rank stops
if [ "$(nvidia-smi -L | wc -l)" -lt 2 ]; then
  timeout 60 $mpirun -np 2 -x FFDP_GPU_TRANSPORT=nccl "$BIN/ffdp" register $small --device cuda -o /tmp/nccl_ -q \
    > "$OUT/nccl_shared.log" 2>&1
  echo "== FFDP_GPU_TRANSPORT=nccl on a shared GPU: rc $? (want non-zero, not 124)"; cat "$OUT/nccl_shared.log" | head -5
fi
# 4. a failing GPU rank stops every rank
timeout 60 $mpirun -np 2 -x FFDP_INJECT_FAILURE=1:3 "$BIN/ffdp" register $small --device cuda --no-moments \
  --transform "Greedy[0.5,1.5,1.5]" --metric "CC[5]" --convergence "[20x10,1e-6,10]" --shrink-factors 2x1 -o /tmp/fail_ -q \
  > "$OUT/failing.log" 2>&1
echo "== injected failure on rank 1: rc $? (want non-zero, not 124)"; head -3 "$OUT/failing.log"
