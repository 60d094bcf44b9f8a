/* The one place that tests CPU features: probed once, overridable with SPARROW_ISA. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparrow_kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
/* SPARROW_ISA_AVX512, SPARROW_ISA_AVX2 or SPARROW_ISA_SCALAR. */
static sparrow_isa x86_level(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SPARROW_ISA_SCALAR;
  const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx || !fma) return SPARROW_ISA_SCALAR;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6) != 6) return SPARROW_ISA_SCALAR;  /* OS saves XMM and YMM state */
  if (__get_cpuid_max(0, NULL) < 7) return SPARROW_ISA_SCALAR;
  __cpuid_count(7, 0, a, b, c, d);
  if (!((b >> 5) & 1)) return SPARROW_ISA_SCALAR;  /* AVX2 */
  /* AVX-512F (leaf 7 EBX bit 16), and the OS saves opmask and both ZMM halves (XCR0 bits 5-7). */
  if (((b >> 16) & 1) && (lo & 0xE0) == 0xE0) return SPARROW_ISA_AVX512;
  return SPARROW_ISA_AVX2;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static sparrow_isa detected = SPARROW_ISA_SCALAR;
static int has_vnni = 0, has_dotprod = 0; /* extensions beside the ISA levels (int8 kernels) */
static volatile sparrow_isa active = SPARROW_ISA_SCALAR;
static size_t l1d = 32768;

static int isa_supported(sparrow_isa isa) {
  return isa == SPARROW_ISA_SCALAR || isa == detected || (isa == SPARROW_ISA_AVX2 && detected == SPARROW_ISA_AVX512);
}

static void probe(void) {
#if defined(__x86_64__)
  detected = x86_level();
  if (detected == SPARROW_ISA_AVX512) {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    /* AVX512_VNNI (ECX bit 11) with AVX512BW and AVX512VL (EBX bits 30, 31) for the byte stores. */
    has_vnni = ((c >> 11) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  }
#elif defined(__aarch64__)
  const unsigned long hw = getauxval(AT_HWCAP);
  if (hw & HWCAP_ASIMD) detected = SPARROW_ISA_NEON;
  has_dotprod = detected == SPARROW_ISA_NEON && (hw & HWCAP_ASIMDDP) != 0;
#endif
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  if (l1 >= 4096 && l1 <= (1L << 22)) l1d = (size_t)l1;
#endif
  active = detected;
  const char* env = getenv("SPARROW_ISA");
  if (env != NULL && env[0] != '\0') {
    sparrow_isa want = SPARROW_ISA_SCALAR;
    if (strcmp(env, "avx2") == 0) want = SPARROW_ISA_AVX2;
    else if (strcmp(env, "avx512") == 0) want = SPARROW_ISA_AVX512;
    else if (strcmp(env, "neon") == 0) want = SPARROW_ISA_NEON;
    active = isa_supported(want) ? want : SPARROW_ISA_SCALAR;
  }
}

sparrow_isa sparrow_detected_isa(void) {
  pthread_once(&probe_once, probe);
  return detected;
}

sparrow_isa sparrow_active_isa(void) {
  pthread_once(&probe_once, probe);
  return active;
}

int sparrow_isa_supported(sparrow_isa isa) {
  pthread_once(&probe_once, probe);
  return isa_supported(isa);
}

sparrow_isa sparrow_set_isa(sparrow_isa isa) {
  pthread_once(&probe_once, probe);
  active = isa_supported(isa) ? isa : SPARROW_ISA_SCALAR;
  return active;
}

int sparrow_cpu_feature(sparrow_cpu_feature_id f) {
  pthread_once(&probe_once, probe);
  /* An extension counts only while its level is in force (SPARROW_ISA=avx2 hides VNNI). */
  switch (f) {
    case SPARROW_CPU_NONE: return 1;
    case SPARROW_CPU_VNNI: return has_vnni && active == SPARROW_ISA_AVX512;
    case SPARROW_CPU_DOTPROD: return has_dotprod && active == SPARROW_ISA_NEON;
  }
  return 0;
}

size_t sparrow_l1d_bytes(void) {
  pthread_once(&probe_once, probe);
  return l1d;
}

const char* sparrow_isa_name(sparrow_isa isa) {
  switch (isa) {
    case SPARROW_ISA_SCALAR: return "scalar";
    case SPARROW_ISA_AVX2: return "avx2";
    case SPARROW_ISA_NEON: return "neon";
    case SPARROW_ISA_AVX512: return "avx512";
  }
  return "unknown";
}
