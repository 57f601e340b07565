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
        for (int64_t k = 0; k < P; k++) {
          if (!in_img) {
            for (int q = 0; q < ng; q++) G[q][k] = 0;
            continue;
          }
          REAL m1 = 0, m2 = 0, m3 = 0, m4 = 0, m5 = 0;
          for (int d = 0; d <= 2 * r; d++) {
            const REAL wd = wz[d];
            m1 += wd * A[0][d][k];
            m2 += wd * A[1][d][k];
            m3 += wd * A[2][d][k];
            m4 += wd * A[3][d][k];
            m5 += wd * A[4][d][k];
          }
          REAL cov = m5 - m1 * m2, vF = m3 - m1 * m1, vM = m4 - m2 * m2;
          const int vMpos = vM > 0, vFpos = vF > 0;
          if (vF < 0) vF = 0;
          if (!vMpos) vM = 0;
          REAL den = vF * vM + eps, cc = cov * cov / den;
          REAL wk = mask ? (REAL)(mask[(p - s->zlo) * P + k] != 0) : (REAL)1;
          if (p >= za && p < zb) acc -= (double)(wk * cc);
          if (ng) {
            /* d(-cc)/dcov and d(-cc)/dvM (dvF), scaled by norm and the mask. */
            REAL s_ = (REAL)norm * wk;
            REAL dcov = -s_ * 2 * cov / den;
            if (gM) {
              REAL dvM = vMpos ? s_ * cov * cov * vF / (den * den) : 0;
              G[gm0][k] = dcov * (-m1) + dvM * (-2 * m2); /* ∂/∂m2 */
              G[gm0 + 1][k] = dvM;                        /* ∂/∂m4 */
              G[gm0 + 2][k] = dcov;                       /* ∂/∂m5 */
            }
            if (gF) {
              REAL dvF = vFpos ? s_ * cov * cov * vM / (den * den) : 0;
              G[gf0][k] = dcov * (-m2) + dvF * (-2 * m1); /* ∂/∂m1 */
              G[gf0 + 1][k] = dvF;                        /* ∂/∂m3 */
              G[gf0 + 2][k] = dcov;                       /* ∂/∂m5 */
            }
          }
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
        for (int64_t k = 0; k < P; k++) {
          REAL a = 0, b = 0, c = 0;
          for (int d = 0; d <= 2 * r; d++) {
            const REAL wd = wz[d];
            a += wd * B[0][d][k];
            b += wd * B[1][d][k];
            c += wd * B[2][d][k];
          }
          g[k] = a + 2 * m[k] * b + f[k] * c;
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
