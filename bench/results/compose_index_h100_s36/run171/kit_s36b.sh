#!/bin/sh
# Session 36, second run: branch s36-compose-auto (main + the fused Adam + composition on the
# index map where rows are not multiples of 32 voxels; the samplers keep their rows: run 170).
# Default (auto) against FFDP_COMPOSE_MAP=rows: gpu_ops 200^3 (auto = index map) and 256^3
# (auto = rows) timed; step_parts; 2 GPU ranks; presets with md5 (the same bits expected).
# carry: .device/deps .device/data .device/pack
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s36b}; W=/tmp/s36b_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s36b.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b36b; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s36b.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
sp() { awk -F'|' '/Adam|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,14), $4, $5}'; }
for n in 200 256; do
  for map in auto rows; do
    e=; [ $map = rows ] && e=rows
    FFDP_COMPOSE_MAP=$e timeout 150 $B/gpu_ops $n > $W/gpu_ops_${n}_$map.txt 2>&1
    echo "gpu_ops $n $map rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_${n}_$map.txt) $(grep -E '^\| adam step \+ compose \(fused' $W/gpu_ops_${n}_$map.txt)" | tee -a $W/summary.txt
  done
  save
done
for nx in 182 192 200 256; do
  for map in auto rows; do
    e=; [ $map = rows ] && e=rows
    echo "nx $nx $map: $(FFDP_COMPOSE_MAP=$e $B/ffdp_step_parts $nx 218 182 | sp)" | tee -a $W/summary.txt
  done
done
$B/ffdp_step_parts 182 218 182 > $W/parts_182_auto.txt 2>&1
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
lean="$med --state-resolution half --image-precision u16"
medbf="$med --state-precision bf16"
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
half="-f $D/ch2better.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
gmed="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --greedy"
export FFDP_TRACE=1
mkdir -p /tmp/o
for c in med medbf gmed small half lean; do
  maps="auto rows"; [ $c = med ] && maps="auto rows rows auto"
  for map in $maps; do
    e=; [ $map = rows ] && e=rows
    eval args=\$$c
    rm -f /tmp/o/${c}_*
    FFDP_COMPOSE_MAP=$e $B/ffdp register $args -o /tmp/o/${c}_ --device cuda --json /tmp/o/${c}_j.json > $W/${c}_$map.log 2>&1
    rc=$?; cp /tmp/o/${c}_j.json $W/${c}_$map.json 2>/dev/null; rm -f /tmp/o/${c}_j.json
    echo "$c $map rc $rc: $(tr '\r' '\n' < $W/${c}_$map.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) $(grep -E '(SyN|greedy) level 3: ' $W/${c}_$map.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
  done
  save
done
