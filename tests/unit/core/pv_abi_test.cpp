// The rest of the PV ABI a real guest kernel (Linux) uses, each with the
// attack it must stand up to: vcpu_op (vcpu_info and runstate areas, timers),
// xen_version, vm_assist, memory_map, IPIs and VIRQs, the guest's own GDT
// (set_gdt, update_descriptor, iret and %gs with its selectors, the failsafe
// callback), and writable page tables (ptwr).

#include <gtest/gtest.h>

#include <vector>

#include <abi/elfnote.hpp>
#include <core/descriptors.hpp>
#include <core/sched.hpp>
#include <core/vcpu.hpp>
#include <core/traps.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;
namespace pte = core::pte;

constexpr int64_t kEinval = -22, kEnoent = -2, kEperm = -1, kEtime = -62;

class PvAbi : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        d = build("guest");
        other = build("other");
        ASSERT_TRUE(d && other);
        v = &d->vcpu[0];
    }
    template <typename T>
    int64_t vcpu_op(abi::VcpuOp op, const T& arg, uint64_t id = 0) {
        put(d, kScratch, arg);
        return hc(d, Hypercall::vcpu_op, uint64_t(op), id, kScratch);
    }
    int64_t vcpu_op0(abi::VcpuOp op, uint64_t id = 0) { return hc(d, Hypercall::vcpu_op, uint64_t(op), id, 0); }

    core::Domain* d = nullptr;
    core::Domain* other = nullptr;
    core::Vcpu* v = nullptr;
};

// ---- xen_version, vm_assist, memory_map ----------------------------------------

TEST_F(PvAbi, XenVersionFeaturesAndParameters) {
    abi::XenFeatureInfo fi{0, 0};
    put(d, kScratch, fi);
    ASSERT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::get_features), kScratch), 0);
    uint32_t f = get<abi::XenFeatureInfo>(d, kScratch).submap;
    for (auto want : {abi::XenFeature::mmu_pt_update_preserve_ad, abi::XenFeature::gnttab_map_avail_bits})
        EXPECT_TRUE(f & abi::xen_feature_bit(want)) << unsigned(want);
    // Page and descriptor tables must stay write-protected (Xen reports
    // writable_page_tables to translated guests only).
    for (auto never : {abi::XenFeature::writable_page_tables, abi::XenFeature::auto_translated_physmap,
                       abi::XenFeature::supervisor_mode_kernel, abi::XenFeature::dom0,
                       abi::XenFeature::writable_descriptor_tables, abi::XenFeature::pae_pgdir_above_4gb})
        EXPECT_FALSE(f & abi::xen_feature_bit(never)) << unsigned(never);
    // pae_pgdir_above_4gb with vm_assist pae_extended_cr3, as Xen.
    ASSERT_EQ(hc(d, Hypercall::vm_assist, uint64_t(abi::VmAssistCmd::enable),
                 uint64_t(abi::VmAssistType::pae_extended_cr3)), 0);
    put(d, kScratch, fi);
    ASSERT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::get_features), kScratch), 0);
    EXPECT_TRUE(get<abi::XenFeatureInfo>(d, kScratch).submap &
                abi::xen_feature_bit(abi::XenFeature::pae_pgdir_above_4gb));
    fi.submap_idx = 1;
    put(d, kScratch, fi);
    ASSERT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::get_features), kScratch), 0);
    EXPECT_EQ(get<abi::XenFeatureInfo>(d, kScratch).submap, 0u);
    ASSERT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::platform_parameters), kScratch), 0);
    EXPECT_EQ(get<uint64_t>(d, kScratch), 0xFFFF800000000000ull);
    EXPECT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::commandline), kScratch), kEperm);
    EXPECT_EQ(hc(d, Hypercall::xen_version, uint64_t(abi::XenVersion::compile_info), 0xFFFF830000000000ull), -14);
}

