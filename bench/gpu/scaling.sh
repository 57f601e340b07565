#!/bin/sh
# On a machine with several GPUs: strong scaling of the same registrations on 1 and N GPUs (one
# rank per GPU, NCCL halos), the issue-5 table: the medium pair and the 0.5 mm brain (SyN) and a
# gigavoxel pair (bench/gigavoxel/run.sh, deep schedule). Prints per run the registration time,
# rank 0's communication time and share, and the parallel efficiency t1 / (N tN); JSON and logs
# land in $OUT (one tar file: the GPU machine returns few files).
#   carry: .device/deps .device/data .device/bin       (binaries built for sm_90)
#   env: NPS="1 2" (rank counts), GV_SIZE=1008x1008x1008 (empty: no gigavoxel run), OUT
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-scaling_out} BIN=${BIN:-$PWD/.device/bin} NPS=${NPS:-1 2} GV_SIZE=${GV_SIZE-1008x1008x1008}
mkdir -p "$OUT"
trap 'tar -C "$OUT" -cf "$OUT.tar" . && rm -rf "$OUT"' EXIT
data=$PWD/.device/data
nccl=$(find /usr /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.device/deps/usr/lib/x86_64-linux-gnu:$(dirname "${nccl:-/x/x}"):${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
ngpu=$(nvidia-smi -L | wc -l)
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
medium="-f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz --transform Rigid $cc --transform Affine $cc
  --transform SyN[0.5,1.5,1.5] $cc --shrink-factors 4x2x1"
half="-f $data/ch2better.nii.gz -m $data/T1_head_2mm.nii.gz --syn"
num() { grep -o "\"$2\":[^,}]*" "$1" 2>/dev/null | head -1 | sed 's/.*:[[:space:]]*//'; }
for np in $NPS; do
  [ "$np" -gt "$ngpu" ] && { echo "skipping $np ranks: $ngpu GPU(s)"; continue; }
  threads=$(( $(nproc) / np ))
  launch=""
  [ "$np" -gt 1 ] && launch="mpirun --allow-run-as-root -np $np -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS"
  for name in medium half; do
    eval args=\$$name
    OMP_NUM_THREADS=$threads timeout 300 $launch "$BIN/ffdp" register $args --device cuda -o /tmp/sc_${name}_np${np}_ \
      --json "$OUT/${name}_np$np.json" > "$OUT/${name}_np$np.log" 2>&1
    echo "== $name, $np GPU(s): rc $?"
  done
  if [ -n "$GV_SIZE" ]; then
    NP=$np SIZE=$GV_SIZE SCHEDULE=deep TAR= OUT="$OUT/gv_np$np" FFDP_TRACE=1 sh bench/gigavoxel/run.sh > "$OUT/gv_np$np.txt" 2>&1
    cp "$OUT/gv_np$np/register.json" "$OUT/gv_np$np.json" 2>/dev/null
    grep -E "rc|Dice" "$OUT/gv_np$np.txt"
    rm -rf /tmp/gv
  fi
done
{
echo "| run | GPUs | registration s | comm s (rank 0) | comm share | efficiency | NCC |"
echo "|---|---|---|---|---|---|---|"
for name in medium half gv; do
  t1=""
  for np in $NPS; do
    j="$OUT/${name}_np$np.json"
    [ -f "$j" ] || continue
    t=$(num "$j" registration_seconds) c=$(num "$j" comm_seconds_rank0) n=$(num "$j" global_ncc)
    [ -z "$t1" ] && t1=$t
    awk -v r="$name" -v p="$np" -v t="$t" -v c="${c:-0}" -v t1="$t1" -v n="$n" \
      'BEGIN { printf "| %s | %d | %.2f | %.2f | %.0f %% | %.0f %% | %.4f |\n", r, p, t, c, (t > 0 ? 100 * c / t : 0), (t > 0 ? 100 * t1 / (p * t) : 0), n }'
  done
done
} | tee "$OUT/table.md"
