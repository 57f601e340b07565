#!/bin/sh
# Every bad input makes `ffdp info` exit non-zero with exactly one line on stderr, and
# the good control file succeeds. Needs the files test_bad_input leaves in bad_inputs/.
ffdp=$1
dir=bad_inputs
fail=0
for f in missing.nii.gz truncated.nii.gz truncated.nii corrupt.nii.gz text.nii zero_spacing.nii nan_spacing.nii \
         singular.nii four_d.nii.gz huge_nifti1.nii; do
  "$ffdp" info "$dir/$f" > /dev/null 2> err_info.txt
  rc=$?
  lines=$(wc -l < err_info.txt)
  if [ "$rc" -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -q "^ffdp: error: .*$f" err_info.txt; then
    echo "FAIL $f: rc=$rc, $lines stderr lines:"; cat err_info.txt; fail=1
  else
    echo "ok   $f: $(cat err_info.txt)"
  fi
done
"$ffdp" info "$dir/good.nii.gz" > /dev/null || { echo "FAIL good file rejected"; fail=1; }
# a 5D x y z 1 3 image is an ITK displacement field: info describes it, register refuses it as an image
"$ffdp" info "$dir/five_d.nii.gz" 2>&1 | grep -q "^  field        displacement" || { echo "FAIL info on a 5D field"; fail=1; }
"$ffdp" register -f "$dir/five_d.nii.gz" -m "$dir/good.nii.gz" -o reg_5d/x_ > /dev/null 2> err_info.txt
if [ $? -eq 0 ] || [ "$(wc -l < err_info.txt)" -ne 1 ] || ! grep -q "^ffdp: error: .*five_d.nii.gz.* is 5D" err_info.txt; then
  echo "FAIL five_d.nii.gz as a fixed image:"; cat err_info.txt; fail=1
else
  echo "ok   five_d.nii.gz as a fixed image: $(cat err_info.txt)"
fi
rm -rf reg_5d
# a gzip level that does not exist: one line naming the option, before any image is read
"$ffdp" register -f "$dir/good.nii.gz" -m "$dir/good.nii.gz" -o reg_lv/x_ --field-compression 12 > /dev/null 2> err_info.txt
if [ $? -eq 0 ] || [ "$(wc -l < err_info.txt)" -ne 1 ] || ! grep -q "^ffdp: error: --field-compression" err_info.txt; then
  echo "FAIL --field-compression 12:"; cat err_info.txt; fail=1
else
  echo "ok   --field-compression 12: $(cat err_info.txt)"
fi
rm -rf reg_lv
"$ffdp" frobnicate > /dev/null 2>&1 && { echo "FAIL unknown command accepted"; fail=1; }
# ffdp convert: NIfTI -> OME-Zarr -> NIfTI keeps values and geometry (ffdp info prints both);
# a store with a missing chunk is one clear error; bad options are refused.
rm -rf cli_conv.zarr cli_conv.nii.gz
if "$ffdp" convert "$dir/good.nii.gz" cli_conv.zarr --chunks 4x4x3 --codec zstd > /dev/null &&
   "$ffdp" convert cli_conv.zarr cli_conv.nii.gz > /dev/null; then
  "$ffdp" info "$dir/good.nii.gz" | tail -n +2 > info_a.txt
  "$ffdp" info cli_conv.nii.gz | tail -n +2 > info_b.txt
  "$ffdp" info cli_conv.zarr | tail -n +2 > info_c.txt
  cmp -s info_a.txt info_b.txt && cmp -s info_a.txt info_c.txt || { echo "FAIL convert round trip changed the image:"; diff info_a.txt info_b.txt; diff info_a.txt info_c.txt; fail=1; }
  rm -f cli_conv.zarr/0/0/0/0
  "$ffdp" info cli_conv.zarr > /dev/null 2> err_info.txt && { echo "FAIL store with a missing chunk accepted"; fail=1; }
  [ "$(wc -l < err_info.txt)" -eq 1 ] && grep -q "missing" err_info.txt || { echo "FAIL missing chunk message:"; cat err_info.txt; fail=1; }
else
  echo "FAIL convert good.nii.gz <-> zarr"; fail=1
fi
for bad in "--chunks 4x4" "--codec lzma" "--type complex" "--level 99"; do
  # shellcheck disable=SC2086
  "$ffdp" convert "$dir/good.nii.gz" x.zarr $bad > /dev/null 2> err_info.txt && { echo "FAIL convert accepted $bad"; fail=1; }
  [ "$(wc -l < err_info.txt)" -eq 1 ] || { echo "FAIL convert $bad: not one line"; cat err_info.txt; fail=1; }
done
[ -e x.zarr ] && { echo "FAIL a refused convert left x.zarr behind"; fail=1; }
exit $fail
