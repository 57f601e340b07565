/* Implicit composite sampler: out(p) = M(B·[p;1] + S·u(p)). The identity grid is the loop
 * index; nothing of grid size is allocated. Included with REAL and SUFFIX set, after interp_impl.h. */

/* The common case (trilinear, all eight taps inside the image): the corner's index and the
 * weights, the numbers axis_linear and corners() would give for either padding, without their
 * per-tap checks; 0 when a tap lies outside (the generic path then takes the voxel). */
static inline int FN(all_inside)(const ffdp_slab *ms, ffdp_pad pad, const double q[3], int64_t *base, REAL f[3]) {
  if (!(q[0] >= 0 && q[0] < (double)(ms->nx - 1) && q[1] >= 0 && q[1] < (double)(ms->ny - 1) && q[2] >= 0 &&
        q[2] < (double)(ms->nz - 1)))
    return 0;
  int64_t i[3];
  for (int a = 0; a < 3; a++) {
    i[a] = (int64_t)q[a]; /* q >= 0: truncation is floor */
    f[a] = (REAL)(q[a] - (i[a] || pad == FFDP_PAD_BORDER ? (double)i[a] : copysign(0.0, q[a])));
  }
  *base = ffdp_slab_index(ms, i[0], i[1], i[2]);
  return 1;
}

static inline void FN(corners_at)(const REAL *p, int64_t sx, int64_t sy, int64_t sz, REAL v[8]) {
  v[0] = p[0], v[1] = p[sx], v[2] = p[sy], v[3] = p[sy + sx];
  v[4] = p[sz], v[5] = p[sz + sx], v[6] = p[sz + sy], v[7] = p[sz + sy + sx];
}

#if FFDP_SAMPLE_SIMD3 && defined(__SSE2__) && !defined(FFDP_SAMPLE3_DEFINED)
#define FFDP_SAMPLE3_DEFINED
#include <emmintrin.h>
/* Three interleaved channels at once (the warp composition), float only: trilinear()'s
 * operations lane by lane (products rounded, then added; no FMA), so the same bits. Each tap is
 * read as 4 floats, the 4th (the next voxel's first channel) unused: inside M unless the far
 * corner is the last voxel M stores, which the caller leaves to the scalar path. */
static inline void sample3_f32(const float *p, int64_t sx, int64_t sy, int64_t sz, const float f[3], float *out) {
  const __m128 one = _mm_set1_ps(1.f), fx = _mm_set1_ps(f[0]), fy = _mm_set1_ps(f[1]), fz = _mm_set1_ps(f[2]);
  const __m128 gx = _mm_sub_ps(one, fx), gy = _mm_sub_ps(one, fy), gz = _mm_sub_ps(one, fz);
#define LERP(g, a, f, b) _mm_add_ps(_mm_mul_ps(g, a), _mm_mul_ps(f, b))
  const __m128 x00 = LERP(gx, _mm_loadu_ps(p), fx, _mm_loadu_ps(p + sx));
  const __m128 x10 = LERP(gx, _mm_loadu_ps(p + sy), fx, _mm_loadu_ps(p + sy + sx));
  const __m128 x01 = LERP(gx, _mm_loadu_ps(p + sz), fx, _mm_loadu_ps(p + sz + sx));
  const __m128 x11 = LERP(gx, _mm_loadu_ps(p + sz + sy), fx, _mm_loadu_ps(p + sz + sy + sx));
  const __m128 r = LERP(gz, LERP(gy, x00, fy, x10), fz, LERP(gy, x01, fy, x11));
#undef LERP
  _mm_storel_pi((__m64 *)out, r);
  _mm_store_ss(out + 2, _mm_movehl_ps(r, r));
}
#endif

#if FFDP_SAMPLE_SIMD3 && defined(__AVX2__) && !defined(FFDP_SAMPLE4_DEFINED)
#define FFDP_SAMPLE4_DEFINED
#include "ops/sample_avx2.h"
#endif
#if FFDP_SAMPLE_SIMD3 && defined(__AVX2__)
#define FFDP_SAMPLE4 1 /* this instance (float) takes four voxels at a time */
#else
#define FFDP_SAMPLE4 0
#endif

