#pragma once
// A fake machine for hosted tests of the portable core: the functions of
// core/platform.hpp over a host buffer that stands in for machine memory, a
// real 4-level x86-64 walk for guest virtual accesses, and a record of every
// machine operation the core asked for.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <core/domain.hpp>

namespace fake {

constexpr uint64_t kDefaultFrames = 4096;   // 16 MiB of "machine memory"
constexpr uint64_t kReservedFrames = 16;    // frames 0..15 never given to the allocator
constexpr uint64_t kNoTable = ~0ull;        // current_l4() when no guest table is loaded

// What the core asked of the machine since the last reset().
struct Calls {
    unsigned reschedule = 0;
    unsigned flush_tlb = 0;
    std::vector<uint64_t> invlpg;
    std::vector<uint64_t> fs_base;
    std::vector<uint64_t> active_gs_base;
    std::vector<uint16_t> gs_selector;
    std::vector<bool> fpu_trap;
    std::vector<uint64_t> loaded_l4;     // every load_page_table
    unsigned leave_guest = 0;
    unsigned hv_slot_copies = 0;
    uint64_t now_ns = 0;
    core::Vcpu* current = nullptr;       // what current_vcpu() returns
    std::vector<std::pair<unsigned, bool>> irq_masked;   // every irq_set_masked(line, masked)
    std::vector<unsigned> gdt_loads;                     // every load_guest_gdt: its entries
    std::vector<std::pair<unsigned, uint64_t>> gdt_updates;   // every update_guest_gdt
    std::vector<unsigned> ldt_loads;                     // every load_guest_ldt: its entries
    std::vector<std::pair<unsigned, uint64_t>> ldt_updates;   // every update_guest_ldt
    std::vector<uint64_t> debugreg_loads;                // every load_debug_registers: the DR7 the CPU gets
    // The DMA-remapping unit (only used when set_iommu_levels made one).
    struct IommuContext {
        uint32_t bdf;
        uint16_t did;
        uint64_t root;   // 0: the function's context made not present
    };
    std::vector<IommuContext> iommu_contexts;            // every iommu_set_context
    std::vector<uint16_t> iommu_flushes;                 // every iommu_flush_domain: its domain id
};

Calls& calls();
std::string& log();              // everything log_write received

uint8_t* memory();               // machine address 0
uint64_t nframes();
uint64_t current_l4();           // the loaded guest L4 (an MFN), or kNoTable

// The value copy_hypervisor_l4_slots puts in L4 slot `slot` (256..271):
// recognisable, and not present.
constexpr uint64_t hv_slot_marker(unsigned slot) { return 0xdead000000000000ull | (uint64_t{slot} << 16); }
constexpr unsigned kHvFirstSlot = 256, kHvLastSlot = 271;

// From now until the next reset(), new guest L4s get the hypervisor's L4
// slot 262 the way the real kernel has it: present, pointing at an L3 (frame
// kDirectMapL3) whose first entry points at an L2 (frame kDirectMapL2) of 2 MiB
// superpages mapping all of machine memory (the direct map at
// 0xFFFF830000000000). The other hypervisor slots keep their markers. For
// tests that a walk of guest tables never follows the hypervisor's own.
void use_hypervisor_direct_map();
constexpr uint64_t kDirectMapL3 = 1, kDirectMapL2 = 2;   // reserved frames
constexpr uint64_t kDirectMapVa = 0xFFFF830000000000ull;

// Machine memory as a table / typed pointer.
uint64_t* table(uint64_t mfn);

// Walks the 4-level tables rooted at `l4_mfn` for `va` the way the MMU does.
// On success: the machine address and whether every level allows writes.
bool translate(uint64_t l4_mfn, uint64_t va, uint64_t* pa, bool* writable);

// The machine's DMA-remapping unit: 0 (the default after reset()) for none,
// else the levels of the I/O page tables it walks (3 or 4), which
// platform::iommu_levels() reports from now until the next reset().
void set_iommu_levels(unsigned levels);

// Fresh machine: `frames` zeroed frames, a new frame table and allocator
// holding [reserved, frames), no guest table loaded, empty log and call
// record, no DMA-remapping unit, every domain slot free.
void reset(uint64_t frames = kDefaultFrames, uint64_t reserved = kReservedFrames);

}  // namespace fake
