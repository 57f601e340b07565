#!/bin/sh
# Session 38, final run: ffdp_n = the session's source (fields written as stored deflate blocks
# by default, --field-compression; the stream-ordered pool warmed during loading; the float
# fields' values written inline) against ffdp_b (main a8f5f97), alternating, on the small,
# medium and 0.5 mm SyN presets: wall time (registration, loading, outputs, total), the files'
# sizes, and the same contents (md5 of the decompressed outputs); ffdp_n with
# --field-compression 1 once each (files as ffdp_b's); 2 GPU ranks of ffdp_n on the small preset
# against one process (decompressed outputs equal) and test_register_ranks.
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38f}; W=/tmp/s38f_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38f.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38f; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38f.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
export FFDP_TRACE=1
mkdir -p /tmp/o
contents() { for f in $1Warped.nii.gz $11Warp.nii.gz $11InverseWarp.nii.gz; do zcat $f; done | cat - $10GenericAffine.txt | md5sum | cut -c1-12; }
i=0
for run in "small b" "small n" "small n" "small b" "small n1" "med b" "med n" "med n" "med b" "med n1" "half b" "half n" "half n" "half b" "half n1"; do
  i=$((i+1)); set -- $run; c=$1; bin=ffdp_$2; x=
  [ $2 = n1 ] && bin=ffdp_n x="--field-compression 1"
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  $B/$bin register $args $x -o /tmp/o/${c}_ --device cuda > $W/${i}_${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${i}_${c}_$2.log | grep -oE 'registration [0-9.]+ s \(loading [0-9.]+ s, outputs [0-9.]+ s, total [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') | $(grep -E 'outputs: folding' $W/${i}_${c}_$2.log | sed 's/\[trace\] outputs: //') | $(ls -l /tmp/o/${c}_1Warp.nii.gz /tmp/o/${c}_1InverseWarp.nii.gz | awk '{printf "%s ", $5}')| files $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) contents $(contents /tmp/o/${c}_) | $(grep -E 'linear level 1: [0-9]+ it' $W/${i}_${c}_$2.log | head -1 | sed 's/\[trace\] //; s/ iterations//')" | tee -a $W/summary.txt
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -f /tmp/o/r2_*
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=8 \
  $B/ffdp_n register $small -o /tmp/o/r2_ --device cuda > $W/ranks2_small.log 2>&1
echo "ranks 2 small rc $?: $(grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' $W/ranks2_small.log | tr '\n' ' ') contents $(contents /tmp/o/r2_) (one process above: small n)" | tee -a $W/summary.txt
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
