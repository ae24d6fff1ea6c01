// DMA confinement on the host (core/iommu.hpp): a driver domain's I/O page
// table on the fake machine's DMA-remapping unit, with an attacker-beside-a-
// victim for each way a frame could stay in a device's reach: a frame that
// becomes a page table, a frame given back, a grant unmapped, a domain
// destroyed, a function moved. After every test the table is checked
// against the frame table and the maptrack from scratch (iommu_check) and
// the reference counts recomputed (mm_invariant_violations).

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <vector>

#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/pci.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::GnttabOp;
using abi::Hypercall;
using St = abi::GntStatus;

constexpr int16_t st(St s) { return int16_t(s); }
constexpr uint32_t kNic = 4 << 3;    // 00:04.0
constexpr uint32_t kDisk = 5 << 3;   // 00:05.0
constexpr unsigned kNone = 0, kRo = 1, kRw = 3;

// Attaches with all the budget it needs (a physdev_op continued to the end).
long attach(core::Domain* d, uint32_t bdf) {
    core::Budget unlimited = core::Budget::unlimited();
    return core::iommu_attach(*d, bdf, unlimited);
}

std::string check() {
    const char* why = nullptr;
    return core::iommu_check(&why) ? "" : why;
}

class Iommu : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        fake::set_iommu_levels(4);
        driver = build("netback");
        victim = build("victim");
        ASSERT_TRUE(driver && victim);
        give(driver, cap::Type::grant, cap::right::map_ro | cap::right::map_rw, victim->id);
    }
    void TearDown() override {
        EXPECT_EQ(check(), "");
        EXPECT_EQ(mm_invariant_violations(), "");
    }
    uint16_t did(core::Domain* d) const { return uint16_t(d->id + 1); }
    unsigned flushes_of(core::Domain* d) const {
        unsigned n = 0;
        for (uint16_t x : fake::calls().iommu_flushes) n += x == did(d);
        return n;
    }

    core::Domain* driver = nullptr;
    core::Domain* victim = nullptr;
};

TEST(IommuAbsent, NothingIsBuiltAndThePhysinfoFlagIsOff) {
    fake::reset();
    core::Domain* d = nullptr;
    {
        auto r = core::build_pv_domain(core::BuildSpec{"drv", guest_image().data(), guest_image().size(), "", kPages});
        ASSERT_TRUE(r.ok());
        d = *r;
    }
    EXPECT_FALSE(core::iommu_enabled());
    EXPECT_EQ(attach(d, kNic), 0) << "without a unit there is nothing to attach to: not an error";
    EXPECT_EQ(d->iommu, nullptr);
    EXPECT_TRUE(fake::calls().iommu_contexts.empty());
}

TEST_F(Iommu, AttachMapsTheDomainsWritableFramesAndNothingElse) {
    ASSERT_EQ(attach(driver, kNic), 0);
    ASSERT_NE(driver->iommu, nullptr);
    ASSERT_EQ(fake::calls().iommu_contexts.size(), 1u);
    auto ctx = fake::calls().iommu_contexts[0];
    EXPECT_EQ(ctx.bdf, kNic);
    EXPECT_EQ(ctx.did, did(driver));
    EXPECT_EQ(ctx.root, driver->iommu->root);

    const core::FrameTable& ft = core::frame_table();
    unsigned mapped = 0, tables = 0;
    for (core::Mfn m = 0; m < ft.nframes(); ++m) {
        unsigned e = core::iommu_entry(*driver, m);
        bool own_writable = ft[m].owner == driver->id && ft[m].type == core::PageType::writable;
        ASSERT_EQ(e, own_writable ? kRw : kNone) << "frame " << m << " owner " << ft[m].owner << " type "
                                                 << unsigned(ft[m].type);
        mapped += e != 0;
        tables += ft[m].owner == driver->id && core::is_page_table(ft[m].type);
    }
    EXPECT_GT(mapped, 100u) << "its memory is in reach of its device";
    EXPECT_GT(tables, 0u);
    // Named: its own top-level table, the victim's scratch page, the
    // hypervisor's frame 0, the I/O table's own root.
    EXPECT_EQ(core::iommu_entry(*driver, driver->vcpu[0].guest_table), kNone);
    EXPECT_EQ(core::iommu_entry(*driver, mfn_at(victim, kScratch)), kNone);
    EXPECT_EQ(core::iommu_entry(*driver, 0), kNone);
    EXPECT_EQ(core::iommu_entry(*driver, driver->iommu->root), kNone);
    EXPECT_EQ(core::iommu_entry(*driver, mfn_at(driver, kScratch)), kRw);
}

