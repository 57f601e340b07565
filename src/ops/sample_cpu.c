/* CPU sample operator, float and double instances (see ops.h). */
#include "ops/cpu_common.h"

#define REAL float
#define SUFFIX f32
#include "ops/interp_impl.h"
#include "ops/sample_impl.h"
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX f64
#include "ops/interp_impl.h"
#include "ops/sample_impl.h"
#undef REAL
#undef SUFFIX

