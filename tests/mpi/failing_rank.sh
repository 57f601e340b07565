#!/bin/sh
# A rank that fails (injected with FFDP_INJECT_FAILURE=RANK:ITERATION) must make every rank of
# `mpirun -np 3 ffdp register` exit non-zero within seconds, with one message naming that rank.
set -u
mpiexec=$1 ffdp=$2
fixed=$PWD/ranks_fixed.nii.gz moving=$PWD/ranks_moving.nii.gz # written by test_register_ranks (fixture)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 3 -x FFDP_INJECT_FAILURE=1:3 -x OMP_NUM_THREADS=1 \
  "$ffdp" register -f "$fixed" -m "$moving" -o "$out/r_" --no-moments \
  --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [20x10,1e-6,10] --shrink-factors 2x1 -q \
  > "$out/log" 2>&1
rc=$? took=$(( $(date +%s) - start ))
cat "$out/log"
[ $rc -ne 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
[ $rc -ne 124 ] || { echo "FAIL: the job hung (killed after 60 s)"; exit 1; }
grep -q "rank 1: injected failure" "$out/log" || { echo "FAIL: no message naming rank 1"; exit 1; }
[ $took -le 30 ] || { echo "FAIL: took $took s"; exit 1; }
ls "$out"/r_* > /dev/null 2>&1 && { echo "FAIL: outputs were written"; exit 1; }
echo "ok: exit $rc after $took s"
