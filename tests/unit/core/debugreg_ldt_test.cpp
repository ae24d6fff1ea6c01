// Issue 11: debug registers (set_debugreg, get_debugreg, the #DB state a
// guest sees), the LDT (MMUEXT_SET_LDT, its selectors in iret and segment
// loads, its frames' references) and the callbacks beyond the trap table
// (syscall32, sysenter, nmi), each with the hostile values a guest can give.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <core/callbacks.hpp>
#include <core/debugreg.hpp>
#include <core/descriptors.hpp>
#include <core/emulate.hpp>
#include <core/traps.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;
namespace pte = core::pte;

constexpr int64_t kEperm = -1, kEfault = -14, kEnodev = -19, kEinval = -22, kEnosys = -38;

class Issue11 : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        d = build("guest");
        other = build("other");
        ASSERT_TRUE(d && other);
        v = &d->vcpu[0];
    }
    int64_t setdr(uint64_t reg, uint64_t value) { return hc(d, Hypercall::set_debugreg, reg, value); }
    int64_t getdr(uint64_t reg) { return hc(d, Hypercall::get_debugreg, reg); }

    core::Domain* d = nullptr;
    core::Domain* other = nullptr;
    core::Vcpu* v = nullptr;
};

// ---- debug registers ---------------------------------------------------------------

TEST_F(Issue11, BreakpointAddressesAreGuestAddressesOnly) {
    for (uint64_t ok : {0x400000ull, 0ull, 0x00007FFFFFFFFFFFull, 0xFFFF880000000000ull, 0xFFFFFFFF80000000ull}) {
        EXPECT_EQ(setdr(0, ok), 0) << std::hex << ok;
        EXPECT_EQ(v->dr[0], ok);
        EXPECT_EQ(uint64_t(getdr(0)), ok);
    }
    for (uint64_t bad : {0xFFFF800000000000ull, 0xFFFF830000001000ull, 0xFFFF82D080000000ull,
                         0xFFFF87FFFFFFFFFFull, 0x0000800000000000ull, 0x8000000000000000ull, ~0ull << 47 >> 1}) {
        for (unsigned reg = 0; reg < 4; ++reg) {
            EXPECT_EQ(setdr(reg, bad), kEperm) << std::hex << bad << " dr" << reg;
            EXPECT_NE(v->dr[reg], bad);
        }
    }
}

TEST_F(Issue11, Dr7RefusesGeneralDetectIoBreakpointsAndHighBits) {
    EXPECT_EQ(setdr(7, 1u << 13), kEperm) << "GD";
    EXPECT_EQ(setdr(7, (1u << 13) | 1), kEperm);
    for (unsigned i = 0; i < 4; ++i) {
        uint64_t io = (2ull << (16 + 4 * i)) | (1ull << (2 * i));
        EXPECT_EQ(setdr(7, io), kEperm) << "an I/O breakpoint in slot " << i;
        EXPECT_EQ(setdr(7, 2ull << (16 + 4 * i)), kEperm) << "even disabled";
    }
    EXPECT_EQ(setdr(7, 1ull << 32), kEinval);
    EXPECT_EQ(setdr(7, ~0ull), kEinval);
    EXPECT_EQ(v->dr[7], core::kDr7Default) << "unchanged by every refusal";
    // Reserved bits 11, 12, 14, 15 are cleared and bit 10 set, as Xen does.
    EXPECT_EQ(setdr(7, 0xD801), 0);
    EXPECT_EQ(v->dr[7], 0x401u);
    EXPECT_EQ(getdr(7), 0x401);
    // Data breakpoints of every length, read/write and write.
    EXPECT_EQ(setdr(7, 0xFFF30003ull), 0);
    EXPECT_EQ(v->dr[7], 0xFFF30403u);
}

