#!/bin/sh
# `ffdp register` and `ffdp apply` refuse bad requests with one line on stderr, a non-zero
# exit, and no output files. Uses the files test_bad_input leaves in bad_inputs/.
ffdp=$1
d=bad_inputs
fail=0
expect_fail() { # description, expected text, command...
  what=$1 want=$2; shift 2
  rm -rf reg_out
  "$@" > /dev/null 2> err_register.txt
  rc=$?
  lines=$(wc -l < err_register.txt)
  if [ "$rc" -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -q "^ffdp: error: .*$want" err_register.txt || [ -n "$(ls reg_out 2>/dev/null)" ]; then
    echo "FAIL $what: rc=$rc lines=$lines outputs=[$(ls reg_out 2>/dev/null)]"; cat err_register.txt; fail=1
  else
    echo "ok   $what: $(cat err_register.txt)"
  fi
}
G=$d/good.nii.gz
expect_fail "missing moving"         "required"        "$ffdp" register -f $G -o reg_out/x_
expect_fail "unknown metric"         "unknown metric"  "$ffdp" register -f $G -m $G -o reg_out/x_ --transform Greedy --metric Foo[3]
expect_fail "metric without stage"   "must follow"     "$ffdp" register -f $G -m $G -o reg_out/x_ --metric CC[5]
expect_fail "levels mismatch"        "same number"     "$ffdp" register -f $G -m $G -o reg_out/x_ --transform Affine --convergence [10x10,1e-6,5] --shrink-factors 4x2x1
expect_fail "bad transform params"   "one parameter"   "$ffdp" register -f $G -m $G -o reg_out/x_ --transform Rigid[0.1,2]
expect_fail "even CC window"         "odd window.*CC\[9\]" "$ffdp" register -f $G -m $G -o reg_out/x_ --transform Greedy --metric CC[4]
expect_fail "unknown option"         "unknown option"  "$ffdp" register -f $G -m $G -o reg_out/x_ --frobnicate
expect_fail "ANTs metric, other -f"  "but --metric names" "$ffdp" register -f $d/constant.nii.gz -o reg_out/x_ --transform Affine --metric MI[$G,$G,1,32]
expect_fail "ANTs metric weight"     "weight must be 1" "$ffdp" register -o reg_out/x_ --transform Greedy --metric CC[$G,$G,0.5,2]
expect_fail "two image pairs"        "one image pair"  "$ffdp" register -o reg_out/x_ --transform Affine --metric MI[$G,$G,1,32] --transform Greedy --metric CC[$G,$d/constant.nii.gz,1,2]
expect_fail "NaN in moving"          "NaN"             "$ffdp" register -f $G -m $d/nan_values.nii.gz -o reg_out/x_ --affine
expect_fail "constant fixed"         "constant"        "$ffdp" register -f $d/constant.nii.gz -m $G -o reg_out/x_ --affine
expect_fail "empty mask"             "mask is empty"   "$ffdp" register -f $G -m $G -o reg_out/x_ --affine -x $d/constant.nii.gz
: > reg_file.txt
expect_fail "output dir is a file"   "output directory.*Not a directory" "$ffdp" register -f $G -m $G -o reg_file.txt/x_ --affine
rm -f reg_file.txt
expect_fail "no overlap"             "do not overlap"  "$ffdp" register -f $G -m $d/far_away.nii.gz -o reg_out/x_ --affine --no-moments
expect_fail "corrupt moving"         "truncated"       "$ffdp" register -f $G -m $d/truncated.nii.gz -o reg_out/x_
expect_fail "apply: bad transform"   "not a 3D ITK"    "$ffdp" apply -i $G -r $G -t $d/text.nii.gz.txt -o reg_out/y.nii.gz
expect_fail "apply: no reference"    "required"        "$ffdp" apply -i $G -o reg_out/y.nii.gz
# antsRegistration's metric form names the images, so -f and -m may be left out; CC's radius 1
# is window 3 (the JSON records the window), MI's sampling is noted and ignored
rm -rf reg_out
if "$ffdp" register -o reg_out/a_ --no-moments --transform Affine --metric MI[$G,$G,1,16,Regular,0.25] \
     --convergence [3,1e-6,5] --shrink-factors 1 --transform Greedy --metric CC[$G,$G,1,1] --convergence [2,1e-6,5] \
     --shrink-factors 1 --json reg_out/a.json > ants_form.txt 2>&1 && [ -f reg_out/a_1Warp.nii.gz ] &&
   grep -q "sampling 'Regular' of --metric MI is ignored" ants_form.txt &&
   grep -q '"mi_bins":[[:space:]]*16' reg_out/a.json && grep -q '"cc_window":[[:space:]]*3' reg_out/a.json; then
  echo "ok   ANTs-style --metric with the images"
else
  echo "FAIL ANTs-style --metric:"; cat ants_form.txt; fail=1
fi
# the field's gzip level: stored blocks by default, deflated with --field-compression; the same
# values either way, and --json says which
if "$ffdp" register -o reg_out/z_ --no-moments --transform Affine --metric MI[$G,$G,1,16] --convergence [3,1e-6,5] \
     --shrink-factors 1 --transform Greedy --metric CC[$G,$G,1,1] --convergence [2,1e-6,5] --shrink-factors 1 \
     --field-compression 6 --json reg_out/z.json > level.txt 2>&1 &&
   grep -q '"field_gzip_level":[[:space:]]*0' reg_out/a.json && grep -q '"field_gzip_level":[[:space:]]*6' reg_out/z.json &&
   [ "$(wc -c < reg_out/z_1Warp.nii.gz)" -lt "$(wc -c < reg_out/a_1Warp.nii.gz)" ] &&
   gzip -dc reg_out/a_1Warp.nii.gz > a_warp.raw && gzip -dc reg_out/z_1Warp.nii.gz > z_warp.raw && cmp -s a_warp.raw z_warp.raw; then
  echo "ok   --field-compression 6 (smaller, the same values)"
else
  echo "FAIL --field-compression:"; cat level.txt; fail=1
fi
rm -f a_warp.raw z_warp.raw
# the moments on the coarse grid through the CLI: a SyN run writes both warps and --json says so
rm -rf reg_out
if "$ffdp" register -f $G -m $G -o reg_out/h_ --no-moments --transform "SyN[0.5,1.5,1.5]" --metric CC[3] \
     --convergence [4x2,1e-6,5] --shrink-factors 2x1 --state-resolution half --state-precision bf16 \
     --json reg_out/h.json > half.txt 2>&1 && [ -f reg_out/h_1Warp.nii.gz ] && [ -f reg_out/h_1InverseWarp.nii.gz ] &&
   grep -q '"state_resolution":[[:space:]]*"half"' reg_out/h.json && grep -q '"state_precision":[[:space:]]*"bf16"' reg_out/h.json; then
  echo "ok   --state-resolution half (SyN, bf16 moments)"
else
  echo "FAIL --state-resolution half:"; cat half.txt; fail=1
fi
# the images as 16-bit codes through the CLI: a greedy run, and --json says so
rm -rf reg_out
if "$ffdp" register -f $G -m $G -o reg_out/c_ --no-moments --transform "Greedy[0.5,1.5,1.5]" --metric CC[3] \
     --convergence [4x2,1e-6,5] --shrink-factors 2x1 --image-precision u16 \
     --json reg_out/c.json > coded.txt 2>&1 && [ -f reg_out/c_1Warp.nii.gz ] &&
   grep -q '"image_precision":[[:space:]]*"u16"' reg_out/c.json && grep -q "no memory saved" coded.txt; then
  echo "ok   --image-precision u16 (greedy)"
else
  echo "FAIL --image-precision u16:"; cat coded.txt; fail=1
fi
# a pasted antsRegistration command: its switches taken (or noted), -o [prefix,warped,inverse]
rm -rf reg_out
if "$ffdp" register --verbose 0 --dimensionality 3 --float 1 --collapse-output-transforms 1 \
     --output [reg_out/p_,reg_out/w/p_Warped.nii.gz,reg_out/p_InverseWarped.nii.gz] --interpolation Linear \
     --winsorize-image-intensities [0.005,0.995] --use-histogram-matching 1 --initial-moving-transform [$G,$G,1] \
     --transform Rigid[0.1] --metric MI[$G,$G,1,16,Regular,0.25] --convergence [3x2,1e-6,10] --shrink-factors 2x1 \
     --smoothing-sigmas 1x0vox --json reg_out/p.json > ants_paste.txt 2>&1 && [ -f reg_out/w/p_Warped.nii.gz ] &&
   [ -f reg_out/p_0GenericAffine.txt ] && [ ! -e reg_out/p_Warped.nii.gz ] && grep -q '"winsorize"' reg_out/p.json &&
   grep -q '"histogram_matching"' reg_out/p.json &&
   grep -q "p_InverseWarped.nii.gz is not written" ants_paste.txt; then
  echo "ok   a pasted antsRegistration command"
else
  echo "FAIL pasted antsRegistration command:"; cat ants_paste.txt; ls -R reg_out; fail=1
fi
# a pasted antsApplyTransforms command (identity affine): ANTs' spellings and switches
printf '#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters: 1 0 0 0 1 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n' > identity.txt
rm -rf reg_out && mkdir -p reg_out
if "$ffdp" apply -d 3 -e 0 -i $G -r $G -o reg_out/lab.nii.gz -n GenericLabel[Linear] -f 0 -v 1 --float 1 -t identity.txt \
     > apply_paste.txt 2>&1 && [ -f reg_out/lab.nii.gz ]; then echo "ok   a pasted antsApplyTransforms command"
else echo "FAIL pasted antsApplyTransforms command:"; cat apply_paste.txt; fail=1; fi
# --output-format zarr: Warped as an OME-Zarr store, the fields as plain .nii; apply to a store
rm -rf reg_out
if "$ffdp" register -f $G -m $G -o reg_out/z_ -q --no-moments --transform Greedy --metric CC[3] --convergence [2,1e-6,5] \
     --shrink-factors 1 --output-format zarr > zarr_out.txt 2>&1 && [ -f reg_out/z_Warped.zarr/0/.zarray ] &&
   [ -f reg_out/z_1Warp.nii ] && "$ffdp" info reg_out/z_Warped.zarr >> zarr_out.txt 2>&1 &&
   "$ffdp" apply -i $G -r $G -t reg_out/z_1Warp.nii -o reg_out/a.zarr -n nearest >> zarr_out.txt 2>&1 &&
   "$ffdp" info reg_out/a.zarr >> zarr_out.txt 2>&1; then
  echo "ok   Zarr outputs (register --output-format zarr, apply -o x.zarr)"
else
  echo "FAIL Zarr outputs:"; cat zarr_out.txt; ls -R reg_out | head; fail=1
fi
# info on a warp: its displacement and folding instead of an error about 5D images
if "$ffdp" info reg_out/z_1Warp.nii > info_warp.txt 2>&1 && grep -q "^  folding      0 % of voxels" info_warp.txt &&
   grep -q "^  |u|          mean" info_warp.txt &&
   FFDP_TEST_PIECE_PLANES=1 "$ffdp" info reg_out/z_1Warp.nii > info_warp1.txt 2>&1 && cmp -s info_warp.txt info_warp1.txt &&
   "$ffdp" info $d/big.nii > info_big.txt && FFDP_TEST_PIECE_PLANES=5 "$ffdp" info $d/big.nii > info_big5.txt &&
   cmp -s info_big.txt info_big5.txt; then echo "ok   info on a warp (and plane by plane, the same)"
else echo "FAIL info on a warp:"; cat info_warp.txt; fail=1; fi
expect_fail "apply: default value"   "get 0 in ffdp"   "$ffdp" apply -i $G -r $G -o reg_out/y.nii.gz -t identity.txt -f 5
expect_fail "apply: BSpline"         "unknown interpolation" "$ffdp" apply -i $G -r $G -o reg_out/y.nii.gz -t identity.txt -n BSpline
expect_fail "2D registration"        "3D images only"  "$ffdp" register -d 2 -f $G -m $G -o reg_out/x_
expect_fail "bad winsorize quantiles" "lower < upper"  "$ffdp" register -f $G -m $G -o reg_out/x_ -w [0.9,0.1]
expect_fail "bad histogram matching" "0 or 1"          "$ffdp" register -f $G -m $G -o reg_out/x_ -u 2
expect_fail "composite transform"    "drop the option" "$ffdp" register -f $G -m $G -o reg_out/x_ --write-composite-transform 1
expect_fail "initial transform file" "only ANTs'"      "$ffdp" register -f $G -m $G -o reg_out/x_ --initial-moving-transform init.txt
# a level may have zero iterations: "0x0x3" is three levels, not hexadecimal
rm -rf reg_out
if "$ffdp" register -f $G -m $G -o reg_out/z_ -q --no-moments --transform Affine --convergence [0x0x3,1e-6,5] \
     --shrink-factors 4x2x1 --smoothing-sigmas 1x0.5x0vox > /dev/null 2> err_register.txt; then
  echo "ok   zero-iteration levels parse"
else
  echo "FAIL zero-iteration levels:"; cat err_register.txt; fail=1
fi
expect_fail "mm sigmas not supported" "cannot parse"  "$ffdp" register -f $G -m $G -o reg_out/x_ --transform Affine --convergence [10x10,1e-6,5] --smoothing-sigmas 2x1mm
expect_fail "unknown device"         "cpu, cuda or auto" "$ffdp" register -f $G -m $G -o reg_out/x_ --device gpu
expect_fail "unknown state precision" "fp32 or bf16"  "$ffdp" register -f $G -m $G -o reg_out/x_ --state-precision fp16
expect_fail "ring on the GPU" "CPU stages only" "$ffdp" register -f $G -m $G -o reg_out/x_ --device cuda --image-exchange ring
expect_fail "unknown image exchange" "window, ring or local" "$ffdp" register -f $G -m $G -o reg_out/x_ --image-exchange all
expect_fail "plan without moving"    "required"        "$ffdp" plan -f $G
expect_fail "plan of a bad header"   "not a readable"  "$ffdp" plan -f $G -m $d/text.nii
# the plan reads headers only and prints a peak; --device auto falls back to the CPU with a note
if "$ffdp" plan -f $G -m $G --syn | grep -q "peak .* bytes per fixed voxel"; then echo "ok   plan prints a peak"
else echo "FAIL plan output"; fail=1; fi
expect_fail "plan for zero GPUs"     "--gpus must be"  "$ffdp" plan -f $G -m $G --gpus 0
expect_fail "plan, missing mask"     "mask_missing"    "$ffdp" plan -f $G -m $G -x $d/mask_missing.nii.gz
# masks take device buffers: the plan lists them
"$ffdp" plan -f $G -m $G --greedy -x [$G,$G] > plan_masks.txt 2>&1
if grep -q "fixed mask" plan_masks.txt && grep -q "moving mask" plan_masks.txt && grep -q "scored voxels" plan_masks.txt; then
  echo "ok   plan lists the mask buffers"
else echo "FAIL plan with masks:"; cat plan_masks.txt; fail=1; fi
# the deformable levels' device layout (dev_layout.c): warp, one gradient field that takes the
# metric's gradient in its last third, moments, a ring of planes (greedy 56 B/voxel fp32, 44 bf16)
# with the moments on the coarse grid (--state-resolution half): 3 B/voxel of moments in fp32 and
# the step's transient in the ring
# and with the images as 16-bit codes (--image-precision u16) 4 B/voxel less (fixed and moving)
for st in fp32:full:fp32:57 bf16:full:fp32:45 fp32:half:fp32:37 bf16:half:fp32:35.5 fp32:half:u16:33 bf16:half:u16:31.5; do
  p=${st%%:*} r=${st#*:}; r=${r%%:*} i=${st#*:*:}; i=${i%%:*} top=${st##*:}
  bpv=$("$ffdp" plan -f 1024x1024x1024 -m 1024x1024x1024 --greedy --state-precision $p --state-resolution $r \
        --image-precision $i | sed -n 's/.*= \([0-9.]*\) bytes per fixed voxel.*/\1/p')
  if [ -n "$bpv" ] && awk "BEGIN{exit !($bpv <= $top)}"; then echo "ok   greedy plan $p $r images $i: $bpv B/voxel"
  else echo "FAIL greedy plan $p $r images $i: '$bpv' B/voxel (more than $top)"; fail=1; fi
done
if "$ffdp" plan -f 1024x1024x1024 -m 1024x1024x1024 --syn --image-precision u16 | grep -q "moving image (16-bit codes)"; then
  echo "ok   plan lists the images as 16-bit codes"
else echo "FAIL plan with --image-precision u16"; fail=1; fi
expect_fail "unknown image precision" "fp32 or u16" "$ffdp" register -f $G -m $G -o reg_out/x_ --image-precision bf16
# --gpu-memory caps the plan; without a saver named the plan says which savers register would add
# (1200^3 greedy: 97.6 GB fp32, 63.1 with half, 56.2 with half + u16), with one named it says nothing
gm() { "$ffdp" plan -f 1200x1200x1200@0.2 -m 1200x1200x1200@0.2 --greedy --gpu-memory "$@"; }
if gm 80 | grep -q "^ffdp register would add --state-resolution half: peak 63" &&
   gm 60 | grep -q "would add --state-resolution half --image-precision u16: peak 56" &&
   gm 80 | grep -q "allows 80.0 GB: DOES NOT FIT" && gm 100 | grep -q "allows 100.0 GB: fits" &&
   ! gm 80 --state-precision bf16 | grep -q "would add" && gm 40 | grep -q "^even with every memory saver"; then
  echo "ok   plan under --gpu-memory names the savers register would add"
else echo "FAIL plan under --gpu-memory:"; gm 60 | tail -4; fail=1; fi
expect_fail "negative --gpu-memory" "positive number" "$ffdp" plan -f $G -m $G --gpu-memory -2
# the plan shows the peak with every optimiser state (and its JSON)
if "$ffdp" plan -f 1024x1024x1024 -m 1024x1024x1024 --syn --json plan_states.json |
     grep -q "^peak by optimiser state: fp32 .* coarse bf16 .* (both)" && grep -q '"coarse bf16"' plan_states.json &&
   grep -q '"peak_mb_by_state_u16_images"' plan_states.json; then
  echo "ok   plan lists the peak by optimiser state"
else echo "FAIL plan by optimiser state"; fail=1; fi
expect_fail "unknown state resolution" "full or half" "$ffdp" register -f $G -m $G -o reg_out/x_ --state-resolution quarter
if "$ffdp" plan -f 1024x1024x1024 -m 1024x1024x1024 --greedy | grep -q "smoothing ring" &&
   ! "$ffdp" plan -f 1024x1024x1024 -m 1024x1024x1024 --greedy | grep -q "metric gradient"; then
  echo "ok   plan lists the ring, not the shared metric gradient"
else echo "FAIL plan buffers of a large greedy level"; fail=1; fi
expect_fail "unknown output format"  "--output-format must be" "$ffdp" register -f $G -m $G -o reg_out/x_ --output-format zip
expect_fail "outputs over the free disk space" "free; free space" env FFDP_TEST_DISK_FREE_MB=0.001 "$ffdp" register -f $G -m $G \
  -o reg_out/x_ --affine --output-format nii
expect_fail "host memory too small" "of memory on this host" env FFDP_TEST_MEM_AVAILABLE_MB=0.0005 "$ffdp" register -f $G \
  -m $G -o reg_out/x_ --syn
# CPU memory short and no saver named: the moments at half resolution, then in bf16, until the
# floor fits (floors from the plan's JSON: as asked f0, half f1, half + bf16 f2)
floor_of() { "$ffdp" plan -f $G -m $G --syn "$@" --json floor.json > /dev/null && sed -n 's/.*"cpu_host_floor_mb":[[:space:]]*\([0-9.e-]*\).*/\1/p' floor.json; }
f0=$(floor_of) f1=$(floor_of --state-resolution half) f2=$(floor_of --state-resolution half --state-precision bf16)
for c in 1:fp32 2:bf16; do
  k=${c%%:*} want=${c#*:}
  mb=$(awk -v a="$f0" -v b="$f1" -v c="$f2" -v k=$k 'BEGIN { printf "%.7f", k == 1 ? (a + b) / 2 : (b + c) / 2 }')
  rm -rf reg_out
  if env FFDP_TEST_MEM_AVAILABLE_MB=$mb "$ffdp" register -f $G -m $G -o reg_out/lean_ --syn --json lean.json 2> lean_err.txt > /dev/null &&
     grep -q "note: as asked .* running with --state-resolution half" lean_err.txt &&
     grep -q '"state_resolution":[[:space:]]*"half"' lean.json && grep -q "\"state_precision\":[[:space:]]*\"$want\"" lean.json; then
    echo "ok   CPU memory short ($mb MB of $f0): savers added, moments $want"
  else echo "FAIL CPU savers ($mb MB; floors $f0 $f1 $f2):"; cat lean_err.txt; fail=1; fi
done
mb=$(awk -v c="$f2" 'BEGIN { printf "%.7f", c * 0.9 }')
expect_fail "CPU memory short even with savers" "would still need more" env FFDP_TEST_MEM_AVAILABLE_MB=$mb "$ffdp" register \
  -f $G -m $G -o reg_out/x_ --syn
if "$ffdp" plan -f $G -m $G --syn --json plan_cpu.json | grep -q "^on the CPU instead (--device cpu): at least" &&
   grep -q '"cpu_host_floor_mb"' plan_cpu.json; then echo "ok   plan states the CPU's host memory floor"
else echo "FAIL plan without the CPU line"; fail=1; fi
expect_fail "apply: output over the free disk space" "free; free space" env FFDP_TEST_DISK_FREE_MB=0.0005 "$ffdp" apply \
  -i $G -r $G -t identity.txt -o apply_space.nii
[ -e apply_space.nii ] && { echo "FAIL apply left an output it had no room for"; fail=1; rm -f apply_space.nii; }
# per GPU for ranks: each holds its slab of the fields, so the deformable peak per GPU drops
B=$d/big.nii # 64 planes: two ranks split the finest level
one=$("$ffdp" plan -f $B -m $B --greedy --json plan1.json > /dev/null && awk -F'[:,]' '/"peak_mb"/ { print $2 }' plan1.json)
two=$("$ffdp" plan -f $B -m $B --greedy --gpus 2 --json plan2.json > /dev/null && awk -F'[:,]' '/"peak_mb"/ { print $2 }' plan2.json)
if [ -n "$one" ] && [ -n "$two" ] && awk -v a="$one" -v b="$two" 'BEGIN { exit !(b + 0 < a + 0) }' &&
   grep -q '"gpus":[[:space:]]*2' plan2.json; then echo "ok   plan --gpus 2: $two MB per GPU vs $one MB on one"
else echo "FAIL plan --gpus: one=$one two=$two"; fail=1; fi
# a grid size plans like an image of that size, with no file; a size that cannot be one is refused
grid=$("$ffdp" plan -f 64x64x64@1 -m 64x64x64 --greedy --gpus 2 --json plan3.json > /dev/null && awk -F'[:,]' '/"peak_mb"/ { print $2 }' plan3.json)
if [ -n "$grid" ] && [ "$grid" = "$two" ]; then echo "ok   plan of a grid size: $grid MB per GPU, as the 64^3 image"
else echo "FAIL plan of a grid size: $grid vs $two"; fail=1; fi
expect_fail "plan, zero-sized grid"  "each side must be" "$ffdp" plan -f 64x0x64 -m $G
expect_fail "plan, bad grid spacing" "spacing after"     "$ffdp" plan -f 64x64x64@0 -m $G
rm -rf reg_out
if "$ffdp" register -f $G -m $G -o reg_out/a_ --device auto --rigid > out_register.txt 2> err_register.txt; then
  gpus=$("$ffdp" plan -f $G -m $G | grep -c 'GB free')
  if [ "$gpus" = 0 ] && ! grep -q "running on the CPU" err_register.txt; then
    echo "FAIL --device auto gave no notice without a GPU"; fail=1
  else echo "ok   --device auto"; fi
else echo "FAIL --device auto:"; cat err_register.txt; fail=1; fi
exit $fail
