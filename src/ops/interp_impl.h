/* Trilinear / nearest lookup with analytic gradient, shared by sample, compose and the
 * label sampler. Included by *_impl.h with REAL and SUFFIX set. */

/* Per-axis setup of the two interpolation taps. */
typedef struct {
  int64_t i0, i1;
  REAL f;        /* weight of i1 */
  int v0, v1;    /* tap inside the image (zero padding) */
  REAL gmask;    /* 0 where border clamping makes the value flat in this axis */
} FN(axis_taps);

/* q arrives in double: on large grids float coordinates lose precision, and CPU and CUDA
 * must land on the same side of every knot. */
static inline FN(axis_taps) FN(axis_linear)(double q, int64_t n, ffdp_pad pad) {
  FN(axis_taps) a;
  if (pad == FFDP_PAD_BORDER) {
    a.gmask = 1;
    if (!(q >= 0)) q = 0, a.gmask = 0; /* also catches NaN */
    if (q > (double)(n - 1)) q = (double)(n - 1), a.gmask = 0;
    a.i0 = (int64_t)q; /* q >= 0 here: truncation is floor, without a libm call */
    if (a.i0 > n - 1) a.i0 = n - 1;
    a.i1 = a.i0 + 1 < n ? a.i0 + 1 : n - 1;
    a.f = (REAL)(q - (double)a.i0);
    a.v0 = a.v1 = 1;
  } else {
    a.gmask = 1;
    /* Far outside: keep indices small so they cannot overflow; both taps are invalid.
     * (floor(q) >= -2 and floor(q) <= n + 1 exactly when -2 <= q < n + 2.) */
    if (!(q >= -2 && q < (double)n + 2)) { /* also catches NaN */
      a.i0 = -2, a.i1 = -1, a.f = 0, a.v0 = a.v1 = 0;
      return a;
    }
    int64_t t = (int64_t)q; /* floor without a libm call: truncation, one down for negatives */
    t -= (double)t > q;
    const double fl = t ? (double)t : copysign(0.0, q); /* floor(-0.0) is -0.0 */
    a.i0 = t;
    a.i1 = a.i0 + 1;
    a.f = (REAL)(q - fl);
    a.v0 = a.i0 >= 0 && a.i0 < n;
    a.v1 = a.i1 >= 0 && a.i1 < n;
  }
  return a;
}

/* Values of channel c at the 8 corners, zero where a tap is outside the image. The caller
 * guarantees that inside taps lie within the stored planes of ms. */
static inline void FN(corners)(const REAL *M, const ffdp_slab *ms, int ncomp, int c, const FN(axis_taps) * ax,
                               const FN(axis_taps) * ay, const FN(axis_taps) * az, REAL v[8]) {
  if (ax->v0 & ax->v1 & ay->v0 & ay->v1 & az->v0 & az->v1) { /* the common case: all eight inside */
    const int64_t sx = (ax->i1 - ax->i0) * ncomp, sy = (ay->i1 - ay->i0) * ms->nx * ncomp,
                  sz = (az->i1 - az->i0) * ms->nx * ms->ny * ncomp;
    const REAL *p = M + ffdp_slab_index(ms, ax->i0, ay->i0, az->i0) * ncomp + c;
    v[0] = p[0], v[1] = p[sx], v[2] = p[sy], v[3] = p[sy + sx];
    v[4] = p[sz], v[5] = p[sz + sx], v[6] = p[sz + sy], v[7] = p[sz + sy + sx];
    return;
  }
  const int64_t xs[2] = {ax->i0, ax->i1}, ys[2] = {ay->i0, ay->i1}, zs[2] = {az->i0, az->i1};
  const int vx[2] = {ax->v0, ax->v1}, vy[2] = {ay->v0, ay->v1}, vz[2] = {az->v0, az->v1};
  for (int k = 0; k < 8; k++) {
    int bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
    v[k] = (vx[bx] && vy[by] && vz[bz]) ? M[ffdp_slab_index(ms, xs[bx], ys[by], zs[bz]) * ncomp + c] : (REAL)0;
  }
}

/* Trilinear value and gradient w.r.t. q (voxel units) from the 8 corner values. */
static inline REAL FN(trilinear)(const REAL v[8], REAL fx, REAL fy, REAL fz, REAL g[3]) {
  REAL gx = 1 - fx, gy = 1 - fy, gz = 1 - fz;
  REAL x00 = gx * v[0] + fx * v[1], x10 = gx * v[2] + fx * v[3];
  REAL x01 = gx * v[4] + fx * v[5], x11 = gx * v[6] + fx * v[7];
  REAL y0 = gy * x00 + fy * x10, y1 = gy * x01 + fy * x11;
  if (g) {
    REAL dx00 = v[1] - v[0], dx10 = v[3] - v[2], dx01 = v[5] - v[4], dx11 = v[7] - v[6];
    g[0] = gz * (gy * dx00 + fy * dx10) + fz * (gy * dx01 + fy * dx11);
    g[1] = gz * (x10 - x00) + fz * (x11 - x01);
    g[2] = y1 - y0;
  }
  return gz * y0 + fz * y1;
}

/* q = B·[p;1] + S·u for fixed voxel (x,y,z), in double (see axis_linear). */
static inline void FN(warp_point)(const ffdp_warp *w, int64_t x, int64_t y, int64_t z, const REAL *u, double q[3]) {
  for (int i = 0; i < 3; i++) {
    double s = w->B[i][0] * (double)x + w->B[i][1] * (double)y + w->B[i][2] * (double)z + w->B[i][3];
    if (u) s += w->S[i][0] * (double)u[0] + w->S[i][1] * (double)u[1] + w->S[i][2] * (double)u[2];
    q[i] = s;
  }
}

static inline int64_t FN(nearest_index)(double q, int64_t n, ffdp_pad pad, int *valid) {
  if (!(q > -2 && q < (double)n + 2)) { /* far outside or NaN */
    *valid = pad == FFDP_PAD_BORDER;
    return q > 0 ? n - 1 : 0;
  }
  int64_t i = (int64_t)floor(q + 0.5);
  if (pad == FFDP_PAD_BORDER) {
    *valid = 1;
    return i < 0 ? 0 : i >= n ? n - 1 : i;
  }
  *valid = i >= 0 && i < n;
  return i;
}

/* The nearest voxel of M to q: its index in ms's layout, or -1 outside the image (zero padding)
 * or off ms's stored planes. */
static inline int64_t FN(nearest_voxel)(const ffdp_warp *w, const ffdp_slab *ms, const double q[3]) {
  int vx, vy, vz;
  const int64_t ix = FN(nearest_index)(q[0], ms->nx, w->pad, &vx), iy = FN(nearest_index)(q[1], ms->ny, w->pad, &vy);
  const int64_t iz = FN(nearest_index)(q[2], ms->nz, w->pad, &vz);
  return vx && vy && vz && iz >= ms->zlo && iz < ms->zhi ? ffdp_slab_index(ms, ix, iy, iz) : -1;
}
