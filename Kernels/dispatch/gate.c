/* The dispatcher's table of the input-gated linear kernels (Kernels/gate/ukernels.inc), beside
 * dispatch.c's tables: the choice per kind under the active ISA, made once per ISA. */
#include <pthread.h>

#include "../gate/gate.h"
#include "sparrow_gate_kernels.h"

typedef struct {
  const char* name;
  sparrow_gate_kind kind;
  sparrow_isa isa;
  sparrow_gate_generic_fn fn;
} gate_entry;

/* "sparrow_gatedk_dense_f32_4x4__scalar" is shown without its "sparrow_" prefix. */
#define SPARROW_GATE_UKERNEL(fn, KIND, ISA) \
  {&#fn[8], SPARROW_GATE_##KIND, SPARROW_ISA_##ISA, (sparrow_gate_generic_fn)fn},
static const gate_entry gate_table[] = {
#include "../gate/ukernels.inc"
};
#undef SPARROW_GATE_UKERNEL
static const size_t gate_len = sizeof gate_table / sizeof gate_table[0];
#define GATE_KINDS 3
#define GATE_ISAS 4

size_t sparrow_gate_ukernel_count(void) { return gate_len; }
const char* sparrow_gate_ukernel_name(size_t i) { return i < gate_len ? gate_table[i].name : NULL; }
int sparrow_gate_ukernel_kind(size_t i) { return i < gate_len ? (int)gate_table[i].kind : -1; }
int sparrow_gate_ukernel_runnable(size_t i) { return i < gate_len && sparrow_isa_supported(gate_table[i].isa); }

/* Per ISA and kind: the first entry of that ISA, else of the levels below it (AVX-512 -> AVX2
 * -> scalar; NEON -> scalar), as dispatch.c's isa_below. */
static size_t gate_for[GATE_ISAS][GATE_KINDS];
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static void gate_resolve(void) {
  for (size_t kind = 0; kind < GATE_KINDS; kind++)
    for (size_t level = 0; level < GATE_ISAS; level++) {
      gate_for[level][kind] = 0;
      for (sparrow_isa isa = (sparrow_isa)level;;
           isa = isa == SPARROW_ISA_AVX512 ? SPARROW_ISA_AVX2 : SPARROW_ISA_SCALAR) {
        size_t i = 0;
        while (i < gate_len && !(gate_table[i].kind == (sparrow_gate_kind)kind && gate_table[i].isa == isa)) i++;
        if (i < gate_len) {
          gate_for[level][kind] = i;
          break;
        }
        if (isa == SPARROW_ISA_SCALAR) break;
      }
    }
}

size_t sparrow_gate_ukernel_auto(sparrow_gate_kind kind) {
  pthread_once(&gate_once, gate_resolve);
  const sparrow_isa isa = sparrow_active_isa();
  return (size_t)isa < GATE_ISAS && (size_t)kind < GATE_KINDS ? gate_for[isa][kind] : 0;
}

sparrow_gate_generic_fn sparrow_gate_select(sparrow_gate_kind kind, size_t i) {
  if (i < gate_len && gate_table[i].kind == kind && sparrow_isa_supported(gate_table[i].isa)) return gate_table[i].fn;
  return gate_table[sparrow_gate_ukernel_auto(kind)].fn;
}