TEST_F(Issue11, Dr6AndTheAliasesAndUnknownRegisters) {
    EXPECT_EQ(getdr(6), int64_t(core::kDr6Default));
    EXPECT_EQ(setdr(6, 0x4001), 0);
    EXPECT_EQ(v->dr[6], 0xFFFF4FF1u);
    EXPECT_EQ(setdr(6, 0), 0);
    EXPECT_EQ(v->dr[6], core::kDr6Default);
    EXPECT_EQ(setdr(6, 1ull << 32), kEinval);
    EXPECT_EQ(setdr(6, 0x1000), 0) << "bit 12 reads as zero";
    EXPECT_EQ(v->dr[6], core::kDr6Default);
    // DR4/DR5 are DR6/DR7 while CR4.DE is clear; with it, no such register.
    EXPECT_EQ(setdr(5, 0x1), 0);
    EXPECT_EQ(getdr(7), 0x401);
    EXPECT_EQ(getdr(5), 0x401);
    EXPECT_EQ(getdr(4), int64_t(core::kDr6Default));
    v->cr4_guest = 1u << 3;
    EXPECT_EQ(setdr(4, 0), kEnodev);
    EXPECT_EQ(setdr(5, 0), kEnodev);
    EXPECT_EQ(getdr(4), kEnodev);
    v->cr4_guest = 0;
    for (uint64_t reg : {8ull, 15ull, 1ull << 32, ~0ull}) {
        EXPECT_EQ(setdr(reg, 0), kEnodev) << reg;
        EXPECT_EQ(getdr(reg), kEnodev) << reg;
    }
}

TEST_F(Issue11, TheCpuFollowsTheRunningVcpusBreakpoints) {
    auto& loads = fake::calls().debugreg_loads;
    EXPECT_EQ(setdr(0, 0x400100), 0);
    EXPECT_TRUE(loads.empty()) << "nothing enabled: nothing to load";
    EXPECT_EQ(setdr(7, 0x1), 0);
    ASSERT_EQ(loads.size(), 1u);
    EXPECT_EQ(loads.back(), 0x401u);
    EXPECT_EQ(setdr(0, 0x400200), 0);
    EXPECT_EQ(loads.size(), 2u) << "a new address of an enabled breakpoint is loaded at once";
    EXPECT_EQ(setdr(7, 0), 0);
    EXPECT_EQ(loads.back(), 0u) << "disabled: the CPU's DR7 cleared";
    EXPECT_EQ(setdr(7, 0), 0);
    EXPECT_EQ(loads.size(), 3u) << "nothing was enabled, nothing changes";
    // Another domain's vCPU, not on the CPU: its registers only.
    ASSERT_EQ(core::debugreg_set(other->vcpu[0], 7, 0x3), 0);
    EXPECT_EQ(loads.size(), 3u);
    EXPECT_TRUE(core::debugreg_active(other->vcpu[0]));
    EXPECT_FALSE(core::debugreg_active(*v));
}

TEST_F(Issue11, AGuestDebugTrapLeavesItsDr6ForItsHandler) {
    v->traps[1] = core::TrapHandler{0x400900, 0, false};
    core::debugreg_guest_trap(*v, 0xFFFF4FF0);   // single step
    EXPECT_EQ(getdr(6), 0xFFFF4FF0);
    core::debugreg_guest_trap(*v, 0xFFFF0FF2);   // B1: sticky with BS
    EXPECT_EQ(v->dr[6], 0xFFFF4FF2u);
    core::debugreg_guest_trap(*v, 0xFFFE0FF0);   // RTM (active low) follows the CPU
    EXPECT_EQ(v->dr[6], 0xFFFE4FF2u);
    core::debugreg_guest_trap(*v, ~0ull);        // upper bits of a 64-bit read never stick
    EXPECT_EQ(v->dr[6] >> 32, 0u);
    // And the guest's `mov %dr6` (emulated) sees it too.
    uint64_t val = 0;
    ASSERT_TRUE(core::get_debugreg(*v, 6, &val));
    EXPECT_EQ(val, v->dr[6]);
    // Delivered to trap 1 like any exception.
    core::Regs r = v->regs;
    r.rip = 0x400123;
    r.rsp = kScratch + 0x800;
    as(d);
    core::guest_exception(*v, r, 1, 0, 0);
    EXPECT_EQ(r.rip, 0x400900u);
}

// ---- the LDT ---------------------------------------------------------------------

