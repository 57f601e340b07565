/* ffdp convert: NIfTI <-> OME-Zarr (and type/format changes), the way into and out of the
 * chunked format big volumes live in. */
#include "cli/cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(FILE *f) {
  fprintf(f,
    "usage: ffdp convert INPUT OUTPUT [--type float32|float64|uint8|int8|int16|uint16|int32|uint32]\n"
    "                    [--chunks XxYxZ] [--codec blosc-zstd|blosc-lz4|zstd|none] [--level N]\n\n"
    "Reads a NIfTI image (.nii, .nii.gz) or OME-Zarr store (*.zarr) and writes it in the format\n"
    "OUTPUT names: *.zarr gives an OME-Zarr (NGFF 0.4) store, .nii/.nii.gz NIfTI (NIfTI-2 when the\n"
    "volume exceeds NIfTI-1's limits). Geometry is kept exactly both ways (Zarr stores written by\n"
    "ffdp carry the full voxel-to-world matrix beside NGFF's scale and translation). The output\n"
    "type defaults to the input's. Zarr defaults: 64^3 chunks, blosc-zstd level 5.\n\n"
    "examples:\n"
    "  ffdp convert brain.nii.gz brain.zarr\n"
    "  ffdp convert lightsheet.zarr lightsheet.nii --type uint16\n"
    "  ffdp convert brain.nii.gz brain.zarr --chunks 128x128x32 --codec zstd --level 9\n");
}

static int parse_type(const char *s) {
  static const struct { const char *n; int t; } k[] = {
      {"float32", FFDP_DT_FLOAT32}, {"float64", FFDP_DT_FLOAT64}, {"uint8", FFDP_DT_UINT8}, {"int8", FFDP_DT_INT8},
      {"int16", FFDP_DT_INT16},     {"uint16", FFDP_DT_UINT16},   {"int32", FFDP_DT_INT32}, {"uint32", FFDP_DT_UINT32}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcasecmp(s, k[i].n)) return k[i].t;
  return 0;
}

int ffdp_cmd_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  int dtype = 0;
  ffdp_zarr_options zo = ffdp_zarr_default_options();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (a[0] != '-' || !a[1]) {
      if (!in) in = a;
      else if (!out) out = a;
      else return cli_errorf("unexpected argument '%s' (see 'ffdp convert --help')", a);
      continue;
    }
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    if (!v) return cli_errorf("option %s needs a value (see 'ffdp convert --help')", a);
    if (!strcmp(a, "--type")) {
      if (!(dtype = parse_type(v))) return cli_errorf("unknown type '%s' (float32, float64, uint8, int8, int16, uint16, int32, uint32)", v);
    } else if (!strcmp(a, "--chunks")) {
      long long c[3];
      char extra;
      if (sscanf(v, "%lldx%lldx%lld%c", &c[0], &c[1], &c[2], &extra) != 3 || c[0] < 1 || c[1] < 1 || c[2] < 1)
        return cli_errorf("--chunks wants three positive sizes XxYxZ, got '%s'", v);
      for (int d = 0; d < 3; d++) zo.chunk[d] = c[d];
    } else if (!strcmp(a, "--codec")) {
      if (!strcasecmp(v, "blosc-zstd")) zo.codec = FFDP_ZARR_BLOSC_ZSTD, zo.level = 5;
      else if (!strcasecmp(v, "blosc-lz4")) zo.codec = FFDP_ZARR_BLOSC_LZ4, zo.level = 5;
      else if (!strcasecmp(v, "zstd")) zo.codec = FFDP_ZARR_ZSTD, zo.level = 3;
      else if (!strcasecmp(v, "none")) zo.codec = FFDP_ZARR_RAW, zo.level = 0;
      else return cli_errorf("unknown codec '%s' (blosc-zstd, blosc-lz4, zstd, none)", v);
    } else if (!strcmp(a, "--level")) {
      char *end;
      long l = strtol(v, &end, 10);
      if (*end || l < 0 || l > 22) return cli_errorf("--level wants an integer 0-22, got '%s'", v);
      zo.level = (int)l;
    } else {
      return cli_errorf("unknown option '%s' (see 'ffdp convert --help')", a);
    }
  }
  if (!in || !out) return cli_errorf("INPUT and OUTPUT are required (see 'ffdp convert --help')");
  ffdp_error err = {0};
  ffdp_volume *v = NULL;
  double t0 = cli_now();
  if (ffdp_volume_load(in, &v, &err)) return cli_error(&err);
  if (!dtype) dtype = ffdp_volume_source_dtype(v);
  if (dtype == 1024) dtype = FFDP_DT_FLOAT64; /* int64 input: no int64 output type */
  ffdp_status st = ffdp_path_is_zarr(out) ? ffdp_volume_save_zarr(v, out, (ffdp_dtype)dtype, &zo, &err)
                                          : ffdp_volume_save(v, out, (ffdp_dtype)dtype, FFDP_NIFTI_AUTO, &err);
  int64_t d[3];
  memcpy(d, ffdp_volume_dim(v), sizeof d);
  ffdp_volume_free(v);
  if (st) return cli_error(&err);
  printf("%s -> %s: %lldx%lldx%lld, %.2f s\n", in, out, (long long)d[0], (long long)d[1], (long long)d[2], cli_now() - t0);
  return 0;
}
