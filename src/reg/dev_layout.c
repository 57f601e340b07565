/* Sizes and offsets of the CUDA stages' buffers (see dev_layout.h). */
#include "reg/dev_layout.h"
#include <stdlib.h>
#include <string.h>
#include "ops/ops.h"

static void add(reg_layout *L, int id, const char *name, size_t bytes) {
  const size_t align = 256; /* every buffer starts on a 256-byte boundary, as cudaMalloc's do */
  L->name[id] = name;
  L->off[id] = L->total;
  L->bytes[id] = bytes;
  L->total += (bytes + align - 1) / align * align;
  if (id + 1 > L->n) L->n = id + 1;
}

static void reset(reg_layout *L) {
  memset(L, 0, sizeof *L);
  L->mask[0] = L->mask[1] = L->mask[2] = -1;
  L->spare = -1;
}

static void add_masks(reg_layout *L, int masks, int64_t n, int64_t nmask) {
  if (masks & REG_HAS_FIXED_MASK) L->mask[REG_MASK_FIXED] = L->n, add(L, L->n, "fixed mask", (size_t)n);
  if (masks & REG_HAS_MOVING_MASK) {
    L->mask[REG_MASK_MOVING] = L->n, add(L, L->n, "moving mask (sampled as an image)", (size_t)nmask * sizeof(float));
    L->mask[REG_MASK_SCORED] = L->n, add(L, L->n, "scored voxels (both masks)", (size_t)n);
  }
}

/* What a buffer's size follows: the stored voxels of the rank's slab, the whole moving
 * image, or the whole fixed image (SyN samples it at warped points). */
enum { SLAB, MOVING, FIXED };

/* Buffers listed in layout order: name and size in floats (or state values). */
typedef struct {
  int id;
  const char *name;
  double per_voxel; /* multiples of the slab's stored voxels */
  int sized, kind;  /* SLAB, MOVING or FIXED / FIELD, STATE (optimiser state) or IMAGE */
} buf_spec;
enum { FIELD, STATE, IMAGE };

static void build(reg_layout *L, const buf_spec *b, int nb, int64_t n, int64_t nf, int64_t nm, int bf16_state,
                  int64_t nmom, int coarse, int coded, int64_t ring, int ring_id) {
  reset(L);
  const size_t es[3] = {sizeof(float), bf16_state ? 2 : 4, coded ? 2 : 4}; /* bytes per value, by kind */
  for (int i = 0; i < nb; i++) {
    size_t count = b[i].sized == MOVING    ? (size_t)nm
                   : b[i].sized == FIXED   ? (size_t)nf
                   : b[i].kind == STATE    ? (size_t)nmom /* on the stored voxels or the coarse grid */
                                           : (size_t)(b[i].per_voxel * (double)n);
    add(L, b[i].id, b[i].name, count * es[b[i].kind]);
  }
  if (coarse && nmom > ring) ring = nmom; /* it also holds the coarse step's transient */
  add(L, ring_id, coarse ? "smoothing ring / coarse step's transient" : "smoothing ring (xy-filtered planes)",
      (size_t)ring * sizeof(float));
  add(L, L->n, "reduction scratch", REG_RED_FLOATS * sizeof(float));
}

int64_t reg_blur_ring_planes(int64_t nx, int64_t ny, int64_t nstored, int r) {
  const int64_t P3 = 3 * nx * ny;
  if (P3 <= 0 || nstored <= 0 || r < 1) return 0;
  if (r > REG_RING_MAXR) return nstored;
  const char *e = getenv("FFDP_RING_MB"); /* comparisons of ring sizes; the planner reads it too */
  const int64_t budget = e && atof(e) > 0 ? (int64_t)(atof(e) * 1048576.0) : REG_RING_BYTES;
  int64_t q = budget / (P3 * (int64_t)sizeof(float));
  /* chunks of at least max(8r, 8) planes: the z pass of a chunk reads its 2r neighbouring planes
   * again, a quarter more at most (at 1376^2 planes, chunks of 10 planes cost 7 % more per
   * iteration than chunks of 40: bench/gpu/NOTES.md run 99) */
  const int64_t least = 2 * r + (8 * r > 8 ? 8 * r : 8);
  if (q < least) q = least;
  return q < nstored ? q : nstored;
}

int64_t reg_step_ring_floats(int64_t nx, int64_t ny, int64_t nstored, double grad_sigma) {
  const int64_t ring = 3 * nx * ny * reg_blur_ring_planes(nx, ny, nstored, (int)ffdp_blur_radius(grad_sigma));
  return ring > nx * ny ? ring : nx * ny; /* also the last plane of a shared gradient (step_cuda.h) */
}

int reg_grad_shared(int64_t n) { return n >= REG_SHARED_GRAD_MIN; }

