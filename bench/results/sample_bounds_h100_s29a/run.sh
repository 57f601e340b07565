#!/bin/sh
# Prepared in session 28 for the next session (not run): register bounds for two more sampler
# kernels, built from dd95e2c with one line changed each (gpu_ops_c10: sample_fwd3_kernel, the
# composition, bounded to 10 blocks of 128: 48 registers, 8 bytes spilled; gpu_ops_d12: the
# du-only backward bounded to 12 blocks: 40 registers, 16 bytes spilled) against dd95e2c,
# alternating; checks at 100^3 for the variants. A win goes into src/ops/sample.cu by hand (the
# same one-line change) and needs its own final run.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s29a}; W=/tmp/s29a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s29a.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b29a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s29a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for v in gpu_ops_c10 gpu_ops_d12; do
  GPU_OPS_REPS=1 timeout 60 $B/$v 100 > $W/check100_$v.txt 2>&1; echo "$v 100 rc $?: $(grep -E 'agree|FAIL' $W/check100_$v.txt | head -2)"
done
n=0
for v in gpu_ops_dd95e2c gpu_ops_c10 gpu_ops_d12 gpu_ops_dd95e2c gpu_ops_c10 gpu_ops_d12; do
  n=$((n+1))
  timeout 80 $B/$v 256 > $W/ab_${n}_$v.txt 2>&1
  echo "$v: $(grep -E '^\| (sample fwd \(|sample bwd \((du only|du, dA)\) |compose fwd \(|adam step \+ compose \(|sample bwd \(du only\), image as 16)' $W/ab_${n}_$v.txt | cut -d'|' -f2,4,6 | tr '\n' ' ')"
  grep -E "agree|FAIL" $W/ab_${n}_$v.txt
  save
done
