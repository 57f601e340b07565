/* Naming helpers for operator templates: a *_impl.h file is included once with
 * REAL=float, SUFFIX=f32 and once with REAL=double, SUFFIX=f64. */
#ifndef FFDP_OPS_TMPL_H
#define FFDP_OPS_TMPL_H
#define FFDP_CAT_(a, b) a##_##b
#define FFDP_CAT(a, b) FFDP_CAT_(a, b)
#define FN(name) FFDP_CAT(name, SUFFIX)
#endif
