/* Scalar-image trilinear sampling four voxels of a row at a time (AVX2), float only: the
 * numbers of warp_point, all_inside and trilinear lane by lane, in the same order and without
 * FMA, so the same bits as the one-voxel path. Included by sample_impl.h for its float
 * instance; four voxels with any tap outside the image go back to the one-voxel path. */
#include <immintrin.h>

typedef struct {
  int64_t b[4];      /* corner index of each lane in the moving slab (a lane outside: another's) */
  __m128 fx, fy, fz; /* weights of the far taps */
  __m128 outside;    /* lanes whose every tap lies outside (zero padding): value and gradient +0 */
  int any_inside;    /* 0: all four outside, nothing to read */
} taps4_f32;

/* Voxels x..x+3 of row (y, z); u: the displacement of voxel x (3 floats each) or NULL. 1 when
 * each of the four has every tap inside the image (all_inside's test) or, under zero padding,
 * every tap outside it (the one-voxel path then gives +0 for the value and every gradient);
 * 0 otherwise (those four go one at a time). */
static inline int taps4(const ffdp_warp *w, const ffdp_slab *ms, int64_t x, int64_t y, int64_t z, const float *u,
                        taps4_f32 *t) {
  const __m256d X = _mm256_setr_pd((double)x, (double)(x + 1), (double)(x + 2), (double)(x + 3));
  __m256d U[3];
  if (u)
    for (int c = 0; c < 3; c++) U[c] = _mm256_setr_pd(u[c], u[3 + c], u[6 + c], u[9 + c]);
  const double n[3] = {(double)ms->nx, (double)ms->ny, (double)ms->nz};
  const int zero_pad = w->pad != FFDP_PAD_BORDER;
  __m128i ii[3];
  __m128 f[3];
  int in = 0xF, out = 0;
  for (int a = 0; a < 3; a++) {
    __m256d q = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(w->B[a][0]), X), _mm256_set1_pd(w->B[a][1] * (double)y));
    q = _mm256_add_pd(q, _mm256_set1_pd(w->B[a][2] * (double)z));
    q = _mm256_add_pd(q, _mm256_set1_pd(w->B[a][3]));
    if (u) {
      __m256d s = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(w->S[a][0]), U[0]), _mm256_mul_pd(_mm256_set1_pd(w->S[a][1]), U[1]));
      s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_set1_pd(w->S[a][2]), U[2]));
      q = _mm256_add_pd(q, s);
    }
    const __m256d inside = _mm256_and_pd(_mm256_cmp_pd(q, _mm256_setzero_pd(), _CMP_GE_OQ),
                                         _mm256_cmp_pd(q, _mm256_set1_pd(n[a] - 1), _CMP_LT_OQ));
    in &= _mm256_movemask_pd(inside);
    /* both taps of this axis outside: floor(q) + 1 < 0 or floor(q) >= n */
    if (zero_pad)
      out |= _mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(q, _mm256_set1_pd(-1.0), _CMP_LT_OQ),
                                             _mm256_cmp_pd(q, _mm256_set1_pd(n[a]), _CMP_GE_OQ)));
    if ((in | out) != 0xF && (a == 2 || !zero_pad)) return 0; /* (a lane inside is never outside) */
    /* lanes inside keep q exactly; the others get a clamped, meaningless tap (their index is
     * replaced and their results masked) */
    const __m256d qc = _mm256_blendv_pd(_mm256_max_pd(_mm256_min_pd(q, _mm256_set1_pd(n[a] - 1)), _mm256_setzero_pd()), q, inside);
    ii[a] = _mm256_cvttpd_epi32(qc); /* q >= 0 where it counts: truncation is floor */
    const __m256d di = _mm256_cvtepi32_pd(ii[a]);
    __m256d sub = di; /* all_inside: the tap, or copysign(0, q) for tap 0 under zero padding */
    if (zero_pad) {
      const __m256d zero_tap = _mm256_cmp_pd(di, _mm256_setzero_pd(), _CMP_EQ_OQ);
      sub = _mm256_blendv_pd(di, _mm256_and_pd(qc, _mm256_set1_pd(-0.0)), zero_tap);
    }
    f[a] = _mm256_cvtpd_ps(_mm256_sub_pd(qc, sub));
  }
  int32_t ix[4], iy[4], iz[4];
  _mm_storeu_si128((__m128i *)ix, ii[0]), _mm_storeu_si128((__m128i *)iy, ii[1]), _mm_storeu_si128((__m128i *)iz, ii[2]);
  int first = -1;
  for (int l = 0; l < 4; l++)
    if (in >> l & 1) {
      t->b[l] = ffdp_slab_index(ms, ix[l], iy[l], iz[l]);
      if (first < 0) first = l;
    }
  t->any_inside = first >= 0;
  for (int l = 0; l < 4; l++)
    if (!(in >> l & 1)) t->b[l] = first >= 0 ? t->b[first] : 0; /* read an inside lane's corners again */
  t->fx = f[0], t->fy = f[1], t->fz = f[2];
  t->outside = _mm_castsi128_ps(_mm_setr_epi32(out & 1 ? -1 : 0, out & 2 ? -1 : 0, out & 4 ? -1 : 0, out & 8 ? -1 : 0));
  return 1;
}

