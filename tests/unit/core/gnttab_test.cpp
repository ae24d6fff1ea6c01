// Grant tables on the host: map, unmap and copy through grant_table_op as a
// guest issues them, every refusal, and the teardown of either side, each
// with the attack it stops (issue 10: the grant-map escape into the
// hypervisor's address range, the mapping that outlived its granter's
// memory). After every test the whole machine's reference counts are
// recomputed from scratch (mm_invariant_violations).

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::GnttabOp;
using abi::Hypercall;
using St = abi::GntStatus;
namespace pte = core::pte;

constexpr int16_t st(St s) { return int16_t(s); }
constexpr uint32_t kRef = 8;

class GrantTable : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        granter = build("granter");
        mapper = build("mapper");
        ASSERT_TRUE(granter && mapper);
        // The page the granter shares: one of its own, with a pattern.
        shared = mfn_at(granter, kPlay);
        ASSERT_TRUE(core::frame_table().valid(shared));
        std::memset(core::frame_va<uint8_t>(shared), 0x5A, 4096);
        give(mapper, cap::Type::grant, cap::right::map_ro | cap::right::map_rw | cap::right::copy, granter->id);
    }
    void TearDown() override { EXPECT_EQ(mm_invariant_violations(), ""); }

    core::Domain* granter = nullptr;
    core::Domain* mapper = nullptr;
    core::Mfn shared = 0;
};

TEST_F(GrantTable, MapReadOnlyThenUnmap) {
    grant(granter, kRef, mapper->id, shared, true);
    core::Mfn before = mfn_at(mapper, kPlay);
    auto op = map(mapper, granter->id, kRef, kPlay, abi::kGntmapHostMap | abi::kGntmapReadonly);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(mfn_at(mapper, kPlay), shared);
    EXPECT_FALSE(l1e(mapper, kPlay) & pte::kWritable);
    EXPECT_EQ(get<uint8_t>(mapper, kPlay + 100), 0x5A);
    EXPECT_TRUE(grant_flags(granter, kRef) & abi::kGtfReading);
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 1u);
    EXPECT_EQ(mm_invariant_violations(), "");

    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::okay));
    EXPECT_EQ(l1e(mapper, kPlay) & pte::kPresent, 0u) << "the grant PTE is gone";
    EXPECT_FALSE(grant_flags(granter, kRef) & (abi::kGtfReading | abi::kGtfWriting));
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 0u);
    (void)before;
}

TEST_F(GrantTable, WritableMappingHoldsTheFrameWritable) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_TRUE(l1e(mapper, kPlay) & pte::kWritable);
    put<uint8_t>(mapper, kPlay + 7, 0xC3);
    EXPECT_EQ(core::frame_va<uint8_t>(shared)[7], 0xC3);
    EXPECT_TRUE(grant_flags(granter, kRef) & abi::kGtfWriting);
    // While it is mapped writable, the granter can make it neither a page
    // table nor give it back.
    abi::MmuextOp pin{};
    pin.cmd = uint32_t(abi::MmuextCmd::pin_l1_table);
    pin.arg1.mfn = shared;
    put(granter, kScratch, pin);
    EXPECT_LT(hc(granter, Hypercall::mmuext_op, kScratch, 1, 0, abi::kDomidSelf), 0);
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::okay));
}

