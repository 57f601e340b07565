/* Local normalized cross-correlation, forward and backward in one streaming pass.
 *
 * With normalized window weights w and moments m1=w*F, m2=w*M, m3=w*F², m4=w*M², m5=w*FM:
 *   cc = cov² / (vF·vM + eps),  cov = m5 - m1 m2,  vF = m3 - m1²,  vM = m4 - m2².
 * The loss is -Σ cc (times norm); its gradient w.r.t. M is
 *   gM = w*G2 + 2 M (w*G4) + F (w*G5),   Gk = ∂loss/∂mk  (window symmetric, so w^T = w).
 * What is kept: per thread, a ring of 2r+1 planes of the five xy-filtered products and a
 * ring of 2r+1 planes of the three xy-filtered G's, plus two scratch planes. No moment or
 * G volume exists at full size. Included with REAL and SUFFIX set. */

static double FN(lncc_window_weights)(const ffdp_lncc_params *p, double *w) {
  int r = (p->window - 1) / 2;
  if (p->kind == FFDP_WINDOW_BOX) {
    for (int d = 0; d < p->window; d++) w[d] = 1.0 / p->window;
  } else {
    double sig = r / 2.0 > 0.5 ? r / 2.0 : 0.5, sum = 0;
    for (int d = -r; d <= r; d++) sum += (w[d + r] = exp(-0.5 * d * d / (sig * sig)));
    for (int d = 0; d < p->window; d++) w[d] /= sum;
  }
  return r;
}

#ifndef FFDP_LNCC_BK
#define FFDP_LNCC_BK 64 /* voxels of a plane per moment block */
#endif

/* out[j] = Σd wz[d]·planes[d][k0 + j] for nk <= FFDP_LNCC_BK voxels, summed from d = 0 up as the
 * one-voxel loops did; out is local, so the j loop vectorizes. */
static inline void FN(lncc_zsum_block)(REAL *restrict out, const REAL *const *planes, const REAL *wz, int K, int64_t k0,
                                       int nk) {
  for (int j = 0; j < nk; j++) out[j] = 0;
  for (int d = 0; d < K; d++) {
    const REAL wd = wz[d], *a = planes[d] + k0;
    for (int j = 0; j < nk; j++) out[j] += wd * a[j];
  }
}

/* The per-voxel part of lncc_cc_block (want_m, want_f: constants at each call). */
static inline __attribute__((always_inline)) void FN(lncc_cc_rows)(const REAL m[5][FFDP_LNCC_BK], const REAL *wk, int nk,
                                                                  REAL eps, REAL nrm, int want_m, int want_f,
                                                                  REAL *restrict ccw, REAL g[6][FFDP_LNCC_BK]) {
  for (int j = 0; j < nk; j++) {
    const REAL m1 = m[0][j], m2 = m[1][j], m3 = m[2][j], m4 = m[3][j], m5 = m[4][j];
    const REAL cov = m5 - m1 * m2, vF0 = m3 - m1 * m1, vM0 = m4 - m2 * m2;
    const int vMpos = vM0 > 0, vFpos = vF0 > 0;
    const REAL vF = vF0 < 0 ? (REAL)0 : vF0, vM = vMpos ? vM0 : (REAL)0;
    const REAL den = vF * vM + eps, cc = cov * cov / den;
    ccw[j] = wk[j] * cc;
    /* d(-cc)/dcov and d(-cc)/dvM (dvF), scaled by norm and the mask */
    const REAL s_ = nrm * wk[j], dcov = -s_ * 2 * cov / den;
    if (want_m) {
      const REAL tM = s_ * cov * cov * vF / (den * den), dvM = vMpos ? tM : (REAL)0; /* den > 0: no branch needed */
      g[0][j] = dcov * (-m1) + dvM * (-2 * m2), g[1][j] = dvM, g[2][j] = dcov;
    }
    if (want_f) {
      const REAL tF = s_ * cov * cov * vM / (den * den), dvF = vFpos ? tF : (REAL)0;
      g[3][j] = dcov * (-m2) + dvF * (-2 * m1), g[4][j] = dvF, g[5][j] = dcov;
    }
  }
}

/* cc and the G's of nk <= FFDP_LNCC_BK voxels of moment plane p: the z filter of the five
 * xy-filtered products (A: their 2r+1 planes around p), then per voxel cov, the variances, cc and
 * the derivatives. Through local arrays, which no ring pointer can alias, so the compiler
 * vectorizes both loops (the divisions were a scalar vdivss each); every voxel's operations are
 * the one-voxel loop's, in its order: the same bits. ccw: the mask times cc (the loss's terms);
 * g[0..2]: ∂/∂m2, ∂/∂m4, ∂/∂m5 for gM; g[3..5]: ∂/∂m1, ∂/∂m3, ∂/∂m5 for gF. */
