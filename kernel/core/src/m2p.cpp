#include <core/m2p.hpp>

namespace core {

namespace {
uint64_t* g_table;
uint64_t g_entries;
const Mfn* g_backing;
unsigned g_nbacking;
}  // namespace

void m2p_init(uint64_t* table, uint64_t nframes, const Mfn* backing, unsigned nbacking) {
    g_table = table;
    g_entries = nframes;
    g_backing = backing;
    g_nbacking = nbacking;
    for (uint64_t i = 0; i < nframes; ++i) table[i] = kM2pInvalid;
}

void m2p_set(Mfn mfn, uint64_t pfn) {
    if (g_table && mfn < g_entries) g_table[mfn] = pfn;
}

uint64_t m2p_get(Mfn mfn) { return g_table && mfn < g_entries ? g_table[mfn] : kM2pInvalid; }

uint64_t m2p_entries() { return g_entries; }

unsigned m2p_backing(const Mfn** blocks) {
    *blocks = g_backing;
    return g_nbacking;
}

}  // namespace core
