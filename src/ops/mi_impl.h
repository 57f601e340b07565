/* Mattes mutual information with implicit Parzen windows. The joint histogram is
 * accumulated straight from the intensities: each voxel adds the outer product of its
 * (at most 8) fixed and moving kernel weights (MATTES: one fixed weight, 1); no N x bins
 * weight block exists.
 * Loss = -MI; d(-MI)/dM(p) = -(1/N) Σij log(pij/(pi pj)) wf_i(p) dwm_j(p)/dM  (the "-1" of
 * d(p log p) cancels because each voxel's weights sum to one).
 * Included with REAL and SUFFIX set. */

/* Intensity -> continuous bin coordinate, clamped to the bins whose kernels stay inside
 * [0, bins); *deta is d(eta)/d(value) (0 when clamped). The per-image constants are made once
 * per call (FN(mi_axis)): inside the loops the histogram's stores could alias the parameters,
 * so the compiler would divide again for every voxel. */
typedef struct {
  double pad, span, vmin, scale;
} FN(mi_axis_t);

static inline FN(mi_axis_t) FN(mi_axis)(ffdp_parzen_kind kind, double vmin, double vmax, int bins) {
  FN(mi_axis_t) a;
  a.pad = (double)ffdp_parzen_pad(kind), a.span = bins - 1 - 2 * a.pad, a.vmin = vmin;
  a.scale = vmax > vmin ? a.span / (vmax - vmin) : 0;
  return a;
}

static inline double FN(mi_eta)(const FN(mi_axis_t) *a, double v, double *deta) {
  double eta = a->pad + (v - a->vmin) * a->scale;
  *deta = a->scale;
  if (!(eta >= a->pad)) eta = a->pad, *deta = 0; /* also NaN */
  if (eta > a->pad + a->span) eta = a->pad + a->span, *deta = 0;
  return eta;
}

/* The moving image's window, taps from j0 (returned): the B-spline inline, the Gaussian through
 * ffdp_parzen. */
static inline int FN(mi_window)(ffdp_parzen_kind kind, int B, double eta, double *w, double *dw) {
  return kind != FFDP_PARZEN_GAUSS ? ffdp_parzen_bspline4(eta, w, dw) : ffdp_parzen(kind, B, eta, w, dw);
}

/* The fixed image's: MATTES's box (one tap of weight 1), else the moving image's window. */
static inline int FN(mi_fixed_window)(ffdp_parzen_kind kind, int B, double eta, double *w, double *dw) {
  if (kind != FFDP_PARZEN_MATTES) return FN(mi_window)(kind, B, eta, w, dw);
  w[0] = 1, dw[0] = 0;
  return ffdp_parzen_box(eta);
}

/* One plane's voxels into its histogram h; ntf, nt: the fixed and moving windows' taps,
 * constants at each call (the loops unroll). A zero weight adds +0, which leaves a bin unchanged
 * (bins are sums of non-negative products from +0, never -0), so no test on it is needed: the
 * same bits. */
static inline __attribute__((always_inline)) void FN(mi_hist_row)(ffdp_parzen_kind kind, int B, int ntf, int nt,
                                                                 const FN(mi_axis_t) *af, const FN(mi_axis_t) *am,
                                                                 const REAL *F, const REAL *M, const uint8_t *mask,
                                                                 int64_t k0, int64_t k1, double *h) {
  for (int64_t k = k0; k < k1; k++) {
    if (mask && !mask[k]) continue;
    double de, wf[FFDP_PARZEN_MAX], wm[FFDP_PARZEN_MAX], dw[FFDP_PARZEN_MAX];
    const int jf = FN(mi_fixed_window)(kind, B, FN(mi_eta)(af, F[k], &de), wf, dw);
    const int jm = FN(mi_window)(kind, B, FN(mi_eta)(am, M[k], &de), wm, dw);
    for (int a = 0; a < ntf; a++) {
      double *row = h + (int64_t)(jf + a) * B + jm;
      for (int b = 0; b < nt; b++) row[b] += wf[a] * wm[b];
    }
  }
}

void FN(ffdp_mi_hist_planes)(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,
                             const uint8_t *mask, double *part) {
  const int B = p->bins;
  const int64_t P = ffdp_slab_plane(s), nzo = s->z1 - s->z0;
  memset(part, 0, (size_t)(nzo > 0 ? nzo : 0) * B * B * sizeof(double));
  const FN(mi_axis_t) af = FN(mi_axis)(p->kind, p->fmin, p->fmax, B), am = FN(mi_axis)(p->kind, p->mmin, p->mmax, B);
  const ffdp_parzen_kind kind = p->kind;
#pragma omp parallel for schedule(static)
  for (int64_t z = s->z0; z < s->z1; z++) {
    double *h = part + (z - s->z0) * B * B;
    const int64_t base = (z - s->zlo) * P;
    if (kind == FFDP_PARZEN_BSPLINE) FN(mi_hist_row)(FFDP_PARZEN_BSPLINE, B, 4, 4, &af, &am, F, M, mask, base, base + P, h);
    else if (kind == FFDP_PARZEN_MATTES)
      FN(mi_hist_row)(FFDP_PARZEN_MATTES, B, 1, 4, &af, &am, F, M, mask, base, base + P, h);
    else FN(mi_hist_row)(kind, B, ffdp_parzen_taps(kind), ffdp_parzen_taps(kind), &af, &am, F, M, mask, base, base + P, h);
  }
}

