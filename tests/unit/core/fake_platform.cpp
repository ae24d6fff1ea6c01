// The fake machine: see fake_platform.hpp.

#include "fake_platform.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/frame_alloc.hpp>
#include <core/sched.hpp>
#include <core/frame_table.hpp>
#include <core/irq.hpp>
#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

namespace fake {

namespace {

uint8_t* g_mem = nullptr;
uint64_t g_frames = 0;
std::vector<core::FrameInfo> g_info;
std::vector<core::FrameLink> g_links;
std::vector<uint64_t> g_m2p;
uint64_t g_l4 = kNoTable;
bool g_direct_map = false;
Calls g_calls;
std::string g_log;
unsigned g_iommu_levels = 0;

// Exactly the ranges kernel/arch/x86_64/src/platform.cpp accepts: the lower
// half, or the upper half above the hypervisor's slots, never across.
bool guest_range_ok(uint64_t va, size_t n) {
    constexpr uint64_t kLowerEnd = 0x0000800000000000ull;
    constexpr uint64_t kUpperStart = 0xFFFF880000000000ull;
    if (n == 0) return true;
    uint64_t last = va + n - 1;
    if (last < va) return false;
    return last < kLowerEnd || va >= kUpperStart;
}

// One guest access, page by page, like `rep movsb` under the guest's tables
// with CR0.WP set: stops at the first page that is not there (or not
// writable, for a write); bytes before it have been copied.
bool guest_copy(uint64_t va, void* host, size_t n, bool write) {
    if (!guest_range_ok(va, n)) return false;
    auto* h = static_cast<uint8_t*>(host);
    while (n > 0) {
        if (g_l4 == kNoTable) return false;
        uint64_t pa;
        bool w;
        if (!translate(g_l4, va, &pa, &w)) return false;
        if (write && !w) return false;
        size_t chunk = 4096 - (va & 4095);
        if (chunk > n) chunk = n;
        if (pa + chunk > g_frames * 4096) return false;   // not RAM: treat as a fault
        if (write) std::memcpy(g_mem + pa, h, chunk);
        else std::memcpy(h, g_mem + pa, chunk);
        h += chunk;
        va += chunk;
        n -= chunk;
    }
    return true;
}

}  // namespace

Calls& calls() { return g_calls; }
std::string& log() { return g_log; }
uint8_t* memory() { return g_mem; }
uint64_t nframes() { return g_frames; }
uint64_t current_l4() { return g_l4; }

uint64_t* table(uint64_t mfn) { return static_cast<uint64_t*>(platform::phys_to_virt(mfn << 12)); }

bool translate(uint64_t l4_mfn, uint64_t va, uint64_t* pa, bool* writable) {
    if (!core::is_canonical(va)) return false;
    uint64_t m = l4_mfn;
    bool w = true;
    for (unsigned level = 4; level >= 1; --level) {
        if (m >= g_frames) return false;
        uint64_t e = table(m)[core::pte::index(va, level)];
        if (!(e & core::pte::kPresent)) return false;
        w = w && (e & core::pte::kWritable);
        if (level == 1 || ((level == 2 || level == 3) && (e & core::pte::kPse))) {
            uint64_t span = uint64_t{1} << (12 + 9 * (level - 1));
            uint64_t base = e & core::pte::kAddrMask & ~(span - 1);
            *pa = base + (va & (span - 1));
            *writable = w;
            return true;
        }
        m = core::pte::mfn(e);
    }
    return false;
}

void reset(uint64_t frames, uint64_t reserved) {
    // Domains from an earlier test live in the old machine's memory: forget
    // them the way the kernel would (their capabilities, the registry's
    // pointer to their CSpaces, their place in the scheduler) while that
    // memory is still there.
    core::domains_reset_for_tests();
    if (frames != g_frames) {
        std::free(g_mem);
        g_mem = static_cast<uint8_t*>(std::aligned_alloc(4096, frames * 4096));
        if (!g_mem) std::abort();
        g_frames = frames;
    }
    std::memset(g_mem, 0, frames * 4096);
    g_info.assign(frames, core::FrameInfo{});
    g_links.assign(frames, core::FrameLink{});
    core::frame_table().init(g_info.data(), frames);
    core::frame_allocator().init(g_links.data(), frames);
    g_m2p.assign(frames, 0);
    core::m2p_init(g_m2p.data(), frames, nullptr, 0);
    if (frames > reserved) {
        auto added = core::frame_allocator().add_free(reserved, frames - reserved);
        if (!added || *added != frames - reserved) std::abort();
    }
    // Frames never handed to the allocator are the hypervisor's, as at boot.
    for (uint64_t m = 0; m < reserved && m < frames; ++m) g_info[m].owner = core::kOwnerXen;
    g_direct_map = false;
    g_l4 = kNoTable;
    g_calls = Calls{};
    g_iommu_levels = 0;
    g_log.clear();
    core::log_reset_for_tests();
    core::irq_reset_for_tests();
}

void set_iommu_levels(unsigned levels) { g_iommu_levels = levels; }

void use_hypervisor_direct_map() {
    g_direct_map = true;
    uint64_t* l3 = table(kDirectMapL3);
    uint64_t* l2 = table(kDirectMapL2);
    std::memset(l3, 0, 4096);
    std::memset(l2, 0, 4096);
    l3[0] = (kDirectMapL2 << 12) | core::pte::kPresent | core::pte::kWritable;
    for (uint64_t k = 0; k * 512 < g_frames && k < 512; ++k)
        l2[k] = ((k * 512) << 12) | core::pte::kPresent | core::pte::kWritable | core::pte::kPse;
}

}  // namespace fake

