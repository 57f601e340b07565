#!/bin/sh
# Session 36 (the s35a kit + the timed gpu_ops tables at 256^3 and 200^3 both ways): branch s34-compose-linear (one build; FFDP_COMPOSE_MAP=linear picks the
# index-mapped Adam + composition, FFDP_SAMPLE_MAP=linear the index-mapped samplers and
# composition). 0) gpu_ops at 200^3 (rows not whole lines) both ways: every kernel against the
# CPU; 1) step_parts over row lengths both ways; 2) ranks; 3) presets alternating: the same md5.
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s36a}; W=/tmp/s36a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s36a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b35a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s35a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
sp() { awk -F'|' '/Adam|whole|sample an|its backward|compose_fwd/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,14), $4, $5}'; }
for nx in 182 192 200 176 256; do
  for map in rows linear; do
    echo "nx $nx $map: $(FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map $B/step_parts_l $nx 218 182 | sp)" | tee -a $W/summary.txt
  done
done
for zb in 26 91; do  # the row kernels with z-blocks that divide 182 planes (no march imbalance)
  echo "182x218x182 rows ZB=$zb: $(FFDP_SAMPLE_ZB=$zb $B/step_parts_l 182 218 182 | sp)" | tee -a $W/summary.txt
done
for map in rows linear; do
  FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map $B/step_parts_l 182 218 182 > $W/parts_182_$map.txt 2>&1
  echo "182x218x182 FUSE_STEP=0 $map: $(FFDP_FUSE_STEP=0 FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map $B/step_parts_l 182 218 182 | grep whole | sp)" | tee -a $W/summary.txt
done
save
for map in rows linear; do
  GPU_OPS_REPS=1 FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map timeout 120 $B/gpu_ops 200 > $W/gpu_ops_200_$map.txt 2>&1
  echo "gpu_ops 200 $map rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_200_$map.txt)" | tee -a $W/summary.txt
done
save
for n in 256 200; do
  for map in linear rows; do
    FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map timeout 150 $B/gpu_ops $n > $W/gpu_ops_${n}_${map}_timed.txt 2>&1
    echo "gpu_ops $n $map timed rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_${n}_${map}_timed.txt | tr '\n' ' ')" | tee -a $W/summary.txt
  done
  save
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for map in rows linear; do
  timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
    -x FFDP_COMPOSE_MAP=$map -x FFDP_SAMPLE_MAP=$map -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2_$map.txt 2>&1
  echo "ranks np2 $map rc $?: $(grep -E 'checks' $W/ranks_np2_$map.txt | tail -1)" | tee -a $W/summary.txt
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
lean="$med --state-resolution half --image-precision u16"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
gmed="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
export FFDP_TRACE=1
mkdir -p /tmp/o
for c in med gmed lean small half; do
  maps="rows linear"; [ $c = med ] && maps="rows linear linear rows"
  for map in $maps; do
    eval args=\$$c
    rm -f /tmp/o/${c}_*
    FFDP_COMPOSE_MAP=$map FFDP_SAMPLE_MAP=$map $B/ffdp_l register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$map.log 2>&1
    echo "$c $map rc $?: $(tr '\r' '\n' < $W/${c}_$map.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) $(grep -E '(SyN|greedy) level 3: ' $W/${c}_$map.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
  done
  save
done
