/* A multimodal fixed/moving pair of any size from a real brain, for the gigavoxel benchmark:
 * the anatomy (Debian mricron-data ch2better, 0.5 mm) resampled onto the requested grid with
 * fine texture added, a known smooth deformation with fine-scale components, a non-monotonic
 * intensity remap for the second contrast, and the AAL labels carried along. Every plane is
 * computed on the fly and written at once (ffdp_plane_writer), so no volume is ever held:
 * a 1536^3 pair needs the two small templates in memory and nothing else.
 *
 *   ffdp_make_pair --size 1536x1536x1536 -o /scratch/pair
 *
 * writes fixed.nii, moving.nii (float32), fixed_labels.nii, moving_labels.nii (int16) and
 * truth.json. The truth: moving(y) = g(fixed(y + d(y))), labels likewise, with
 *   d_a(y) = A sin(2π y_b / 61 mm + φ_a) + A/4 sin(2π y_c / 9 mm + ψ_a)   ((a, b, c) cyclic),
 * so a registration that maps fixed onto moving recovers x -> the inverse of y -> y + d(y). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ffdp/ffdp.h"

static const double PI = 3.14159265358979323846;

typedef struct {
  const float *v;
  int64_t d[3];
  double inv[3][4]; /* world -> voxel */
} img;

static img wrap(const ffdp_volume *v) {
  img m;
  m.v = ffdp_volume_cdata(v);
  memcpy(m.d, ffdp_volume_dim(v), sizeof m.d);
  ffdp_mat4 inv;
  ffdp_mat4_inverse(ffdp_volume_vox2world(v), &inv);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 4; b++) m.inv[a][b] = inv.m[a][b];
  return m;
}

static void to_voxel(const img *m, const double x[3], double p[3]) {
  for (int a = 0; a < 3; a++) p[a] = m->inv[a][0] * x[0] + m->inv[a][1] * x[1] + m->inv[a][2] * x[2] + m->inv[a][3];
}

/* Trilinear, zero outside. */
static double linear(const img *m, const double x[3]) {
  double p[3];
  to_voxel(m, x, p);
  int64_t i[3];
  double f[3];
  for (int a = 0; a < 3; a++) {
    if (!(p[a] >= 0) || p[a] > m->d[a] - 1) return 0;
    i[a] = (int64_t)p[a];
    if (i[a] > m->d[a] - 2) i[a] = m->d[a] - 2 > 0 ? m->d[a] - 2 : 0;
    f[a] = p[a] - i[a];
  }
  double s = 0;
  for (int k = 0; k < 8; k++) {
    int64_t q[3];
    double w = 1;
    for (int a = 0; a < 3; a++) {
      int o = (k >> a) & 1;
      q[a] = i[a] + o < m->d[a] ? i[a] + o : m->d[a] - 1;
      w *= o ? f[a] : 1 - f[a];
    }
    s += w * m->v[(q[2] * m->d[1] + q[1]) * m->d[0] + q[0]];
  }
  return s;
}

static double nearest(const img *m, const double x[3]) {
  double p[3];
  to_voxel(m, x, p);
  int64_t q[3];
  for (int a = 0; a < 3; a++) {
    q[a] = (int64_t)floor(p[a] + 0.5);
    if (q[a] < 0 || q[a] >= m->d[a]) return 0;
  }
  return m->v[(q[2] * m->d[1] + q[1]) * m->d[0] + q[0]];
}

/* Value noise in [-1, 1]: hashed lattice values, smoothly interpolated; deterministic. */
static double lattice(int64_t x, int64_t y, int64_t z, uint32_t seed) {
  uint64_t h = (uint64_t)x * 0x9E3779B97F4A7C15ull ^ (uint64_t)y * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)z * 0x165667B19E3779F9ull ^ seed;
  h ^= h >> 31, h *= 0xD6E8FEB86659FD93ull, h ^= h >> 32;
  return (double)(h >> 11) / 4503599627370496.0 - 1.0;
}

static double noise(const double x[3], double cell, uint32_t seed) {
  double p[3], f[3];
  int64_t i[3];
  for (int a = 0; a < 3; a++) {
    p[a] = x[a] / cell, i[a] = (int64_t)floor(p[a]);
    double t = p[a] - i[a];
    f[a] = t * t * (3 - 2 * t);
  }
  double s = 0;
  for (int k = 0; k < 8; k++) {
    double w = 1;
    for (int a = 0; a < 3; a++) w *= ((k >> a) & 1) ? f[a] : 1 - f[a];
    s += w * lattice(i[0] + (k & 1), i[1] + ((k >> 1) & 1), i[2] + ((k >> 2) & 1), seed);
  }
  return s;
}