TEST_F(PvAbi, VmAssist) {
    auto va = [&](abi::VmAssistCmd c, uint64_t t) { return hc(d, Hypercall::vm_assist, uint64_t(c), t); };
    EXPECT_EQ(va(abi::VmAssistCmd::enable, uint64_t(abi::VmAssistType::writable_pagetables)), 0);
    EXPECT_EQ(va(abi::VmAssistCmd::enable, uint64_t(abi::VmAssistType::runstate_update_flag)), 0);
    EXPECT_EQ(d->vm_assist, (1u << 2) | (1u << 5));
    EXPECT_EQ(va(abi::VmAssistCmd::disable, uint64_t(abi::VmAssistType::writable_pagetables)), 0);
    EXPECT_EQ(d->vm_assist, 1u << 5);
    EXPECT_EQ(va(abi::VmAssistCmd::enable, uint64_t(abi::VmAssistType::four_gb_segments)), kEinval) << "32-bit only";
    EXPECT_EQ(va(abi::VmAssistCmd::enable, 64), kEinval);
    EXPECT_EQ(va(abi::VmAssistCmd::enable, ~0ull), kEinval);
    EXPECT_EQ(va(abi::VmAssistCmd(7), 2), -38);
}

TEST_F(PvAbi, MemoryMapIsItsOwnRam) {
    abi::XenMemoryMap mm{4, kScratch + 64};
    put(d, kScratch, mm);
    ASSERT_EQ(hc(d, Hypercall::memory_op, uint64_t(abi::MemoryOp::memory_map), kScratch), 0);
    EXPECT_EQ(get<abi::XenMemoryMap>(d, kScratch).nr_entries, 1u);
    EXPECT_EQ(get<uint64_t>(d, kScratch + 64), 0u);
    EXPECT_EQ(get<uint64_t>(d, kScratch + 72), d->max_pages << 12);
    EXPECT_EQ(get<uint32_t>(d, kScratch + 80), 1u) << "E820 RAM";
    mm.nr_entries = 0;
    put(d, kScratch, mm);
    EXPECT_EQ(hc(d, Hypercall::memory_op, uint64_t(abi::MemoryOp::memory_map), kScratch), kEinval);
}

// ---- vcpu_op --------------------------------------------------------------------

TEST_F(PvAbi, VcpuUpAndOthersThatDoNotExist) {
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::is_up), 1);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::is_up, 1), kEnoent);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::up, 1), kEnoent);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::is_up, ~0ull), kEnoent);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::down), kEinval);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp(99)), -38);
}

TEST_F(PvAbi, SingleshotAndPeriodicTimers) {
    uint64_t now = platform::now_ns();
    EXPECT_EQ(vcpu_op(abi::VcpuOp::set_singleshot_timer,
                      abi::VcpuSetSingleshotTimer{now - 1, abi::kVcpuSingleshotFuture}),
              kEtime) << "in the past, and the guest asked to be told";
    EXPECT_EQ(v->timer_deadline, 0u);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::set_singleshot_timer, abi::VcpuSetSingleshotTimer{now + 5'000'000, 1}), 0);
    EXPECT_EQ(v->timer_deadline, now + 5'000'000);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::stop_singleshot_timer), 0);
    EXPECT_EQ(v->timer_deadline, 0u);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::set_singleshot_timer, abi::VcpuSetSingleshotTimer{1, 2}), kEinval) << "bad flags";
    EXPECT_EQ(vcpu_op(abi::VcpuOp::set_periodic_timer, abi::VcpuSetPeriodicTimer{999'999}), kEinval);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::set_periodic_timer, abi::VcpuSetPeriodicTimer{10'000'000}), 0);
    EXPECT_EQ(v->periodic_period, 10'000'000u);
    EXPECT_EQ(vcpu_op0(abi::VcpuOp::stop_periodic_timer), 0);
    EXPECT_EQ(v->periodic_period, 0u);
}

TEST_F(PvAbi, VcpuInfoMovesIntoAFrameOfItsOwn) {
    core::Mfn page = mfn_at(d, kPlay);
    uint64_t free_before = free_frames();
    v->info->evtchn_upcall_mask = 1;
    // Refused: crossing the page, misaligned, another domain's frame, beyond RAM.
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{page, 4090, 0}), kEinval);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{page, 3, 0}), kEinval);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{mfn_at(other, kPlay), 0, 0}), kEinval);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{fake::nframes() + 3, 0, 0}), kEinval);
    // One of its own page tables: never writable.
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{pte_ma(d, kPlay) >> 12, 0, 0}), kEinval);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{page, 256, 0}), 0);
    EXPECT_EQ(v->info, reinterpret_cast<abi::VcpuInfo*>(core::frame_va<uint8_t>(page) + 256));
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1) << "carried over";
    EXPECT_EQ(v->info->evtchn_pending_sel, ~0ull) << "rescan everything";
    EXPECT_EQ(core::frame_table()[page].type, core::PageType::writable);
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_vcpu_info, abi::VcpuRegisterVcpuInfo{page, 512, 0}), kEinval) << "once";
    // It cannot become a page table while the hypervisor writes it.
    abi::MmuextOp pin{};
    pin.cmd = uint32_t(abi::MmuextCmd::pin_l1_table);
    pin.arg1.mfn = page;
    put(d, kScratch, pin);
    EXPECT_LT(hc(d, Hypercall::mmuext_op, kScratch, 1, 0, abi::kDomidSelf), 0);
    // Events now land there.
    core::evtchn_set_pending(*d, 5);
    EXPECT_EQ(v->info->evtchn_upcall_pending, 1);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(d);
    EXPECT_EQ(owned_by(d->id), 0u);
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
    (void)free_before;
}