void reg_layout_greedy(int64_t n, int64_t nm, int bf16_state, int64_t nmom, int coarse, int masks, int64_t nmask, int64_t ring,
                       reg_layout *L) {
  const double gm = reg_grad_shared(n) ? 0 : 1; /* else in the gradient field's last third */
  const int coded = (masks & REG_CODED_IMAGES) != 0;
  const buf_spec b[] = {{GR_F, coded ? "fixed image (16-bit codes)" : "fixed image", 1, SLAB, IMAGE},
                        {GR_M, coded ? "moving image (16-bit codes)" : "moving image", 0, MOVING, IMAGE},
                        {GR_U, "warp", 3, SLAB, FIELD},
                        {GR_GU, coded ? "warp gradient / warped + fixed / next warp"
                                      : "warp gradient / warped image / next warp", 3, SLAB, FIELD},
                        {GR_GM, "metric gradient", gm, SLAB, FIELD},
                        {GR_AM, "Adam first moment", 3, SLAB, STATE},
                        {GR_AV, "Adam second moment", 3, SLAB, STATE}};
  build(L, b, 7, n, n, nm, bf16_state, nmom, coarse, coded, ring, GR_RING);
  add_masks(L, masks, n, nmask);
}

void reg_layout_syn(int64_t n, int64_t nf, int64_t nm, int bf16_state, int64_t nmom, int coarse, int masks, int64_t nmask,
                    int64_t ring, reg_layout *L) {
  const double gf = reg_grad_shared(n) ? 0 : 1; /* else in the gradient field's last third */
  const int coded = (masks & REG_CODED_IMAGES) != 0;
  const buf_spec b[] = {{SY_F, coded ? "fixed image (16-bit codes)" : "fixed image", 0, FIXED, IMAGE},
                        {SY_M, coded ? "moving image (16-bit codes)" : "moving image", 0, MOVING, IMAGE},
                        {SY_VF, "fixed-side half warp", 3, SLAB, FIELD},
                        {SY_VM, "moving-side half warp", 3, SLAB, FIELD},
                        {SY_GU, "warp gradient / midpoint images / next warp", 3, SLAB, FIELD},
                        {SY_GF, "metric gradient (fixed side)", gf, SLAB, FIELD},
                        {SY_GM, "metric gradient (moving side)", 1, SLAB, FIELD},
                        {SY_AFM, "Adam first moment (fixed side)", 3, SLAB, STATE},
                        {SY_AFV, "Adam second moment (fixed side)", 3, SLAB, STATE},
                        {SY_AMM, "Adam first moment (moving side)", 3, SLAB, STATE},
                        {SY_AMV, "Adam second moment (moving side)", 3, SLAB, STATE}};
  build(L, b, 11, n, nf, nm, bf16_state, nmom, coarse, coded, ring, SY_RING);
  add_masks(L, masks, n, nmask);
}

void reg_layout_spare(reg_layout *L, int64_t nx, int64_t ny, int ranks, int64_t n, double grad_sigma, double budget) {
  const char *e = getenv("FFDP_SPARE_FIELD");
  if ((e && !strcmp(e, "0")) || ranks != 1 || !(budget > 0) || nx * ny < REG_SPARE_PLANE || L->n >= REG_LAYOUT_MAX ||
      ffdp_blur_radius(grad_sigma) < 1) /* an unsmoothed gradient stays where it is */
    return;
  const size_t bytes = 3 * (size_t)n * sizeof(float);
  /* an eighth more: the previous level's field, which the stage keeps on the device into this
   * level's start where it finds room (else it goes through the host) */
  const double need = (double)L->total + (double)REG_OP_SCRATCH_BYTES + (double)bytes * 1.125 + REG_SPARE_MARGIN;
  if (need > budget) return;
  L->spare = L->n;
  add(L, L->n, "smoothed gradient (spare memory)", bytes);
}

void reg_layout_images_apart(reg_layout *L, int first) {
  if (first <= 0 || first >= L->n) return;
  const size_t skip = L->off[first];
  for (int b = 0; b < L->n; b++) {
    if (b < first) L->off[b] = 0, L->bytes[b] = 0;
    else L->off[b] -= skip;
  }
  L->total -= skip;
}

void reg_layout_syn_final(int64_t n, int three, reg_layout *L) {
  const size_t v = 3 * (size_t)n * sizeof(float);
  reset(L);
  add(L, SF_VF, "fixed-side half warp", v);
  add(L, SF_VM, "moving-side half warp", v);
  add(L, SF_W, three ? "inverse being built / composed warp" : "inverse being built", v);
  if (three) return;
  add(L, SF_TMP, "inversion scratch", v);
  add(L, SF_OUT, "composed warp", v);
}

void reg_layout_linear(int64_t n, int64_t nplanes, int64_t nm, int masks, reg_layout *L) {
  const size_t f = sizeof(float);
  reset(L);
  add(L, LI_F, "fixed image", (size_t)n * f);
  add(L, LI_M, "moving image", (size_t)nm * f);
  add(L, LI_MOVED, "warped image", (size_t)n * f);
  add(L, LI_G, "image gradient", (size_t)n * f);
  add(L, LI_GB, "affine gradient per plane", (size_t)nplanes * 12 * sizeof(double));
  add_masks(L, masks, n, nm);
}