TEST_F(GrantTable, RefusalsLeaveNothingBehind) {
    grant(granter, kRef, mapper->id, shared, true);
    grant(granter, kRef + 1, core::DomId(granter->id + 40), shared);   // granted to somebody else
    // Writable map of a read-only grant.
    EXPECT_EQ(map(mapper, granter->id, kRef, kPlay).status, st(St::permission_denied));
    // A grant to another domain.
    EXPECT_EQ(map(mapper, granter->id, kRef + 1, kPlay).status, st(St::permission_denied));
    // A reference beyond the table, an empty entry.
    EXPECT_EQ(map(mapper, granter->id, 100000, kPlay).status, st(St::bad_gntref));
    EXPECT_EQ(map(mapper, granter->id, kRef + 2, kPlay).status, st(St::permission_denied));
    // Itself at a reference its own table does not have (Xen allows mapping
    // one's own grants, GrantV2.OwnGrantsMapAndCopyWithoutACapability), and
    // DOMID_SELF, which names no domain for a map (as in Xen).
    EXPECT_EQ(map(mapper, mapper->id, kRef, kPlay).status, st(St::bad_gntref));
    EXPECT_EQ(map(mapper, abi::kDomidSelf, kRef, kPlay).status, st(St::bad_domain));
    // No capability for the domain: refused before anything is looked up.
    EXPECT_EQ(map(mapper, 77, kRef, kPlay).status, st(St::permission_denied));
    // A writable device mapping of the read-only grant; neither a device nor
    // a host mapping.
    EXPECT_EQ(map(mapper, granter->id, kRef, kPlay, abi::kGntmapDeviceMap | abi::kGntmapHostMap).status,
              st(St::permission_denied));
    EXPECT_EQ(map(mapper, granter->id, kRef, kPlay, 0).status, st(St::general_error));
    EXPECT_FALSE(grant_flags(granter, kRef) & (abi::kGtfReading | abi::kGtfWriting));
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 0u);
}

TEST_F(GrantTable, NoCapabilityNoMapNoCopy) {
    core::Domain* loner = build("loner");
    ASSERT_NE(loner, nullptr);
    grant(granter, kRef, loner->id, shared);
    EXPECT_EQ(map(loner, granter->id, kRef, kPlay).status, st(St::permission_denied));
    EXPECT_NE(fake::log().find("no Grant capability"), std::string::npos);
    abi::GnttabCopy c{};
    c.source.u.ref = kRef;
    c.source.domid = granter->id;
    c.dest.u.gmfn = mfn_at(loner, kPlay);
    c.dest.domid = abi::kDomidSelf;
    c.len = 64;
    c.flags = abi::kGntcopySourceGref;
    put(loner, kScratch, c);
    EXPECT_EQ(hc(loner, Hypercall::grant_table_op, uint64_t(GnttabOp::copy), kScratch, 1), 0);
    EXPECT_EQ(get<abi::GnttabCopy>(loner, kScratch).status, st(St::permission_denied));
}

TEST_F(GrantTable, GrantedPageTableIsNeverWritable) {
    // The granter grants one of its own L1 tables: a read-only mapping is
    // allowed (Xen allows it too), a writable one never.
    uint64_t l1_ma = pte_ma(granter, kPlay);
    core::Mfn l1 = l1_ma >> 12;
    ASSERT_EQ(core::frame_table()[l1].type, core::PageType::l1);
    grant(granter, kRef, mapper->id, l1);
    EXPECT_EQ(map(mapper, granter->id, kRef, kPlay).status, st(St::bad_page));
    auto ro = map(mapper, granter->id, kRef, kPlay, abi::kGntmapHostMap | abi::kGntmapReadonly);
    EXPECT_EQ(ro.status, st(St::okay));
    EXPECT_EQ(unmap(mapper, ro.handle, kPlay), st(St::okay));
}

