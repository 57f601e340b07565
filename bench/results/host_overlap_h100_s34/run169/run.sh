#!/bin/sh
# Session 34, call 3: bench/gpu/step_parts at the medium preset's finest SyN level (182x218x182)
# and nearby shapes; the in-place blur's ring path as the A/B (FFDP_BLUR_INPLACE=ring).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s34d}; W=/tmp/s34d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s34d.tar . ; }
trap save EXIT
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
B=/tmp/b34c; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s34d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for g in "182 218 182" "192 192 192" "218 182 182" "256 256 256" "182 218 182" "91 109 91"; do
  t=$(echo $g | tr ' ' 'x')
  $B/step_parts $g > $W/parts_$t.txt 2>&1; cat $W/parts_$t.txt
done
for g in "182 218 182" "256 256 256"; do
  t=$(echo $g | tr ' ' 'x')
  FFDP_BLUR_INPLACE=ring $B/step_parts $g > $W/parts_${t}_ring.txt 2>&1; echo "ring:"; cat $W/parts_${t}_ring.txt
done
for g in "182 218 182" "256 256 256"; do
  t=$(echo $g | tr ' ' 'x')
  FFDP_FUSE_STEP=0 $B/step_parts $g > $W/parts_${t}_nofuse.txt 2>&1; echo "FFDP_FUSE_STEP=0:"; grep -E "grid|whole" $W/parts_${t}_nofuse.txt
done
# gzip writers: the original, the batch loop (e8f4919), the barrier-free loop over every block
mkdir -p /tmp/o
for r in 1 2; do for v in old new new2; do echo "wt_$v 16: $(OMP_NUM_THREADS=16 $B/wt_$v /tmp/o/wt_$v.nii.gz | tr '\n' ' ')" | tee -a $W/wt.txt; done; done
md5sum /tmp/o/wt_*.nii.gz | tee -a $W/wt.txt
save