/* One voxel through the generic taps (a tap outside the image, nearest): out[0..ncomp). */
static inline void FN(sample_voxel_generic)(const ffdp_warp *w, const ffdp_slab *ms, const REAL *M, int ncomp,
                                            const double q[3], REAL *out) {
  if (w->interp == FFDP_INTERP_NEAREST) {
    const int64_t k = FN(nearest_voxel)(w, ms, q);
    for (int c = 0; c < ncomp; c++) out[c] = k >= 0 ? M[k * ncomp + c] : (REAL)0;
    return;
  }
  FN(axis_taps) ax = FN(axis_linear)(q[0], ms->nx, w->pad);
  FN(axis_taps) ay = FN(axis_linear)(q[1], ms->ny, w->pad);
  FN(axis_taps) az = FN(axis_linear)(q[2], ms->nz, w->pad);
  for (int c = 0; c < ncomp; c++) {
    REAL v[8];
    FN(corners)(M, ms, ncomp, c, &ax, &ay, &az, v);
    out[c] = FN(trilinear)(v, ax.f, ay.f, az.f, NULL);
  }
}

/* What the 3-channel loop does with the sampled vector val of voxel i (u_i: the displacement it
 * was sampled at, out_i: where it goes):
 *   EMIT_STORE    out = val (the sampler);
 *   EMIT_DAMPED   u <- u - (u + c)/2 in place (out = u) with c = val + 0·u: one step of the
 *                 inversion (reg_invert_field), as the composition with T = 0 and the update
 *                 rounded it in two passes (0·u0 + 0·u1 + 0·u2 is a zero, negative only when
 *                 all three products are).
 * Each reads u_i before writing, so out may be u. (The composition's + T·u in the same loop
 * measured 3 % slower than compose_fwd's second, vectorized pass on 2 cores: not done.) */
#ifndef FFDP_EMIT3_MODES /* the file is included once per REAL */
#define FFDP_EMIT3_MODES
enum { EMIT_STORE, EMIT_DAMPED };
#endif
static inline void FN(emit3)(int mode, REAL *u_i, const REAL val[3], REAL *out_i) {
  if (mode == EMIT_STORE) {
    out_i[0] = val[0], out_i[1] = val[1], out_i[2] = val[2];
  } else {
    const REAL zero = signbit(u_i[0]) && signbit(u_i[1]) && signbit(u_i[2]) ? (REAL)-0.0 : (REAL)0.0;
    for (int a = 0; a < 3; a++) u_i[a] -= (REAL)0.5 * (u_i[a] + (val[a] + zero));
  }
}

#if FFDP_SAMPLE_SIMD3 && defined(__SSE2__)
/* Vector fields (the warp composition, the inversion's step): a loop of their own. Each voxel
 * reads u at itself only and the four-voxel blocks take their taps before any store, so the
 * in-place forms (out = u) are race-free and read what a separate pass would. */
static inline __attribute__((always_inline)) void FN(sample3_rows)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u,
                                                                const ffdp_slab *ms, const REAL *M,
                             REAL *out, int mode) {
  REAL *const uo = (REAL *)u; /* EMIT_DAMPED writes it (out = u) */
  const int64_t nx = fs->nx, ny = fs->ny, sx = 3, sy = ms->nx * 3, sz = ms->nx * ms->ny * 3;
  const int64_t last3 = ffdp_slab_index(ms, ms->nx - 2, ms->ny - 2, ms->zhi - 2); /* far corner = M's last voxel */
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0, x4 = 0; x < nx; x++) {
#if FFDP_SAMPLE4
        if (x == x4) { /* the points and weights of four voxels at a time (their taps inside) */
          for (; x + 4 <= nx; x += 4) {
            const int64_t i = ffdp_slab_index(fs, x, y, z);
            taps4_f32 t;
            if (!taps4(w, ms, x, y, z, u ? u + 3 * i : NULL, &t) || _mm_movemask_ps(t.outside) || t.b[0] == last3 ||
                t.b[1] == last3 || t.b[2] == last3 || t.b[3] == last3)
              break; /* (fields are border-padded: no lane is ever outside) */
            float fx[4], fy[4], fz[4];
            _mm_storeu_ps(fx, t.fx), _mm_storeu_ps(fy, t.fy), _mm_storeu_ps(fz, t.fz);
            for (int l = 0; l < 4; l++) {
              const float f[3] = {fx[l], fy[l], fz[l]};
              float val[3];
              sample3_f32(M + t.b[l] * 3, sx, sy, sz, f, mode ? val : out + (i + l) * 3);
              if (mode) FN(emit3)(mode, uo + (i + l) * 3, val, out + (i + l) * 3);
            }
          }
          x4 = x + 4;
          if (x >= nx) break;
        }
#else
        (void)x4;
#endif
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
        int64_t b;
        REAL f[3], val[3];
        if (FN(all_inside)(ms, w->pad, q, &b, f) && b != last3) sample3_f32(M + b * 3, sx, sy, sz, f, val);
        else FN(sample_voxel_generic)(w, ms, M, 3, q, val);
        FN(emit3)(mode, uo + i * 3, val, out + i * 3);
      }
}
#endif

