/* Displacement composition out(p) = U(B·[p;1] + S·v(p)) + T·v(p): the vector-valued sampler
 * plus a linear term. With B, S mapping x+v(x) into U's voxels and T = A this gives
 * u∘(A·x+v) as used by compositive updates. Included with REAL and SUFFIX set. */

void FN(ffdp_compose_fwd)(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs, const REAL *v,
                          const ffdp_slab *us, const REAL *U, REAL *out) {
  FN(ffdp_sample_fwd)(w, fs, v, us, U, 3, out);
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        const REAL *vi = v + 3 * i;
        for (int a = 0; a < 3; a++) out[3 * i + a] += (REAL)(T[a][0] * vi[0] + T[a][1] * vi[1] + T[a][2] * vi[2]);
      }
}

void FN(ffdp_compose_bwd)(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs, const REAL *v,
                          const ffdp_slab *us, const REAL *U, const REAL *gout, REAL *gv, REAL *gU) {
  FN(ffdp_sample_bwd)(w, fs, v, us, U, 3, gout, gv, NULL, gU);
  if (!gv) return;
  const int64_t nx = fs->nx, ny = fs->ny;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = fs->z0; z < fs->z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        const int64_t i = ffdp_slab_index(fs, x, y, z);
        const REAL *g = gout + 3 * i;
        for (int a = 0; a < 3; a++) gv[3 * i + a] += (REAL)(T[0][a] * g[0] + T[1][a] * g[1] + T[2][a] * g[2]);
      }
}