// Descriptors as a 32-bit user process's LDT holds them.
constexpr uint64_t kData = 0x00CFF3000000FFFFull;       // DPL 3 data, base 0
constexpr uint64_t kCode32 = 0x00CFFB000000FFFFull;     // DPL 3, 32-bit code
constexpr uint64_t kCode64 = 0x00AFFB000000FFFFull;     // DPL 3, 64-bit code
constexpr uint64_t kCode16 = 0x000FFB000000FFFFull;     // DPL 3, 16-bit code
constexpr uint64_t kKernelCs = 0x00AF9B000000FFFFull;   // DPL 0, 64-bit code
constexpr uint64_t kTss = 0x00008B000000FFFFull;
constexpr uint64_t kLdtDesc = 0x000082000000FFFFull;
constexpr uint64_t kGateToHypervisor = 0x0000EC00E0080000ull;   // call gate, DPL 3, to 0xe008
constexpr uint64_t kIntGate = 0x00008E0000100000ull;

class Ldt : public Issue11 {
protected:
    // Frame of d's at `va`, filled with `descs` (the rest zero) and then mapped
    // read-only there (its only mapping), as Linux's xen_alloc_ldt leaves it.
    core::Mfn page(uint64_t va, const std::vector<uint64_t>& descs) {
        core::Mfn m = mfn_at(d, va);
        uint64_t* p = core::frame_va<uint64_t>(m);
        std::memset(p, 0, 4096);
        for (size_t i = 0; i < descs.size(); ++i) p[i] = descs[i];
        EXPECT_EQ(hc(d, Hypercall::update_va_mapping, va, pte::make(m, pte::kPresent | pte::kAccessed), 0), 0);
        return m;
    }
    int64_t set_ldt(uint64_t base, uint64_t ents, uint64_t domid = abi::kDomidSelf) {
        abi::MmuextOp op{};
        op.cmd = uint32_t(abi::MmuextCmd::set_ldt);
        op.arg1.linear_addr = base;
        op.arg2.nr_ents = uint32_t(ents);
        put(d, kScratch, op);
        return hc(d, Hypercall::mmuext_op, kScratch, 1, 0, domid);
    }
    const core::FrameInfo& fi(core::Mfn m) { return core::frame_table()[m]; }

    static constexpr uint64_t kLdtVa = kPlay + 0x20000;
};

TEST_F(Ldt, TakesItsPagesAsDescriptorPages) {
    core::Mfn m = page(kLdtVa, {kData, kCode32, kCode64, kKernelCs});
    uint32_t count = fi(m).count;
    ASSERT_EQ(set_ldt(kLdtVa, 4), 0);
    EXPECT_EQ(v->ldt_base, kLdtVa);
    EXPECT_EQ(v->ldt_ents, 4u);
    EXPECT_EQ(v->ldt_frames[0], m);
    EXPECT_EQ(fi(m).type, core::PageType::seg_desc);
    EXPECT_EQ(fi(m).type_count, 1u);
    EXPECT_EQ(fi(m).count, count + 1);
    ASSERT_FALSE(fake::calls().ldt_loads.empty());
    EXPECT_EQ(fake::calls().ldt_loads.back(), 4u) << "loaded at once: it is the running vCPU";
    EXPECT_EQ((core::frame_va<uint64_t>(m)[3] >> 45) & 3, 3u) << "a DPL 0 code segment becomes DPL 3";
    // The same LDT again: nothing to do (as Xen).
    size_t loads = fake::calls().ldt_loads.size();
    ASSERT_EQ(set_ldt(kLdtVa, 4), 0);
    EXPECT_EQ(fake::calls().ldt_loads.size(), loads);
    EXPECT_EQ(fi(m).type_count, 1u);
    // No LDT: everything back; the address is ignored with no entries.
    ASSERT_EQ(set_ldt(0xFFFF830000000000ull, 0), 0);
    EXPECT_EQ(v->ldt_ents, 0u);
    EXPECT_EQ(v->ldt_base, 0u);
    EXPECT_EQ(v->ldt_frames[0], 0u);
    EXPECT_EQ(fi(m).type_count, 0u);
    EXPECT_EQ(fi(m).count, count);
    EXPECT_EQ(fake::calls().ldt_loads.back(), 0u);
}