namespace platform {

void log_write(const char* s, size_t n) { fake::g_log.append(s, n); }
void log_sink_reclaim() {}

bool copy_from_guest(void* dst, uint64_t guest_va, size_t n) {
    return fake::guest_copy(guest_va, dst, n, false);
}

bool copy_to_guest(uint64_t guest_va, const void* src, size_t n) {
    return fake::guest_copy(guest_va, const_cast<void*>(src), n, true);
}

void* phys_to_virt(uint64_t pa) {
    if (!fake::g_mem || pa >= fake::g_frames * 4096) {
        std::fprintf(stderr, "fake platform: phys_to_virt(%#llx) outside machine memory (%llu frames)\n",
                     static_cast<unsigned long long>(pa), static_cast<unsigned long long>(fake::g_frames));
        std::abort();
    }
    return fake::g_mem + pa;
}

// core/mm.hpp: every full local flush advances the TLB clock.
void flush_tlb_local() {
    ++fake::g_calls.flush_tlb;
    core::tlb_flushed();
}
void invlpg_local(uint64_t va) { fake::g_calls.invlpg.push_back(va); }

void copy_hypervisor_l4_slots(uint64_t* l4) {
    ++fake::g_calls.hv_slot_copies;
    for (unsigned s = fake::kHvFirstSlot; s <= fake::kHvLastSlot; ++s) l4[s] = fake::hv_slot_marker(s);
    if (fake::g_direct_map) l4[262] = (fake::kDirectMapL3 << 12) | core::pte::kPresent | core::pte::kWritable;
}

void load_page_table(uint64_t l4_mfn) {
    fake::g_calls.loaded_l4.push_back(l4_mfn);
    fake::g_l4 = l4_mfn;
    core::tlb_flushed();   // a CR3 write flushes the (non-global) TLB
}

void leave_guest_address_space() {
    ++fake::g_calls.leave_guest;
    fake::g_l4 = fake::kNoTable;
    core::tlb_flushed();
}

void set_fs_base(uint64_t v) { fake::g_calls.fs_base.push_back(v); }
uint64_t read_fs_base() { return fake::g_calls.fs_base.empty() ? 0 : fake::g_calls.fs_base.back(); }
void set_active_gs_base(uint64_t v) { fake::g_calls.active_gs_base.push_back(v); }
void load_guest_gs_selector(uint16_t sel) { fake::g_calls.gs_selector.push_back(sel); }
void read_data_selectors(uint16_t out[4]) {
    out[0] = out[1] = out[2] = 0;
    out[3] = fake::g_calls.gs_selector.empty() ? 0 : fake::g_calls.gs_selector.back();
}
void set_fpu_trap(bool on) { fake::g_calls.fpu_trap.push_back(on); }

uint64_t now_ns() { return fake::g_calls.now_ns += 1000; }

// A 1 GHz TSC that advances with the fake clock.
uint64_t tsc() { return now_ns(); }
uint64_t tsc_khz() { return 1'000'000; }

void request_reschedule() { ++fake::g_calls.reschedule; }

core::Vcpu* current_vcpu() { return fake::g_calls.current; }
void set_upcall_info(const void*) {}
void load_guest_gdt(const core::Vcpu& v) { fake::g_calls.gdt_loads.push_back(v.gdt_ents); }
void update_guest_gdt(unsigned index, uint64_t desc) { fake::g_calls.gdt_updates.emplace_back(index, desc); }
void load_guest_ldt(const core::Vcpu& v) { fake::g_calls.ldt_loads.push_back(v.ldt_ents); }
void update_guest_ldt(unsigned index, uint64_t desc) { fake::g_calls.ldt_updates.emplace_back(index, desc); }
// As the arch code: the vCPU's DR7 when it enables a breakpoint, else 0.
void load_debug_registers(const core::Vcpu& v) {
    fake::g_calls.debugreg_loads.push_back((v.dr[7] & 0xFF) ? v.dr[7] : 0);
}

void panic(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "fake platform: panic: ");
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, "\n");
    va_end(ap);
    std::abort();
}