TEST_F(PvAbi, RunstateIsWrittenWhereTheGuestAsks) {
    abi::VcpuRegisterArea a{kScratch + 512};
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_runstate_memory_area, a), 0);
    core::vcpu_switched(nullptr, *v);
    auto rs = get<abi::VcpuRunstateInfo>(d, kScratch + 512);
    EXPECT_EQ(rs.state, int32_t(abi::RunstateState::running));
    EXPECT_GT(rs.state_entry_time, 0u);
    // The hypervisor's range, a non-canonical address, an area running from
    // the top of the lower half into the hole: -EFAULT (Xen's
    // guest_handle_okay), the area registered before kept.
    for (uint64_t bad : {0xFFFF830000000000ull, 0xFFFF87FFFFFFFFF0ull, 0x0000800000000000ull,
                         0x00007FFFFFFFFFF0ull, ~0ull}) {
        a.addr = bad;
        EXPECT_EQ(vcpu_op(abi::VcpuOp::register_runstate_memory_area, a), -int64_t(abi::Errno::efault)) << bad;
        EXPECT_EQ(v->runstate_va, kScratch + 512);
    }
    // A guest address it cannot write (unmapped): taken, and simply not written.
    a.addr = 0x0000700000000000ull;
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_runstate_memory_area, a), 0);
    core::vcpu_switched(nullptr, *v);
    EXPECT_FALSE(core::domain_at(d->id)->state != core::DomainState::running);
    // 0: none.
    a.addr = 0;
    EXPECT_EQ(vcpu_op(abi::VcpuOp::register_runstate_memory_area, a), 0);
    EXPECT_EQ(v->runstate_va, 0u);
}