typedef struct {
  img anat, labels;
  double amax, warp_mm, h;
  uint32_t seed;
} model;

/* Fixed intensity at world x: anatomy in [0, 1] with texture at 12, 5 and 2 target voxels
 * inside the head (the texture gives LNCC something to lock on at native resolution). */
static double fixed_at(const model *m, const double x[3]) {
  double a = linear(&m->anat, x) / m->amax;
  if (a < 0.02) return a;
  double t = 0.5 * noise(x, 12 * m->h, m->seed) + 0.3 * noise(x, 5 * m->h, m->seed + 1) + 0.2 * noise(x, 2 * m->h, m->seed + 2);
  return a * (1 + 0.15 * t);
}

static void displacement(const model *m, const double y[3], double d[3]) {
  static const double ph[3] = {0.3, 1.7, 2.9}, ps[3] = {0.9, 2.2, 0.4};
  for (int a = 0; a < 3; a++) {
    const int b = (a + 1) % 3, c = (a + 2) % 3;
    d[a] = m->warp_mm * sin(2 * PI * y[b] / 61.0 + ph[a]) + 0.25 * m->warp_mm * sin(2 * PI * y[c] / 9.0 + ps[a]);
  }
}

/* Second contrast: non-monotonic (bright grey matter, darker white matter and CSF). */
static double remap(double v) { return v <= 0 ? 0 : sin(0.9 * PI * fmin(v, 1.2)); }

static int fail(const char *msg, const ffdp_error *e) {
  fprintf(stderr, "ffdp_make_pair: error: %s%s%s\n", msg, e ? ": " : "", e ? e->msg : "");
  return 1;
}