/* The inversion's damped step in place (see ops.h), on every voxel of fs. */
void FN(ffdp_compose_damped)(const ffdp_warp *w, const ffdp_slab *fs, REAL *d, const ffdp_slab *us, const REAL *U) {
#if FFDP_SAMPLE_SIMD3 && defined(__SSE2__)
  if (w->interp == FFDP_INTERP_LINEAR) {
    FN(sample3_rows)(w, fs, d, us, U, d, EMIT_DAMPED);
    return;
  }
#endif
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        REAL val[3];
        FN(warp_point)(w, x, y, z, d + 3 * i, q);
        FN(sample_voxel_generic)(w, us, U, 3, q, val);
        FN(emit3)(EMIT_DAMPED, d + 3 * i, val, d + 3 * i);
      }
}

void FN(ffdp_sample_fwd)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                         const REAL *M, int ncomp, REAL *out) {
  const int64_t nx = fs->nx, ny = fs->ny;
  const int fast = w->interp == FFDP_INTERP_LINEAR;
  const int64_t sx = ncomp, sy = ms->nx * ncomp, sz = ms->nx * ms->ny * ncomp;
#if FFDP_SAMPLE_SIMD3 && defined(__SSE2__)
  if (fast && ncomp == 3) { /* vector fields (the warp composition): a loop of their own */
    FN(sample3_rows)(w, fs, u, ms, M, out, EMIT_STORE);
    return;
  }
#endif
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++) {
      int64_t x = 0, x4 = 0; /* voxels [x, x4) go one at a time */
      for (; x < nx; x++) {
#if FFDP_SAMPLE4
        if (x == x4 && fast && ncomp == 1) { /* four at a time while their taps are all inside */
          for (; x + 4 <= nx; x += 4) {
            const int64_t i = ffdp_slab_index(fs, x, y, z);
            taps4_f32 t;
            if (!taps4(w, ms, x, y, z, u ? u + 3 * i : NULL, &t)) break;
            __m128 r = _mm_setzero_ps();
            if (t.any_inside) {
              __m128 v[8];
              corners4(M, &t, sy, sz, v);
              r = _mm_andnot_ps(t.outside, trilinear4(v, &t, NULL)); /* lanes outside: +0 */
            }
            _mm_storeu_ps(out + i, r);
          }
          x4 = x + 4; /* these four (or the row's tail) one at a time, then try again */
          if (x >= nx) break;
        }
#endif
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
        int64_t b;
        REAL f[3];
        if (fast && FN(all_inside)(ms, w->pad, q, &b, f)) {
          for (int c = 0; c < ncomp; c++) {
            REAL v[8];
            FN(corners_at)(M + b * ncomp + c, sx, sy, sz, v);
            out[i * ncomp + c] = FN(trilinear)(v, f[0], f[1], f[2], NULL);
          }
          continue;
        }
        FN(sample_voxel_generic)(w, ms, M, ncomp, q, out + i * ncomp);
      }
      (void)x4;
    }
}

/* Gradient w.r.t. q of Σc gout_c·M_c(q) at one voxel; optionally scatters into gM. */
static inline void FN(sample_voxel_bwd)(const ffdp_warp *w, const ffdp_slab *ms, const REAL *M, int ncomp,
                                        const double q[3], const REAL *g, REAL gq[3], REAL *gM) {
  gq[0] = gq[1] = gq[2] = 0;
  if (w->interp == FFDP_INTERP_NEAREST) { /* piecewise constant: zero gradient w.r.t. q */
    const int64_t k = gM ? FN(nearest_voxel)(w, ms, q) : -1;
    if (k >= 0)
      for (int c = 0; c < ncomp; c++) gM[k * ncomp + c] += g[c];
    return;
  }
  FN(axis_taps) ax = FN(axis_linear)(q[0], ms->nx, w->pad);
  FN(axis_taps) ay = FN(axis_linear)(q[1], ms->ny, w->pad);
  FN(axis_taps) az = FN(axis_linear)(q[2], ms->nz, w->pad);
  for (int c = 0; c < ncomp; c++) {
    REAL v[8], d[3];
    FN(corners)(M, ms, ncomp, c, &ax, &ay, &az, v);
    FN(trilinear)(v, ax.f, ay.f, az.f, d);
    gq[0] += g[c] * d[0] * ax.gmask;
    gq[1] += g[c] * d[1] * ay.gmask;
    gq[2] += g[c] * d[2] * az.gmask;
    if (gM) {
      const int64_t xs[2] = {ax.i0, ax.i1}, ys[2] = {ay.i0, ay.i1}, zs[2] = {az.i0, az.i1};
      const int vx[2] = {ax.v0, ax.v1}, vy[2] = {ay.v0, ay.v1}, vz[2] = {az.v0, az.v1};
      const REAL wx[2] = {1 - ax.f, ax.f}, wy[2] = {1 - ay.f, ay.f}, wz[2] = {1 - az.f, az.f};
      for (int k = 0; k < 8; k++) {
        int bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
        if (vx[bx] && vy[by] && vz[bz])
          gM[ffdp_slab_index(ms, xs[bx], ys[by], zs[bz]) * ncomp + c] += g[c] * wx[bx] * wy[by] * wz[bz];
      }
    }
  }
}