// A domain made late in the machine's life has run for no time at all: its
// runstate starts offline at its creation, and counts running only from its
// first schedule (a restarted service once showed the machine's uptime as
// its CPU time).
TEST_F(PvAbi, RunstateOfALateDomainStartsAtItsCreation) {
    fake::calls().now_ns = 50'000'000'000ull;   // 50 s after boot
    core::Domain* late = core::domain_alloc("late", 16);
    ASSERT_NE(late, nullptr);
    core::Vcpu& lv = late->vcpu[0];
    EXPECT_EQ(lv.runstate.state, int32_t(abi::RunstateState::offline));
    // (The fake clock moves on a little at each reading.)
    EXPECT_GE(lv.runstate.state_entry_time, 50'000'000'000ull);
    EXPECT_LT(lv.runstate.state_entry_time, 50'000'100'000ull);
    fake::calls().now_ns += 2'000'000;           // 2 ms later it runs ...
    core::vcpu_switched(nullptr, lv);
    fake::calls().now_ns += 3'000'000;           // ... for 3 ms
    core::runstate_change(lv, abi::RunstateState::blocked, fake::calls().now_ns);
    EXPECT_NEAR(double(lv.runstate.time[int(abi::RunstateState::running)]), 3e6, 1e5);
    EXPECT_NEAR(double(lv.runstate.time[int(abi::RunstateState::offline)]), 2e6, 1e5);
    destroy(late);
}

// ---- event channels: IPIs and VIRQs ---------------------------------------------

TEST_F(PvAbi, IpisAndVirqs) {
    abi::EvtchnBindIpi ipi{0, 0};
    put(d, kScratch, ipi);
    ASSERT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_ipi), kScratch), 0);
    uint32_t port = get<abi::EvtchnBindIpi>(d, kScratch).port;
    ASSERT_GT(port, 0u);
    d->shared_info->evtchn_pending[port / 64] &= ~(1ull << (port % 64));
    abi::EvtchnSend s{port};
    put(d, kScratch, s);
    EXPECT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::send), kScratch), 0);
    EXPECT_TRUE(d->shared_info->evtchn_pending[port / 64] & (1ull << (port % 64)));
    ipi.vcpu = 1;
    put(d, kScratch, ipi);
    EXPECT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_ipi), kScratch), kEnoent);
    auto virq = [&](uint32_t n, uint32_t vcpu) {
        abi::EvtchnBindVirq b{n, vcpu, 0};
        put(d, kScratch, b);
        return hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_virq), kScratch);
    };
    EXPECT_EQ(virq(uint32_t(abi::Virq::debug), 0), 0);
    EXPECT_EQ(virq(uint32_t(abi::Virq::debug), 0), -17) << "once";
    EXPECT_EQ(virq(uint32_t(abi::Virq::console), 1), kEinval) << "a global VIRQ on vCPU 0 only";
    EXPECT_EQ(virq(uint32_t(abi::Virq::timer), 1), kEnoent) << "there is no vCPU 1";
    EXPECT_EQ(virq(abi::kNrVirqs, 0), kEinval);
    abi::EvtchnBindVcpu bv{port, 0};
    put(d, kScratch, bv);
    EXPECT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_vcpu), kScratch), kEinval)
        << "an IPI stays on its vCPU";
    abi::EvtchnStatus st{};
    st.dom = abi::kDomidSelf;
    st.port = port;
    put(d, kScratch, st);
    ASSERT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::status), kScratch), 0);
    EXPECT_EQ(get<abi::EvtchnStatus>(d, kScratch).status, uint32_t(abi::EvtchnStat::ipi));
}

// ---- the guest's GDT --------------------------------------------------------------

// Descriptors as Linux's GDT holds them.
constexpr uint64_t kUser32Cs = 0x00CFFB000000FFFFull;   // DPL 3, 32-bit code
constexpr uint64_t kUserDs = 0x00CFF3000000FFFFull;     // DPL 3, data
constexpr uint64_t kUserCs = 0x00AFFB000000FFFFull;     // DPL 3, 64-bit code
constexpr uint64_t kKernelCs = 0x00AF9B000000FFFFull;   // DPL 0, 64-bit code
constexpr uint64_t kTss = 0x00008B000000FFFFull;        // a 64-bit TSS
constexpr uint64_t kLdt = 0x000082000000FFFFull;        // an LDT descriptor

