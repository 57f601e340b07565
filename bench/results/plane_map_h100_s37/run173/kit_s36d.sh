#!/bin/sh
# Session 36, fourth run: branch s36-plane-map (main cae02ab+ with FFDP_SAMPLE_MAP=plane: the
# samplers' forward and du-only backward on 128 consecutive plane voxels a block, still marching
# z; FFDP_COMPOSE_MAP=plane the fused Adam + composition on the same map, against the index map
# main takes at such rows). "plane" below sets both. gpu_ops 200^3 both ways and 256^3 plane
# (every kernel against the CPU); step_parts 182 and 200; the medium preset (the same bits),
# bf16 moments on main's default (rows: 0fefd0d470bd).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s36d}; W=/tmp/s36d_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s36d.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b36d; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s36d.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
row() { grep -E "^\| (sample fwd \(affine\+u\)|sample bwd \(du only\)|compose fwd \(u|adam step \+ compose \(fused)" $1 | cut -d'|' -f2,4,6 | tr '\n' ';'; }
for run in "200 plane" "200 main" "256 plane"; do
  set -- $run; e=; [ $2 = plane ] && e=plane
  FFDP_SAMPLE_MAP=$e FFDP_COMPOSE_MAP=$e timeout 100 $B/gpu_ops $1 > $W/gpu_ops_$1_$2.txt 2>&1
  echo "gpu_ops $1 $2 rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_$1_$2.txt) $(row $W/gpu_ops_$1_$2.txt)" | tee -a $W/summary.txt
  save
done
sp() { awk -F'|' '/Adam|sample an|its backward|compose_fwd|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,14), $4, $5}'; }
for nx in 182; do
  for map in plane main; do
    e=; [ $map = plane ] && e=plane
    echo "nx $nx $map: $(FFDP_SAMPLE_MAP=$e FFDP_COMPOSE_MAP=$e $B/ffdp_step_parts $nx 218 182 | sp)" | tee -a $W/summary.txt
  done
done
save
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
medbf="$med --state-precision bf16"
export FFDP_TRACE=1
mkdir -p /tmp/o
for run in "med plane" "med main" "med plane" "med main"; do
  set -- $run; c=$1; e=; [ $2 = plane ] && e=plane
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_SAMPLE_MAP=$e FFDP_COMPOSE_MAP=$e $B/ffdp register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${c}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) $(grep -E 'SyN level 3: [0-9]+ it' $W/${c}_$2.log | grep -oE '\([0-9.]+ ms each')" | tee -a $W/summary.txt
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_SAMPLE_MAP=plane -x FFDP_COMPOSE_MAP=plane -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2_plane.txt 2>&1
echo "ranks np2 plane rc $?: $(grep -E 'checks' $W/ranks_np2_plane.txt | tail -1)" | tee -a $W/summary.txt