TEST_F(Ldt, RefusesBadAddressesAndSizes) {
    core::Mfn m = page(kLdtVa, {kData});
    uint32_t count = fi(m).count;
    for (uint64_t bad : std::vector<uint64_t>{0xFFFF830000000000ull, 0xFFFF800000000000ull, 0xFFFF87FFFFFFF000ull,
                                              0x0000800000000000ull, 0x8000000000000000ull, kLdtVa + 8,
                                              kLdtVa + 0x800, kLdtVa | 1})
        EXPECT_EQ(set_ldt(bad, 1), kEinval) << std::hex << bad;
    EXPECT_EQ(set_ldt(kLdtVa, core::kLdtMaxEntries + 1), kEinval);
    EXPECT_EQ(set_ldt(kLdtVa, 0xFFFFFFFF), kEinval);
    EXPECT_EQ(set_ldt(0x00007FFFFFFFF000ull, 8192), kEinval) << "pages past the lower half";
    EXPECT_EQ(set_ldt(0x10000, 1), kEinval) << "not mapped";
    EXPECT_EQ(v->ldt_ents, 0u);
    EXPECT_EQ(fi(m).count, count);
    EXPECT_EQ(fi(m).type_count, 0u);
    EXPECT_TRUE(fake::calls().ldt_loads.empty());
    // The limit itself is fine: 16 pages, each read-only and its own.
    for (unsigned i = 0; i < core::kLdtMaxFrames; ++i) page(kLdtVa + 0x1000 * i, {kData});
    ASSERT_EQ(set_ldt(kLdtVa, core::kLdtMaxEntries), 0);
    EXPECT_EQ(v->ldt_frames[15], mfn_at(d, kLdtVa + 0xF000));
    ASSERT_EQ(set_ldt(0, 0), 0);
}

TEST_F(Ldt, RefusesPagesThatAreNotItsOwnPlainMemory) {
    // Mapped writable (the ordinary mapping of its memory).
    core::Mfn w = mfn_at(d, kLdtVa);
    EXPECT_EQ(set_ldt(kLdtVa, 1), kEinval) << "a writable mapping of it exists";
    EXPECT_EQ(fi(w).type, core::PageType::writable);
    // A page table of its own, mapped read-only.
    core::Mfn l1 = pte_ma(d, kPlay) >> 12;
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kLdtVa, pte::make(l1, pte::kPresent), 0), 0);
    uint32_t l1_types = fi(l1).type_count;
    EXPECT_EQ(set_ldt(kLdtVa, 1), kEinval) << "an L1 in use";
    EXPECT_EQ(fi(l1).type, core::PageType::l1);
    EXPECT_EQ(fi(l1).type_count, l1_types);
    // Its own L4 (its base pointer).
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kLdtVa, pte::make(v->guest_table, pte::kPresent), 0), 0);
    EXPECT_EQ(set_ldt(kLdtVa, 1), kEinval) << "its L4";
    // Another domain's frame, mapped through a grant (read-only).
    give(d, cap::Type::grant, cap::right::map_ro, other->id);
    core::Mfn theirs = mfn_at(other, kPlay);
    grant(other, 3, d->id, theirs, true);
    abi::GnttabMapGrantRef mp = map(d, other->id, 3, kLdtVa + 0x1000, abi::kGntmapHostMap | abi::kGntmapReadonly);
    ASSERT_EQ(mp.status, 0);
    uint32_t their_count = fi(theirs).count;
    EXPECT_EQ(set_ldt(kLdtVa + 0x1000, 1), kEinval) << "another domain's frame";
    EXPECT_EQ(fi(theirs).count, their_count);
    EXPECT_NE(fi(theirs).type, core::PageType::seg_desc);
    EXPECT_EQ(unmap(d, mp.handle, kLdtVa + 0x1000), 0);
    // Another domain's LDT, never on its behalf (even with a build capability).
    give(d, cap::Type::domain, cap::right::build, other->id);
    page(kLdtVa + 0x2000, {kData});
    EXPECT_EQ(set_ldt(kLdtVa + 0x2000, 1, other->id), kEperm);
    EXPECT_EQ(other->vcpu[0].ldt_ents, 0u);
    EXPECT_EQ(v->ldt_ents, 0u);
}

