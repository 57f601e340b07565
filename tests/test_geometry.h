/* Non-trivial test geometries: oblique, anisotropic, with offsets. */
#ifndef FFDP_TESTS_GEOMETRY_H
#define FFDP_TESTS_GEOMETRY_H
#include "ffdp/geometry.h"
#include <math.h>

/* Rotation by angles (rad) about x, y, z, scaled per axis, with an origin. */
static inline ffdp_mat4 test_oblique(double ax, double ay, double az, const double sp[3], const double org[3]) {
  double cx = cos(ax), sx = sin(ax), cy = cos(ay), sy = sin(ay), cz = cos(az), sz = sin(az);
  double R[3][3] = {{cy * cz, -cy * sz, sy},
                    {sx * sy * cz + cx * sz, -sx * sy * sz + cx * cz, -sx * cy},
                    {-cx * sy * cz + sx * sz, cx * sy * sz + sx * cz, cx * cy}};
  ffdp_mat4 m = ffdp_mat4_identity();
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) m.m[i][j] = R[i][j] * sp[j];
    m.m[i][3] = org[i];
  }
  return m;
}
#endif