void FN(ffdp_sample_bwd_planes)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                                const REAL *M, int ncomp, const REAL *gout, REAL *gu, double *part, REAL *gM) {
  const int64_t nx = fs->nx, ny = fs->ny;
  const int fast = w->interp == FFDP_INTERP_LINEAR && !gM; /* gM: the scatter below */
  const int64_t sx = ncomp, sy = ms->nx * ncomp, sz = ms->nx * ms->ny * ncomp;
  /* The scatter into gM is a race between threads; it is an optional, rarely used output,
   * so it runs serially (deterministic) rather than with atomics. */
  const int four = FFDP_SAMPLE4 && fast && ncomp == 1 && (gu || part); /* part: lanes summed in x order below */
#pragma omp parallel for schedule(static) if (!gM)
  for (int64_t z = fs->z0; z < fs->z1; z++) {
    double acc[12] = {0};
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0, x4 = 0; x < nx; x++) {
#if FFDP_SAMPLE4
        if (x == x4 && four) { /* four at a time while their taps are all inside */
          for (; x + 4 <= nx; x += 4) {
            const int64_t i = ffdp_slab_index(fs, x, y, z);
            taps4_f32 t;
            if (!taps4(w, ms, x, y, z, u ? u + 3 * i : NULL, &t)) break;
            __m128 gq[3] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()}; /* lanes outside: +0 */
            if (t.any_inside) {
              __m128 v[8], d[3];
              corners4(M, &t, sy, sz, v);
              trilinear4(v, &t, d);
              const __m128 g = _mm_loadu_ps(gout + i);
              for (int a = 0; a < 3; a++) /* 0 + g·d, as below */
                gq[a] = _mm_andnot_ps(t.outside, _mm_add_ps(_mm_setzero_ps(), _mm_mul_ps(g, d[a])));
            }
            if (gu) store_gu4(w, gq, gu + 3 * i);
            if (part) { /* the affine gradient's terms voxel by voxel, in the one-voxel path's order */
              float l[3][4];
              for (int a = 0; a < 3; a++) _mm_storeu_ps(l[a], gq[a]);
              for (int j = 0; j < 4; j++) {
                const double p[4] = {(double)(x + j), (double)y, (double)z, 1.0};
                for (int a = 0; a < 3; a++)
                  for (int b = 0; b < 4; b++) acc[a * 4 + b] += (double)l[a][j] * p[b];
              }
            }
          }
          x4 = x + 4;
          if (x >= nx) break;
        }
#else
        (void)x4, (void)four;
#endif
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        REAL gq[3];
        FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
        int64_t bi;
        REAL f[3];
        if (fast && FN(all_inside)(ms, w->pad, q, &bi, f)) { /* sample_voxel_bwd's numbers (gmask is 1) */
          gq[0] = gq[1] = gq[2] = 0;
          for (int c = 0; c < ncomp; c++) {
            REAL v[8], d[3];
            FN(corners_at)(M + bi * ncomp + c, sx, sy, sz, v);
            FN(trilinear)(v, f[0], f[1], f[2], d);
            const REAL g = gout[i * ncomp + c];
            gq[0] += g * d[0], gq[1] += g * d[1], gq[2] += g * d[2];
          }
        } else {
          FN(sample_voxel_bwd)(w, ms, M, ncomp, q, gout + i * ncomp, gq, gM);
        }
        if (gu)
          for (int a = 0; a < 3; a++)
            gu[3 * i + a] = w->S[0][a] * gq[0] + w->S[1][a] * gq[1] + w->S[2][a] * gq[2];
        if (part) {
          const double p[4] = {(double)x, (double)y, (double)z, 1.0};
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++) acc[a * 4 + b] += (double)gq[a] * p[b];
        }
      }
    if (part) memcpy(part + (z - fs->z0) * 12, acc, sizeof acc);
  }
}

