#pragma once
// The machine-to-phys table: for every machine frame, the pseudo-physical
// frame its owner uses it as (or kM2pInvalid). The hypervisor writes it; every
// guest sees it read-only at Xen's RO_MPT address (0xffff8000'00000000).

#include <cstdint>

#include <core/frame_table.hpp>

namespace core {

constexpr uint64_t kM2pInvalid = ~0ull;

// `table` has one entry per machine frame; every entry starts invalid.
// `backing` lists the 2 MiB blocks (first frame of each) that hold it.
void m2p_init(uint64_t* table, uint64_t nframes, const Mfn* backing, unsigned nbacking);
void m2p_set(Mfn mfn, uint64_t pfn);
uint64_t m2p_get(Mfn mfn);
uint64_t m2p_entries();
unsigned m2p_backing(const Mfn** blocks);

}  // namespace core
