/* N ranks agree with one rank: halo exchange with a rank-dependent pattern (uneven slabs,
 * different halos), then LNCC and blur on slabs with exchanged halos compared with the
 * whole-volume operators; loss sums in fixed rank order. Run under mpirun -np 1..4. A slab
 * thinner than its neighbour's halo fails on every rank with the same message, no hang. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist/dist.h"
#include "../check.h"

static float pattern(int64_t x, int64_t y, int64_t z, int c) { return (float)(1 + x + 100 * y + 10000 * z + 0.25 * c); }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  const int64_t nx = 13, ny = 11, nz = 23, P = nx * ny, N = P * nz;
  ffdp_error err;

  /* 1. halo exchange, vector data, halo 3 */
  ffdp_slab s = ffdp_slab_split(nx, ny, nz, rank, n, 3);
  float *v = malloc((size_t)ffdp_slab_stored(&s) * 3 * sizeof(float));
  for (int64_t i = 0; i < ffdp_slab_stored(&s) * 3; i++) v[i] = -1;
  for (int64_t z = s.z0; z < s.z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++)
        for (int c = 0; c < 3; c++) v[ffdp_slab_index(&s, x, y, z) * 3 + c] = pattern(x, y, z, c);
  CHECK(ffdp_halo_exchange(MPI_COMM_WORLD, &s, v, 3, &err) == FFDP_OK, "exchange: %s", err.msg);
  int bad = 0;
  for (int64_t z = s.zlo; z < s.zhi; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++)
        for (int c = 0; c < 3; c++) bad += v[ffdp_slab_index(&s, x, y, z) * 3 + c] != pattern(x, y, z, c);
  CHECK(bad == 0, "rank %d: %d halo values wrong", rank, bad);
  free(v);

  /* 2. LNCC (window 5, halo 4) and blur (sigma 1, halo 3): slabs vs the whole volume */
  rng_t r = {777};
  float *F = malloc(N * sizeof(float)), *M = malloc(N * sizeof(float)), *g1 = malloc(N * sizeof(float)),
        *b1 = malloc(N * sizeof(float));
  for (int64_t i = 0; i < N; i++) F[i] = (float)rng_nz(&r, 0.1, 1), M[i] = 0.5f * F[i] + 0.5f * (float)rng_nz(&r, 0.1, 1);
  ffdp_lncc_params lp = {5, FFDP_WINDOW_BOX, 1e-5};
  ffdp_slab whole = ffdp_slab_whole(nx, ny, nz);
  double L1 = ffdp_lncc_f32(&lp, &whole, F, M, NULL, 1.0 / N, g1);
  const double sig[3] = {1, 1, 1};
  ffdp_blur_f32(&whole, F, 1, sig, b1);
  ffdp_slab sl = ffdp_slab_split(nx, ny, nz, rank, n, ffdp_lncc_halo(&lp));
  const int64_t ns = ffdp_slab_stored(&sl);
  float *Fs = calloc(ns, sizeof(float)), *Ms = calloc(ns, sizeof(float)), *gs = calloc(ns, sizeof(float)),
        *bs = calloc(ns, sizeof(float));
  memcpy(Fs + (sl.z0 - sl.zlo) * P, F + sl.z0 * P, (sl.z1 - sl.z0) * P * sizeof(float)); /* owned planes only */
  memcpy(Ms + (sl.z0 - sl.zlo) * P, M + sl.z0 * P, (sl.z1 - sl.z0) * P * sizeof(float));
  CHECK(ffdp_halo_exchange(MPI_COMM_WORLD, &sl, Fs, 1, &err) == FFDP_OK, "%s", err.msg);
  CHECK(ffdp_halo_exchange(MPI_COMM_WORLD, &sl, Ms, 1, &err) == FFDP_OK, "%s", err.msg);
  double Ln = ffdp_sum_ordered(MPI_COMM_WORLD, ffdp_lncc_f32(&lp, &sl, Fs, Ms, NULL, 1.0 / N, gs));
  ffdp_blur_f32(&sl, Fs, 1, sig, bs);
  int gb = 0, bb = 0;
  for (int64_t k = (sl.z0 - sl.zlo) * P; k < (sl.z1 - sl.zlo) * P; k++) {
    gb += gs[k] != g1[sl.zlo * P + k];
    bb += bs[k] != b1[sl.zlo * P + k];
  }
  CHECK(gb == 0, "rank %d: %d LNCC gradient values differ from one rank", rank, gb);
  CHECK(bb == 0, "rank %d: %d blurred values differ from one rank", rank, bb);
  CHECK(check_close(Ln, L1, 1e-12, 0), "LNCC loss %d ranks %.15g vs one rank %.15g", n, Ln, L1);
  free(F), free(M), free(g1), free(b1), free(Fs), free(Ms), free(gs), free(bs);

  /* 3. a slab thinner than its neighbour's halo: every rank gets the same error, nobody hangs.
   * (With two ranks it cannot happen: a halo stops at the grid edge, which the neighbour owns.) */
  if (n > 2) {
    ffdp_slab thin = ffdp_slab_split(nx, ny, n, rank, n, 2); /* one plane per rank, halo 2 */
    float *t = calloc(ffdp_slab_stored(&thin), sizeof(float));
    ffdp_status st = ffdp_halo_exchange(MPI_COMM_WORLD, &thin, t, 1, &err);
    CHECK(st == FFDP_ERR_INVALID && strstr(err.msg, "fewer ranks"), "rank %d: thin slab gave %d: %s", rank, st, err.msg);
    free(t);
  }
  int local = check_failures, total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) printf("test_dist on %d ranks: %d failures\n", n, total);
  MPI_Finalize();
  return total ? 1 : 0;
}