// A fixed, plausible host: an Intel-like CPU with SSE2, NX, long mode, XSAVE
// and AVX (which the guest policy must hide), and the hypervisor bit clear.
void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    (void)subleaf;
    out[0] = out[1] = out[2] = out[3] = 0;
    switch (leaf) {
    case 0: out[0] = 0xD; out[1] = 0x756e6547; out[3] = 0x49656e69; out[2] = 0x6c65746e; break;   // GenuineIntel
    case 1:
        out[0] = 0x000906EA;
        out[1] = 0x00100800;
        out[2] = 0x1FFAFBFF;    // SSE3 .. AVX, XSAVE, OSXSAVE, x2APIC, VMX, ...
        out[3] = 0xBFEBFBFF;    // FPU .. PBE, APIC, MTRR, PGE, PSE, ...
        break;
    case 7: out[1] = 0x029C6FBF; out[3] = 0x9C000400; break;   // FSGSBASE, AVX2, SMEP, SMAP, ...
    case 0x80000000: out[0] = 0x80000008; break;
    case 0x80000001: out[2] = 0x121; out[3] = 0x2C100800; break;   // LAHF, ABM; SYSCALL, NX, 1G pages, RDTSCP, LM
    case 0x80000008: out[0] = 0x3027; break;
    default: break;
    }
}

uint64_t host_cr4() { return 0x3606E0; }   // PAE, MCE, PGE, OSFXSR, OSXMMEXCPT, FSGSBASE, OSXSAVE, SMEP, SMAP

bool boot_module(unsigned, BootModule*) { return false; }
uint32_t pci_read(uint32_t, uint16_t, uint8_t) { return 0xFFFFFFFF; }
void pci_write(uint32_t, uint16_t, uint8_t, uint32_t) {}
// QEMU's PC: a function interrupts on the line its firmware wrote.
unsigned pci_irq_input(uint32_t, uint8_t, uint8_t firmware_line) { return firmware_line; }
unsigned iommu_levels() { return fake::g_iommu_levels; }
void iommu_set_context(uint32_t bdf, uint16_t did, uint64_t root) {
    fake::g_calls.iommu_contexts.push_back(fake::Calls::IommuContext{bdf, did, root});
}
void iommu_flush_domain(uint16_t did) { fake::g_calls.iommu_flushes.push_back(did); }
void iommu_table_written(const void*, size_t) {}   // the fake unit reads memory as it is
void irq_set_level_triggered(unsigned) {}
void irq_set_masked(unsigned line, bool masked) { fake::g_calls.irq_masked.emplace_back(line, masked); }

void system_exit(ExitKind kind) {
    std::fprintf(stderr, "fake platform: system_exit(%s)\n", kind == ExitKind::clean ? "clean" : "panic");
    std::abort();
}

}  // namespace platform