class Gdt : public PvAbi {
protected:
    void SetUp() override {
        PvAbi::SetUp();
        gdt = spare_frame();
        uint64_t* g = core::frame_va<uint64_t>(gdt);
        g[2] = kKernelCs;
        g[4] = kUser32Cs;
        g[5] = kUserDs;
        g[6] = kUserCs;
    }
    // A frame of its own that nothing maps: one of its pages, unmapped.
    core::Mfn spare_frame() {
        uint64_t va = kPlay + 0x10000;
        core::Mfn m = mfn_at(d, va);
        EXPECT_EQ(hc(d, Hypercall::update_va_mapping, va, 0, 0), 0);
        EXPECT_EQ(core::frame_table()[m].count, 0u);
        return m;
    }
    int64_t set_gdt(std::vector<core::Mfn> frames, uint64_t entries) {
        as(d);
        if (!frames.empty()) EXPECT_TRUE(platform::copy_to_guest(kScratch, frames.data(), frames.size() * 8));
        return hc(d, Hypercall::set_gdt, kScratch, entries);
    }
    core::Mfn gdt = 0;
};

TEST_F(Gdt, TakesTheFramesAndFixesUpDescriptors) {
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    EXPECT_EQ(v->gdt_ents, 16u);
    EXPECT_EQ(v->gdt_frames[0], gdt);
    EXPECT_EQ(core::frame_table()[gdt].type, core::PageType::seg_desc);
    uint64_t* g = core::frame_va<uint64_t>(gdt);
    EXPECT_EQ((g[2] >> 45) & 3, 3u) << "a DPL 0 code segment becomes DPL 3";
    EXPECT_EQ(g[6], kUserCs);
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x33, true));
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x23, true)) << "32-bit compatibility code";
    EXPECT_TRUE(core::guest_selector_ok(*v, 0x2b, false));
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x2b, true)) << "data is not code";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x33, false)) << "code is not a stack";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x83, true)) << "beyond its 16 entries";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x3b, true)) << "not present";
    EXPECT_FALSE(core::guest_selector_ok(*v, 0x37, true)) << "an LDT selector: no LDT";
    // It is a descriptor page now: never writable.
    EXPECT_LT(hc(d, Hypercall::update_va_mapping, kPlay, pte::make(gdt, pte::kPresent | pte::kWritable), 0), 0);
    EXPECT_EQ(hc(d, Hypercall::update_va_mapping, kPlay, pte::make(gdt, pte::kPresent), 0), 0) << "read-only is fine";
    // Released when replaced.
    ASSERT_EQ(set_gdt({}, 0), 0);
    EXPECT_EQ(core::frame_table()[gdt].type_count, 0u);
}

TEST_F(Gdt, RefusesSystemDescriptorsAndBadGates) {
    uint64_t* g = core::frame_va<uint64_t>(gdt);
    for (uint64_t bad : {uint64_t(kTss), uint64_t(kLdt), uint64_t(0x00008E0000100000ull) /* interrupt gate */,
                         uint64_t(0x00008F0000100000ull) /* trap gate */}) {
        g[8] = bad;
        EXPECT_EQ(set_gdt({gdt}, 16), kEinval) << std::hex << bad;
        EXPECT_EQ(v->gdt_ents, 0u);
        EXPECT_EQ(core::frame_table()[gdt].type_count, 0u);
        EXPECT_FALSE(core::frame_table()[gdt].flags & core::kFrameValidated);
    }
    // A call gate to a hypervisor selector: refused; to a guest one: DPL 0.
    g[8] = 0x0000EC00E0080000ull;   // gate, DPL 3, target 0xe008 (the hypervisor's CS)
    g[9] = 0;
    EXPECT_EQ(set_gdt({gdt}, 16), kEinval);
    g[8] = 0x0000EC0000330000ull;   // gate, DPL 3, target 0x33
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    EXPECT_EQ((g[8] >> 45) & 3, 0u) << "a gate is never usable directly";
    EXPECT_EQ((g[8] >> 16) & 3, 3u) << "its DPL kept in the selector's RPL";
    // Too many entries; a frame that is not its own; one mapped writable.
    EXPECT_EQ(set_gdt({gdt}, core::kGdtMaxEntries + 1), kEinval);
    EXPECT_EQ(set_gdt({mfn_at(other, kPlay)}, 16), kEinval);
    EXPECT_EQ(set_gdt({mfn_at(d, kPlay)}, 16), kEinval) << "mapped writable";
    EXPECT_EQ(set_gdt({0}, 16), kEinval);
}