TEST_F(Ldt, ValidatesEveryDescriptorAsTheGdtDoes) {
    for (uint64_t bad : {kTss, kLdtDesc, kIntGate, kGateToHypervisor, uint64_t(0x00008F0000100000ull)}) {
        core::Mfn m = page(kLdtVa, {kData, bad});
        EXPECT_EQ(set_ldt(kLdtVa, 2), kEinval) << std::hex << bad;
        EXPECT_EQ(fi(m).type_count, 0u);
        EXPECT_EQ(v->ldt_ents, 0u);
        // A bad descriptor anywhere in the page counts, even past the entries
        // (the whole page becomes a descriptor page).
        page(kLdtVa, {kData, kData, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bad});
        EXPECT_EQ(set_ldt(kLdtVa, 2), kEinval) << std::hex << bad;
    }
    // A call gate to one of its own selectors: accepted, made unusable directly.
    core::Mfn m = page(kLdtVa, {0x0000EC0000330000ull, 0});
    ASSERT_EQ(set_ldt(kLdtVa, 2), 0);
    EXPECT_EQ((core::frame_va<uint64_t>(m)[0] >> 45) & 3, 0u);
    // update_descriptor on it: checked, and the CPU's copy follows.
    uint64_t ma = (m << 12) + 8;
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kGateToHypervisor), kEinval);
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kTss), kEinval);
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kKernelCs), 0);
    EXPECT_EQ((core::frame_va<uint64_t>(m)[1] >> 45) & 3, 3u);
    ASSERT_FALSE(fake::calls().ldt_updates.empty());
    EXPECT_EQ(fake::calls().ldt_updates.back().first, 1u);
    EXPECT_EQ(fake::calls().ldt_updates.back().second, core::frame_va<uint64_t>(m)[1]);
    size_t updates = fake::calls().ldt_updates.size();
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, (m << 12) + 16, kData), 0);
    EXPECT_EQ(fake::calls().ldt_updates.size(), updates) << "past its entries: nothing for the CPU";
}

TEST_F(Ldt, ItsPagesStayUnwritableWhileInUse) {
    core::Mfn m = page(kLdtVa, {kData});
    ASSERT_EQ(set_ldt(kLdtVa, 1), 0);
    EXPECT_EQ(hc(d, Hypercall::update_va_mapping, kLdtVa, pte::make(m, pte::kPresent | pte::kWritable), 0), kEinval);
    EXPECT_EQ(hc(d, Hypercall::update_va_mapping, kPlay + 0x40000, pte::make(m, pte::kPresent | pte::kWritable), 0),
              kEinval) << "nor through another address";
    abi::MmuUpdate u{(m << 12) | 8, kData};
    put(d, kScratch, u);
    EXPECT_EQ(hc(d, Hypercall::mmu_update, kScratch, 1, 0, abi::kDomidSelf), kEinval) << "nor written as memory";
    // Nor given back.
    // (decrease_reservation refuses any frame with a reference.)
    EXPECT_GT(fi(m).count, 0u);
    // Unmapping the guest's view keeps the LDT (its frames are held).
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kLdtVa, 0, 0), 0);
    EXPECT_EQ(fi(m).type_count, 1u);
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x7, false));
    // A new LDT elsewhere releases it; then it is ordinary memory again.
    core::Mfn m2 = page(kLdtVa + 0x1000, {kData, kData});
    ASSERT_EQ(set_ldt(kLdtVa + 0x1000, 2), 0);
    EXPECT_EQ(fi(m).type_count, 0u);
    EXPECT_EQ(fi(m2).type_count, 1u);
    EXPECT_EQ(hc(d, Hypercall::update_va_mapping, kLdtVa, pte::make(m, pte::kPresent | pte::kWritable), 0), 0);
    EXPECT_EQ(fi(m).type, core::PageType::writable);
}