// The attach of a big domain is one pass over the frame table: a budget at a
// time, the function attached (its DMA possible) only at the end.
TEST_F(Iommu, AttachIsPreemptibleAndAttachesOnlyWhenTheTableIsComplete) {
    unsigned restarts = 0;
    long rc;
    for (;;) {
        core::Budget small{64};
        rc = core::iommu_attach(*driver, kNic, small);
        if (rc != core::kRestart) break;
        ++restarts;
        EXPECT_TRUE(fake::calls().iommu_contexts.empty()) << "attached before its table was complete";
        ASSERT_EQ(check(), "") << "after " << restarts << " restarts";
        ASSERT_LT(restarts, 100000u);
    }
    EXPECT_EQ(rc, 0);
    EXPECT_GT(restarts, 10u) << core::frame_table().nframes() << " frames in budgets of 64";
    ASSERT_EQ(fake::calls().iommu_contexts.size(), 1u);
    EXPECT_EQ(core::iommu_entry(*driver, mfn_at(driver, kScratch)), kRw);
}

TEST_F(Iommu, AFrameBecomingAPageTableLeavesTheDeviceAndTheIotlbBeforeItIsValidated) {
    ASSERT_EQ(attach(driver, kNic), 0);
    core::Mfn frame = mfn_at(driver, kPlay);
    ASSERT_EQ(core::iommu_entry(*driver, frame), kRw);
    // The guest drops its writable mapping, then pins the frame as an L1.
    abi::MmuUpdate u{pte_ma(driver, kPlay), 0};
    put(driver, kScratch, u);
    ASSERT_EQ(hc(driver, Hypercall::mmu_update, kScratch, 1, 0, abi::kDomidSelf), 0);
    EXPECT_EQ(core::iommu_entry(*driver, frame), kRw) << "still its writable frame, mapped or not";
    unsigned before = flushes_of(driver);
    abi::MmuextOp pin{};
    pin.cmd = uint32_t(abi::MmuextCmd::pin_l1_table);
    pin.arg1.mfn = frame;
    put(driver, kScratch, pin);
    ASSERT_EQ(hc(driver, Hypercall::mmuext_op, kScratch, 1, 0, abi::kDomidSelf), 0);
    EXPECT_EQ(core::frame_table()[frame].type, core::PageType::l1);
    EXPECT_EQ(core::iommu_entry(*driver, frame), kNone) << "a page table in reach of a device";
    EXPECT_EQ(flushes_of(driver), before + 1);
    // Unpinned and mapped writable again: back in reach.
    pin.cmd = uint32_t(abi::MmuextCmd::unpin_table);
    put(driver, kScratch, pin);
    ASSERT_EQ(hc(driver, Hypercall::mmuext_op, kScratch, 1, 0, abi::kDomidSelf), 0);
    abi::MmuUpdate back{pte_ma(driver, kPlay), core::pte::make(frame, core::pte::kPresent | core::pte::kWritable |
                                                                              core::pte::kUser)};
    put(driver, kScratch, back);
    ASSERT_EQ(hc(driver, Hypercall::mmu_update, kScratch, 1, 0, abi::kDomidSelf), 0);
    EXPECT_EQ(core::iommu_entry(*driver, frame), kRw);
}

