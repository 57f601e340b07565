/* In-plane separable filtering with zero padding, shared by blur and LNCC.
 * Included with REAL and SUFFIX set. */

/* Filter a plane along x (stride 1) or y (stride nx) with zero padding; n taps = 2r+1.
 * x: one pass over the row per tap (the row stays in L1), each a contiguous loop the compiler
 * vectorizes; a tap whose neighbour lies past either end of the row adds nothing. */
static void FN(filter_line_x)(const REAL *in, REAL *out, int64_t nx, int64_t ny, int ncomp, const double *w, int r) {
  const int64_t L = nx * ncomp;
  REAL wr[2 * FFDP_MAX_RADIUS + 1];
  for (int d = 0; d <= 2 * r; d++) wr[d] = (REAL)w[d];
  for (int64_t y = 0; y < ny; y++) {
    const REAL *a = in + y * L;
    REAL *b = out + y * L;
    const REAL w0 = wr[r];
    for (int64_t j = 0; j < L; j++) b[j] = w0 * a[j];
    for (int d = 1; d <= r && d < nx; d++) {
      const int64_t sh = (int64_t)d * ncomp;
      const REAL wp = wr[r + d], wm = wr[r - d];
      for (int64_t j = 0; j < L - sh; j++) b[j] += wp * a[j + sh];
      for (int64_t j = sh; j < L; j++) b[j] += wm * a[j - sh];
    }
  }
}

static void FN(filter_line_y)(const REAL *in, REAL *out, int64_t nx, int64_t ny, int ncomp, const double *w, int r) {
  const int64_t row = nx * ncomp;
  for (int64_t y = 0; y < ny; y++) {
    int64_t lo = y - r < 0 ? -y : -r, hi = y + r >= ny ? ny - 1 - y : r;
    REAL *b = out + y * row;
    for (int64_t k = 0; k < row; k++) b[k] = 0;
    for (int64_t d = lo; d <= hi; d++) {
      const REAL *a = in + (y + d) * row;
      const REAL wd = (REAL)w[d + r];
      for (int64_t k = 0; k < row; k++) b[k] += wd * a[k];
    }
  }
}

/* In-plane (x then y) filter of one plane; `tmp` holds one plane. */
static void FN(filter_plane_xy)(const REAL *in, REAL *out, REAL *tmp, int64_t nx, int64_t ny, int ncomp,
                                const double *wx, int rx, const double *wy, int ry) {
  FN(filter_line_x)(in, tmp, nx, ny, ncomp, wx, rx);
  FN(filter_line_y)(tmp, out, nx, ny, ncomp, wy, ry);
}