TEST_F(Ldt, AFailureHalfWayReleasesWhatItTook) {
    core::Mfn first = page(kLdtVa, {kData});
    uint32_t count = fi(first).count;
    // The second page is still writable.
    EXPECT_EQ(set_ldt(kLdtVa, 1024), kEinval);
    EXPECT_EQ(fi(first).count, count);
    EXPECT_EQ(fi(first).type_count, 0u);
    // An existing LDT survives a refused one.
    ASSERT_EQ(set_ldt(kLdtVa, 512), 0);
    EXPECT_EQ(set_ldt(kLdtVa, 513), kEinval);
    EXPECT_EQ(v->ldt_ents, 512u);
    EXPECT_EQ(fi(first).type_count, 1u);
}

TEST_F(Ldt, ItsSelectorsInIretAndSegmentLoads) {
    uint64_t based = 0x00CFF3120000FFFFull | (0x34ull << 56);   // data, base 0x34120000
    page(kLdtVa, {kData, kCode32, kCode64, kCode16, based, 0x00CFFB000000FFFFull & ~(1ull << 47)});
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x7, false)) << "no LDT yet";
    ASSERT_EQ(set_ldt(kLdtVa, 6), 0);
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x07, false)) << "entry 0: an LDT has no null entry";
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x0F, true)) << "32-bit code";
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x17, true)) << "64-bit code";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x1F, true)) << "16-bit code";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x07, true)) << "data is not code";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x0F, false)) << "code is not a stack";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x2F, true)) << "not present";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x37, false)) << "past its 6 entries";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0xFFFF, false));
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x06, false)) << "RPL 2";
    // %gs from the LDT.
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0x27), 0);
    EXPECT_EQ(fake::calls().gs_selector.back(), 0x27);
    EXPECT_EQ(v->gs_base_user, 0x34120000u);
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0x37), kEinval);
    // iret to user mode on an LDT code and stack segment.
    v->guest_table_user = v->guest_table;
    ++core::frame_table()[v->guest_table].count;
    ++core::frame_table()[v->guest_table].type_count;
    auto iret = [&](uint64_t cs, uint64_t ss) { return iret_to(d, 0x401000, cs, ss); };
    core::Regs r = iret(0x0F, 0x07);
    EXPECT_EQ(r.cs, 0x0Fu);
    EXPECT_EQ(r.ss, 0x07u);
    EXPECT_FALSE(v->kernel_mode);
    core::toggle_guest_mode(*v);
    // Past the LDT: the failsafe callback, never the CPU.
    v->failsafe_callback = 0x400600;
    v->kernel_sp = kScratch + 0x1F00;
    r = iret(0x0F, 0x37);
    EXPECT_EQ(r.rip, 0x400600u);
    EXPECT_TRUE(v->kernel_mode);
    // Once the LDT is gone its selectors are refused too.
    ASSERT_EQ(set_ldt(0, 0), 0);
    r = iret(0x0F, 0x07);
    EXPECT_EQ(r.rip, 0x400600u);
    EXPECT_EQ(fake::log().find("crashed"), std::string::npos) << fake::log();
}

TEST_F(Ldt, FramesGoBackWithTheDomain) {
    core::Mfn m = page(kLdtVa, {kData});
    ASSERT_EQ(set_ldt(kLdtVa, 1), 0);
    uint64_t before = free_frames();
    destroy(d);
    EXPECT_GT(free_frames(), before);
    EXPECT_EQ(fi(m).owner, core::kOwnerNone);
    EXPECT_EQ(fi(m).count, 0u);
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
}

// ---- callbacks -------------------------------------------------------------------

