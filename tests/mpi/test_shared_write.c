/* Ranks writing one file together, each its own share of the planes: .nii, .nii.gz and .zarr
 * images (streamed in blocks, Zarr chunk rows that straddle shares), 5D warps, a rank that gives
 * up (no file, no temporary left, every rank told), and the folding fraction from shares. Every
 * file read back must equal the volume, and the .nii files the single-process writer's bytes.
 * Run under mpirun -np 1..6 (uneven and thin shares). */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ffdp/comm_mpi.h"
#include "ffdp/ffdp.h"
#include "io/gzip_parallel.h"
#include "io/zarr.h"
#include "../check.h"

enum { NX = 13, NY = 11, NZ = 37 };

static float value(int64_t x, int64_t y, int64_t z, int c) {
  unsigned h = (unsigned)(x * 73856093u ^ y * 19349663u ^ z * 83492791u ^ (unsigned)c * 2654435761u);
  return (float)((h % 20011) / 97.0 - 100.0);
}

static ffdp_mat4 grid(void) {
  ffdp_mat4 w = ffdp_mat4_identity();
  w.m[0][0] = 0.7, w.m[1][1] = 1.1, w.m[2][2] = 0.9, w.m[0][1] = 0.05; /* oblique: the header carries it */
  w.m[0][3] = -4, w.m[1][3] = 3, w.m[2][3] = 12;
  return w;
}

static long file_bytes(const char *p, unsigned char **buf) {
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *buf = malloc((size_t)n);
  if (fread(*buf, 1, (size_t)n, f) != (size_t)n) n = -1;
  fclose(f);
  return n;
}

/* Entries of dir whose names hold ".tmp-" or ".part": what a failed or finished write must not leave. */
static int leftovers(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".part");
  if (d) closedir(d);
  return n;
}

