/* Dice overlap of two label volumes on the same grid, read a slab of planes at a time (so a
 * gigavoxel pair needs a few hundred MB, not the volumes):
 *
 *   ffdp_dice fixed_labels.nii warped_labels.nii [--min 0.85] [--json out.json]
 *
 * prints the mean Dice over the labels present in the first volume (and each label's with -v);
 * with --min, exits 1 when the mean is lower. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ffdp/ffdp.h"

#define MAX_LABEL 65535

int main(int argc, char **argv) {
  const char *pa = NULL, *pb = NULL, *json = NULL;
  double min = -1;
  int verbose = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--min") && i + 1 < argc) min = atof(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else if (!strcmp(argv[i], "-v")) verbose = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: ffdp_dice A B [--min D] [--json FILE] [-v]\n\nMean Dice of the labels of A (1..65535) "
             "against B, both on the same grid.\n");
      return 0;
    } else if (!pa) pa = argv[i];
    else if (!pb) pb = argv[i];
    else {
      fprintf(stderr, "ffdp_dice: error: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!pa || !pb) {
    fprintf(stderr, "ffdp_dice: error: two label volumes are required (see --help)\n");
    return 2;
  }
  ffdp_error err = {0};
  int64_t da[3], db[3];
  ffdp_mat4 wa, wb;
  if (ffdp_volume_probe(pa, da, &wa, &err) || ffdp_volume_probe(pb, db, &wb, &err)) {
    fprintf(stderr, "ffdp_dice: error: %s\n", err.msg);
    return 2;
  }
  if (memcmp(da, db, sizeof da)) {
    fprintf(stderr, "ffdp_dice: error: the grids differ (%lldx%lldx%lld vs %lldx%lldx%lld)\n", (long long)da[0],
            (long long)da[1], (long long)da[2], (long long)db[0], (long long)db[1], (long long)db[2]);
    return 2;
  }
  uint64_t *na = calloc(MAX_LABEL + 1, 8), *nb = calloc(MAX_LABEL + 1, 8), *nab = calloc(MAX_LABEL + 1, 8);
  if (!na || !nb || !nab) {
    fprintf(stderr, "ffdp_dice: error: out of memory\n");
    return 2;
  }
  const int64_t step = (int64_t)(64e6 / (double)(da[0] * da[1])) + 1; /* ~256 MB of floats per volume */
  for (int64_t z0 = 0; z0 < da[2]; z0 += step) {
    const int64_t z1 = z0 + step < da[2] ? z0 + step : da[2];
    ffdp_volume *A = NULL, *B = NULL;
    if (ffdp_volume_load_planes(pa, z0, z1, &A, &err) || ffdp_volume_load_planes(pb, z0, z1, &B, &err)) {
      fprintf(stderr, "ffdp_dice: error: %s\n", err.msg);
      return 2;
    }
    const float *a = ffdp_volume_cdata(A), *b = ffdp_volume_cdata(B);
    const int64_t n = ffdp_volume_nvox(A);
    for (int64_t i = 0; i < n; i++) {
      const long la = lround(a[i]), lb = lround(b[i]);
      if (la > 0 && la <= MAX_LABEL) na[la]++;
      if (lb > 0 && lb <= MAX_LABEL) nb[lb]++;
      if (la == lb && la > 0 && la <= MAX_LABEL) nab[la]++;
    }
    ffdp_volume_free(A), ffdp_volume_free(B);
  }
  double sum = 0;
  int count = 0;
  for (int l = 1; l <= MAX_LABEL; l++) {
    if (!na[l]) continue;
    const double d = 2.0 * (double)nab[l] / (double)(na[l] + nb[l]);
    if (verbose) printf("label %d: Dice %.4f (%llu / %llu voxels)\n", l, d, (unsigned long long)na[l], (unsigned long long)nb[l]);
    sum += d, count++;
  }
  const double mean = count ? sum / count : 0;
  printf("mean Dice over %d labels: %.4f\n", count, mean);
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f || fprintf(f, "{\"labels\": %d, \"mean_dice\": %.6f}\n", count, mean) < 0 || fclose(f)) {
      fprintf(stderr, "ffdp_dice: error: cannot write '%s'\n", json);
      return 2;
    }
  }
  free(na), free(nb), free(nab);
  return min >= 0 && !(mean >= min) ? 1 : 0;
}