/* The eight corners of the four lanes: v[k] holds corner k of lanes 0..3. Each row pair (the
 * tap and the next in x) is one 8-byte load per lane. */
static inline void corners4(const float *M, const taps4_f32 *t, int64_t sy, int64_t sz, __m128 v[8]) {
  const int64_t off[4] = {0, sy, sz, sz + sy};
  for (int r = 0; r < 4; r++) {
    const __m128 a = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(M + t->b[0] + off[r])),
                                  (const __m64 *)(M + t->b[1] + off[r]));
    const __m128 b = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(M + t->b[2] + off[r])),
                                  (const __m64 *)(M + t->b[3] + off[r]));
    v[2 * r] = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    v[2 * r + 1] = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

#define LERP4(g, a, f, b) _mm_add_ps(_mm_mul_ps(g, a), _mm_mul_ps(f, b))
/* trilinear()'s value (and, with d, its gradient) for four lanes. */
static inline __m128 trilinear4(const __m128 v[8], const taps4_f32 *t, __m128 d[3]) {
  const __m128 one = _mm_set1_ps(1.f);
  const __m128 gx = _mm_sub_ps(one, t->fx), gy = _mm_sub_ps(one, t->fy), gz = _mm_sub_ps(one, t->fz);
  const __m128 x00 = LERP4(gx, v[0], t->fx, v[1]), x10 = LERP4(gx, v[2], t->fx, v[3]);
  const __m128 x01 = LERP4(gx, v[4], t->fx, v[5]), x11 = LERP4(gx, v[6], t->fx, v[7]);
  const __m128 y0 = LERP4(gy, x00, t->fy, x10), y1 = LERP4(gy, x01, t->fy, x11);
  if (d) {
    const __m128 dx00 = _mm_sub_ps(v[1], v[0]), dx10 = _mm_sub_ps(v[3], v[2]);
    const __m128 dx01 = _mm_sub_ps(v[5], v[4]), dx11 = _mm_sub_ps(v[7], v[6]);
    d[0] = LERP4(gz, LERP4(gy, dx00, t->fy, dx10), t->fz, LERP4(gy, dx01, t->fy, dx11));
    d[1] = LERP4(gz, _mm_sub_ps(x10, x00), t->fz, _mm_sub_ps(x11, x01));
    d[2] = _mm_sub_ps(y1, y0);
  }
  return LERP4(gz, y0, t->fz, y1);
}
#undef LERP4

/* gu of four voxels from their gq (lanes): S^T·gq in double, as the one-voxel path forms it. */
static inline void store_gu4(const ffdp_warp *w, const __m128 gq[3], float *gu) {
  const __m256d g0 = _mm256_cvtps_pd(gq[0]), g1 = _mm256_cvtps_pd(gq[1]), g2 = _mm256_cvtps_pd(gq[2]);
  float o[3][4];
  for (int a = 0; a < 3; a++) {
    __m256d s = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(w->S[0][a]), g0), _mm256_mul_pd(_mm256_set1_pd(w->S[1][a]), g1));
    s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_set1_pd(w->S[2][a]), g2));
    _mm_storeu_ps(o[a], _mm256_cvtpd_ps(s));
  }
  for (int l = 0; l < 4; l++) gu[3 * l] = o[0][l], gu[3 * l + 1] = o[1][l], gu[3 * l + 2] = o[2][l];
}
