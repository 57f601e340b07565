/* CPU sample operator, float and double instances (see ops.h). */
#include "ops/cpu_common.h"

#define REAL float
#define SUFFIX f32
#define FFDP_SAMPLE_SIMD3 1 /* 3-channel taps four floats wide (sample_impl.h) */
#include "ops/interp_impl.h"
#include "ops/sample_impl.h"
#undef FFDP_SAMPLE_SIMD3
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX f64
#define FFDP_SAMPLE_SIMD3 0
#include "ops/interp_impl.h"
#include "ops/sample_impl.h"
#undef REAL
#undef SUFFIX

