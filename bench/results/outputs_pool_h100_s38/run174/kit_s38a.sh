#!/bin/sh
# Session 38, first run. (1) host_api: the host cost of the runtime calls around each launch.
# (2) The landed source of session 37 never run as a whole (samplers on the plane map + fused
# step on the index map; in-process CUDA_MODULE_LOADING=EAGER): gpu_ops 200^3 default and
# FFDP_SAMPLE_MAP=rows and 256^3, step_parts 182 both maps, 2 GPU ranks. (3) ffdp_b (main
# a8f5f97) against ffdp_n (+ the linear levels' loss read back with the affine gradient: one
# wait an iteration instead of two; FFDP_ASYNC_LOSS=0 gives the old waits), alternating, on the
# small SyN preset (MI linear stages) and the medium CC pair: the same bits expected
# (65ff4617b255, 3922e87b6461) and the linear levels' times. (4) small preset with
# CUDA_MODULE_LOADING=LAZY against the default (now EAGER from inside ffdp).
set -u
cd "$(dirname "$0")/../.."
P=$PWD/.device/pack D=$PWD/.device/data
OUT=${OUT:-/tmp/s38a}; W=/tmp/s38a_w; rm -rf $W; mkdir -p $OUT $W
save() { tar -C $W -cf $OUT/s38a.tar . ; }
trap save EXIT
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export OMP_NUM_THREADS=16
B=/tmp/b38a; rm -rf $B; mkdir -p $B && tar -C $B -xJf $P/s38a.tar.xz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/device.txt
timeout 60 $B/host_api > $W/host_api.txt 2>&1
echo "host_api rc $?" | tee -a $W/summary.txt
cat $W/host_api.txt >> $W/summary.txt
save
small="-f $D/MNI152_T1_2mm.nii.gz -m $D/T1_head_2mm.nii.gz --syn"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
med="-f $D/MNI152_T1_1mm_brain.nii.gz -m $D/t1_brain.nii.gz --transform Rigid[0.1] $cc --transform Affine[0.1] $cc --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
export FFDP_TRACE=1
mkdir -p /tmp/o
lin() { grep -E 'linear level [0-9]: [0-9]+ it' $1 | sed 's/\[trace\] linear //; s/ iterations//' | tr '\n' ';'; }
for run in "small b" "small n" "med b" "med n" "small n" "small b" "med n" "med b" "small n0" "med n0" "small n" "med n"; do
  set -- $run; c=$1; bin=ffdp_$2; e=; [ $2 = n0 ] && bin=ffdp_n e=0
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  FFDP_ASYNC_LOSS=$e $B/$bin register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${c}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(lin $W/${c}_$2.log) $(grep -E 'SyN level [0-9]: [0-9]+ it' $W/${c}_$2.log | grep -oE '\([0-9.]+ ms each' | tr '\n' ' ')" | tee -a $W/summary.txt
  cp $W/${c}_$2.log $W/${c}_$2_last.log
done
save
for run in "small lazy" "small eager" "small lazy" "small eager"; do
  set -- $run; c=$1; e=; [ $2 = lazy ] && e=LAZY
  eval args=\$$c
  rm -f /tmp/o/${c}_*
  if [ -n "$e" ]; then CUDA_MODULE_LOADING=$e $B/ffdp_n register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1
  else env -u CUDA_MODULE_LOADING $B/ffdp_n register $args -o /tmp/o/${c}_ --device cuda > $W/${c}_$2.log 2>&1; fi
  echo "$c $2 rc $?: $(tr '\r' '\n' < $W/${c}_$2.log | grep -oE 'registration [0-9.]+ s|NCC fixed vs warped [0-9.]+' | tr '\n' ' ') $(cat /tmp/o/${c}_* | md5sum | cut -c1-12) | $(grep -E 'SyN level 1: [0-9]+ it|moments:' $W/${c}_$2.log | sed 's/\[trace\] //' | tr '\n' ';')" | tee -a $W/summary.txt
done
save
unset FFDP_TRACE
row() { grep -E "^\| (sample fwd \(affine\+u\)|sample bwd \(du only\)|compose fwd \(u|adam step \+ compose \(fused)" $1 | cut -d'|' -f2,4,6 | tr '\n' ';'; }
for run in "200 plane" "200 rows" "256 auto"; do
  set -- $run; e=; [ $2 = rows ] && e=rows
  FFDP_SAMPLE_MAP=$e timeout 100 $B/gpu_ops $1 > $W/gpu_ops_$1_$2.txt 2>&1
  echo "gpu_ops $1 $2 rc $?: $(grep -E 'CHECK|all kernels' $W/gpu_ops_$1_$2.txt) $(row $W/gpu_ops_$1_$2.txt)" | tee -a $W/summary.txt
  save
done
sp() { awk -F'|' '/Adam|sample an|its backward|compose_fwd|whole/ {n=$2; sub(/^ */,"",n); printf "%s %s%s;", substr(n,1,14), $4, $5}'; }
for map in auto rows auto rows; do
  e=; [ $map = rows ] && e=rows
  echo "nx 182 $map: $(FFDP_SAMPLE_MAP=$e $B/ffdp_step_parts 182 218 182 | sp)" | tee -a $W/summary.txt
done
save
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 90 mpirun --allow-run-as-root --oversubscribe -np 2 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS=4 -x FFDP_TEST_DEVICE=cuda \
  -x FFDP_TEST_BRAINS=$D $B/test_register_ranks > $W/ranks_np2.txt 2>&1
echo "ranks np2 rc $?: $(grep -E 'checks' $W/ranks_np2.txt | tail -1)" | tee -a $W/summary.txt