TEST_F(Iommu, AGrantIsInReachWhileMappedAndOutOfTheIotlbWhenTheUnmapReturns) {
    ASSERT_EQ(attach(driver, kDisk), 0);
    core::Mfn shared = mfn_at(victim, kPlay);
    grant(victim, 8, driver->id, shared);
    grant(victim, 9, driver->id, shared, true);
    auto rw = map(driver, victim->id, 8, kPlay);
    ASSERT_EQ(rw.status, st(St::okay));
    EXPECT_EQ(rw.dev_bus_addr, shared << 12) << "the device's address is the machine address";
    EXPECT_EQ(core::iommu_entry(*driver, shared), kRw);
    // A second, read-only mapping of the same frame: still read-write while
    // the first lives, read-only once it goes.
    auto ro = map(driver, victim->id, 9, kScratch + 0x1000, abi::kGntmapHostMap | abi::kGntmapReadonly);
    ASSERT_EQ(ro.status, st(St::okay));
    unsigned before = flushes_of(driver);
    EXPECT_EQ(unmap(driver, rw.handle, kPlay), st(St::okay));
    EXPECT_EQ(core::iommu_entry(*driver, shared), kRo);
    EXPECT_EQ(flushes_of(driver), before + 1) << "write taken away: flushed before the unmap returned";
    EXPECT_EQ(unmap(driver, ro.handle, kScratch + 0x1000), st(St::okay));
    EXPECT_EQ(core::iommu_entry(*driver, shared), kNone) << "an unmapped grant still in the device's reach";
    EXPECT_EQ(flushes_of(driver), before + 2);
    EXPECT_EQ(core::iommu_entry(*driver, mfn_at(victim, kScratch)), kNone);
}

TEST_F(Iommu, ABatchOfUnmapsCostsOneFlush) {
    ASSERT_EQ(attach(driver, kDisk), 0);
    constexpr unsigned kN = 8;
    std::array<abi::GnttabUnmapGrantRef, kN> ops{};
    for (unsigned i = 0; i < kN; ++i) {
        core::Mfn f = mfn_at(victim, kPlay + 0x1000 * (i + 1));
        grant(victim, 10 + i, driver->id, f);
        auto op = map(driver, victim->id, 10 + i, kPlay + 0x1000 * (i + 1));
        ASSERT_EQ(op.status, st(St::okay));
        ASSERT_EQ(core::iommu_entry(*driver, f), kRw);
        ops[i] = abi::GnttabUnmapGrantRef{kPlay + 0x1000 * (i + 1), 0, op.handle, 0};
    }
    unsigned before = flushes_of(driver);
    put(driver, kScratch, ops);
    ASSERT_EQ(hc(driver, Hypercall::grant_table_op, uint64_t(GnttabOp::unmap_grant_ref), kScratch, kN), 0);
    auto back = get<decltype(ops)>(driver, kScratch);
    for (unsigned i = 0; i < kN; ++i) {
        EXPECT_EQ(back[i].status, st(St::okay));
        EXPECT_EQ(core::iommu_entry(*driver, mfn_at(victim, kPlay + 0x1000 * (i + 1))), kNone);
    }
    EXPECT_EQ(flushes_of(driver), before + 1) << "Xen's batching: one IOTLB flush at the end of the batch";
}

TEST_F(Iommu, AFrameGivenBackLeavesTheIotlbBeforeAnyoneCanHaveIt) {
    ASSERT_EQ(attach(driver, kNic), 0);
    core::Mfn frame = mfn_at(driver, kPlay);
    abi::MmuUpdate u{pte_ma(driver, kPlay), 0};
    put(driver, kScratch, u);
    ASSERT_EQ(hc(driver, Hypercall::mmu_update, kScratch, 1, 0, abi::kDomidSelf), 0);
    ASSERT_EQ(core::iommu_entry(*driver, frame), kRw);
    unsigned before = flushes_of(driver);
    // decrease_reservation of that one frame.
    put(driver, kScratch + 0x100, uint64_t(frame));
    abi::XenMemoryReservation res{};
    res.extent_start = kScratch + 0x100;
    res.nr_extents = 1;
    res.domid = abi::kDomidSelf;
    put(driver, kScratch, res);
    ASSERT_EQ(hc(driver, Hypercall::memory_op, uint64_t(abi::MemoryOp::decrease_reservation), kScratch), 1);
    EXPECT_EQ(core::frame_table()[frame].owner, core::kOwnerNone);
    EXPECT_EQ(core::iommu_entry(*driver, frame), kNone);
    EXPECT_EQ(flushes_of(driver), before + 1);
}

