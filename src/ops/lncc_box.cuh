// Box-window LNCC on the GPU, the lean kernel of lncc_box.cu (lncc.cu dispatches to it).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace ffdp_cuda {

struct LnccBoxGeo {
  int nx, ny, nz;
  long long zlo, z0, z1;  // first stored plane, owned planes
  float eps, norm;
};

// Returns 0 or a CUDA error; -1 when the window has no compiled tile (the caller falls back).
int lncc_box_launch(int window, const LnccBoxGeo &g, const float *F, const float *M, const uint8_t *mask, float *gM,
                    float *gF, double *loss, cudaStream_t st);

}  // namespace ffdp_cuda
