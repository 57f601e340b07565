/* --metric: ffdp's short form and antsRegistration's long form (see cli.h). */
#include "cli/cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { MAX_ITEMS = 8 };

/* "a, b ,c" -> trimmed items (commas inside a path are not supported, as in ANTs). */
static int split_items(const char *s, size_t len, char items[MAX_ITEMS][CLI_PATH_MAX]) {
  int n = 0;
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && s[j] != ',') j++;
    size_t a = i, b = j;
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    if (n == MAX_ITEMS || b - a >= CLI_PATH_MAX) return -1;
    memcpy(items[n], s + a, b - a);
    items[n++][b - a] = 0;
    i = j + 1;
  }
  return n;
}

static int number(const char *s, double *v) {
  char *e;
  *v = strtod(s, &e);
  return *s && !*e;
}

static int fail(char *why, size_t wlen, const char *fmt, const char *a) {
  snprintf(why, wlen, fmt, a);
  return 0;
}

int cli_parse_metric(const char *v, ffdp_metric_spec *m, char fixed[CLI_PATH_MAX], char moving[CLI_PATH_MAX],
                     char *note, size_t nlen, char *why, size_t wlen) {
  fixed[0] = moving[0] = note[0] = 0;
  const char *br = strchr(v, '[');
  const size_t l = br ? (size_t)(br - v) : strlen(v);
  char name[32];
  if (l == 0 || l >= sizeof name) return fail(why, wlen, "cannot parse --metric '%s'", v);
  memcpy(name, v, l);
  name[l] = 0;
  ffdp_metric_kind kind;
  if (!strcasecmp(name, "CC")) kind = FFDP_METRIC_CC;
  else if (!strcasecmp(name, "MI") || !strcasecmp(name, "Mattes")) kind = FFDP_METRIC_MI;
  else if (!strcasecmp(name, "MSE") || !strcasecmp(name, "MeanSquares")) kind = FFDP_METRIC_MSE;
  else return fail(why, wlen, "unknown metric '%s' (CC[w], MI[bins], MSE, or ANTs' CC[fixed,moving,1,radius])", name);
  char items[MAX_ITEMS][CLI_PATH_MAX];
  int n = 0;
  if (br) {
    const char *end = strrchr(br, ']');
    if (!end || end[1]) return fail(why, wlen, "cannot parse --metric '%s' (a missing ']'?)", v);
    if (end > br + 1 && (n = split_items(br + 1, (size_t)(end - br - 1), items)) < 0)
      return fail(why, wlen, "cannot parse --metric '%s' (too many or too long items)", v);
  }
  double x;
  *m = (ffdp_metric_spec){kind, 5, 32};
  if (n >= 2 && !number(items[0], &x)) { /* ANTs: NAME[fixed,moving,weight,parameter,sampling,percentage] */
    snprintf(fixed, CLI_PATH_MAX, "%s", items[0]);
    snprintf(moving, CLI_PATH_MAX, "%s", items[1]);
    if (n > 2 && !(number(items[2], &x) && x == 1.0))
      return fail(why, wlen, "metric weight '%s': one metric per stage, so the weight must be 1", items[2]);
    if (n > 3) {
      if (!number(items[3], &x) || x != (int)x || x < 0)
        return fail(why, wlen, "metric parameter '%s' must be a whole number (CC radius, MI bins)", items[3]);
      if (kind == FFDP_METRIC_CC) m->window = 2 * (int)x + 1; /* ANTs gives the radius */
      if (kind == FFDP_METRIC_MI) m->bins = (int)x;
    } else if (kind == FFDP_METRIC_CC) {
      m->window = 9; /* antsRegistration's usual radius 4 */
    }
    if (n > 4)
      snprintf(note, nlen, "note: ffdp scores every voxel; the sampling '%s' of --metric %s is ignored", items[4], name);
    return 1;
  }
  if (n > 1) return fail(why, wlen, "cannot parse --metric '%s' (CC[w], MI[bins], MSE, or ANTs' CC[fixed,moving,1,radius])", v);
  if (n == 1 && !number(items[0], &x)) return fail(why, wlen, "cannot parse --metric '%s'", v);
  if (n == 1 && kind == FFDP_METRIC_CC) {
    if (x != (int)x || x < 1 || (int)x % 2 == 0) {
      snprintf(why, wlen,
               "CC[%g]: ffdp's CC takes an odd window in voxels; ANTs' radius r is CC[2r+1] (radius 4: CC[9]), or "
               "write it as ANTs does: CC[fixed,moving,1,r]",
               x);
      return 0;
    }
    m->window = (int)x;
  }
  if (n == 1 && kind == FFDP_METRIC_MI) m->bins = (int)x;
  return 1;
}
