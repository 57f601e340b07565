#!/bin/sh
# On the GPU machine: build ffdp with CUDA against carried Debian packages (.device/deps),
# run the kernel check/bench, then end-to-end registrations with --device cuda on the shared
# brains (.device/data). Results land in $OUT (or ./e2e_out).
#   carry: .device/deps .device/data
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-e2e_out}
mkdir -p "$OUT"
deps=$PWD/.device/deps/usr data=$PWD/.device/data
export LD_LIBRARY_PATH=$deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
lib=$deps/lib/x86_64-linux-gnu
ls $deps/include/nifti/nifti2_io.h $lib/libnifti2.so > /dev/null || { echo "carried packages missing under $deps"; exit 1; }
cmake -S . -B /tmp/ffdp-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DNIFTI2_INCLUDE_DIR=$deps/include/nifti -DNIFTI2_LIBRARY=$lib/libnifti2.so -DZNZ_LIBRARY=$lib/libznz.so \
  -DCJSON_LIBRARY=$lib/libcjson.so -DCJSON_INCLUDE_DIR=$deps/include \
  -DBUILD_TESTING=OFF > /tmp/build.log 2>&1 && cmake --build /tmp/ffdp-build -j16 >> /tmp/build.log 2>&1 \
  || { tail -30 /tmp/build.log; exit 1; }
ffdp=/tmp/ffdp-build/ffdp
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
sh bench/gpu/run.sh "${N:-256}" > "$OUT/gpu_ops.txt" 2>&1; tail -14 "$OUT/gpu_ops.txt"
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
# at most 8 files come back: gpu_ops.txt, device.txt and one JSON per run; logs stay in /tmp
run() { # device, name, args...
  dev=$1 name=$2; shift 2
  "$ffdp" register "$@" -o /tmp/e2e_${name}_ --device $dev --json "$OUT/$name.json" > /tmp/$name.log 2>&1
  echo "== $name on $dev (rc $?)"; grep -E "stage [0-9] |registration|NCC|error" /tmp/$name.log
}
run cuda small_greedy -f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz --greedy
run cuda small_syn -f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz --syn
run cuda medium_greedy -f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz \
  --transform Rigid $cc --transform Affine $cc --transform "Greedy[0.5,1.5,1.5]" $cc --shrink-factors 4x2x1
run cuda medium_syn -f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz \
  --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc --shrink-factors 4x2x1
run cuda half_mm_syn -f $data/ch2better.nii.gz -m $data/T1_head_2mm.nii.gz --syn
run cpu small_syn_cpu16 -f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz --syn
