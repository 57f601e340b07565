/* ffdp: scalable multimodal image registration. Umbrella header. */
#ifndef FFDP_FFDP_H
#define FFDP_FFDP_H
#include "ffdp/error.h"
#include "ffdp/geometry.h"
#include "ffdp/volume.h"
#include "ffdp/register.h"
#include "ffdp/plan.h"
#define FFDP_VERSION_STRING "0.1.0"
#endif
