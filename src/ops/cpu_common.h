/* Includes shared by the CPU operator translation units. */
#ifndef FFDP_OPS_CPU_COMMON_H
#define FFDP_OPS_CPU_COMMON_H
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "ops/kernels1d.h"
#include "ops/ops.h"
#include "ops/tmpl.h"
#endif