class Callbacks : public Issue11 {
protected:
    int64_t reg(uint16_t type, uint64_t address, uint16_t flags = 0) {
        abi::CallbackRegister cb{type, flags, address};
        put(d, kScratch, cb);
        return hc(d, Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), kScratch);
    }
    int64_t unreg(uint16_t type) {
        abi::CallbackUnregister cb{type, 0};
        put(d, kScratch, cb);
        return hc(d, Hypercall::callback_op, uint64_t(abi::CallbackOp::unregister), kScratch);
    }
    // A user-mode vCPU about to enter its kernel: user tables, a kernel stack.
    core::Regs user_regs(uint64_t cs, uint64_t rip) {
        v->guest_table_user = v->guest_table;
        ++core::frame_table()[v->guest_table].count;
        ++core::frame_table()[v->guest_table].type_count;
        v->kernel_sp = kScratch + 0x2000;
        v->kernel_mode = false;
        core::Regs r = v->regs;
        r.cs = cs;
        r.ss = 0xe02b;
        r.rip = r.rcx = rip;
        r.rflags = r.r11 = 0x202 | 0x400;   // IF, DF
        r.rsp = 0x5000;
        r.rax = 0x1234;
        v->info->evtchn_upcall_mask = 0;
        as(d);
        return r;
    }
    std::vector<uint64_t> frame(const core::Regs& r, unsigned n) {
        std::vector<uint64_t> f(n);
        as(d);
        EXPECT_TRUE(platform::copy_from_guest(f.data(), r.rsp, n * 8));
        return f;
    }
    static constexpr uint16_t kEvent = 0, kSyscall64 = 2, kNmi = 4, kSysenter = 5, kSyscall32 = 7;
};

TEST_F(Callbacks, RegistersTheTypesXenHasWithGuestAddresses) {
    EXPECT_EQ(reg(kSyscall32, 0x400800, abi::kCallbackFlagMaskEvents), 0);
    EXPECT_EQ(v->syscall32_callback, 0x400800u);
    EXPECT_TRUE(v->syscall32_masks_events);
    EXPECT_EQ(reg(kSysenter, 0x400880), 0);
    EXPECT_EQ(v->sysenter_callback, 0x400880u);
    EXPECT_FALSE(v->sysenter_masks_events);
    EXPECT_EQ(reg(kNmi, 0x400900), 0);
    EXPECT_EQ(v->traps[2].address, 0x400900u) << "kept as trap 2, as Xen";
    EXPECT_TRUE(v->traps[2].mask_events);
    EXPECT_EQ(reg(kSyscall32, 0xFFFFFFFF80001000ull), 0) << "the upper guest half";
    for (uint16_t t : {kEvent, kSyscall64, kNmi, kSysenter, kSyscall32})
        for (uint64_t bad : {0xFFFF830000000000ull, 0xFFFF800000000000ull, 0xFFFF82D080001000ull,
                             0x0000800000000000ull, 0x8000000000000000ull}) {
            EXPECT_EQ(reg(t, bad), kEinval) << t << " " << std::hex << bad;
        }
    EXPECT_EQ(v->syscall32_callback, 0xFFFFFFFF80001000ull) << "unchanged by a refusal";
    EXPECT_EQ(v->traps[2].address, 0x400900u);
    for (uint16_t t : {uint16_t(3), uint16_t(6), uint16_t(8), uint16_t(0xFFFF)})
        EXPECT_EQ(reg(t, 0x400000), kEnosys) << t;
    // Unregistering: only the NMI callback (Xen).
    EXPECT_EQ(unreg(kNmi), 0);
    EXPECT_EQ(v->traps[2].address, 0u);
    EXPECT_EQ(unreg(kSyscall32), kEinval);
    EXPECT_EQ(unreg(kSysenter), kEinval);
    EXPECT_EQ(unreg(kEvent), kEinval);
    EXPECT_EQ(unreg(9), kEnosys);
    EXPECT_EQ(reg(kSyscall32, 0), 0) << "0 drops it";
    EXPECT_EQ(v->syscall32_callback, 0u);
    EXPECT_EQ(hc(d, Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), 0xFFFF830000000000ull), kEfault);
}

