#!/bin/sh
# Every bad input makes `ffdp info` exit non-zero with exactly one line on stderr, and
# the good control file succeeds. Needs the files test_bad_input leaves in bad_inputs/.
ffdp=$1
dir=bad_inputs
fail=0
for f in missing.nii.gz truncated.nii.gz truncated.nii corrupt.nii.gz text.nii zero_spacing.nii nan_spacing.nii \
         singular.nii four_d.nii.gz five_d.nii.gz huge_nifti1.nii; do
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
"$ffdp" frobnicate > /dev/null 2>&1 && { echo "FAIL unknown command accepted"; fail=1; }
exit $fail
