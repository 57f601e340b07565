/* ffdp_comm dispatch and the one-process transport. */
#include "core/comm_internal.h"
#include "core/err.h"
#include <string.h>

int ffdp_comm_rank(const ffdp_comm *c) { return c ? c->rank : 0; }
int ffdp_comm_size(const ffdp_comm *c) { return c ? c->size : 1; }
int ffdp_comm_local_rank(const ffdp_comm *c) { return c ? c->local_rank : 0; }
int ffdp_comm_local_size(const ffdp_comm *c) { return c && c->local_size > 0 ? c->local_size : 1; }
void ffdp_comm_traffic(const ffdp_comm *c, double *bytes, double *seconds) {
  *bytes = *seconds = 0;
  if (c && c->traffic) c->traffic(c, bytes, seconds);
}
void ffdp_comm_image_traffic(const ffdp_comm *c, double *bytes, double *seconds) {
  *bytes = *seconds = 0;
  if (c && c->image_traffic) c->image_traffic(c, bytes, seconds);
}
const char *ffdp_comm_gpu_transport(const ffdp_comm *c) {
  return c && c->size > 1 && c->gpu_transport ? c->gpu_transport(c) : "none";
}
ffdp_status ffdp_comm_agree(const ffdp_comm *c, ffdp_status st, ffdp_error *err) {
  return c ? c->agree(c, st, err) : st;
}
void ffdp_comm_share(const ffdp_comm *c, int64_t nz, int64_t *z0, int64_t *z1) {
  const ffdp_slab s = ffdp_slab_split(1, 1, nz, ffdp_comm_rank(c), ffdp_comm_size(c), 0); /* the pyramid's split */
  *z0 = s.z0, *z1 = s.z1;
}
void ffdp_comm_free(ffdp_comm *c) {
  if (c && c->release) c->release(c);
}

static void single_sum(const ffdp_comm *c, double *v, int n) { (void)c, (void)v, (void)n; }
static double single_max(const ffdp_comm *c, double v) { return (void)c, v; }
/* Left fold of per-plane partials in plane order: shared with the MPI transport. */
void ffdp_fold_planes(const double *part, int64_t nplanes, int width, double *out) {
  for (int j = 0; j < width; j++) out[j] = 0;
  for (int64_t z = 0; z < nplanes; z++)
    for (int j = 0; j < width; j++) out[j] += part[z * width + j];
}
static ffdp_status single_fold(const ffdp_comm *c, const ffdp_slab *s, const double *part, int width, double *out,
                               ffdp_error *e) {
  (void)c, (void)e;
  ffdp_fold_planes(part, s->z1 - s->z0, width, out);
  return FFDP_OK;
}
static ffdp_status single_halo(const ffdp_comm *c, const ffdp_slab *s, float *d, int nc, ffdp_error *e) {
  (void)c, (void)s, (void)d, (void)nc, (void)e;
  return FFDP_OK; /* one rank stores the whole grid: no halo to fill */
}
static ffdp_status single_gather(const ffdp_comm *c, const ffdp_slab *s, const float *d, int nc, float *full,
                                 ffdp_error *e) {
  (void)c, (void)e;
  const int64_t plane = s->nx * s->ny * nc;
  memmove(full + s->z0 * plane, d + (s->z0 - s->zlo) * plane, (size_t)((s->z1 - s->z0) * plane) * sizeof(float));
  return FFDP_OK;
}
static ffdp_status single_agree(const ffdp_comm *c, ffdp_status st, ffdp_error *e) { return (void)c, (void)e, st; }
static ffdp_comm *single_first(const ffdp_comm *c, int n) { return (void)n, (ffdp_comm *)c; }

static ffdp_status single_gpu_setup(const ffdp_comm *c, int dev, ffdp_error *e) { return (void)c, (void)dev, (void)e, FFDP_OK; }
static ffdp_status single_halo_dev(const ffdp_comm *c, const ffdp_slab *s, float *d, int nc, ffdp_error *e) {
  return single_halo(c, s, d, nc, e);
}
static const char *single_transport(const ffdp_comm *c) { return (void)c, "none"; }
static void single_traffic(const ffdp_comm *c, double *b, double *s) { (void)c, *b = 0, *s = 0; }
static ffdp_status single_planes(const ffdp_comm *c, int64_t plane, int64_t own_lo, int64_t own_hi, const float *own,
                                 int64_t want_lo, int64_t want_hi, float *want, ffdp_error *e) {
  (void)c;
  if (want_hi <= want_lo) return FFDP_OK;
  if (want_lo < own_lo || want_hi > own_hi)
    return ffdp_fail(e, FFDP_ERR_INVALID, "planes [%lld, %lld) wanted, only [%lld, %lld) held", (long long)want_lo,
                     (long long)want_hi, (long long)own_lo, (long long)own_hi);
  memmove(want, own + (want_lo - own_lo) * plane, (size_t)((want_hi - want_lo) * plane) * sizeof(float));
  return FFDP_OK;
}
static ffdp_status single_ring_start(const ffdp_comm *c, int64_t plane, const float *send, int64_t nsend, float *recv,
                                     int64_t nrecv, void **req, ffdp_error *e) {
  (void)c, *req = NULL;
  if (nsend != nrecv) return ffdp_fail(e, FFDP_ERR_INVALID, "ring of one rank: %lld planes sent, %lld expected",
                                       (long long)nsend, (long long)nrecv);
  memmove(recv, send, (size_t)(nsend * plane) * sizeof(float));
  return FFDP_OK;
}
static ffdp_status single_ring_wait(const ffdp_comm *c, void *req, ffdp_error *e) { return (void)c, (void)req, (void)e, FFDP_OK; }

static const ffdp_comm single = {.rank = 0,
                                 .size = 1,
                                 .local_rank = 0,
                                 .local_size = 1,
                                 .sum = single_sum,
                                 .max = single_max,
                                 .fold = single_fold,
                                 .halo = single_halo,
                                 .gather = single_gather,
                                 .gather_root = single_gather,
                                 .agree = single_agree,
                                 .gpu_setup = single_gpu_setup,
                                 .halo_dev = single_halo_dev,
                                 .gpu_transport = single_transport,
                                 .traffic = single_traffic,
                                 .image_traffic = single_traffic,
                                 .planes = single_planes,
                                 .ring_start = single_ring_start,
                                 .ring_wait = single_ring_wait,
                                 .first = single_first};

const ffdp_comm *ffdp_comm_single(void) { return &single; }
