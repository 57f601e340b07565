#!/bin/sh
# The gigavoxel benchmark's generator and Dice tool at a small size: the pair is written plane
# by plane, its labels overlap poorly before registration, and a greedy registration with the
# CLI (then `ffdp apply -n label`) recovers them. Skips (77) without Debian's mricron-data.
set -u
ffdp=$1 make_pair=$2 dice=$3
[ -f /usr/share/mricron/templates/ch2better.nii.gz ] || { echo "skip: mricron-data is not installed"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$make_pair" --size 64x72x64 -o "$out/pair" 2> /dev/null || { echo "FAIL: ffdp_make_pair"; exit 1; }
for f in fixed moving fixed_labels moving_labels; do
  [ -f "$out/pair/$f.nii" ] || { echo "FAIL: no $f.nii"; exit 1; }
done
ls "$out/pair" | grep -q tmp && { echo "FAIL: temporary files left"; exit 1; }
before=$("$dice" "$out/pair/fixed_labels.nii" "$out/pair/moving_labels.nii" | awk '{ print $NF }')
"$ffdp" register -f "$out/pair/fixed.nii" -m "$out/pair/moving.nii" --greedy -o "$out/r_" -q || { echo "FAIL: register"; exit 1; }
"$ffdp" apply -i "$out/pair/moving_labels.nii" -r "$out/pair/fixed.nii" -o "$out/wl.nii" -t "$out/r_1Warp.nii.gz" \
  -t "$out/r_0GenericAffine.txt" -n label || { echo "FAIL: apply"; exit 1; }
after=$("$dice" "$out/pair/fixed_labels.nii" "$out/wl.nii" | awk '{ print $NF }')
echo "mean Dice before $before, after registration $after"
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a >= 0.75 && a > b + 0.1) }' || { echo "FAIL: Dice did not recover"; exit 1; }
# a bad size is refused with one line and leaves nothing behind
if "$make_pair" --size 4x4 -o "$out/bad" 2> "$out/err"; then echo "FAIL: bad size accepted"; exit 1; fi
grep -q "size must be" "$out/err" || { echo "FAIL: message"; cat "$out/err"; exit 1; }
echo ok
