/* In-plane separable filtering with zero padding, shared by blur and LNCC.
 * Included with REAL and SUFFIX set. */

/* Filter a plane along x (stride 1) or y (stride nx) with zero padding; n taps = 2r+1. */
static void FN(filter_line_x)(const REAL *in, REAL *out, int64_t nx, int64_t ny, int ncomp, const double *w, int r) {
  for (int64_t y = 0; y < ny; y++) {
    const REAL *a = in + y * nx * ncomp;
    REAL *b = out + y * nx * ncomp;
    for (int64_t x = 0; x < nx; x++)
      for (int c = 0; c < ncomp; c++) {
        double s = 0;
        int64_t lo = x - r < 0 ? -x : -r, hi = x + r >= nx ? nx - 1 - x : r;
        for (int64_t d = lo; d <= hi; d++) s += w[d + r] * a[(x + d) * ncomp + c];
        b[x * ncomp + c] = (REAL)s;
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

