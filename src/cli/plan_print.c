/* The memory plan as a person reads it: one line per stage level, the buffers of the peak. */
#include "cli/cli.h"
#include "ffdp/plan.h"
#include <stdio.h>

const char *cli_stage_name(ffdp_stage_kind k) {
  return k == FFDP_STAGE_RIGID ? "rigid" : k == FFDP_STAGE_AFFINE ? "affine" : k == FFDP_STAGE_SYN ? "syn" : "greedy";
}

void cli_print_plan(FILE *f, const ffdp_plan *p, double free_bytes, double total_bytes, double limit_bytes) {
  fprintf(f, "GPU memory plan (per stage level; buffers are allocated per level and freed after it)");
  if (p->gpus > 1) fprintf(f, ",\nper GPU for %d ranks, one GPU each (the busiest rank: its slab of the fields with halos,\nthe images it samples whole)", p->gpus);
  fprintf(f, ":\n  stage  kind    level  fixed grid           voxels     device MB%s\n", p->gpus > 1 ? "  ranks  planes" : "");
  for (int i = 0; i < p->nrows; i++) {
    const ffdp_plan_row *r = &p->rows[i];
    char lv[16], grid[48];
    if (r->level < 0) snprintf(lv, sizeof lv, "final");
    else snprintf(lv, sizeof lv, "%d", r->level + 1);
    snprintf(grid, sizeof grid, "%lldx%lldx%lld", (long long)r->dim[0], (long long)r->dim[1], (long long)r->dim[2]);
    char split[32] = "";
    if (p->gpus > 1) snprintf(split, sizeof split, "  %5d  %6lld", r->ranks, (long long)r->planes);
    fprintf(f, "  %5d  %-6s  %-5s  %-19s %10lld  %10.1f%s%s\n", r->stage + 1, cli_stage_name(r->kind), lv, grid,
            (long long)(r->dim[0] * r->dim[1] * r->dim[2]), r->bytes / 1e6, split, i == p->peak_row ? "  <- peak" : "");
  }
  if (p->nrows == 0) return;
  const ffdp_plan_row *r = &p->rows[p->peak_row];
  fprintf(f, "  buffers at the peak:\n");
  for (int b = 0; b < r->nbuf; b++) fprintf(f, "    %-42s %10.1f MB\n", r->buf_name[b], r->buf_bytes[b] / 1e6);
  fprintf(f, "    %-42s %10.1f MB (a bound)\n", "operators' own scratch", r->scratch_bytes / 1e6);
  if (r->spare_bytes > 0) /* taken because the memory allows (ffdp_plan_row.spare_bytes) */
    fprintf(f, "  the spare field: the gradient smoothed out of place, faster on planes this large, taken because\n"
               "  the memory allows; the level needs %.1f MB without it\n", (r->bytes - r->spare_bytes) / 1e6);
  fprintf(f, "  peak %.1f MB%s = %.1f bytes per fixed voxel", p->peak_bytes / 1e6, p->gpus > 1 ? " per GPU" : "",
          p->bytes_per_voxel);
  if (limit_bytes > 0 && (total_bytes <= 0 || free_bytes == limit_bytes))
    fprintf(f, "; --gpu-memory allows %.1f GB: %s\n", limit_bytes / 1e9, p->peak_bytes <= limit_bytes ? "fits" : "DOES NOT FIT");
  else if (total_bytes > 0)
    fprintf(f, "; GPU 0 has %.1f of %.1f GB free: %s\n", free_bytes / 1e9, total_bytes / 1e9,
            p->peak_bytes <= free_bytes ? "fits" : "DOES NOT FIT");
  else
    fprintf(f, "; no CUDA device here to compare with\n");
}
