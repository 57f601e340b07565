/* Transform chains (ffdp apply). */
#ifndef FFDP_REG_CHAIN_H
#define FFDP_REG_CHAIN_H
#include "core/volume_internal.h"
#include "ffdp/register.h"

#define FFDP_MAX_CHAIN 16
typedef struct ffdp_chain_item {
  ffdp_mat4 affine;          /* used when field == NULL */
  const ffdp_volume *field;  /* displacement in RAS mm on its own grid: x -> x + field(x) */
} ffdp_chain_item;

ffdp_status ffdp_chain_apply(const ffdp_chain_item *items, int n, const ffdp_volume *input, const int64_t dim[3],
                             ffdp_mat4 vox2world, int interp, ffdp_volume **out, ffdp_error *err);
#endif