TEST_F(Gdt, UpdateDescriptorChecksEveryWrite) {
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    size_t loads = fake::calls().gdt_updates.size();
    uint64_t ma = (gdt << 12) + 7 * 8;
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kUserDs), 0);
    EXPECT_EQ(core::frame_va<uint64_t>(gdt)[7], kUserDs);
    EXPECT_EQ(fake::calls().gdt_updates.size(), loads + 1) << "the CPU's copy follows";
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kTss), kEinval);
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma + 4, kUserDs), kEinval) << "misaligned";
    EXPECT_EQ(core::frame_va<uint64_t>(gdt)[7], kUserDs) << "unchanged";
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, mfn_at(other, kPlay) << 12, kUserDs), kEinval);
    // A DPL 0 code segment goes in as DPL 3.
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, ma, kKernelCs), 0);
    EXPECT_EQ((core::frame_va<uint64_t>(gdt)[7] >> 45) & 3, 3u);
    // Ordinary memory takes descriptors too (Xen: it must be writable then).
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, mfn_at(d, kPlay) << 12, kUserDs), 0);
    // A page table does not.
    EXPECT_EQ(hc(d, Hypercall::update_descriptor, pte_ma(d, kPlay) & ~4095ull, kUserDs), kEinval);
}

TEST_F(Gdt, IretWithItsSelectorsAndTheFailsafeCallback) {
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    v->guest_table_user = v->guest_table;   // a user address space for the test
    core::Mfn ut = v->guest_table;
    ++core::frame_table()[ut].count;
    ++core::frame_table()[ut].type_count;
    auto iret = [&](uint64_t cs, uint64_t ss, uint64_t rip) { return iret_to(d, rip, cs, ss); };
    core::Regs r = iret(0x33, 0x2b, 0x401000);
    EXPECT_EQ(r.cs, 0x33u);
    EXPECT_EQ(r.ss, 0x2bu);
    EXPECT_EQ(r.rip, 0x401000u);
    EXPECT_FALSE(v->kernel_mode) << "to user mode";
    core::toggle_guest_mode(*v);
    // A bad selector: the failsafe callback gets the frame (Xen's layout),
    // on the guest kernel's stack (it was going to user mode).
    v->failsafe_callback = 0x400600;
    v->kernel_sp = kScratch + 0x1F00;
    r = iret(0x43 /* not present */, 0x2b, 0x401000);
    EXPECT_EQ(r.rip, 0x400600u);
    EXPECT_TRUE(v->kernel_mode);
    EXPECT_EQ(r.cs, 0xe033u);
    uint64_t frame[11];
    as(d);
    ASSERT_TRUE(platform::copy_from_guest(frame, r.rsp, sizeof frame));
    EXPECT_EQ(frame[6], 0x401000u) << "rip after rcx, r11 and the four data selectors";
    EXPECT_EQ(frame[7] & 0xFFFF, 0x43u);
    EXPECT_EQ(frame[10], 0x2bu);
    EXPECT_FALSE(fake::log().find("crashed") != std::string::npos);
    // Without a failsafe callback the domain is crashed.
    v->failsafe_callback = 0;
    iret(0x33, 0x33 /* code as a stack */, 0x401000);
    EXPECT_NE(fake::log().find("no failsafe callback"), std::string::npos) << fake::log();
}

TEST_F(Gdt, GsSelectorFromItsGdt) {
    uint64_t* g = core::frame_va<uint64_t>(gdt);
    g[9] = 0x00CFF3120000FFFFull | (0x34ull << 56);   // data, base 0x34120000
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0x4b), 0);
    EXPECT_EQ(fake::calls().gs_selector.back(), 0x4b);
    EXPECT_EQ(v->gs_base_user, 0x34120000u);
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0x33), kEinval) << "code";
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0xe010), kEinval)
        << "the hypervisor's";
    EXPECT_EQ(hc(d, Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0), 0);
}

