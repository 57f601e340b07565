#!/bin/sh
# Session 27, call 6: the CLI's outputs on 1 and 2 GPU ranks compared after decompression
# (.nii.gz outputs get a gzip member per rank, so the compressed bytes differ by design).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s27f}; W=/tmp/s27f_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s27f.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
B=/tmp/b27f; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s27e.tar.xz || exit 1
c9="--metric CC[9] --convergence [200x100x50,1e-6,10]"; cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
small9="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --transform Rigid[0.1] $c9 --transform Affine[0.1] $c9 --transform SyN[0.5,1.5,1.5] $c9 --shrink-factors 4x2x1"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun="mpirun --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4"
for c in small9 med; do
  eval args=\$$c
  OMP_NUM_THREADS=8 timeout 60 $B/ffdp register $args -o /tmp/o/${c}_np1_ --device cuda > $W/${c}_np1.log 2>&1
  timeout 120 $mpirun -np 2 $B/ffdp register $args -o /tmp/o/${c}_np2_ --device cuda > $W/${c}_np2.log 2>&1
  r=""
  for f in /tmp/o/${c}_np1_*; do
    g=$(echo $f | sed 's/_np1_/_np2_/')
    case $f in *.gz) zcat $f > /tmp/a; zcat $g > /tmp/b; cmp -s /tmp/a /tmp/b ;; *) cmp -s $f $g ;; esac && r="$r same" || r="$r DIFF:$(basename $f | sed 's/.*_np1_//')"
  done
  echo "$c lean np1 vs np2 (decompressed):$r" | tee -a $W/cmp.txt
done
