/* The target attribute of the int8 kernels that use the Arm dot-product extension (sdot, Armv8.2
 * FEAT_DotProd; chosen at run time from HWCAP_ASIMDDP): clang spells it as a feature, GCC as an
 * architecture suffix. */
#ifndef SPARROW_QGEMM_NEONDOT_H
#define SPARROW_QGEMM_NEONDOT_H
#if defined(__clang__)
#define T __attribute__((target("dotprod")))
#else
#define T __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#endif