TEST_F(Gdt, FramesGoBackWithTheDomain) {
    ASSERT_EQ(set_gdt({gdt}, 16), 0);
    uint64_t before = free_frames();
    destroy(d);
    EXPECT_GT(free_frames(), before);
    EXPECT_EQ(core::frame_table()[gdt].owner, core::kOwnerNone);
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
}

// ---- writable page tables ----------------------------------------------------------

class Ptwr : public PvAbi {
protected:
    void SetUp() override {
        PvAbi::SetUp();
        // Its L1 for kPlay, mapped read-only at kWin (as Linux maps its page tables).
        l1 = pte_ma(d, kPlay) >> 12;
        ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kWin, pte::make(l1, pte::kPresent | pte::kAccessed), 0), 0);
        v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
        code = kScratch + 0x3000;
    }
    // Runs `bytes` as a faulting write to the L1 entry of `va` (through kWin).
    core::Regs write(std::vector<uint8_t> bytes, uint64_t va, core::Regs r) {
        as(d);
        EXPECT_TRUE(platform::copy_to_guest(code, bytes.data(), bytes.size()));
        r.rip = code;
        r.rsp = kScratch + 0x800;
        uint64_t target = kWin + pte::index(va, 1) * 8;
        r.rdi = target;
        core::guest_exception(*v, r, 14, 0x7, target);
        return r;
    }
    bool emulated(const core::Regs& r, size_t len) const { return r.rip == code + len; }

    static constexpr uint64_t kWin = kPlay + 0x80000;
    static constexpr uint64_t kPfHandler = 0x400700;
    core::Mfn l1 = 0;
    uint64_t code = 0;
};

TEST_F(Ptwr, AMovOfAGoodEntryIsApplied) {
    uint64_t va = kPlay + 0x5000;
    core::Mfn frame = mfn_at(d, kPlay + 0x6000);
    core::Regs r = v->regs;
    r.rax = pte::make(frame, pte::kPresent | pte::kWritable | pte::kAccessed | pte::kDirty);
    r = write({0x48, 0x89, 0x07}, va, r);   // mov %rax, (%rdi)
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(mfn_at(d, va), frame);
    EXPECT_EQ(mm_invariant_violations(), "");
}

TEST_F(Ptwr, WhatMmuUpdateRefusesIsRefused) {
    uint64_t va = kPlay + 0x5000;
    uint64_t before = l1e(d, va);
    for (uint64_t bad : {pte::make(mfn_at(other, kPlay), pte::kPresent),                    // another domain's
                         pte::make(l1, pte::kPresent | pte::kWritable),                     // its own L1, writable
                         pte::make(mfn_at(d, kPlay), pte::kPresent | pte::kPse),            // PAT/superpage bit
                         pte::make(fake::nframes() + 9, pte::kPresent),                     // beyond RAM
                         pte::make(mfn_at(d, kPlay), pte::kPresent) | core::kGrantPte}) {   // the grant bit
        core::Regs r = v->regs;
        r.rax = bad;
        r = write({0x48, 0x89, 0x07}, va, r);
        EXPECT_EQ(r.rip, kPfHandler) << std::hex << bad << ": the guest gets its page fault";
        EXPECT_EQ(l1e(d, va), before);
    }
    EXPECT_EQ(mm_invariant_violations(), "");
}