void FN(ffdp_mi_hist)(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,
                      const uint8_t *mask, double *hist) {
  const int B = p->bins;
  const int64_t nzo = s->z1 - s->z0;
  double *part = calloc((size_t)(nzo > 0 ? nzo : 1) * B * B, sizeof(double));
  FN(ffdp_mi_hist_planes)(p, s, F, M, mask, part);
  for (int64_t z = 0; z < nzo; z++)
    for (int k = 0; k < B * B; k++) hist[k] += part[z * B * B + k];
  free(part);
}

double FN(ffdp_mi_table)(const ffdp_mi_params *p, const double *hist, double *table) {
  const int B = p->bins;
  double n = 0, pf[FFDP_MI_MAX_BINS] = {0}, pm[FFDP_MI_MAX_BINS] = {0};
  for (int k = 0; k < B * B; k++) n += hist[k];
  if (!(n > 0)) {
    for (int k = 0; k < B * B; k++) table[k] = 0;
    return 0;
  }
  for (int i = 0; i < B; i++)
    for (int j = 0; j < B; j++) {
      pf[i] += hist[i * B + j] / n;
      pm[j] += hist[i * B + j] / n;
    }
  double mi = 0;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < B; j++) {
      double pij = hist[i * B + j] / n;
      double t = pij > 0 ? log(pij / (pf[i] * pm[j])) : 0;
      table[i * B + j] = t;
      mi += pij * t;
    }
  return mi;
}

/* One plane's gradient (ntf, nt as in mi_hist_row). The weighted sum starts at +0 and a zero
 * weight adds a zero, which leaves a sum that is never -0 unchanged: no test on it, the same bits. */
static inline __attribute__((always_inline)) void FN(mi_grad_row)(ffdp_parzen_kind kind, int B, int ntf, int nt,
                                                                 const FN(mi_axis_t) *af, const FN(mi_axis_t) *am,
                                                                 const REAL *F, const REAL *M, const uint8_t *mask,
                                                                 const double *table, double norm, int64_t k0,
                                                                 int64_t k1, REAL *gM) {
  for (int64_t k = k0; k < k1; k++) {
    if (mask && !mask[k]) {
      gM[k] = 0;
      continue;
    }
    double def, dem, wf[FFDP_PARZEN_MAX], dwf[FFDP_PARZEN_MAX], wm[FFDP_PARZEN_MAX], dwm[FFDP_PARZEN_MAX];
    const int jf = FN(mi_fixed_window)(kind, B, FN(mi_eta)(af, F[k], &def), wf, dwf);
    const int jm = FN(mi_window)(kind, B, FN(mi_eta)(am, M[k], &dem), wm, dwm);
    double g = 0;
    if (dem != 0)
      for (int a = 0; a < ntf; a++) {
        const double *row = table + (int64_t)(jf + a) * B + jm;
        double sa = 0;
        for (int b = 0; b < nt; b++) sa += row[b] * dwm[b];
        g += wf[a] * sa;
      }
    gM[k] = (REAL)(-norm * g * dem);
  }
}

void FN(ffdp_mi_grad)(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,
                      const uint8_t *mask, const double *table, double norm, REAL *gM) {
  const int B = p->bins;
  const int64_t P = ffdp_slab_plane(s);
  const FN(mi_axis_t) af = FN(mi_axis)(p->kind, p->fmin, p->fmax, B), am = FN(mi_axis)(p->kind, p->mmin, p->mmax, B);
  const ffdp_parzen_kind kind = p->kind;
#pragma omp parallel for schedule(static)
  for (int64_t z = s->z0; z < s->z1; z++) {
    const int64_t base = (z - s->zlo) * P;
    if (kind == FFDP_PARZEN_BSPLINE)
      FN(mi_grad_row)(FFDP_PARZEN_BSPLINE, B, 4, 4, &af, &am, F, M, mask, table, norm, base, base + P, gM);
    else if (kind == FFDP_PARZEN_MATTES)
      FN(mi_grad_row)(FFDP_PARZEN_MATTES, B, 1, 4, &af, &am, F, M, mask, table, norm, base, base + P, gM);
    else
      FN(mi_grad_row)(kind, B, ffdp_parzen_taps(kind), ffdp_parzen_taps(kind), &af, &am, F, M, mask, table, norm, base,
                      base + P, gM);
  }
}