static inline void FN(lncc_cc_block)(const REAL *const A[5][2 * FFDP_MAX_RADIUS + 1], const REAL *wz, int K, int64_t k0,
                                     int nk, const uint8_t *mk, REAL eps, REAL nrm, int want_m, int want_f,
                                     REAL *restrict ccw, REAL g[6][FFDP_LNCC_BK]) {
  REAL m[5][FFDP_LNCC_BK];
  for (int q = 0; q < 5; q++) FN(lncc_zsum_block)(m[q], A[q], wz, K, k0, nk);
  REAL wk[FFDP_LNCC_BK];
  if (mk)
    for (int j = 0; j < nk; j++) wk[j] = (REAL)(mk[j] != 0);
  else
    for (int j = 0; j < nk; j++) wk[j] = 1;
  /* the gradients asked for as constants, so that each case is a loop without branches */
  if (want_m && want_f) FN(lncc_cc_rows)(m, wk, nk, eps, nrm, 1, 1, ccw, g);
  else if (want_m) FN(lncc_cc_rows)(m, wk, nk, eps, nrm, 1, 0, ccw, g);
  else if (want_f) FN(lncc_cc_rows)(m, wk, nk, eps, nrm, 0, 1, ccw, g);
  else FN(lncc_cc_rows)(m, wk, nk, eps, nrm, 0, 0, ccw, g);
}

