/* Mean squared error. Included with REAL and SUFFIX set. */
void FN(ffdp_mse_planes)(const ffdp_slab *s, const REAL *F, const REAL *M, const uint8_t *mask, double norm, REAL *gM,
                         double *part) {
  const int64_t P = ffdp_slab_plane(s);
#pragma omp parallel for schedule(static)
  for (int64_t z = s->z0; z < s->z1; z++) {
    double acc = 0;
    const int64_t base = (z - s->zlo) * P;
    for (int64_t k = base; k < base + P; k++) {
      REAL m = mask ? (REAL)(mask[k] != 0) : (REAL)1;
      REAL d = M[k] - F[k];
      acc += (double)(m * d * d);
      if (gM) gM[k] = (REAL)(norm * 2.0) * m * d;
    }
    part[z - s->z0] = acc;
  }
}

double FN(ffdp_mse)(const ffdp_slab *s, const REAL *F, const REAL *M, const uint8_t *mask, double norm, REAL *gM) {
  const int64_t nzo = s->z1 - s->z0;
  double *part = calloc((size_t)(nzo > 0 ? nzo : 1), sizeof(double));
  FN(ffdp_mse_planes)(s, F, M, mask, norm, gM, part);
  double sum = 0;
  for (int64_t k = 0; k < nzo; k++) sum += part[k];
  free(part);
  return sum * norm;
}