TEST_F(Iommu, DestroyingTheDriverDetachesItsFunctionsFirstAndGivesEveryByteBack) {
    uint64_t bytes_before = driver->hv_bytes;
    ASSERT_EQ(attach(driver, kNic), 0);
    ASSERT_EQ(attach(driver, kDisk), 0);
    EXPECT_GT(driver->hv_bytes, bytes_before) << "its I/O table is charged to it";
    EXPECT_GE(driver->iommu->table_frames, 4u);
    fake::calls().iommu_contexts.clear();
    uint64_t free_before = free_frames(), table_frames = driver->iommu->table_frames;
    core::DomId id = driver->id;
    core::domain_kill(*driver);
    // Both functions blocked at kill, before any teardown step frees a frame.
    ASSERT_EQ(fake::calls().iommu_contexts.size(), 2u);
    for (auto& c : fake::calls().iommu_contexts) EXPECT_EQ(c.root, 0u);
    EXPECT_EQ(driver->iommu, nullptr);
    EXPECT_EQ(driver->hv_bytes, bytes_before);
    EXPECT_GE(free_frames(), free_before + table_frames) << "kmem keeps none of its table frames";
    for (unsigned steps = 0;; ++steps) {
        core::Budget b{core::kHypercallBudget};
        if (core::domain_teardown(*driver, b)) break;
        ASSERT_LT(steps, 100000u);
    }
    switch_away_from_gone();
    EXPECT_EQ(owned_by(id), 0u);
    driver = nullptr;
}

TEST_F(Iommu, AFunctionMovesFromOneDomainToTheNextWithoutAnOverlap) {
    ASSERT_EQ(attach(driver, kNic), 0);
    give(victim, cap::Type::grant, cap::right::map_ro, driver->id);
    fake::calls().iommu_contexts.clear();
    ASSERT_EQ(attach(victim, kNic), 0);
    auto& c = fake::calls().iommu_contexts;
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].root, 0u) << "blocked first";
    EXPECT_EQ(c[1].did, did(victim));
    EXPECT_EQ(driver->iommu->nfuncs, 0u);
    EXPECT_EQ(victim->iommu->nfuncs, 1u);
}

TEST_F(Iommu, ADeviceThatKeepsFaultingStopsItsDomain) {
    ASSERT_EQ(attach(driver, kNic), 0);
    for (unsigned i = 0; i + 1 < core::kIommuFaultLimit; ++i) {
        core::iommu_fault(kNic, 0x1000 * i, true, 5);
        if (i % 16 == 15) core::iommu_process_faults();   // as the exit path does, between interrupts
    }
    core::iommu_process_faults();
    EXPECT_EQ(driver->state, core::DomainState::running);
    EXPECT_NE(fake::log().find("dmar: domain " + std::to_string(driver->id) + " (netback) device 00:04.0 write to 0x0 "
                                                                                 "blocked"),
              std::string::npos)
        << fake::log();
    core::iommu_fault(kNic, 0xdead000, false, 6);
    core::iommu_process_faults();
    EXPECT_NE(driver->state, core::DomainState::running);
    EXPECT_EQ(driver->shutdown_reason, abi::ShutdownReason::crash);
    EXPECT_EQ(driver->iommu, nullptr) << "its devices detached when it was stopped";
    // A fault from a function nobody drives is logged, and counts against nobody.
    core::iommu_fault(7 << 3, 0x2000, true, 5);
    core::iommu_process_faults();
    EXPECT_NE(fake::log().find("device 00:07.0 (no domain's) write to 0x2000 blocked"), std::string::npos);
    EXPECT_EQ(victim->state, core::DomainState::running);
}

TEST_F(Iommu, TheFaultQueueOverflowsWithoutLosingCount) {
    ASSERT_EQ(attach(driver, kNic), 0);
    uint64_t seen = core::iommu_faults_seen();
    for (unsigned i = 0; i < 40; ++i) core::iommu_fault(kNic, 0x1000, true, 5);
    EXPECT_EQ(core::iommu_faults_seen(), seen + 40);
    core::iommu_process_faults();
    EXPECT_NE(fake::log().find("faults not recorded (queue full)"), std::string::npos);
    EXPECT_EQ(driver->state, core::DomainState::running) << "32 recorded: below the limit";
}

