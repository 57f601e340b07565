#!/bin/sh
# `mpirun -np 3 ffdp register` with each rank reading only its share of the images' planes (the
# default) must write the same files as with every rank reading the whole images.
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
echo "ok: sharded and whole inputs wrote identical files on 3 ranks"
