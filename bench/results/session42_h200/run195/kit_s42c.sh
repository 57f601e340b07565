#!/bin/sh
# Session 42, kit c: q = 8d720eb + the samplers' blocks taken z-blocks first on planes of more
# blocks than the GPU holds (Geo::zfirst, FFDP_BLOCK_ORDER=x|z). gpu_ops q at 100^3 (z forced,
# and default), step_parts A/B (x vs default, compose map linear vs rows) at 1008x1008x128,
# 504x504x256, 256^3, 182x218x182; presets (the same files); the gigavoxel greedy's phases.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s42c}; W=/tmp/s42c_w; rm -rf $W; mkdir -p $OUT $W/gv
save() { tar -C $W -cf $OUT/s42c.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/device.txt
B=/tmp/b42c; rm -rf $B && mkdir -p $B && tar -C $B -xJf $P/s42q.tar.xz
for o in z default; do
  if [ $o = z ]; then export FFDP_BLOCK_ORDER=z; else unset FFDP_BLOCK_ORDER; fi
  GPU_OPS_REPS=1 timeout 100 $B/q/gpu_ops 100 > $W/gpu_ops_q_100_$o.txt 2>&1
  echo "gpu_ops q 100 order $o rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_q_100_$o.txt | head -2)" | tee -a $W/summary.txt
done
unset FFDP_BLOCK_ORDER
sp() { awk -F'|' '/place|whole|Adam|sample|backward|compos/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,14), $4, $5}'; }
run_sp() {  # name env... -- grid
  name=$1; shift; f=$W/sp_$name.txt
  env "$@" timeout 60 $B/q/ffdp_step_parts $G > $f.new 2>&1; rc=$?; cat $f.new >> $f; rm -f $f.new
  echo "sp $name [$G] rc $rc: $(tail -12 $f | sp)" | tee -a $W/summary.txt
}
for r in 1 2; do
  G="1008 1008 128"
  run_sp 1008_default FFDP_NOTHING=1
  run_sp 1008_x FFDP_BLOCK_ORDER=x
  run_sp 1008_rows FFDP_COMPOSE_MAP=rows
  run_sp 1008_x_rows FFDP_BLOCK_ORDER=x FFDP_COMPOSE_MAP=rows
  G="504 504 256"
  run_sp 504_default FFDP_NOTHING=1
  run_sp 504_x FFDP_BLOCK_ORDER=x
  G="256 256 256"
  run_sp 256_default FFDP_NOTHING=1
  run_sp 256_z FFDP_BLOCK_ORDER=z
  G="182 218 182"
  run_sp 182_default FFDP_NOTHING=1
  run_sp 182_z FFDP_BLOCK_ORDER=z
  save
done
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
mkdir -p /tmp/o
i=0
for c in half med; do
  i=$((i+1)); eval args=\$$c
  rm -f /tmp/o/${c}_*; sync
  FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 60 $B/q/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/n${i}_${c}_q.log 2>&1
  echo "$c q rc $?: $(tr '\r' '\n' < $W/n${i}_${c}_q.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12)" | tee -a $W/summary.txt
done
save
mkdir -p /tmp/gv
mi="--metric MI[32] --convergence [200x100x50,1e-6,10] --shrink-factors 32x16x8"
stages="--transform Rigid[0.01] $mi --transform Affine[0.005] $mi --transform Greedy[0.5,1.5,1.5] --metric CC[5] --convergence [200x200x100x50x20,1e-6,10] --shrink-factors 16x8x4x2x1"
t=$(date +%s.%N); timeout 60 $B/q/ffdp_make_pair --size 1008x1008x1008 -o /tmp/gv/pair --anatomy $D/ch2better.nii.gz --labels $D/aal.nii.gz > $W/gv/generate.log 2>&1
echo "generate rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s" | tee -a $W/summary.txt
t=$(date +%s.%N); FFDP_TRACE=1 FFDP_TRACE_PHASES=1 timeout 90 $B/q/ffdp register -f /tmp/gv/pair/fixed.nii -m /tmp/gv/pair/moving.nii $stages --device cuda --output-format nii -o /tmp/gv/r_ --json $W/gv/register.json > $W/gv/register.log 2>&1
echo "register rc $? $(awk -v a=$t -v b=$(date +%s.%N) 'BEGIN{printf "%.1f", b-a}') s; affine $(md5sum < /tmp/gv/r_0GenericAffine.txt | cut -c1-12)" | tee -a $W/summary.txt
grep -E "registration [0-9.]+ s|greedy level [345].*(phases|iterations)|download|peak GPU|NCC fixed" $W/gv/register.log | tee -a $W/summary.txt
save