// Issue 10, finding 1: a host_addr in the hypervisor's own L4 slots made the
// old walk follow the hypervisor's tables, take a 2 MiB superpage of the
// direct map for an L1, and write the grant PTE into the first frame of that
// 2 MiB block. Now no guest address walk ever leaves the guest's own tables.
TEST_F(GrantTable, HostAddressInTheHypervisorRangeIsRefused) {
    // Domains whose L4s carry the real direct-map slot (present, with superpages).
    fake::use_hypervisor_direct_map();
    core::Domain* victim = build("victim");
    core::Domain* attacker = build("attacker");
    ASSERT_TRUE(victim && attacker);
    give(attacker, cap::Type::grant, cap::right::map_ro | cap::right::map_rw, victim->id);
    core::Mfn v_page = mfn_at(victim, kPlay);
    grant(victim, kRef, attacker->id, v_page);
    // Sanity: the direct map is really there, and the old kind of walk would
    // have found a "table" through it.
    uint64_t l4 = attacker->vcpu[0].guest_table;
    ASSERT_TRUE(fake::table(l4)[262] & pte::kPresent);

    core::Mfn own = mfn_at(attacker, kPlay + 0x1000);
    std::vector<uint64_t> targets = {
        fake::kDirectMapVa + own * 4096,                        // its own frame, through the direct map
        fake::kDirectMapVa + (own & ~511ull) * 4096 + 5 * 4096,  // index 5 of its 2 MiB block's first frame
        fake::kDirectMapVa + v_page * 4096,                     // the victim's page
        fake::kDirectMapVa,                                     // frame 0
        0xFFFF800000000000ull,                                  // the M2P slot
        0xFFFF82D080000000ull,                                  // the hypervisor's image
        0xFFFF87FFFFFFF000ull,                                  // the last hypervisor page
        0x0000800000000000ull,                                  // not canonical
        0x8000000000000000ull,
    };
    // A mapping of its own, so that unmap's address check is reached too.
    auto mine = map(attacker, victim->id, kRef, kPlay);
    ASSERT_EQ(mine.status, st(St::okay));
    // Everything in the machine but the attacker's argument page must stay as it is.
    core::Mfn arg_page = mfn_at(attacker, kScratch);
    std::vector<uint8_t> before(fake::memory(), fake::memory() + fake::nframes() * 4096);
    for (uint64_t addr : targets) {
        auto op = map(attacker, victim->id, kRef, addr);
        EXPECT_EQ(op.status, st(St::bad_virt_addr)) << std::hex << addr;
        EXPECT_EQ(unmap(attacker, mine.handle, addr), st(St::bad_virt_addr)) << std::hex << addr;
        // update_va_mapping is refused the same addresses.
        EXPECT_LT(hc(attacker, Hypercall::update_va_mapping, addr, pte::make(own, pte::kPresent), 0), 0)
            << std::hex << addr;
    }
    for (uint64_t m = 0; m < fake::nframes(); ++m) {
        if (m == arg_page) continue;
        // The hypervisor's own objects (the vCPUs' registers, budgets, ...)
        // live in frames it allocated: they change with every hypercall.
        if (m >= fake::kReservedFrames && core::frame_table()[m].owner == core::kOwnerXen) continue;
        ASSERT_EQ(std::memcmp(before.data() + m * 4096, fake::memory() + m * 4096, 4096), 0)
            << "frame " << m << " changed";
    }
    EXPECT_EQ(core::gnttab_mapped_by_others(*victim), 1u) << "only the mapping at its own address";
    EXPECT_EQ(unmap(attacker, mine.handle, kPlay), st(St::okay));
    EXPECT_FALSE(grant_flags(victim, kRef) & (abi::kGtfReading | abi::kGtfWriting));
}

// GNTMAP_contains_pte: host_addr is the machine address of the PTE, which must
// be in one of the mapper's own validated L1s that is in use.
TEST_F(GrantTable, ContainsPteOnlyIntoOwnLiveL1) {
    grant(granter, kRef, mapper->id, shared);
    uint32_t f = abi::kGntmapHostMap | abi::kGntmapContainsPte;
    core::Mfn plain = mfn_at(mapper, kPlay);
    uint64_t own_l2 = mapper->vcpu[0].guest_table;   // its L4, as good as any non-L1
    for (uint64_t ma : {pte_ma(granter, kPlay),     // the granter's L1
                        plain << 12,                // its own plain frame
                        own_l2 << 12,               // its own L4
                        uint64_t(0),                // frame 0 (the hypervisor's)
                        uint64_t(fake::nframes()) << 12}) {   // beyond RAM
        auto op = map(mapper, granter->id, kRef, ma, f);
        EXPECT_EQ(op.status, st(St::bad_virt_addr)) << std::hex << ma;
    }
    // Its own L1's entry: allowed, and unmapped by the same address.
    uint64_t ma = pte_ma(mapper, kPlay);
    auto op = map(mapper, granter->id, kRef, ma, f);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(mfn_at(mapper, kPlay), shared);
    EXPECT_EQ(unmap(mapper, op.handle, ma), st(St::okay));
}

