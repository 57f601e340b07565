#!/bin/sh
# `mpirun -np 3 ffdp register` with each rank reading only its share of the images' planes (the
# default) must write the same files as with every rank reading the whole images, and as one
# process: every rank writes its own planes of every output (.nii positional writes, .nii.gz
# one gzip member per rank, .zarr chunk rows), so this checks the parallel writers end to end.
set -u
mpiexec=$1 ffdp=$2
fixed=$PWD/ranks_fixed.nii.gz moving=$PWD/ranks_moving.nii.gz # written by test_register_ranks (fixture)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # $1: output prefix, then extra options
  p=$1
  shift
  timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np 3 -x OMP_NUM_THREADS=1 \
    "$ffdp" register -f "$fixed" -m "$moving" -o "$out/$p" --output-format nii --json "$out/$p.json" \
    --transform Rigid[0.01] --metric MI[32] --convergence [20x10,1e-6,10] --shrink-factors 2x1 \
    --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [15x10,1e-6,10] --shrink-factors 2x1 -q "$@" \
    > "$out/$p.log" 2>&1 || { cat "$out/$p.log"; echo "FAIL: $p exited non-zero"; exit 1; }
}
run shards_
run whole_ --sharded-inputs 0
grep -q '"sharded_inputs":[[:space:]]*true' "$out/shards_.json" || { echo "FAIL: the run did not shard its inputs"; exit 1; }
grep -q '"sharded_inputs":[[:space:]]*false' "$out/whole_.json" || { echo "FAIL: --sharded-inputs 0 still sharded"; exit 1; }
for f in 1Warp.nii 0GenericAffine.txt Warped.nii; do
  cmp -s "$out/shards_$f" "$out/whole_$f" || { echo "FAIL: $f differs between sharded and whole inputs"; exit 1; }
done
"$ffdp" register -f "$fixed" -m "$moving" -o "$out/bad_" --sharded-inputs 2 > "$out/bad.log" 2>&1 && {
  echo "FAIL: --sharded-inputs 2 was accepted"; exit 1; }
grep -q "sharded-inputs must be 1 or 0" "$out/bad.log" || { cat "$out/bad.log"; echo "FAIL: no message for a bad value"; exit 1; }
# one process, the same registration: the same bytes
OMP_NUM_THREADS=1 timeout 120 "$ffdp" register -f "$fixed" -m "$moving" -o "$out/one_" --output-format nii \
  --transform Rigid[0.01] --metric MI[32] --convergence [20x10,1e-6,10] --shrink-factors 2x1 \
  --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [15x10,1e-6,10] --shrink-factors 2x1 -q \
  > "$out/one.log" 2>&1 || { cat "$out/one.log"; echo "FAIL: one process exited non-zero"; exit 1; }
for f in 1Warp.nii 0GenericAffine.txt Warped.nii; do
  cmp -s "$out/shards_$f" "$out/one_$f" || { echo "FAIL: $f differs between 3 ranks and one process"; exit 1; }
done
# SyN with winsorized, histogram-matched intensities (Warped reads the moving planes each rank's
# points reach again), compressed outputs and Warped as OME-Zarr: 4 ranks vs one process
syn() { # $1: output prefix, $2: ranks (0: no launcher)
  p=$1 np=$2
  set -- register -f "$fixed" -m "$moving" -o "[$out/$p,$out/${p}W.zarr]" -w [0.01,0.99] -u 1 \
    --transform Rigid[0.01] --metric MI[32] --convergence [10x5,1e-6,10] --shrink-factors 2x1 \
    --transform SyN[0.5,1.5,1.5] --metric CC[5] --convergence [10x5,1e-6,10] --shrink-factors 2x1 -q
  if [ "$np" = 0 ]; then OMP_NUM_THREADS=1 timeout 120 "$ffdp" "$@" > "$out/$p.log" 2>&1
  else timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" -x OMP_NUM_THREADS=1 "$ffdp" "$@" > "$out/$p.log" 2>&1
  fi || { cat "$out/$p.log"; echo "FAIL: SyN $p exited non-zero"; exit 1; }
}
syn syn1_ 0
syn syn4_ 4
for f in 1Warp.nii.gz 1InverseWarp.nii.gz; do
  gzip -dc "$out/syn1_$f" > "$out/a" && gzip -dc "$out/syn4_$f" > "$out/b" && cmp -s "$out/a" "$out/b" ||
    { echo "FAIL: $f differs between 4 ranks and one process"; exit 1; }
done
cmp -s "$out/syn1_0GenericAffine.txt" "$out/syn4_0GenericAffine.txt" || { echo "FAIL: SyN affine differs"; exit 1; }
diff -r "$out/syn1_W.zarr" "$out/syn4_W.zarr" > /dev/null || { echo "FAIL: Warped .zarr differs between 4 ranks and one process"; exit 1; }
ls -a "$out" | grep -q 'tmp-\|part' && { ls -a "$out"; echo "FAIL: temporary files left behind"; exit 1; }
# host memory: ranks on one host share it, so 2 ranks that each fit alone in 1.5x one rank's floor
# are refused together, before loading, with one line naming the ranks
"$ffdp" plan -f "$fixed" -m "$moving" --syn --gpus 2 --json "$out/plan2.json" > /dev/null ||
  { echo "FAIL: plan --gpus 2"; exit 1; }
floor=$(sed -n 's/.*"cpu_host_floor_mb":[[:space:]]*\([0-9.eE+-]*\).*/\1/p' "$out/plan2.json")
[ -n "$floor" ] || { cat "$out/plan2.json"; echo "FAIL: no cpu_host_floor_mb in the plan"; exit 1; }
avail=$(awk -v f="$floor" 'BEGIN { printf "%.6f", 1.5 * f }')
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 -x FFDP_TEST_MEM_AVAILABLE_MB="$avail" \
  "$ffdp" register -f "$fixed" -m "$moving" -o "$out/mem_" --syn --state-resolution full > "$out/mem.log" 2>&1 &&
  { cat "$out/mem.log"; echo "FAIL: 2 ranks over the host's memory were not refused"; exit 1; }
grep -q "of memory on this host (2 ranks" "$out/mem.log" || { cat "$out/mem.log"; echo "FAIL: no message naming the ranks"; exit 1; }
[ -e "$out/mem_Warped.nii.gz" ] && { echo "FAIL: a refused run wrote an output"; exit 1; }
# with no memory saver named the ranks agree on savers that fit instead, and say so once
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 -x FFDP_TEST_MEM_AVAILABLE_MB="$avail" \
  "$ffdp" register -f "$fixed" -m "$moving" -o "$out/lean_" --syn --json "$out/lean.json" > "$out/lean.log" 2>&1 ||
  { cat "$out/lean.log"; echo "FAIL: 2 ranks with memory savers"; exit 1; }
[ "$(grep -c 'note: as asked .* running with --state-resolution half' "$out/lean.log")" = 1 ] &&
  grep -q '"state_resolution":[[:space:]]*"half"' "$out/lean.json" || { cat "$out/lean.log"; echo "FAIL: savers not noted once"; exit 1; }
echo "ok: sharded and whole inputs on 3 ranks and one process wrote identical files; SyN on 4 ranks as one process; host memory checked for the host's ranks"
