/* CPU blur operator, float and double instances (see ops.h). */
#include "ops/cpu_common.h"

#define REAL float
#define SUFFIX f32
#include "ops/filter_impl.h"
#include "ops/blur_impl.h"
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX f64
#include "ops/filter_impl.h"
#include "ops/blur_impl.h"
#undef REAL
#undef SUFFIX