TEST_F(Callbacks, ACompatSyscallBouncesToSyscall32) {
    ASSERT_EQ(reg(kSyscall32, 0x400800, abi::kCallbackFlagMaskEvents), 0);
    core::Regs r = user_regs(0xe023, 0x401234);
    core::guest_compat_syscall(*v, r);
    EXPECT_EQ(r.rip, 0x400800u);
    EXPECT_TRUE(v->kernel_mode);
    EXPECT_EQ(r.cs, 0xe033u);
    EXPECT_FALSE(r.rflags & 0x400) << "DF cleared";
    EXPECT_EQ(r.rax, 0x1234u) << "registers as they were";
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1) << "registered with CALLBACKF_mask_events";
    auto f = frame(r, 7);
    EXPECT_EQ(f[0], 0x401234u) << "rcx";
    EXPECT_EQ(f[2], 0x401234u) << "rip";
    EXPECT_EQ(f[3] & 0xFFFF, 0xe023u) << "cs: 32-bit user";
    EXPECT_TRUE(f[4] & 0x400) << "the user's DF in the frame";
    EXPECT_EQ(f[5], 0x5000u);
    EXPECT_EQ(f[6], 0xe02bu);
    EXPECT_LE(r.rsp + 56, kScratch + 0x2000) << "on the kernel stack";
    // Without the mask flag, events stay as they were.
    ASSERT_EQ(reg(kSyscall32, 0x400800), 0);
    r = user_regs(0xe023, 0x401234);
    core::guest_compat_syscall(*v, r);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 0);
    // From guest kernel mode too (Xen), on its own stack.
    v->kernel_mode = true;
    r.rsp = kScratch + 0x1000;
    r.cs = 0xe023;
    r.rip = 0x401300;
    core::guest_compat_syscall(*v, r);
    EXPECT_EQ(r.rip, 0x400800u);
    EXPECT_LT(r.rsp, kScratch + 0x1000);
}

TEST_F(Callbacks, ACompatSyscallWithoutACallbackIsUndefined) {
    core::Regs r = user_regs(0xe023, 0x401234);
    v->traps[6] = core::TrapHandler{0x400500, 0, false};
    core::guest_compat_syscall(*v, r);
    EXPECT_EQ(r.rip, 0x400500u) << "#UD";
    auto f = frame(r, 7);
    EXPECT_EQ(f[2], 0x401232u) << "at the syscall instruction";
    EXPECT_EQ(d->state, core::DomainState::running);
    // No #UD handler either: only then is it crashed.
    r = user_regs(0xe023, 0x401234);
    v->traps[6] = core::TrapHandler{};
    core::guest_compat_syscall(*v, r);
    EXPECT_NE(d->state, core::DomainState::running);
    EXPECT_NE(fake::log().find("no syscall32 callback"), std::string::npos) << fake::log();
}

TEST_F(Callbacks, SysenterBouncesToItsCallbackAsXenDoes) {
    uint64_t code = kScratch + 0x3000;
    const uint8_t sysenter[] = {0x0F, 0x34};
    core::Regs r = user_regs(0xe023, code);
    ASSERT_TRUE(platform::copy_to_guest(code, sysenter, 2));
    v->traps[13] = core::TrapHandler{0x400300, 0, false};
    // No callback: the #GP(0) the CPU raised is the guest's.
    core::guest_exception(*v, r, 13, 0, 0);
    EXPECT_EQ(r.rip, 0x400300u);
    EXPECT_EQ(frame(r, 8)[3], code) << "error code, then the rip of the sysenter";
    // With one: Xen's frame, rip and rsp 0, the null ring-3 CS.
    ASSERT_EQ(reg(kSysenter, 0x400880, abi::kCallbackFlagMaskEvents), 0);
    r = user_regs(0xe023, code);
    core::guest_exception(*v, r, 13, 0, 0);
    EXPECT_EQ(r.rip, 0x400880u);
    EXPECT_TRUE(v->kernel_mode);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1);
    auto f = frame(r, 7);
    EXPECT_EQ(f[2], 0u);
    EXPECT_EQ(f[3] & 0xFFFF, 3u);
    EXPECT_EQ(f[5], 0u);
    EXPECT_EQ(f[6], 0xe02bu);
    // From guest kernel mode: delivered as the #GP it is.
    r = user_regs(0xe023, code);
    v->kernel_mode = true;
    r.rsp = kScratch + 0x1000;
    core::guest_exception(*v, r, 13, 0, 0);
    EXPECT_EQ(r.rip, 0x400300u);
    EXPECT_EQ(d->state, core::DomainState::running);
}

}  // namespace