TEST_F(GrantTable, UnmapChecksTheAddressNamesTheMapping) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(unmap(mapper, op.handle, kPlay + 0x1000), st(St::bad_virt_addr));
    EXPECT_EQ(unmap(mapper, op.handle, fake::kDirectMapVa + shared * 4096), st(St::bad_virt_addr));
    EXPECT_EQ(unmap(mapper, op.handle + 1, kPlay), st(St::bad_handle));
    EXPECT_EQ(unmap(mapper, 0xFFFFFFFFu, kPlay), st(St::bad_handle));
    EXPECT_EQ(mfn_at(mapper, kPlay), shared) << "still mapped";
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::okay));
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::bad_handle)) << "not twice";
}

TEST_F(GrantTable, CopyChecksBothSides) {
    grant(granter, kRef, mapper->id, shared);
    core::Mfn dst = mfn_at(mapper, kPlay);
    auto copy = [&](abi::GnttabCopy c) {
        put(mapper, kScratch, c);
        EXPECT_EQ(hc(mapper, Hypercall::grant_table_op, uint64_t(GnttabOp::copy), kScratch, 1), 0);
        return get<abi::GnttabCopy>(mapper, kScratch).status;
    };
    abi::GnttabCopy c{};
    c.source.u.ref = kRef;
    c.source.domid = granter->id;
    c.source.offset = 16;
    c.dest.u.gmfn = dst;
    c.dest.domid = abi::kDomidSelf;
    c.len = 100;
    c.flags = abi::kGntcopySourceGref;
    EXPECT_EQ(copy(c), st(St::okay));
    EXPECT_EQ(core::frame_va<uint8_t>(dst)[0], 0x5A);
    EXPECT_EQ(core::frame_va<uint8_t>(dst)[99], 0x5A);
    // Past the end of the page, either side.
    abi::GnttabCopy bad = c;
    bad.source.offset = 4000;
    EXPECT_EQ(copy(bad), st(St::bad_copy_arg));
    bad = c;
    bad.dest.offset = 4090;
    EXPECT_EQ(copy(bad), st(St::bad_copy_arg));
    // A local frame that is not ours, and one beyond RAM.
    bad = c;
    bad.dest.u.gmfn = shared;
    EXPECT_EQ(copy(bad), st(St::bad_page));
    bad.dest.u.gmfn = fake::nframes() + 5;
    EXPECT_EQ(copy(bad), st(St::bad_page));
    // Into one of its own page tables: never.
    bad = c;
    bad.dest.u.gmfn = pte_ma(mapper, kPlay) >> 12;
    EXPECT_EQ(copy(bad), st(St::bad_page));
    // Into the granter's page by a read-only grant.
    grant(granter, kRef + 1, mapper->id, shared, true);
    bad = c;
    bad.flags = abi::kGntcopyDestGref;
    bad.source.u.gmfn = dst;
    bad.source.domid = abi::kDomidSelf;
    bad.dest.u.ref = kRef + 1;
    bad.dest.domid = granter->id;
    EXPECT_EQ(copy(bad), st(St::permission_denied));
    bad.dest.u.ref = kRef;   // the writable grant: allowed
    EXPECT_EQ(copy(bad), st(St::okay));
}