// Random grant maps, unmaps and retypings by the driver, with the table
// checked against the frame table and maptrack after every step.
TEST_F(Iommu, ChurnKeepsTheTableExact) {
    ASSERT_EQ(attach(driver, kDisk), 0);
    std::mt19937 rng(1313);
    constexpr unsigned kSlots = 16;
    struct Slot {
        bool mapped = false;
        uint32_t handle = 0;
    } slots[kSlots];
    for (unsigned i = 0; i < kSlots; ++i) grant(victim, 40 + i, driver->id, mfn_at(victim, kPlay + 0x1000 * (i % 5)),
                                                i % 3 == 0);
    for (unsigned step = 0; step < 400; ++step) {
        unsigned i = rng() % kSlots;
        uint64_t va = kPlay + 0x10000 + 0x1000 * i;
        if (!slots[i].mapped) {
            uint32_t flags = abi::kGntmapHostMap | (i % 3 == 0 ? abi::kGntmapReadonly : 0);
            auto op = map(driver, victim->id, 40 + i, va, flags);
            ASSERT_EQ(op.status, st(St::okay)) << "step " << step;
            slots[i] = Slot{true, op.handle};
        } else {
            ASSERT_EQ(unmap(driver, slots[i].handle, va), st(St::okay)) << "step " << step;
            slots[i].mapped = false;
        }
        ASSERT_EQ(check(), "") << "step " << step;
    }
    for (unsigned i = 0; i < kSlots; ++i)
        if (slots[i].mapped) ASSERT_EQ(unmap(driver, slots[i].handle, kPlay + 0x10000 + 0x1000 * i), st(St::okay));
    for (unsigned k = 0; k < 5; ++k) EXPECT_EQ(core::iommu_entry(*driver, mfn_at(victim, kPlay + 0x1000 * k)), kNone);
    EXPECT_EQ(driver->iommu->grant_used, 0u);
}

}  // namespace

namespace {

// A driver domain may write its function's command register and
// device-specific registers, but never the MSI capability or MSI-X's message
// control: message-signalled interrupts are the kernel's to route.
TEST(PciConfigWrite, MsiAndMsixControlAreRefused) {
    core::PciFunction f{};
    f.msi_cap = 0x50;
    f.msi_len = 14;   // 64-bit, no per-vector masking
    f.msix_cap = 0x98;
    const char* why = nullptr;
    EXPECT_TRUE(core::pci_config_write_allowed(f, 0x04, 2, &why));
    EXPECT_FALSE(core::pci_config_write_allowed(f, 0x10, 4, &why)) << "a BAR";
    EXPECT_TRUE(core::pci_config_write_allowed(f, 0x4C, 4, &why)) << "just before MSI";
    for (uint16_t off = 0x50; off < 0x5E; off += 2) EXPECT_FALSE(core::pci_config_write_allowed(f, off, 2, &why)) << off;
    EXPECT_NE(std::string(why).find("MSI"), std::string::npos);
    EXPECT_FALSE(core::pci_config_write_allowed(f, 0x5C, 4, &why)) << "overlaps the MSI data's last bytes";
    EXPECT_TRUE(core::pci_config_write_allowed(f, 0x60, 4, &why));
    EXPECT_TRUE(core::pci_config_write_allowed(f, 0x98, 2, &why)) << "MSI-X's id and next pointer (read-only anyway)";
    EXPECT_FALSE(core::pci_config_write_allowed(f, 0x9A, 2, &why)) << "MSI-X message control";
    EXPECT_FALSE(core::pci_config_write_allowed(f, 0x9B, 1, &why)) << "its enable bit's byte";
    EXPECT_FALSE(core::pci_config_write_allowed(f, 0x98, 4, &why));
    EXPECT_TRUE(core::pci_config_write_allowed(f, 0x9C, 4, &why)) << "the table offset (read-only anyway)";
    core::PciFunction none{};
    EXPECT_TRUE(core::pci_config_write_allowed(none, 0x40, 4, &why)) << "no capabilities: nothing to guard";
    EXPECT_FALSE(core::pci_config_write_allowed(none, 0xFE, 4, &why)) << "past the end";
}

}  // namespace
