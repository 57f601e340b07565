/* ffdp command-line entry point: dispatches to subcommands. */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "ffdp %s - scalable multimodal image registration\n\n"
          "usage: ffdp <command> [options]\n\n"
          "commands:\n"
          "  register   register a moving image to a fixed image (rigid, affine, greedy, SyN)\n"
          "  apply      apply transforms (affine text files, displacement fields) to an image\n"
          "  info       print shape, type, spacing, orientation and intensity range of images\n"
          "  plan       print the GPU memory a registration needs, per stage level, from the headers\n"
          "  convert    convert between NIfTI and OME-Zarr (and between voxel types)\n\n"
          "examples:\n"
          "  ffdp info brain.nii.gz\n"
          "  ffdp convert brain.nii.gz brain.zarr\n"
          "  ffdp plan -f fixed.nii.gz -m moving.nii.gz --syn\n"
          "  ffdp register -f fixed.nii.gz -m moving.nii.gz -o out/sub01_ --syn\n"
          "  ffdp apply -i labels.nii.gz -r fixed.nii.gz -t out/sub01_1Warp.nii.gz -t out/sub01_0GenericAffine.txt \\\n"
          "             -n label -o labels_in_fixed.nii.gz\n\n"
          "'ffdp <command> --help' describes each command.\n",
          FFDP_VERSION_STRING);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("ffdp %s\n", FFDP_VERSION_STRING);
    return 0;
  }
  if (!strcmp(argv[1], "info")) return ffdp_cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "register")) return ffdp_cmd_register(argc - 1, argv + 1);
  if (!strcmp(argv[1], "apply")) return ffdp_cmd_apply(argc - 1, argv + 1);
  if (!strcmp(argv[1], "plan")) return ffdp_cmd_plan(argc - 1, argv + 1);
  if (!strcmp(argv[1], "convert")) return ffdp_cmd_convert(argc - 1, argv + 1);
  fprintf(stderr, "ffdp: error: unknown command '%s' (try 'ffdp --help')\n", argv[1]);
  return 2;
}