/* Every voxel of the file equals value(). */
static int check_image(const char *path) {
  ffdp_volume *v = NULL;
  ffdp_error e;
  if (ffdp_volume_load(path, &v, &e)) {
    fprintf(stderr, "%s: %s\n", path, e.msg);
    return 0;
  }
  const int64_t *d = ffdp_volume_dim(v);
  int bad = d[0] != NX || d[1] != NY || d[2] != NZ;
  const float *p = ffdp_volume_cdata(v);
  for (int64_t z = 0; !bad && z < NZ; z++)
    for (int64_t y = 0; y < NY; y++)
      for (int64_t x = 0; x < NX; x++) bad += p[(z * NY + y) * NX + x] != value(x, y, z, 0);
  ffdp_volume_free(v);
  return !bad;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  ffdp_comm *comm = NULL;
  ffdp_error err;
  CHECK(ffdp_comm_mpi_create(MPI_COMM_WORLD, &comm, &err) == FFDP_OK, "comm: %s", err.msg);
  char dir[256] = "";
  if (rank == 0) {
    snprintf(dir, sizeof dir, "%s", "/tmp/ffdp_shared_XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  const int64_t dim[3] = {NX, NY, NZ}, P = NX * NY;
  int64_t z0, z1;
  ffdp_comm_share(comm, NZ, &z0, &z1);
  float *mine = malloc((size_t)((z1 - z0) * P + 1) * sizeof(float));
  for (int64_t z = z0; z < z1; z++)
    for (int64_t y = 0; y < NY; y++)
      for (int64_t x = 0; x < NX; x++) mine[((z - z0) * NY + y) * NX + x] = value(x, y, z, 0);

  /* 1. images through the plane writer, two planes per put */
  const char *names[3] = {"img.nii", "img.nii.gz", "img.zarr"};
  for (int k = 0; k < 3; k++) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, names[k]);
    ffdp_plane_writer *w = NULL;
    CHECK(ffdp_plane_writer_open_shared(p, dim, grid(), FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, comm, &w, &err) == FFDP_OK,
          "open %s: %s", p, err.msg);
    for (int64_t z = z0; z < z1; z += 2)
      CHECK(ffdp_plane_writer_put(w, mine + (z - z0) * P, z + 2 <= z1 ? 2 : 1, &err) == FFDP_OK, "put: %s", err.msg);
    CHECK(ffdp_plane_writer_close(w, &err) == FFDP_OK, "close %s: %s", p, err.msg);
    CHECK(check_image(p), "rank %d: %s read back differs", rank, p);
    unsigned char head[16];
    if (k == 1) /* the ranks' members are indexed too: any range reads without the stream before it */
      CHECK(ffdp_gz_read_range(p, 100, sizeof head, head) == 1, "the ranks' .nii.gz is not indexed");
  }
  /* the .nii bytes are the single writer's */
  if (rank == 0) {
    ffdp_volume *whole = NULL;
    CHECK(ffdp_volume_create(dim, 1, grid(), &whole, &err) == FFDP_OK, "create");
    for (int64_t z = 0; z < NZ; z++)
      for (int64_t y = 0; y < NY; y++)
        for (int64_t x = 0; x < NX; x++) ffdp_volume_data(whole)[(z * NY + y) * NX + x] = value(x, y, z, 0);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/img.nii", dir), snprintf(b, sizeof b, "%s/one.nii", dir);
    CHECK(ffdp_volume_save(whole, b, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_OK, "save: %s", err.msg);
    unsigned char *x = NULL, *y = NULL;
    long nx = file_bytes(a, &x), ny = file_bytes(b, &y);
    CHECK(nx > 0 && nx == ny && !memcmp(x, y, (size_t)nx), "the ranks' .nii differs from one writer's (%ld vs %ld bytes)", nx, ny);
    free(x), free(y);
    ffdp_volume_free(whole);
  }

  /* 2. Zarr chunk rows of 4 and 16 planes: rows that start in one share and end in the next ones */
  const int64_t rows[2] = {4, 16};
  for (int k = 0; k < 2; k++) {
    char p[512];
    snprintf(p, sizeof p, "%s/rows%lld.zarr", dir, (long long)rows[k]);
    ffdp_zarr_options zo = ffdp_zarr_default_options();
    zo.chunk[0] = 5, zo.chunk[1] = 4, zo.chunk[2] = rows[k];
    ffdp_zarr_writer *w = NULL;
    CHECK(ffdp_zarr_writer_open_shared(p, dim, grid(), FFDP_DT_FLOAT32, &zo, comm, &w, &err) == FFDP_OK, "open: %s", err.msg);
    for (int64_t z = z0; z < z1; z += 3)
      CHECK(ffdp_zarr_writer_put(w, mine + (z - z0) * P, z + 3 <= z1 ? 3 : z1 - z, &err) == FFDP_OK, "put: %s", err.msg);
    CHECK(ffdp_zarr_writer_close(w, &err) == FFDP_OK, "close %s: %s", p, err.msg);
    CHECK(check_image(p), "rank %d: %s read back differs", rank, p);
  }

  /* 3. a 5D warp from each rank's share of a whole-grid field (the other planes hold garbage:
   * they must not be read), .nii bytes equal to the single writer's, .nii.gz values equal */
  ffdp_volume *u = NULL;
  CHECK(ffdp_volume_create(dim, 3, grid(), &u, &err) == FFDP_OK, "create field");
  float *ud = ffdp_volume_data(u);
  for (int64_t z = 0; z < NZ; z++)
    for (int64_t i = 0; i < P; i++)
      for (int c = 0; c < 3; c++) ud[3 * (z * P + i) + c] = z >= z0 && z < z1 ? value(i % NX, i / NX, z, c + 1) / 50 : 1e30f;
  const double T[3][3] = {{1, 0.1, 0}, {0, 0.9, 0}, {0.05, 0, 1.1}};
  for (int k = 0; k < 2; k++) {
    char p[512];
    snprintf(p, sizeof p, "%s/warp.%s", dir, k ? "nii.gz" : "nii");
    CHECK(ffdp_field_save_mapped_shared(u, T, p, 1, comm, &err) == FFDP_OK, "field %s: %s", p, err.msg);
  }
  if (rank == 0) {
    ffdp_volume *whole = NULL;
    CHECK(ffdp_volume_create(dim, 3, grid(), &whole, &err) == FFDP_OK, "create");
    for (int64_t z = 0; z < NZ; z++)
      for (int64_t i = 0; i < P; i++)
        for (int c = 0; c < 3; c++) ffdp_volume_data(whole)[3 * (z * P + i) + c] = value(i % NX, i / NX, z, c + 1) / 50;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/warp.nii", dir), snprintf(b, sizeof b, "%s/warp_one.nii", dir);
    CHECK(ffdp_field_save_mapped(whole, T, b, 1, &err) == FFDP_OK, "save: %s", err.msg);
    unsigned char *x = NULL, *y = NULL;
    long nx = file_bytes(a, &x), ny = file_bytes(b, &y);
    CHECK(nx > 0 && nx == ny && !memcmp(x, y, (size_t)nx), "the ranks' warp differs from one writer's");
    free(x), free(y);
    ffdp_volume *g1 = NULL, *g2 = NULL;
    snprintf(a, sizeof a, "%s/warp.nii.gz", dir);
    CHECK(ffdp_field_load(a, 1, &g1, &err) == FFDP_OK && ffdp_field_load(b, 1, &g2, &err) == FFDP_OK, "load: %s", err.msg);
    CHECK(!memcmp(ffdp_volume_cdata(g1), ffdp_volume_cdata(g2), (size_t)(3 * NZ * P) * sizeof(float)),
          "the ranks' .nii.gz warp holds other values");
    ffdp_volume_free(g1), ffdp_volume_free(g2), ffdp_volume_free(whole);
  }

  /* 4. folding from shares = folding of the whole field (some voxels folded on purpose) */
  ffdp_volume *whole = NULL;
  CHECK(ffdp_volume_create(dim, 3, grid(), &whole, &err) == FFDP_OK, "create");
  for (int64_t z = 0; z < NZ; z++)
    for (int64_t i = 0; i < P; i++)
      for (int c = 0; c < 3; c++) {
        const float f = value(i % NX, i / NX, z, c + 4) / 150;
        ffdp_volume_data(whole)[3 * (z * P + i) + c] = f;
        ud[3 * (z * P + i) + c] = z >= z0 && z < z1 ? f : 1e30f;
      }
  const ffdp_mat4 A = ffdp_mat4_identity();
  double fr = -1, want = ffdp_folding_fraction(whole, A);
  CHECK(ffdp_folding_fraction_shared(u, A, comm, &fr, &err) == FFDP_OK, "folding: %s", err.msg);
  CHECK(want > 0.01 && fr == want, "folding from shares %.6f, whole %.6f", fr, want);
  ffdp_volume_free(whole), ffdp_volume_free(u);

  /* 5. the last rank gives up: no file, no temporary, every rank told; then a put past the share */
  for (int k = 0; k < 3; k++) {
    char p[512];
    snprintf(p, sizeof p, "%s/given_up.%s", dir, k == 0 ? "nii" : k == 1 ? "nii.gz" : "zarr");
    ffdp_plane_writer *w = NULL;
    CHECK(ffdp_plane_writer_open_shared(p, dim, grid(), FFDP_DT_INT16, FFDP_NIFTI_AUTO, comm, &w, &err) == FFDP_OK, "open: %s", err.msg);
    CHECK(ffdp_plane_writer_put(w, mine, z1 - z0, &err) == FFDP_OK, "put: %s", err.msg);
    if (rank == n - 1) {
      ffdp_plane_writer_abort(w);
    } else {
      CHECK(ffdp_plane_writer_close(w, &err) != FFDP_OK, "rank %d: close succeeded although a rank gave up", rank);
      if (n > 1) CHECK(strstr(err.msg, "rank") != NULL, "the message does not name the rank: %s", err.msg);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(access(p, F_OK) != 0, "%s exists after a failed write", p);
  }
  {
    char p[512];
    snprintf(p, sizeof p, "%s/past.nii", dir);
    ffdp_plane_writer *w = NULL;
    CHECK(ffdp_plane_writer_open_shared(p, dim, grid(), FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, comm, &w, &err) == FFDP_OK, "open");
    ffdp_status ps = ffdp_plane_writer_put(w, mine, z1 - z0 + 1, &err);
    CHECK(ps != FFDP_OK, "rank %d: a put past the share was accepted", rank);
    ffdp_plane_writer_abort(w);
  }
  { /* a name no writer takes, and a directory that does not exist: every rank fails, none waits */
    char p[512];
    ffdp_plane_writer *w = NULL;
    snprintf(p, sizeof p, "%s/wrong.txt", dir);
    CHECK(ffdp_plane_writer_open_shared(p, dim, grid(), FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, comm, &w, &err) != FFDP_OK && !w,
          "rank %d: '%s' was opened", rank, p);
    snprintf(p, sizeof p, "%s/no/such/dir.nii.gz", dir);
    CHECK(ffdp_plane_writer_open_shared(p, dim, grid(), FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, comm, &w, &err) != FFDP_OK && !w,
          "rank %d: '%s' was opened", rank, p);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(leftovers(dir) == 0, "temporary files left in %s", dir);
  free(mine);
  ffdp_comm_free(comm);
  if (rank == 0) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  char name[64];
  snprintf(name, sizeof name, "test_shared_write rank %d of %d", rank, n);
  const int rc = check_done(name);
  MPI_Finalize();
  return rc;
}
