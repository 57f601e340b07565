#!/bin/sh
# On the GPU machine: build ffdp with CUDA against carried Debian packages (.device/deps), or
# use binaries built elsewhere for sm_90 (BIN=dir holding ffdp, ffdp_capacity, gpu_ops), run the
# kernel check/bench, end-to-end registrations with --device cuda on the shared brains
# (.device/data), with COARSE=1 the same with the moments on the coarse grid, with IMG16=1 with
# the images as 16-bit codes, and with CAPACITY=1 the capacity benchmark (CAPACITY_RESOLUTION=half:
# coarse moments; CAPACITY_IMAGES=u16: coded images). Results land in $OUT (or
# ./e2e_out): device.txt, gpu_ops.txt, e2e.tar (one JSON per run), capacity.jsonl.
#   carry: .device/deps .device/data [.device/bin]
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-e2e_out}
mkdir -p "$OUT" /tmp/e2e_json
deps=$PWD/.device/deps/usr data=$PWD/.device/data
lib=$deps/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$lib:${LD_LIBRARY_PATH:-}
if [ -n "${BIN:-}" ]; then  # prebuilt: only the carried libraries are needed
  ls $lib/libnifti2.so* > /dev/null || { echo "carried libraries missing under $lib"; exit 1; }
  ffdp=$BIN/ffdp capacity=$BIN/ffdp_capacity gpu_ops=$BIN/gpu_ops
else
  ls $deps/include/nifti/nifti2_io.h $lib/libnifti2.so > /dev/null || { echo "carried packages missing under $deps"; exit 1; }
  cmake -S . -B /tmp/ffdp-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DNIFTI2_INCLUDE_DIR=$deps/include/nifti -DNIFTI2_LIBRARY=$lib/libnifti2.so -DZNZ_LIBRARY=$lib/libznz.so \
    -DCJSON_LIBRARY=$lib/libcjson.so -DCJSON_INCLUDE_DIR=$deps/include \
    -DBUILD_TESTING=OFF > /tmp/build.log 2>&1 && cmake --build /tmp/ffdp-build -j16 >> /tmp/build.log 2>&1 \
    || { tail -30 /tmp/build.log; exit 1; }
  NORUN=1 BUILD=/tmp/ffdp-gpu sh bench/gpu/run.sh || exit 1
  ffdp=/tmp/ffdp-build/ffdp capacity=/tmp/ffdp-build/ffdp_capacity gpu_ops=/tmp/ffdp-gpu/gpu_ops
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
if [ -z "${SKIP_OPS:-}" ]; then
  $gpu_ops "${N:-256}" > "$OUT/gpu_ops.txt" 2>&1; tail -16 "$OUT/gpu_ops.txt"
fi
cc="--metric CC[5] --convergence [200x100x50,1e-6,10]"
run() { # device, name, args...
  dev=$1 name=$2; shift 2
  "$ffdp" register "$@" -o /tmp/e2e_${name}_ --device $dev --json /tmp/e2e_json/$name.json > /tmp/$name.log 2>&1
  echo "== $name on $dev (rc $?)"; grep -E "stage [0-9] |registration|NCC|error" /tmp/$name.log
}
small="-f $data/MNI152_T1_2mm.nii.gz -m $data/T1_head_2mm.nii.gz"
medium="-f $data/MNI152_T1_1mm_brain.nii.gz -m $data/t1_brain.nii.gz"
if [ -z "${SKIP_E2E:-}" ]; then
  run cuda small_greedy $small --greedy
  run cuda small_syn $small --syn
  run cuda medium_greedy $medium --transform Rigid $cc --transform Affine $cc --transform "Greedy[0.5,1.5,1.5]" $cc --shrink-factors 4x2x1
  run cuda medium_syn $medium --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc --shrink-factors 4x2x1
  run cuda medium_syn_bf16 $medium --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc \
    --shrink-factors 4x2x1 --state-precision bf16
  run cuda half_mm_syn -f $data/ch2better.nii.gz -m $data/T1_head_2mm.nii.gz --syn
  run cpu small_syn_cpu16 $small --syn
  tar -C /tmp/e2e_json -cf "$OUT/e2e.tar" .
fi
# the small SyN, the medium greedy and SyN (fp32 and bf16 state) and the 0.5 mm SyN with extra
# options, named NAME_TAG
variants() { # tag, options...
  t=$1; shift
  run cuda small_syn_$t $small --syn "$@"
  run cuda medium_greedy_$t $medium --transform Rigid $cc --transform Affine $cc --transform "Greedy[0.5,1.5,1.5]" $cc \
    --shrink-factors 4x2x1 "$@"
  run cuda medium_syn_$t $medium --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc \
    --shrink-factors 4x2x1 "$@"
  run cuda medium_syn_${t}_bf16 $medium --transform Rigid $cc --transform Affine $cc --transform "SyN[0.5,1.5,1.5]" $cc \
    --shrink-factors 4x2x1 "$@" --state-precision bf16
  run cuda half_mm_syn_$t -f $data/ch2better.nii.gz -m $data/T1_head_2mm.nii.gz --syn "$@"
}
if [ -n "${COARSE:-}" ]; then  # the Adam moments on the coarse grid (--state-resolution half)
  variants half --state-resolution half
  tar -C /tmp/e2e_json -cf "$OUT/e2e_coarse.tar" .
fi
if [ -n "${IMG16:-}" ]; then  # the images as 16-bit codes (--image-precision u16), also with coarse moments
  variants u16 --image-precision u16
  variants half_u16 --image-precision u16 --state-resolution half
  tar -C /tmp/e2e_json -cf "$OUT/e2e_u16.tar" .
fi
if [ -n "${CAPACITY:-}" ]; then
  timeout "${CAPACITY_TIMEOUT:-300}" $capacity 0.01 "${CAPACITY_STATE:-both}" 4096 "${CAPACITY_RESOLUTION:-full}" \
    "${CAPACITY_IMAGES:-fp32}" \
    > "$OUT/capacity.jsonl" 2> /tmp/capacity.log
  echo "capacity rc $?"; cat /tmp/capacity.log "$OUT/capacity.jsonl"
fi