// moat top's counters (core/domain.hpp): each operation of a batch counts
// once in the asking domain's grant_ops, failed ones too; only the bytes
// actually copied count in grant_copy_bytes; nobody else's counters move,
// and only a holder of a Domain capability with control reads them.
TEST_F(GrantTable, CountersCountTheAskersOperationsAndCopiedBytes) {
    grant(granter, kRef, mapper->id, shared);
    core::Domain* watcher = build("watcher");
    ASSERT_NE(watcher, nullptr);
    give(watcher, cap::Type::domain, cap::right::control, mapper->id);
    auto info = [&](core::Domain* asker, core::DomId of, int64_t* rc = nullptr) {
        abi::MoatDomctl op{};
        op.version = abi::kMoatDomctlVersion;
        op.cmd = uint32_t(abi::DomctlCmd::getinfo);
        op.domain = of;
        put(asker, kScratch, op);
        int64_t r = hc(asker, Hypercall::domctl, kScratch);
        if (rc) *rc = r;
        return get<abi::MoatDomctl>(asker, kScratch).u.info;
    };
    EXPECT_EQ(info(watcher, mapper->id).grant_ops, 0u);

    // A batch of 3 copies of 100 bytes each: 3 operations, 300 bytes.
    abi::GnttabCopy c{};
    c.source.u.ref = kRef;
    c.source.domid = granter->id;
    c.dest.u.gmfn = mfn_at(mapper, kPlay);
    c.dest.domid = abi::kDomidSelf;
    c.len = 100;
    c.flags = abi::kGntcopySourceGref;
    std::array<abi::GnttabCopy, 3> batch = {c, c, c};
    batch[1].dest.offset = 100, batch[2].dest.offset = 200;
    put(mapper, kScratch, batch);
    ASSERT_EQ(hc(mapper, Hypercall::grant_table_op, uint64_t(GnttabOp::copy), kScratch, 3), 0);
    for (auto& done : get<decltype(batch)>(mapper, kScratch)) EXPECT_EQ(done.status, st(St::okay));
    EXPECT_EQ(mapper->grant_ops, 3u);
    EXPECT_EQ(mapper->grant_copy_bytes, 300u);
    // A copy that fails (past the page's end) is an operation asked for, no bytes.
    abi::GnttabCopy bad = c;
    bad.source.offset = 4000;
    put(mapper, kScratch, bad);
    ASSERT_EQ(hc(mapper, Hypercall::grant_table_op, uint64_t(GnttabOp::copy), kScratch, 1), 0);
    EXPECT_EQ(get<abi::GnttabCopy>(mapper, kScratch).status, st(St::bad_copy_arg));
    EXPECT_EQ(mapper->grant_ops, 4u);
    EXPECT_EQ(mapper->grant_copy_bytes, 300u);
    // A map and its unmap: two more; a refused map (no such grant) one more.
    auto op = map(mapper, granter->id, kRef, kPlay + 0x1000);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(unmap(mapper, op.handle, kPlay + 0x1000), st(St::okay));
    EXPECT_NE(map(mapper, granter->id, kRef + 7, kPlay + 0x1000).status, st(St::okay));
    EXPECT_EQ(mapper->grant_ops, 7u);
    // The granter, whose grant all this used, asked for nothing; nor did the watcher.
    EXPECT_EQ(granter->grant_ops, 0u);
    EXPECT_EQ(granter->grant_copy_bytes, 0u);
    EXPECT_EQ(watcher->grant_ops, 0u);

    // getinfo reports them to the watcher (it has control of the mapper) ...
    int64_t rc = -1;
    abi::DomctlInfo i = info(watcher, mapper->id, &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(i.grant_ops, 7u);
    EXPECT_EQ(i.grant_copy_bytes, 300u);
    EXPECT_EQ(i.events_sent, 0u);
    // ... and to nobody without: the granter may not look at the mapper's.
    i = info(granter, mapper->id, &rc);
    EXPECT_EQ(rc, -1) << "EPERM: no Domain capability";
    EXPECT_EQ(i.grant_ops, 0u) << "nothing written back";
    EXPECT_EQ(mapper->grant_ops, 7u) << "a getinfo is no grant operation";
}

// Issue 10, finding 2: the granter is taken apart while the mapper is stopped
// (shut down, waiting for its builder). Its mappings go with the granter, so
// the frames the granter gave back can go to a new domain, and taking the
// mapper apart later drops no reference on them.
TEST_F(GrantTable, GranterGoneRevokesAStoppedMappersMapping) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(op.status, st(St::okay));
    core::domain_shutdown(*mapper, abi::ShutdownReason::poweroff);
    ASSERT_EQ(mapper->state, core::DomainState::stopped);

    destroy(granter);
    EXPECT_TRUE(is_gone(granter));
    EXPECT_EQ(l1e(mapper, kPlay) & pte::kPresent, 0u) << "the stopped mapper's grant PTE was cleared";
    EXPECT_FALSE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_NE(fake::log().find("(granter) taken apart"), std::string::npos);
    EXPECT_NE(fake::log().find("nothing left behind"), std::string::npos) << fake::log();
    EXPECT_EQ(core::frame_table()[shared].owner, core::kOwnerNone) << "freed: nothing referenced it";
    EXPECT_EQ(mm_invariant_violations(), "");

    // The granter comes back (restart on crash) and gets its frames again,
    // maps one writable, and then the mapper is taken apart.
    core::Domain* again = build("granter2");
    ASSERT_NE(again, nullptr);
    core::FrameTable& ft = core::frame_table();
    std::vector<core::FrameInfo> snapshot(ft.nframes());
    for (core::Mfn m = 0; m < ft.nframes(); ++m) snapshot[m] = ft[m];
    destroy(mapper);
    for (core::Mfn m = 0; m < ft.nframes(); ++m) {
        if (snapshot[m].owner != again->id) continue;
        EXPECT_EQ(ft[m].count, snapshot[m].count) << "frame " << m << " of the new domain";
        EXPECT_EQ(ft[m].type_count, snapshot[m].type_count) << "frame " << m << " of the new domain";
    }
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(again);
    EXPECT_EQ(free_frames(), free_at_start) << "every frame back";
    EXPECT_EQ(core::held_frames(), 0u);
}