int main(int argc, char **argv) {
  const char *out = NULL, *anat_path = "/usr/share/mricron/templates/ch2better.nii.gz",
             *lab_path = "/usr/share/mricron/templates/aal.nii.gz";
  int64_t dim[3] = {0, 0, 0};
  model m = {.warp_mm = 4.0, .seed = 1234};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      printf("usage: ffdp_make_pair --size NXxNYxNZ -o DIR [--anatomy NII] [--labels NII] [--warp MM] [--seed N]\n\n"
             "Writes DIR/fixed.nii, moving.nii (float32), fixed_labels.nii, moving_labels.nii (int16)\n"
             "and truth.json, plane by plane (NIfTI-2 when NIfTI-1 cannot hold them). Defaults: anatomy\n"
             "and labels from Debian's mricron-data (ch2better, aal), warp amplitude 4 mm.\n\n"
             "example:\n  ffdp_make_pair --size 1536x1536x1536 -o /scratch/pair\n");
      return 0;
    }
    if (!v) return fail("an option needs a value (see --help)", NULL);
    i++;
    if (!strcmp(a, "--size")) {
      long long x, y, z;
      if (sscanf(v, "%lldx%lldx%lld", &x, &y, &z) != 3 || x < 8 || y < 8 || z < 8)
        return fail("--size must be NXxNYxNZ with every side at least 8", NULL);
      dim[0] = x, dim[1] = y, dim[2] = z;
    } else if (!strcmp(a, "-o")) out = v;
    else if (!strcmp(a, "--anatomy")) anat_path = v;
    else if (!strcmp(a, "--labels")) lab_path = v;
    else if (!strcmp(a, "--warp")) m.warp_mm = atof(v);
    else if (!strcmp(a, "--seed")) m.seed = (uint32_t)strtoul(v, NULL, 10);
    else return fail("unknown option (see --help)", NULL);
  }
  if (!out || !dim[0]) return fail("--size and -o are required (see --help)", NULL);
  struct stat sb;
  if (mkdir(out, 0755) && !(errno == EEXIST && stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)))
    return fail("cannot create the output directory", NULL);
  ffdp_error err = {0};
  ffdp_volume *A = NULL, *Lb = NULL;
  if (ffdp_volume_load(anat_path, &A, &err)) return fail("cannot read the anatomy", &err);
  if (ffdp_volume_load(lab_path, &Lb, &err)) return fail("cannot read the labels", &err);
  m.anat = wrap(A), m.labels = wrap(Lb);
  double lo, hi;
  ffdp_volume_range(A, &lo, &hi);
  m.amax = hi > 0 ? hi : 1;
  /* the target grid spans the anatomy's world box, axes along RAS */
  double bmin[3] = {INFINITY, INFINITY, INFINITY}, bmax[3] = {-INFINITY, -INFINITY, -INFINITY};
  const int64_t *ad = ffdp_volume_dim(A);
  for (int k = 0; k < 8; k++) {
    double p[3] = {(k & 1) ? ad[0] - 1 : 0, (k & 2) ? ad[1] - 1 : 0, (k & 4) ? ad[2] - 1 : 0}, X[3];
    ffdp_mat4_apply(ffdp_volume_vox2world(A), p, X);
    for (int a = 0; a < 3; a++) bmin[a] = fmin(bmin[a], X[a]), bmax[a] = fmax(bmax[a], X[a]);
  }
  ffdp_mat4 w = ffdp_mat4_identity();
  m.h = INFINITY;
  for (int a = 0; a < 3; a++) {
    w.m[a][a] = (bmax[a] - bmin[a]) / (double)(dim[a] - 1), w.m[a][3] = bmin[a];
    m.h = fmin(m.h, w.m[a][a]);
  }
  const char *names[4] = {"fixed.nii", "moving.nii", "fixed_labels.nii", "moving_labels.nii"};
  const ffdp_dtype types[4] = {FFDP_DT_FLOAT32, FFDP_DT_FLOAT32, FFDP_DT_INT16, FFDP_DT_INT16};
  ffdp_plane_writer *wr[4] = {NULL, NULL, NULL, NULL};
  char path[4096];
  int rc = 0;
  for (int k = 0; k < 4 && !rc; k++) {
    snprintf(path, sizeof path, "%s/%s", out, names[k]);
    if (ffdp_plane_writer_open(path, dim, w, types[k], FFDP_NIFTI_AUTO, &wr[k], &err)) rc = fail("cannot open an output", &err);
  }
  const int64_t P = dim[0] * dim[1];
  float *plane = rc ? NULL : malloc((size_t)P * 4 * sizeof(float));
  if (!rc && !plane) rc = fail("out of memory for four planes", NULL);
  for (int64_t z = 0; z < dim[2] && !rc; z++) {
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t y = 0; y < dim[1]; y++)
      for (int64_t x = 0; x < dim[0]; x++) {
        const double p[3] = {(double)x, (double)y, (double)z};
        double X[3], d[3], Y[3];
        ffdp_mat4_apply(w, p, X);
        displacement(&m, X, d);
        for (int a = 0; a < 3; a++) Y[a] = X[a] + d[a];
        const int64_t i = y * dim[0] + x;
        plane[i] = (float)fixed_at(&m, X);
        plane[P + i] = (float)remap(fixed_at(&m, Y));
        plane[2 * P + i] = (float)nearest(&m.labels, X);
        plane[3 * P + i] = (float)nearest(&m.labels, Y);
      }
    for (int k = 0; k < 4 && !rc; k++)
      if (ffdp_plane_writer_put(wr[k], plane + k * P, 1, &err)) rc = fail("cannot write a plane", &err);
    if ((z + 1) % (dim[2] / 10 > 0 ? dim[2] / 10 : 1) == 0)
      fprintf(stderr, "\rffdp_make_pair: %3d%% of %lld planes", (int)(100 * (z + 1) / dim[2]), (long long)dim[2]);
  }
  fprintf(stderr, "\n");
  free(plane);
  for (int k = 0; k < 4; k++) {
    if (rc) ffdp_plane_writer_abort(wr[k]);
    else if (ffdp_plane_writer_close(wr[k], &err)) rc = fail("cannot finish an output", &err);
  }
  if (!rc) {
    snprintf(path, sizeof path, "%s/truth.json", out);
    FILE *f = fopen(path, "w");
    if (!f) return fail("cannot write truth.json", NULL);
    fprintf(f,
            "{\n  \"size\": [%lld, %lld, %lld],\n  \"spacing_mm\": [%.9g, %.9g, %.9g],\n  \"anatomy\": \"%s\",\n"
            "  \"labels\": \"%s\",\n  \"warp_mm\": %g,\n  \"seed\": %u,\n"
            "  \"moving\": \"g(fixed(y + d(y))), g(v) = sin(0.9 pi min(v, 1.2)); d as in bench/gigavoxel/make_pair.c\"\n}\n",
            (long long)dim[0], (long long)dim[1], (long long)dim[2], w.m[0][0], w.m[1][1], w.m[2][2], anat_path, lab_path,
            m.warp_mm, m.seed);
    if (fclose(f)) return fail("cannot write truth.json", NULL);
  }
  ffdp_volume_free(A), ffdp_volume_free(Lb);
  return rc;
}