void FN(ffdp_sample_bwd)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                         const REAL *M, int ncomp, const REAL *gout, REAL *gu, double gB[3][4], REAL *gM) {
  const int64_t nzo = fs->z1 - fs->z0;
  double *part = gB ? calloc((size_t)(nzo > 0 ? nzo : 1) * 12, sizeof(double)) : NULL;
  FN(ffdp_sample_bwd_planes)(w, fs, u, ms, M, ncomp, gout, gu, part, gM);
  if (gB) {
    double s[12] = {0};
    for (int64_t k = 0; k < nzo; k++)
      for (int j = 0; j < 12; j++) s[j] += part[k * 12 + j];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 4; b++) gB[a][b] = s[a * 4 + b];
    free(part);
  }
}

/* A ring shard's part of the sample (ops.h): taps on planes ms does not store read as zero, and
 * the sums are formed exactly as trilinear() forms them, so that adding the shards' parts in
 * any order gives trilinear()'s bits (a sum of two products, the others exact zeros). */
void FN(ffdp_sample_part)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                          const REAL *M, REAL *out, REAL *dq) {
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
        if (w->interp == FFDP_INTERP_NEAREST) {
          const int64_t k = FN(nearest_voxel)(w, ms, q);
          if (k >= 0) out[i] += M[k];
          continue;
        }
        FN(axis_taps) ax = FN(axis_linear)(q[0], ms->nx, w->pad);
        FN(axis_taps) ay = FN(axis_linear)(q[1], ms->ny, w->pad);
        FN(axis_taps) az = FN(axis_linear)(q[2], ms->nz, w->pad);
        az.v0 = az.v0 && az.i0 >= ms->zlo && az.i0 < ms->zhi;
        az.v1 = az.v1 && az.i1 >= ms->zlo && az.i1 < ms->zhi;
        if (!az.v0 && !az.v1) continue; /* adds exact zeros */
        REAL v[8], d[3];
        FN(corners)(M, ms, 1, 0, &ax, &ay, &az, v);
        out[i] += FN(trilinear)(v, ax.f, ay.f, az.f, d);
        if (dq)
          for (int a = 0; a < 3; a++) dq[3 * i + a] += d[a];
      }
}

void FN(ffdp_sample_bwd_dq)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                            const REAL *gout, const REAL *dq, REAL *gu) {
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        REAL gq[3] = {0, 0, 0};
        if (w->interp != FFDP_INTERP_NEAREST) {
          double q[3];
          FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
          const REAL gm[3] = {FN(axis_linear)(q[0], ms->nx, w->pad).gmask, FN(axis_linear)(q[1], ms->ny, w->pad).gmask,
                              FN(axis_linear)(q[2], ms->nz, w->pad).gmask};
          for (int a = 0; a < 3; a++) gq[a] += gout[i] * dq[3 * i + a] * gm[a];
        }
        for (int a = 0; a < 3; a++) gu[3 * i + a] = w->S[0][a] * gq[0] + w->S[1][a] * gq[1] + w->S[2][a] * gq[2];
      }
}

void FN(ffdp_sample_labels)(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,
                            const REAL *M, REAL *out) {
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        double q[3];
        FN(warp_point)(w, x, y, z, u ? u + 3 * i : NULL, q);
        FN(axis_taps) ax = FN(axis_linear)(q[0], ms->nx, w->pad);
        FN(axis_taps) ay = FN(axis_linear)(q[1], ms->ny, w->pad);
        FN(axis_taps) az = FN(axis_linear)(q[2], ms->nz, w->pad);
        REAL v[8];
        FN(corners)(M, ms, 1, 0, &ax, &ay, &az, v);
        const REAL wx[2] = {1 - ax.f, ax.f}, wy[2] = {1 - ay.f, ay.f}, wz[2] = {1 - az.f, az.f};
        REAL lab[8], wt[8];
        int nl = 0;
        for (int k = 0; k < 8; k++) {
          REAL wk = wx[k & 1] * wy[(k >> 1) & 1] * wz[k >> 2];
          int j = 0;
          while (j < nl && lab[j] != v[k]) j++;
          if (j == nl) lab[nl] = v[k], wt[nl++] = 0;
          wt[j] += wk;
        }
        int best = 0;
        for (int j = 1; j < nl; j++)
          if (wt[j] > wt[best] || (wt[j] == wt[best] && lab[j] < lab[best])) best = j;
        out[i] = lab[best];
      }
}
#undef FFDP_SAMPLE4
