/* The switches of antsRegistration command lines, so that one can be pasted into ffdp
 * register: taken when ffdp does the same thing anyway, noted when it does something else,
 * refused when the result would not be what the command asks for. */
#include "cli/cli.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cli_ants_note(cli_ants_opts *o, const char *fmt, ...) {
  size_t l = strlen(o->notes);
  const size_t n = sizeof o->notes;
  if (l + 64 >= n) return;
  l += (size_t)snprintf(o->notes + l, n - l, "ffdp register: note: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->notes + l, n - l, fmt, ap);
  va_end(ap);
  l = strlen(o->notes);
  if (l + 1 < n) o->notes[l] = '\n', o->notes[l + 1] = 0;
}

/* "[a,b,c]" or "a" -> item k (trimmed), or "" when absent. */
static void bracket_item(const char *v, int k, char *out, size_t n) {
  const char *p = v[0] == '[' ? v + 1 : v;
  for (int i = 0; i < k && p; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
  out[0] = 0;
  if (!p) return;
  while (*p == ' ') p++;
  size_t l = strcspn(p, ",]");
  while (l > 0 && p[l - 1] == ' ') l--;
  if (l >= n) l = n - 1;
  memcpy(out, p, l);
  out[l] = 0;
}

static int is(const char *a, const char *s1, const char *s2) { return !strcmp(a, s1) || (s2 && !strcmp(a, s2)); }

int cli_ants_switch(const char *a, const char *v, cli_ants_opts *o) {
  const int known = is(a, "-o", "--output") || is(a, "-d", "--dimensionality") || is(a, "--float", NULL) ||
                    is(a, "-z", "--collapse-output-transforms") || is(a, "-u", "--use-histogram-matching") ||
                    is(a, "-a", "--write-composite-transform") || is(a, "--random-seed", NULL) ||
                    is(a, "-w", "--winsorize-image-intensities") || is(a, "-n", "--interpolation") ||
                    is(a, "-r", "--initial-moving-transform");
  if (!known) return 0;
  if (!v) return -cli_errorf("option %s needs a value (see 'ffdp register --help')", a);
  const int on = !strcmp(v, "1") || !strcasecmp(v, "true");
  if (is(a, "-o", "--output")) { /* [prefix,warped,inverseWarped] */
    char inv[CLI_PATH_MAX];
    bracket_item(v, 0, o->prefix, sizeof o->prefix);
    bracket_item(v, 1, o->warped, sizeof o->warped);
    bracket_item(v, 2, inv, sizeof inv);
    if (!o->prefix[0]) return -cli_errorf("-o %s: the output prefix is empty", v);
    if (inv[0]) cli_ants_note(o, "the inverse-warped image %s is not written (ffdp apply makes it)", inv);
  } else if (is(a, "-d", "--dimensionality")) {
    if (strcmp(v, "3")) return -cli_errorf("--dimensionality %s: ffdp registers 3D images only", v);
  } else if (is(a, "--float", NULL)) {
    if (!on) cli_ants_note(o, "ffdp computes in single precision (--float %s ignored)", v);
  } else if (is(a, "-z", "--collapse-output-transforms")) {
    if (!on) cli_ants_note(o, "ffdp always writes one affine and one warp (--collapse-output-transforms %s ignored)", v);
  } else if (is(a, "-u", "--use-histogram-matching")) {
    if (!on && strcmp(v, "0") && strcasecmp(v, "false"))
      return -cli_errorf("--use-histogram-matching takes 0 or 1, not '%s'", v);
    o->histogram_match = on;
  } else if (is(a, "-a", "--write-composite-transform")) {
    if (on)
      return -cli_errorf("--write-composite-transform %s: ffdp writes PREFIX0GenericAffine.txt and PREFIX1Warp.nii.gz, "
                         "not an .h5 composite; drop the option", v);
  } else if (is(a, "-w", "--winsorize-image-intensities")) { /* [lower,upper] quantiles */
    char lo[64], hi[64], *e1, *e2;
    bracket_item(v, 0, lo, sizeof lo);
    bracket_item(v, 1, hi, sizeof hi);
    o->winsorize[0] = strtod(lo, &e1), o->winsorize[1] = strtod(hi, &e2);
    if (!lo[0] || !hi[0] || *e1 || *e2 || !(o->winsorize[0] >= 0 && o->winsorize[0] < o->winsorize[1] && o->winsorize[1] <= 1))
      return -cli_errorf("--winsorize-image-intensities %s: give [lower,upper] quantiles with 0 <= lower < upper <= 1, "
                         "e.g. [0.005,0.995]", v);
  } else if (is(a, "-n", "--interpolation")) {
    if (strcasecmp(v, "Linear")) cli_ants_note(o, "Warped is written with linear interpolation (%s ignored)", v);
  } else if (is(a, "-r", "--initial-moving-transform")) {
    /* [fixed,moving,k]: 1 centres of mass (ffdp's moments also try the principal axes), 2 origins */
    char k[16];
    bracket_item(v, 2, k, sizeof k);
    if (v[0] != '[' || !k[0])
      return -cli_errorf("--initial-moving-transform %s: only ANTs' [fixed,moving,1] (centres of mass) and "
                         "[fixed,moving,2] (no initial transform) are supported", v);
    if (!strcmp(k, "2")) o->no_moments = 1;
    else if (strcmp(k, "1"))
      return -cli_errorf("--initial-moving-transform %s: use [fixed,moving,1] (centres of mass, the default) or "
                         "[fixed,moving,2] (none)", v);
  } /* --random-seed: ffdp's results do not depend on one */
  return 1;
}