void FN(ffdp_lncc_planes2)(const ffdp_lncc_params *prm, const ffdp_slab *s, const REAL *F, const REAL *M,
                           const uint8_t *mask, double norm, REAL *gF, REAL *gM, double *part) {
  double w[2 * FFDP_MAX_RADIUS + 1];
  const int r = (int)FN(lncc_window_weights)(prm, w), K = 2 * r + 1;
  const int64_t nx = s->nx, ny = s->ny, P = nx * ny;
  const REAL eps = (REAL)prm->eps;
#pragma omp parallel
  {
    int64_t za, zb;
    ffdp_chunk(s->z0, s->z1, omp_get_thread_num(), omp_get_num_threads(), &za, &zb);
    /* G planes: three for gM (∂/∂m2, ∂/∂m4, ∂/∂m5), then three for gF (∂/∂m1, ∂/∂m3, ∂/∂m5),
     * each formed as the call with F and M swapped would form it */
    const int gm0 = 0, gf0 = gM ? 3 : 0, ng = gf0 + (gF ? 3 : 0);
    REAL *buf = za < zb ? malloc((size_t)((5 + ng) * K + 2) * P * sizeof(REAL)) : NULL;
    REAL *ringA = buf, *ringB = buf + (size_t)5 * K * P;
    REAL *t0 = buf + (size_t)(5 + ng) * K * P, *t1 = t0 + P;
#define SLOT(ring, q, z) ((ring) + ((size_t)(q) * K + (size_t)(((z) % K + K) % K)) * P)
    for (int64_t t = za - 2 * r; buf && t < zb + 2 * r; t++) {
      /* 1. input plane t: xy-filter F, M, F², M², FM into ring A. */
      for (int q = 0; q < 5; q++) {
        REAL *dst = SLOT(ringA, q, t);
        if (t < 0 || t >= s->nz) {
          for (int64_t k = 0; k < P; k++) dst[k] = 0;
          continue;
        }
        const REAL *f = F + (t - s->zlo) * P, *m = M + (t - s->zlo) * P;
        for (int64_t k = 0; k < P; k++)
          t0[k] = q == 0 ? f[k] : q == 1 ? m[k] : q == 2 ? f[k] * f[k] : q == 3 ? m[k] * m[k] : f[k] * m[k];
        FN(filter_plane_xy)(t0, dst, t1, nx, ny, 1, w, r, w, r);
      }
      /* 2. moment plane p = t - r: cc, loss, and the G planes. */
      const int64_t p = t - r;
      if (p >= za - r) {
        int in_img = p >= 0 && p < s->nz;
        REAL *G[6] = {0};
        for (int q = 0; q < ng; q++) G[q] = SLOT(ringB, q, p);
        double acc = 0;
        /* the 2r+1 planes of each product around p, and the weights, looked up once per plane */
        const REAL *A[5][2 * FFDP_MAX_RADIUS + 1];
        REAL wz[2 * FFDP_MAX_RADIUS + 1];
        for (int d = -r; d <= r; d++) {
          wz[d + r] = (REAL)w[d + r];
          for (int q = 0; q < 5; q++) A[q][d + r] = SLOT(ringA, q, p + d);
        }
        const uint8_t *mrow = mask && in_img ? mask + (p - s->zlo) * P : NULL;
        for (int64_t k0 = 0; k0 < P; k0 += FFDP_LNCC_BK) {
          const int nk = P - k0 < FFDP_LNCC_BK ? (int)(P - k0) : FFDP_LNCC_BK;
          if (!in_img) {
            for (int q = 0; q < ng; q++) memset(G[q] + k0, 0, (size_t)nk * sizeof(REAL));
            continue;
          }
          REAL ccw[FFDP_LNCC_BK], g[6][FFDP_LNCC_BK];
          FN(lncc_cc_block)(A, wz, K, k0, nk, mrow ? mrow + k0 : NULL, eps, (REAL)norm, gM != NULL, gF != NULL, ccw, g);
          if (p >= za && p < zb)
            for (int j = 0; j < nk; j++) acc -= (double)ccw[j];
          for (int q = 0; q < 3 && gM; q++) memcpy(G[gm0 + q] + k0, g[q], (size_t)nk * sizeof(REAL));
          for (int q = 0; q < 3 && gF; q++) memcpy(G[gf0 + q] + k0, g[3 + q], (size_t)nk * sizeof(REAL));
        }
        if (p >= za && p < zb) part[p - s->z0] = acc * norm;
        for (int q = 0; in_img && q < ng; q++) {
          memcpy(t0, G[q], (size_t)P * sizeof(REAL));
          FN(filter_plane_xy)(t0, G[q], t1, nx, ny, 1, w, r, w, r);
        }
      }
      /* 3. output plane o = t - 2r: gM = w*G2 + 2M (w*G4) + F (w*G5); gF the same with F, M swapped. */
      const int64_t o = t - 2 * r;
      for (int side = 0; side < 2 && ng && o >= za && o < zb; side++) {
        REAL *gout = side ? gF : gM;
        if (!gout) continue;
        const int q0 = side ? gf0 : gm0;
        const REAL *f = (side ? M : F) + (o - s->zlo) * P, *m = (side ? F : M) + (o - s->zlo) * P;
        REAL *g = gout + (o - s->zlo) * P;
        const REAL *B[3][2 * FFDP_MAX_RADIUS + 1];
        REAL wz[2 * FFDP_MAX_RADIUS + 1];
        for (int d = -r; d <= r; d++) {
          wz[d + r] = (REAL)w[d + r];
          for (int q = 0; q < 3; q++) B[q][d + r] = SLOT(ringB, q0 + q, o + d);
        }
        for (int64_t k0 = 0; k0 < P; k0 += FFDP_LNCC_BK) { /* in blocks, as the moments above */
          const int nk = P - k0 < FFDP_LNCC_BK ? (int)(P - k0) : FFDP_LNCC_BK;
          REAL zs[3][FFDP_LNCC_BK];
          for (int q = 0; q < 3; q++) FN(lncc_zsum_block)(zs[q], B[q], wz, K, k0, nk);
          for (int j = 0; j < nk; j++) g[k0 + j] = zs[0][j] + 2 * m[k0 + j] * zs[1][j] + f[k0 + j] * zs[2][j];
        }
      }
    }
#undef SLOT
    free(buf);
  }
}

void FN(ffdp_lncc_planes)(const ffdp_lncc_params *prm, const ffdp_slab *s, const REAL *F, const REAL *M,
                          const uint8_t *mask, double norm, REAL *gM, double *part) {
  FN(ffdp_lncc_planes2)(prm, s, F, M, mask, norm, NULL, gM, part);
}

double FN(ffdp_lncc)(const ffdp_lncc_params *prm, const ffdp_slab *s, const REAL *F, const REAL *M,
                     const uint8_t *mask, double norm, REAL *gM) {
  const int64_t nzo = s->z1 - s->z0;
  double *part = calloc((size_t)(nzo > 0 ? nzo : 1), sizeof(double));
  FN(ffdp_lncc_planes)(prm, s, F, M, mask, norm, gM, part);
  double sum = 0;
  for (int64_t k = 0; k < nzo; k++) sum += part[k];
  free(part);
  return sum;
}
