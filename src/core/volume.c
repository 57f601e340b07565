#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include "core/volume_internal.h"
#include "core/err.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Volumes of 64 MB and more get a mapping of their own, 2 MB aligned and advised onto
 * transparent huge pages (where the kernel leaves that to madvise, as Debian and Ubuntu do):
 * page-locking them for the GPU's copies, and faulting them in, then handles 512 times fewer
 * pages. With the C library's large allocations on huge pages (its tunable, an H200 host, 1008^3
 * greedy, three runs each): the inputs page-locked in 207-221 ms instead of 366-441, the
 * registration 5.56-5.57 s instead of 5.75-6.34 (bench/gpu/NOTES.md run 198). Zeroed as calloc's.
 * FFDP_HUGEPAGES=0: calloc for every size (comparisons). */
#define HUGE_MIN ((size_t)64 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static float *volume_alloc(size_t bytes, size_t *mapped) {
  *mapped = 0;
  const char *e = getenv("FFDP_HUGEPAGES");
  if (bytes >= HUGE_MIN && !(e && e[0] == '0')) {
    const size_t len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw != MAP_FAILED) {
      char *a = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
      const size_t head = (size_t)(a - raw), tail = HUGE_PAGE - head;
      if (head) munmap(raw, head);
      if (tail) munmap(a + len, tail);
#ifdef MADV_HUGEPAGE
      madvise(a, len, MADV_HUGEPAGE); /* advice: without it (or where refused) small pages */
#endif
      *mapped = len;
      return (float *)a;
    }
  }
  return calloc(bytes / sizeof(float), sizeof(float));
}

static void volume_release(float *data, size_t mapped) {
  if (mapped) munmap(data, mapped);
  else free(data);
}

ffdp_status ffdp_volume_create(const int64_t dim[3], int ncomp, ffdp_mat4 vox2world,
                               ffdp_volume **out, ffdp_error *err) {
  *out = NULL;
  if (ncomp != 1 && ncomp != 3)
    return ffdp_fail(err, FFDP_ERR_INVALID, "volume must have 1 or 3 components, not %d", ncomp);
  for (int i = 0; i < 3; i++)
    if (dim[i] < 1)
      return ffdp_fail(err, FFDP_ERR_INVALID, "volume dimension %d is %lld (must be >= 1)", i,
                       (long long)dim[i]);
  ffdp_mat4 inv;
  if (!ffdp_mat4_inverse(vox2world, &inv))
    return ffdp_fail(err, FFDP_ERR_INVALID, "voxel-to-world matrix is singular");
  ffdp_volume *v = calloc(1, sizeof *v);
  int64_t n = dim[0] * dim[1] * dim[2] * ncomp;
  if (v) v->data = volume_alloc((size_t)n * sizeof(float), &v->mapped);
  if (!v || !v->data) {
    free(v);
    return ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate a %lldx%lldx%lld volume (%.1f MB)",
                     (long long)dim[0], (long long)dim[1], (long long)dim[2], n * 4.0 / 1e6);
  }
  memcpy(v->dim, dim, sizeof v->dim);
  v->ncomp = ncomp;
  v->vox2world = vox2world;
  v->source_dtype = FFDP_DT_FLOAT32;
  *out = v;
  return FFDP_OK;
}

ffdp_status ffdp_volume_clone(const ffdp_volume *v, ffdp_volume **out, ffdp_error *err) {
  ffdp_status s = ffdp_volume_create(v->dim, v->ncomp, v->vox2world, out, err);
  if (s) return s;
  memcpy((*out)->data, v->data, (size_t)ffdp_volume_nvox(v) * v->ncomp * sizeof(float));
  (*out)->source_dtype = v->source_dtype;
  return FFDP_OK;
}

void ffdp_volume_free(ffdp_volume *v) {
  if (!v) return;
  volume_release(v->data, v->mapped);
  free(v);
}

const int64_t *ffdp_volume_dim(const ffdp_volume *v) { return v->dim; }
int64_t ffdp_volume_nvox(const ffdp_volume *v) { return v->dim[0] * v->dim[1] * v->dim[2]; }
int ffdp_volume_ncomp(const ffdp_volume *v) { return v->ncomp; }
float *ffdp_volume_data(ffdp_volume *v) { return v->data; }
const float *ffdp_volume_cdata(const ffdp_volume *v) { return v->data; }
ffdp_mat4 ffdp_volume_vox2world(const ffdp_volume *v) { return v->vox2world; }
void ffdp_volume_set_vox2world(ffdp_volume *v, ffdp_mat4 m) { v->vox2world = m; }
int ffdp_volume_source_dtype(const ffdp_volume *v) { return v->source_dtype; }

void ffdp_volume_spacing(const ffdp_volume *v, double sp[3]) {
  for (int j = 0; j < 3; j++) {
    double s = 0;
    for (int i = 0; i < 3; i++) s += v->vox2world.m[i][j] * v->vox2world.m[i][j];
    sp[j] = sqrt(s);
  }
}

/* A gigavoxel image's range is a pass over 4 GB before every registration, so it is written to
 * vectorize: plain compares (NaN never wins one) with per-chunk int counts of the non-finite
 * values, and only where some value was not finite, a second pass that keeps infinities out
 * of the range. On the 2-core development machine, 1 GB on one thread: 156 ms with selects in
 * one pass (the previous form), 113 ms this way; a branchy loop ran at ~0.8 GB/s a thread. */
enum { RANGE_CHUNK = 1 << 14 };
static int64_t finite_range(const float *d, int64_t n, float *vmin, float *vmax) {
  int64_t bad = 0;
  float lo = INFINITY, hi = -INFINITY;
#pragma omp parallel for simd reduction(min : lo) reduction(max : hi) reduction(+ : bad)
  for (int64_t i = 0; i < n; i++) {
    const float x = d[i];
    const int ok = fabsf(x) <= FLT_MAX; /* false for NaN and both infinities */
    const float a = ok ? x : INFINITY, b = ok ? x : -INFINITY;
    bad += !ok;
    lo = a < lo ? a : lo;
    hi = b > hi ? b : hi;
  }
  *vmin = lo, *vmax = hi;
  return bad;
}

int64_t ffdp_floats_range(const float *d, int64_t n, double *vmin, double *vmax) {
  int64_t bad = 0;
  float lo = INFINITY, hi = -INFINITY;
  const int64_t nch = (n + RANGE_CHUNK - 1) / RANGE_CHUNK;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) reduction(+ : bad) schedule(static)
  for (int64_t c = 0; c < nch; c++) {
    const float *p = d + c * RANGE_CHUNK;
    const int m = (int)(n - c * RANGE_CHUNK < RANGE_CHUNK ? n - c * RANGE_CHUNK : RANGE_CHUNK);
    float l = INFINITY, h = -INFINITY;
    int b = 0;
#pragma omp simd reduction(min : l) reduction(max : h) reduction(+ : b)
    for (int i = 0; i < m; i++) {
      const float x = p[i];
      b += !(fabsf(x) <= FLT_MAX);
      l = x < l ? x : l;
      h = x > h ? x : h;
    }
    bad += b;
    lo = l < lo ? l : lo;
    hi = h > hi ? h : hi;
  }
  if (bad) bad = finite_range(d, n, &lo, &hi);
  *vmin = lo;
  *vmax = hi;
  return bad;
}

int64_t ffdp_volume_range(const ffdp_volume *v, double *vmin, double *vmax) {
  return ffdp_floats_range(v->data, ffdp_volume_nvox(v) * v->ncomp, vmin, vmax);
}
