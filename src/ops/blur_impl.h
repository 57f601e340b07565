/* Separable Gaussian smoothing on a slab. Each thread streams its z-range through a ring of
 * 2r+1 planes already filtered in x and y, so the only temporaries are (2r+2) planes per
 * thread. Included with REAL and SUFFIX set, after filter_impl.h. */

void FN(ffdp_blur)(const ffdp_slab *s, const REAL *in, int ncomp, const double sigma[3], REAL *out) {
  double w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = (int)ffdp_gauss_weights(sigma[a], w[a]);
  const int64_t nx = s->nx, ny = s->ny, P = nx * ny * ncomp;
  const int K = 2 * r[2] + 1;
#pragma omp parallel
  {
    int64_t za, zb;
    ffdp_chunk(s->z0, s->z1, omp_get_thread_num(), omp_get_num_threads(), &za, &zb);
    REAL *ring = za < zb ? malloc((size_t)(K + 1) * P * sizeof(REAL)) : NULL;
    REAL *tmp = ring ? ring + (size_t)K * P : NULL;
    for (int64_t t = za - r[2]; ring && t < zb + r[2]; t++) {
      REAL *slot = ring + ((t % K + K) % K) * P;
      if (t < 0 || t >= s->nz) {
        for (int64_t k = 0; k < P; k++) slot[k] = 0;
      } else {
        FN(filter_plane_xy)(in + (t - s->zlo) * P, slot, tmp, nx, ny, ncomp, w[0], r[0], w[1], r[1]);
      }
      int64_t o = t - r[2];
      if (o < za) continue;
      /* z: the symmetric taps paired, a block of the output plane at a time so that it stays in
       * L1 while the 2r+1 source planes stream past (one pass over dst instead of 2r+1) */
      REAL *dst = out + (o - s->zlo) * P;
      const REAL *src[2 * FFDP_MAX_RADIUS + 1];
      for (int d = -r[2]; d <= r[2]; d++) src[d + r[2]] = ring + (((o + d) % K + K) % K) * P;
      const REAL *mid = src[r[2]], w0 = (REAL)w[2][r[2]];
      for (int64_t k0 = 0; k0 < P; k0 += 2048) {
        const int64_t k1 = k0 + 2048 < P ? k0 + 2048 : P;
        for (int64_t k = k0; k < k1; k++) dst[k] = w0 * mid[k];
        for (int d = 1; d <= r[2]; d++) {
          const REAL *a = src[r[2] - d], *b = src[r[2] + d], wd = (REAL)w[2][r[2] + d];
          for (int64_t k = k0; k < k1; k++) dst[k] += wd * (a[k] + b[k]);
        }
      }
    }
    free(ring);
  }
}
