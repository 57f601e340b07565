#!/bin/sh
# Session 29, call 3: the one-pass blur's x filter in items of eight outputs (g_x8: strides
# padded to 3 mod 8, 260 instead of 360 shared wavefronts a plane at radius 5) against four
# (g_x4, run 151's n10 kernel); the linear stage's planes kernel specialized for no
# displacement (both; FFDP_PLANES_GENERIC=1 the generic instance) and with 16 rows a thread
# (g_x8r16), alternating twice at 256^3; checks at 100^3 and 200^3.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../../.."
P=$PWD/.device/pack
OUT=${OUT:-/tmp/s29c}; W=/tmp/s29c_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s29c.tar . ; }
trap save EXIT
export OMP_NUM_THREADS=16
B=/tmp/b29c; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s29c.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
for N in 100 200; do
  for v in g_x8 g_x8r16; do
  GPU_OPS_REPS=1 timeout 100 $B/$v $N > $W/check${N}_$v.txt 2>&1; echo "$v $N rc $?: $(grep -E 'agree|FAIL' $W/check${N}_$v.txt | head -2)"
  awk -F'|' 'NF>6 && ($7+0 >= 1e-4)' $W/check${N}_$v.txt | cut -c1-120
  done
done
save
rows='^\| (blur vec3 sigma=1.(5|2) \||blur vec3 \+ largest norm \(|blur vec3 one pass, y-blocked rows \(|sample bwd, linear|adam step \+ compose \(|compose fwd \(|mse fwd)'
n=0
for rep in 1 2; do
for v in g_x4 g_x8 g_x8r16 generic; do
  n=$((n+1))
  if [ $v = generic ]; then FFDP_PLANES_GENERIC=1 timeout 100 $B/g_x8 256 > $W/ab_${n}_$v.txt 2>&1
  else timeout 100 $B/$v 256 > $W/ab_${n}_$v.txt 2>&1; fi
  echo "$v: $(grep -E "$rows" $W/ab_${n}_$v.txt | cut -d'|' -f2,4,6,7 | tr '\n' ' ')"
  grep -E "agree|FAIL|copy:" $W/ab_${n}_$v.txt | tr '\n' ' '; echo
  save
done
done