TEST_F(GrantTable, GranterGoneRevokesARunningMappersMapping) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(op.status, st(St::okay));
    destroy(granter);
    EXPECT_EQ(l1e(mapper, kPlay) & pte::kPresent, 0u);
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::bad_handle)) << "the mapping is gone";
    EXPECT_EQ(owned_by(granter->id), 0u);
}

TEST_F(GrantTable, MapperGoneClearsTheGrantsInUse) {
    grant(granter, kRef, mapper->id, shared);
    grant(granter, kRef + 1, mapper->id, shared, true);
    ASSERT_EQ(map(mapper, granter->id, kRef, kPlay).status, st(St::okay));
    ASSERT_EQ(map(mapper, granter->id, kRef + 1, kPlay + 0x1000, abi::kGntmapHostMap | abi::kGntmapReadonly).status,
              st(St::okay));
    EXPECT_EQ(core::frame_table()[shared].type, core::PageType::writable);
    destroy(mapper);
    EXPECT_FALSE(grant_flags(granter, kRef) & (abi::kGtfReading | abi::kGtfWriting));
    EXPECT_FALSE(grant_flags(granter, kRef + 1) & (abi::kGtfReading | abi::kGtfWriting));
    EXPECT_EQ(core::frame_table()[shared].type_count, 1u) << "only the granter's own mapping";
    // The granter may now end the grants and pin what was shared.
    EXPECT_EQ(core::gnttab_seed(*granter, kRef, 0, 0, 0), 0);
}

TEST_F(GrantTable, LongBatchesContinueWithinTheBudget) {
    grant(granter, kRef, mapper->id, shared, true);
    // 600 read-only mappings of the same grant (more than the maptrack holds:
    // the rest are refused no_space), then 600 unmaps.
    constexpr unsigned kN = 600;
    std::vector<abi::GnttabMapGrantRef> ops(kN);
    for (unsigned i = 0; i < kN; ++i)
        ops[i] = abi::GnttabMapGrantRef{kPlay + (i % 200) * 4096, abi::kGntmapHostMap | abi::kGntmapReadonly, kRef,
                                        granter->id, 0, 0, 0};
    // The batch lives in the scratch area (8 pages are mapped there).
    uint64_t at = kScratch;
    as(mapper);
    ASSERT_TRUE(platform::copy_to_guest(at, ops.data(), kN * sizeof ops[0]));
    unsigned continued = 0;
    EXPECT_EQ(hc(mapper, Hypercall::grant_table_op, uint64_t(GnttabOp::map_grant_ref), at, kN, 0, 0, &continued), 0);
    EXPECT_GE(continued, kN * core::cost::kGrantOp / core::kHypercallBudget) << "preempted within the budget";
    ASSERT_TRUE(platform::copy_from_guest(ops.data(), at, kN * sizeof ops[0]));
    unsigned mapped = 0, nospace = 0, slot_taken = 0;
    for (auto& o : ops) {
        mapped += o.status == st(St::okay);
        nospace += o.status == st(St::no_space);
        slot_taken += o.status == st(St::bad_virt_addr);
    }
    EXPECT_EQ(mapped, 200u) << "one grant per PTE slot";
    EXPECT_EQ(mapped + nospace + slot_taken, kN);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(mapper);
    EXPECT_FALSE(grant_flags(granter, kRef) & abi::kGtfReading);
}

}  // namespace
