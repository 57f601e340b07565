#!/bin/sh
# `mpirun -np N ffdp apply` resamples each rank's share of the reference planes, reading only the
# planes of each field and of the input that those points reach, and the ranks write one file
# together: it must write exactly what one process writes, for both chain directions, labels and
# every output format, and a bad transform must stop every rank with one line and no file.
set -u
mpiexec=$1 ffdp=$2 labels=$3
fixed=$PWD/ranks_fixed.nii.gz moving=$PWD/ranks_moving.nii.gz # written by test_register_ranks (fixture)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
OMP_NUM_THREADS=1 timeout 120 "$ffdp" register -f "$fixed" -m "$moving" -o "$out/r_" -q \
  --transform Rigid[0.01] --metric MI[32] --convergence [10x5,1e-6,10] --shrink-factors 2x1 \
  --transform SyN[0.5,1.5,1.5] --metric CC[5] --convergence [10x5,1e-6,10] --shrink-factors 2x1 \
  > "$out/reg.log" 2>&1 || { cat "$out/reg.log"; fail "the registration giving the transforms exited non-zero"; }
one() { OMP_NUM_THREADS=1 timeout 120 "$ffdp" apply "$@" > "$out/one.log" 2>&1 || { cat "$out/one.log"; fail "one process: $*"; }; }
ranks() {
  np=$1
  shift
  timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" -x OMP_NUM_THREADS=1 "$ffdp" apply "$@" \
    > "$out/ranks.log" 2>&1 || { cat "$out/ranks.log"; fail "$np ranks: $*"; }
}
fwd="-t $out/r_1Warp.nii.gz -t $out/r_0GenericAffine.txt"
inv="-t [$out/r_0GenericAffine.txt,1] -t $out/r_1InverseWarp.nii.gz"
# moving onto the fixed grid (the warp sampled on its own grid, then the affine)
one -i "$moving" -r "$fixed" $fwd -o "$out/f1.nii"
ranks 3 -i "$moving" -r "$fixed" $fwd -o "$out/f3.nii"
cmp -s "$out/f1.nii" "$out/f3.nii" || fail "3 ranks and one process resample differently (.nii)"
# in pieces of 4 planes (what a gigavoxel output gets at 64 M voxels; every source here is ffdp's
# indexed .nii.gz, so pieces are taken): one process and 3 ranks write the same bytes again
FFDP_TEST_PIECE_PLANES=4 OMP_NUM_THREADS=1 timeout 120 "$ffdp" apply -i "$moving" -r "$fixed" $fwd \
  -o "$out/f1p.nii" -v 1 > "$out/one.log" 2>&1 || { cat "$out/one.log"; fail "one process in pieces"; }
grep -q "8 pieces" "$out/one.log" || { cat "$out/one.log"; fail "31 planes in pieces of 4 were not 8 pieces"; }
cmp -s "$out/f1.nii" "$out/f1p.nii" || fail "one process in pieces resamples differently"
timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np 3 -x OMP_NUM_THREADS=1 -x FFDP_TEST_PIECE_PLANES=4 \
  "$ffdp" apply -i "$moving" -r "$fixed" $fwd -o "$out/f3p.nii" > "$out/ranks.log" 2>&1 ||
  { cat "$out/ranks.log"; fail "3 ranks in pieces"; }
cmp -s "$out/f1.nii" "$out/f3p.nii" || fail "3 ranks in pieces resample differently"
# fixed onto the moving grid: the inverse warp is sampled at points the inverse affine moved;
# 6 ranks on 29 planes, compressed
one -i "$fixed" -r "$moving" $inv -o "$out/i1.nii.gz"
ranks 6 -i "$fixed" -r "$moving" $inv -o "$out/i6.nii.gz"
gzip -dc "$out/i1.nii.gz" > "$out/a" && gzip -dc "$out/i6.nii.gz" > "$out/b" && cmp -s "$out/a" "$out/b" ||
  fail "6 ranks and one process resample differently (.nii.gz, inverse chain)"
# labels (uint8 AAL, 181 planes) onto the small grid as OME-Zarr: the type is kept, and a rank reads
# only the label planes its points reach
one -i "$labels" -r "$fixed" $fwd -n GenericLabel -o "$out/l1.zarr"
ranks 4 -i "$labels" -r "$fixed" $fwd -n GenericLabel -o "$out/l4.zarr" -v 1
diff -r "$out/l1.zarr" "$out/l4.zarr" > /dev/null || fail "4 ranks and one process resample labels differently (.zarr)"
grep -q '"dtype":[[:space:]]*"|u1"' "$out/l4.zarr/0/.zarray" || { cat "$out/l4.zarr/0/.zarray"; fail "labels not kept as uint8"; }
pct=$(sed -n "s/.*rank 0: 1 piece, reading \([0-9]*\)% of the input's planes.*/\1/p" "$out/ranks.log")
[ -n "$pct" ] || { cat "$out/ranks.log"; fail "no summary with -v 1"; }
[ "$pct" -lt 33 ] || fail "rank 0 read $pct% of the 181 label planes for a 39 mm reference"
# a missing field: every rank stops, one line naming it, no file
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 3 -x OMP_NUM_THREADS=1 "$ffdp" apply -i "$moving" \
  -r "$fixed" -t "$out/none_1Warp.nii.gz" -o "$out/bad.nii" > "$out/bad.log" 2>&1 && fail "a missing warp was accepted"
[ "$(grep -c 'ffdp' "$out/bad.log")" -ge 1 ] && grep -q "none_1Warp.nii.gz" "$out/bad.log" ||
  { cat "$out/bad.log"; fail "no message naming the missing warp"; }
[ -e "$out/bad.nii" ] && fail "a failed apply left its output"
ls -a "$out" | grep -q 'tmp-\|part\|probe' && { ls -a "$out"; fail "temporary files left behind"; }
echo "ok: 3, 4 and 6 ranks apply transform chains as one process does (.nii, .nii.gz, .zarr labels)"