TEST_F(Ptwr, ExchangeCompareAndBitOps) {
    uint64_t va = kPlay + 0x5000;
    uint64_t old = l1e(d, va);
    core::Regs r = v->regs;
    r.rax = 0;
    r = write({0x48, 0x87, 0x07}, va, r);   // xchg %rax, (%rdi): clear it, get the old one
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(r.rax, old);
    EXPECT_EQ(l1e(d, va), 0u);
    // cmpxchg that fails: rax gets the current value, nothing written.
    r = v->regs;
    r.rax = 12345;
    r.rcx = old;
    r = write({0xF0, 0x48, 0x0F, 0xB1, 0x0F}, va, r);   // lock cmpxchg %rcx, (%rdi)
    EXPECT_EQ(r.rax, 0u);
    EXPECT_FALSE(r.rflags & 0x40);
    EXPECT_EQ(l1e(d, va), 0u);
    // ... and that succeeds.
    r = v->regs;
    r.rax = 0;
    r.rcx = old;
    r = write({0xF0, 0x48, 0x0F, 0xB1, 0x0F}, va, r);
    EXPECT_TRUE(r.rflags & 0x40);
    EXPECT_EQ(l1e(d, va), old | pte::kUser);
    // lock btr $5, (%rdi): the accessed bit, returned in CF.
    r = v->regs;
    r = write({0xF0, 0x48, 0x0F, 0xBA, 0x37, 0x05}, va, r);
    EXPECT_TRUE(emulated(r, 6));
    EXPECT_TRUE(r.rflags & 1);
    EXPECT_FALSE(l1e(d, va) & pte::kAccessed);
    // lock andq $~2, (%rdi): write-protect it.
    r = v->regs;
    r = write({0xF0, 0x48, 0x83, 0x27, 0xFD}, va, r);
    EXPECT_FALSE(l1e(d, va) & pte::kWritable);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// What Linux's fork does to write-protect a PTE on a uniprocessor (its lock
// prefixes patched into ds): `ds andb $0xfd, (%r12)`, a byte of the entry.
TEST_F(Ptwr, ByteWritesCombineWithTheEntry) {
    uint64_t va = kPlay + 0x5000;
    uint64_t before = l1e(d, va);
    ASSERT_TRUE(before & pte::kWritable);
    core::Regs r = v->regs;
    as(d);
    std::vector<uint8_t> andb = {0x3E, 0x41, 0x80, 0x24, 0x24, 0xFD};
    ASSERT_TRUE(platform::copy_to_guest(code, andb.data(), andb.size()));
    r.rip = code;
    r.rsp = kScratch + 0x800;
    r.r12 = kWin + pte::index(va, 1) * 8;
    core::guest_exception(*v, r, 14, 0x7, r.r12);
    EXPECT_EQ(r.rip, code + 6);
    EXPECT_EQ(l1e(d, va), before & ~pte::kWritable);
    // movw %ax, (%rdi): the low 16 bits (flags and the frame's low bits),
    // here the flags back as they were.
    r = v->regs;
    r.rax = before & 0xFFFF;
    r = write({0x66, 0x89, 0x07}, va, r);
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(l1e(d, va), before);
    EXPECT_EQ(mm_invariant_violations(), "");
}

TEST_F(Ptwr, OnlyItsOwnL1sInUse) {
    // Its L2 mapped read-only: a write there is not emulated (upper levels
    // change through mmu_update only).
    core::Mfn l2 = core::pte::mfn(fake::table(v->guest_table)[pte::index(kPlay, 4)]);
    l2 = core::pte::mfn(fake::table(l2)[pte::index(kPlay, 3)]);
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kWin + 0x1000, pte::make(l2, pte::kPresent), 0), 0);
    core::Regs r = v->regs;
    r.rax = 0;
    as(d);
    std::vector<uint8_t> mov = {0x48, 0x89, 0x07};
    ASSERT_TRUE(platform::copy_to_guest(code, mov.data(), mov.size()));
    r.rip = code;
    r.rsp = kScratch + 0x800;
    r.rdi = kWin + 0x1000;
    core::guest_exception(*v, r, 14, 0x7, kWin + 0x1000);
    EXPECT_EQ(r.rip, kPfHandler);
    // A write to an ordinary read-only page: the guest's own fault.
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kWin + 0x2000, pte::make(mfn_at(d, kPlay), pte::kPresent), 0), 0);
    r = v->regs;
    r.rip = code;
    r.rsp = kScratch + 0x800;
    r.rdi = kWin + 0x2000;
    core::guest_exception(*v, r, 14, 0x7, kWin + 0x2000);
    EXPECT_EQ(r.rip, kPfHandler);
    EXPECT_EQ(mm_invariant_violations(), "");
}

}  // namespace
