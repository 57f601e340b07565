// Box-window LNCC on the GPU, the lean kernel of lncc_box.cu (lncc.cu dispatches to it).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>
#include "ops/cuda_common.cuh"

namespace ffdp_cuda {

struct LnccBoxGeo {
  int nx, ny, nz;
  long long zlo, z0, z1;  // first stored plane, owned planes
  float eps, norm;
};

// Returns 0 or a CUDA error; -1 when the window has no compiled tile, a plane is too large for
// the kernel's 32-bit offsets or the GPU's shared memory a block is too small for the tile (the
// caller falls back to lncc.cu's kernel).
int lncc_box_launch(int window, const LnccBoxGeo &g, const float *F, const float *M, const uint8_t *mask, float *gM,
                    float *gF, LossSink loss, cudaStream_t st);

}  // namespace ffdp_cuda
