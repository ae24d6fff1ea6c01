// Grant tables v2, GNTMAP_device_map and a domain's use of its own grants
// (issue 11), on the host, through grant_table_op as a guest issues them:
// set_version both ways (and what stops it), the v2 entry forms and their
// status frames, every value read from a hostile table, device mappings
// without a PTE, self mappings and copies without a capability, and the
// teardown of domains holding any of these. After every test the whole
// machine's reference counts are recomputed from scratch
// (mm_invariant_violations), the table and status frames included.

#include <gtest/gtest.h>

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
constexpr uint32_t kRef = 8;   // the first reference that is not reserved
constexpr uint16_t kInUse = abi::kGtfReading | abi::kGtfWriting;

class GrantV2 : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        granter = build("granter");
        mapper = build("mapper");
        ASSERT_TRUE(granter && mapper);
        shared = mfn_at(granter, kPlay);
        ASSERT_TRUE(core::frame_table().valid(shared));
        for (unsigned i = 0; i < 4096; ++i) core::frame_va<uint8_t>(shared)[i] = uint8_t(i * 7);
        give(mapper, cap::Type::grant, cap::right::map_ro | cap::right::map_rw | cap::right::copy, granter->id);
    }
    void TearDown() override { EXPECT_EQ(mm_invariant_violations(), ""); }

    // GNTTABOP_set_version as `d`: the hypercall's result, and the version it wrote back.
    long set_version(core::Domain* d, uint32_t version, uint32_t* out = nullptr) {
        put(d, kScratch, abi::GnttabSetVersion{version});
        long rc = hc(d, Hypercall::grant_table_op, uint64_t(GnttabOp::set_version), kScratch, 1);
        if (out) *out = get<abi::GnttabSetVersion>(d, kScratch).version;
        return rc;
    }
    long get_version(core::Domain* d, uint16_t dom, uint32_t* out = nullptr) {
        put(d, kScratch, abi::GnttabGetVersion{dom, 0, 0xDEAD});
        long rc = hc(d, Hypercall::grant_table_op, uint64_t(GnttabOp::get_version), kScratch, 1);
        if (out) *out = get<abi::GnttabGetVersion>(d, kScratch).version;
        return rc;
    }
    // GNTTABOP_get_status_frames as `d`, the frames written at kScratch + 512.
    int16_t status_frames(core::Domain* d, uint32_t nr, uint64_t list = kScratch + 512, uint16_t dom = abi::kDomidSelf,
                          uint64_t count = 1, long* rc = nullptr) {
        put(d, kScratch, abi::GnttabGetStatusFrames{nr, dom, 0x77, list});
        long r = hc(d, Hypercall::grant_table_op, uint64_t(GnttabOp::get_status_frames), kScratch, count);
        if (rc) *rc = r;
        else EXPECT_EQ(r, 0);
        return get<abi::GnttabGetStatusFrames>(d, kScratch).status;
    }

    // Entry `ref` of a v2 table, and its status word.
    abi::GrantEntryV2* v2(core::Domain* g, uint32_t ref) {
        return core::frame_va<abi::GrantEntryV2>(g->grant_frames[ref / abi::kGrantEntriesV2PerPage]) +
               ref % abi::kGrantEntriesV2PerPage;
    }
    uint16_t status(core::Domain* g, uint32_t ref) {
        return core::frame_va<uint16_t>(g->status_frames[ref / abi::kGrantStatusPerPage])[ref % abi::kGrantStatusPerPage];
    }
    // Writes a v2 entry as a guest would (frame first, the flags last).
    void put_v2(core::Domain* g, uint32_t ref, uint16_t flags, uint16_t domid, uint64_t frame, uint16_t off = 0,
                uint16_t len = 0) {
        abi::GrantEntryV2* e = v2(g, ref);
        e->sub_page.frame = frame;
        e->sub_page.page_off = off;
        e->sub_page.length = len;
        e->hdr.domid = domid;
        e->hdr.flags = flags;
    }
    // A granter switched to v2 with its table's first frame.
    void granter_v2() {
        ASSERT_EQ(core::gnttab_seed(*granter, 0, 0, 0, 0), 0);
        ASSERT_EQ(set_version(granter, 2), 0);
        ASSERT_EQ(granter->grant_version, 2);
    }

    abi::GnttabUnmapGrantRef unmap2(core::Domain* d, uint32_t handle, uint64_t host_addr, uint64_t dev_bus_addr) {
        abi::GnttabUnmapGrantRef op{host_addr, dev_bus_addr, handle, 0};
        put(d, kScratch, op);
        EXPECT_EQ(hc(d, Hypercall::grant_table_op, uint64_t(GnttabOp::unmap_grant_ref), kScratch, 1), 0);
        return get<abi::GnttabUnmapGrantRef>(d, kScratch);
    }
    int16_t copy(core::Domain* d, const abi::GnttabCopy& c) {
        put(d, kScratch, c);
        EXPECT_EQ(hc(d, Hypercall::grant_table_op, uint64_t(GnttabOp::copy), kScratch, 1), 0);
        return get<abi::GnttabCopy>(d, kScratch).status;
    }
    // A copy by `d` out of (dom, ref) at `off` into its own page at kPlay.
    abi::GnttabCopy copy_from(core::Domain* d, uint16_t dom, uint32_t ref, uint16_t off, uint16_t len) {
        abi::GnttabCopy c{};
        c.source.u.ref = ref;
        c.source.domid = dom;
        c.source.offset = off;
        c.dest.u.gmfn = mfn_at(d, kPlay);
        c.dest.domid = abi::kDomidSelf;
        c.len = len;
        c.flags = abi::kGntcopySourceGref;
        return c;
    }
    // The reverse: from d's own page at kPlay into (dom, ref) at `off`.
    abi::GnttabCopy copy_to(core::Domain* d, uint16_t dom, uint32_t ref, uint16_t off, uint16_t len) {
        abi::GnttabCopy c{};
        c.source.u.gmfn = mfn_at(d, kPlay);
        c.source.domid = abi::kDomidSelf;
        c.dest.u.ref = ref;
        c.dest.domid = dom;
        c.dest.offset = off;
        c.len = len;
        c.flags = abi::kGntcopyDestGref;
        return c;
    }
    int64_t pin_l1(core::Domain* d, core::Mfn m) {
        abi::MmuextOp pin{};
        pin.cmd = uint32_t(abi::MmuextCmd::pin_l1_table);
        pin.arg1.mfn = m;
        put(d, kScratch, pin);
        return hc(d, Hypercall::mmuext_op, kScratch, 1, 0, abi::kDomidSelf);
    }
    // decrease_reservation of one frame: how many went.
    int64_t give_back(core::Domain* d, core::Mfn m) {
        put(d, kScratch + 1024, uint64_t(m));
        abi::XenMemoryReservation res{};
        res.extent_start = kScratch + 1024;
        res.nr_extents = 1;
        res.domid = abi::kDomidSelf;
        put(d, kScratch + 512, res);
        return hc(d, Hypercall::memory_op, uint64_t(abi::MemoryOp::decrease_reservation), kScratch + 512);
    }

    core::Domain* granter = nullptr;
    core::Domain* mapper = nullptr;
    core::Mfn shared = 0;
};

// ---- set_version / get_version -----------------------------------------------------

TEST_F(GrantV2, VersionOneByDefaultAndSwitchesBothWays) {
    uint32_t ver = 0;
    EXPECT_EQ(get_version(granter, abi::kDomidSelf, &ver), 0);
    EXPECT_EQ(ver, 1u);
    EXPECT_EQ(get_version(granter, granter->id, &ver), 0);
    EXPECT_EQ(ver, 1u);
    ASSERT_EQ(core::gnttab_seed(*granter, 0, 0, 0, 0), 0);   // its table's first frame
    uint64_t before = free_frames();

    EXPECT_EQ(set_version(granter, 2, &ver), 0);
    EXPECT_EQ(ver, 2u);
    EXPECT_EQ(get_version(granter, abi::kDomidSelf, &ver), 0);
    EXPECT_EQ(ver, 2u);
    EXPECT_EQ(granter->nr_status_frames, 1u);
    EXPECT_EQ(free_frames(), before - 1) << "one status frame";
    EXPECT_EQ(set_version(granter, 2, &ver), 0) << "the same version: nothing to do";
    EXPECT_EQ(mm_invariant_violations(), "");

    EXPECT_EQ(set_version(granter, 1, &ver), 0);
    EXPECT_EQ(ver, 1u);
    EXPECT_EQ(granter->nr_status_frames, 0u);
    EXPECT_EQ(free_frames(), before) << "the status frame went back";
    // Back and forth keeps no memory.
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(set_version(granter, 2), 0);
        ASSERT_EQ(set_version(granter, 1), 0);
    }
    EXPECT_EQ(free_frames(), before);
}

TEST_F(GrantV2, BadVersionsAndBadPointersAreRefused) {
    uint32_t ver = 0;
    for (uint32_t bad : {0u, 3u, 0xFFFFFFFFu, 0x80000002u}) {
        EXPECT_EQ(set_version(granter, bad, &ver), abi::neg(abi::Errno::einval)) << bad;
        EXPECT_EQ(ver, 1u) << "the version in effect comes back";
    }
    EXPECT_EQ(granter->grant_version, 1);
    // Another domain's version: not the caller's business.
    EXPECT_EQ(get_version(granter, mapper->id), abi::neg(abi::Errno::eperm));
    EXPECT_EQ(get_version(granter, 77), abi::neg(abi::Errno::eperm));
    // Arguments in the hypervisor's range or nowhere.
    for (uint64_t p : {uint64_t(0), uint64_t(0xFFFF800000000000ull), uint64_t(0x0000800000000000ull)}) {
        for (auto op : {GnttabOp::set_version, GnttabOp::get_version, GnttabOp::get_status_frames})
            EXPECT_EQ(hc(granter, Hypercall::grant_table_op, uint64_t(op), p, 1), abi::neg(abi::Errno::efault))
                << std::hex << p << " op " << unsigned(op);
    }
    EXPECT_EQ(granter->grant_version, 1);
}

TEST_F(GrantV2, SwitchRefusedWhileAGrantIsMapped) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(op.status, st(St::okay));
    uint32_t ver = 0;
    EXPECT_EQ(set_version(granter, 2, &ver), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(ver, 1u);
    EXPECT_EQ(granter->nr_status_frames, 0u) << "nothing changed";
    EXPECT_TRUE(grant_flags(granter, kRef) & abi::kGtfWriting) << "the entry as it was";
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::okay));
    EXPECT_EQ(set_version(granter, 2), 0);

    // The same in v2, for a device mapping too (no PTE, still in use).
    ASSERT_EQ(core::gnttab_seed(*granter, kRef, abi::kGtfPermitAccess, mapper->id, shared), 0);
    op = map(mapper, granter->id, kRef, 0, abi::kGntmapDeviceMap | abi::kGntmapReadonly);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(set_version(granter, 1, &ver), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(ver, 2u);
    EXPECT_EQ(unmap2(mapper, op.handle, 0, op.dev_bus_addr).status, st(St::okay));
    EXPECT_EQ(set_version(granter, 1), 0);
}

// As Xen: the reserved references (the console's and xenstore's, mapped
// from the start) may be in use, and are carried over with their flags.
TEST_F(GrantV2, ReservedEntriesAreCarriedOverInUse) {
    grant(granter, 1, mapper->id, shared, true);
    grant(granter, kRef + 1, mapper->id, shared);   // not reserved: cleared by the switch
    auto op = map(mapper, granter->id, 1, kPlay, abi::kGntmapHostMap | abi::kGntmapReadonly);
    ASSERT_EQ(op.status, st(St::okay));
    ASSERT_EQ(set_version(granter, 2), 0);
    abi::GrantEntryV2* e = v2(granter, 1);
    EXPECT_EQ(e->hdr.flags, abi::kGtfPermitAccess | abi::kGtfReadonly) << "in-use flags moved out";
    EXPECT_EQ(e->hdr.domid, mapper->id);
    EXPECT_EQ(e->full_page.frame, shared);
    EXPECT_EQ(status(granter, 1), abi::kGtfReading);
    EXPECT_EQ(v2(granter, kRef + 1)->hdr.flags, 0) << "the rest of the table is cleared";
    for (uint32_t r = 0; r < abi::kGrantEntriesV2PerPage; ++r)
        if (r != 1) ASSERT_TRUE(v2(granter, r)->hdr.flags == 0 && v2(granter, r)->full_page.frame == 0) << r;
    // Back to v1 while still mapped: the in-use flag comes back into the entry.
    ASSERT_EQ(set_version(granter, 1), 0);
    EXPECT_EQ(grant_flags(granter, 1), abi::kGtfPermitAccess | abi::kGtfReadonly | abi::kGtfReading);
    ASSERT_EQ(set_version(granter, 2), 0);
    EXPECT_EQ(unmap(mapper, op.handle, kPlay), st(St::okay));
    EXPECT_EQ(status(granter, 1), 0) << "unmapped: the status word clears";
    EXPECT_EQ(e->hdr.flags, abi::kGtfPermitAccess | abi::kGtfReadonly);
}

TEST_F(GrantV2, WhatV1CannotHoldStaysInV2) {
    granter_v2();
    put_v2(granter, 2, abi::kGtfPermitAccess, mapper->id, uint64_t(1) << 32);   // a frame v1 cannot name
    uint32_t ver = 0;
    EXPECT_EQ(set_version(granter, 1, &ver), abi::neg(abi::Errno::erange));
    EXPECT_EQ(ver, 2u);
    put_v2(granter, 2, abi::kGtfTransitive, mapper->id, 0);
    EXPECT_EQ(set_version(granter, 1), abi::neg(abi::Errno::erange));
    put_v2(granter, 2, 0, 0, 0);
    EXPECT_EQ(set_version(granter, 1), 0);
}

// The guest maps its status frames read-only; the hypervisor's own
// reference keeps them from becoming page tables or leaving the domain, and
// v1 takes them back only once the guest let go of them.
TEST_F(GrantV2, StatusFramesAreTheGuestsToMapNeverPageTables) {
    EXPECT_EQ(status_frames(granter, 0), st(St::okay)) << "none in v1, and none asked for";
    EXPECT_EQ(status_frames(granter, 1), st(St::general_error)) << "none in v1";
    granter_v2();
    ASSERT_EQ(granter->nr_status_frames, 1u);
    core::Mfn sf = granter->status_frames[0];
    EXPECT_EQ(status_frames(granter, 1), st(St::okay));
    EXPECT_EQ(get<uint64_t>(granter, kScratch + 512), sf);
    EXPECT_EQ(core::frame_table()[sf].owner, granter->id);

    // Hostile arguments.
    EXPECT_EQ(status_frames(granter, 2), st(St::general_error));
    EXPECT_EQ(status_frames(granter, 0xFFFFFFFFu), st(St::general_error));
    EXPECT_EQ(status_frames(granter, 1, 0xFFFF800000000000ull), st(St::bad_virt_addr));
    EXPECT_EQ(status_frames(granter, 1, 0x10), st(St::bad_virt_addr));
    EXPECT_EQ(status_frames(granter, 1, 0xFFFFFFFFFFFFFFF8ull), st(St::bad_virt_addr));
    EXPECT_EQ(status_frames(granter, 1, kScratch + 512, mapper->id), st(St::permission_denied));
    long rc = 0;
    status_frames(granter, 1, kScratch + 512, abi::kDomidSelf, 2, &rc);
    EXPECT_EQ(rc, abi::neg(abi::Errno::einval)) << "one operation at a time";

    // Mapped read-only by its guest: allowed; a page table or given back: never.
    uint64_t va = kPlay + 0x5000;
    ASSERT_EQ(hc(granter, Hypercall::update_va_mapping, va, pte::make(sf, pte::kPresent | pte::kUser), 0), 0);
    EXPECT_EQ(mfn_at(granter, va), sf);
    EXPECT_LT(pin_l1(granter, sf), 0);
    EXPECT_LT(pin_l1(granter, granter->grant_frames[0]), 0) << "nor a grant frame";
    EXPECT_EQ(give_back(granter, sf), 0);
    EXPECT_EQ(give_back(granter, granter->grant_frames[0]), 0);
    EXPECT_EQ(mm_invariant_violations(), "");
    // Back to v1 needs the guest to let go of it (as Xen).
    EXPECT_EQ(set_version(granter, 1), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(granter->grant_version, 2);
    ASSERT_EQ(hc(granter, Hypercall::update_va_mapping, va, 0, 0), 0);
    EXPECT_EQ(set_version(granter, 1), 0);
    EXPECT_EQ(core::frame_table()[sf].owner, core::kOwnerNone) << "freed";
}

TEST_F(GrantV2, StatusFramesGrowWithTheTable) {
    // A domain that never had a table switches, then asks for one.
    EXPECT_EQ(set_version(mapper, 2), 0);
    EXPECT_EQ(mapper->nr_status_frames, 0u);
    abi::GnttabSetupTable su{abi::kDomidSelf, core::kMaxGrantFrames, 0, kScratch + 512};
    put(mapper, kScratch, su);
    ASSERT_EQ(hc(mapper, Hypercall::grant_table_op, uint64_t(GnttabOp::setup_table), kScratch, 1), 0);
    EXPECT_EQ(get<abi::GnttabSetupTable>(mapper, kScratch).status, st(St::okay));
    EXPECT_EQ(mapper->nr_grant_frames, core::kMaxGrantFrames);
    EXPECT_EQ(mapper->nr_status_frames, core::gnttab_status_frames_for(core::kMaxGrantFrames));
    EXPECT_EQ(status_frames(mapper, mapper->nr_status_frames), st(St::okay));
    // The last v2 reference exists, the one after it does not.
    uint32_t last = core::kMaxGrantFrames * abi::kGrantEntriesV2PerPage - 1;
    EXPECT_EQ(core::gnttab_seed(*mapper, last, abi::kGtfPermitAccess, granter->id, mfn_at(mapper, kPlay)), 0);
    EXPECT_EQ(core::gnttab_seed(*mapper, last + 1, abi::kGtfPermitAccess, granter->id, mfn_at(mapper, kPlay)),
              abi::neg(abi::Errno::einval));
}

// ---- v2 entries: map, unmap, copy, status words ----------------------------------

TEST_F(GrantV2, MapAndUnmapKeepTheStatusWord) {
    granter_v2();
    ASSERT_EQ(core::gnttab_seed(*granter, kRef, abi::kGtfPermitAccess, mapper->id, shared), 0);
    ASSERT_EQ(core::gnttab_seed(*granter, kRef + 1, abi::kGtfPermitAccess | abi::kGtfReadonly, mapper->id, shared), 0);
    EXPECT_EQ(v2(granter, kRef)->full_page.frame, shared) << "seeded in the v2 layout";

    auto w = map(mapper, granter->id, kRef, kPlay);
    ASSERT_EQ(w.status, st(St::okay));
    EXPECT_EQ(mfn_at(mapper, kPlay), shared);
    EXPECT_TRUE(l1e(mapper, kPlay) & pte::kWritable);
    EXPECT_EQ(status(granter, kRef), kInUse);
    EXPECT_EQ(v2(granter, kRef)->hdr.flags, abi::kGtfPermitAccess) << "v2 never writes the shared entry";
    auto r = map(mapper, granter->id, kRef + 1, kPlay + 0x1000, abi::kGntmapHostMap | abi::kGntmapReadonly);
    ASSERT_EQ(r.status, st(St::okay));
    EXPECT_EQ(status(granter, kRef + 1), abi::kGtfReading);
    EXPECT_EQ(map(mapper, granter->id, kRef + 1, kPlay + 0x2000).status, st(St::permission_denied))
        << "writable map of a read-only grant";
    // While in use the granter cannot end it.
    EXPECT_EQ(core::gnttab_seed(*granter, kRef, 0, 0, 0), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(mm_invariant_violations(), "");

    EXPECT_EQ(unmap(mapper, w.handle, kPlay), st(St::okay));
    EXPECT_EQ(status(granter, kRef), 0);
    EXPECT_EQ(unmap(mapper, r.handle, kPlay + 0x1000), st(St::okay));
    EXPECT_EQ(status(granter, kRef + 1), 0);
    EXPECT_EQ(core::gnttab_seed(*granter, kRef, 0, 0, 0), 0);
}

TEST_F(GrantV2, CopyFullAndSubPage) {
    granter_v2();
    ASSERT_EQ(core::gnttab_seed(*granter, kRef, abi::kGtfPermitAccess, mapper->id, shared), 0);
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef, 16, 100)), st(St::okay));
    EXPECT_EQ(core::frame_va<uint8_t>(mfn_at(mapper, kPlay))[99], uint8_t((16 + 99) * 7));
    EXPECT_EQ(status(granter, kRef), 0) << "a copy leaves nothing in use";

    // A sub-page grant of [100, 150): copies inside its window only.
    put_v2(granter, kRef + 1, abi::kGtfPermitAccess | abi::kGtfSubPage, mapper->id, shared, 100, 50);
    core::Mfn mine = mfn_at(mapper, kPlay);
    std::memset(core::frame_va<uint8_t>(mine), 0, 4096);
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef + 1, 100, 50)), st(St::okay));
    EXPECT_EQ(core::frame_va<uint8_t>(mine)[49], uint8_t(149 * 7));
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef + 1, 120, 30)), st(St::okay));
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef + 1, 99, 10)), st(St::general_error));
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef + 1, 120, 31)), st(St::general_error));
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef + 1, 4000, 200)), st(St::bad_copy_arg));
    // Writing into it, the same window.
    std::memset(core::frame_va<uint8_t>(mine), 0xEE, 4096);
    EXPECT_EQ(copy(mapper, copy_to(mapper, granter->id, kRef + 1, 110, 40)), st(St::okay));
    EXPECT_EQ(core::frame_va<uint8_t>(shared)[110], 0xEE);
    EXPECT_EQ(core::frame_va<uint8_t>(shared)[150], uint8_t(150 * 7)) << "nothing past the window";
    EXPECT_EQ(copy(mapper, copy_to(mapper, granter->id, kRef + 1, 140, 11)), st(St::general_error));
    EXPECT_EQ(core::frame_va<uint8_t>(shared)[99], uint8_t(99 * 7));
    // A sub-page grant is never mapped (as Xen), read-only or not.
    EXPECT_EQ(map(mapper, granter->id, kRef + 1, kPlay + 0x1000, abi::kGntmapHostMap | abi::kGntmapReadonly).status,
              st(St::general_error));
    EXPECT_EQ(map(mapper, granter->id, kRef + 1, 0, abi::kGntmapDeviceMap | abi::kGntmapReadonly).status,
              st(St::general_error));
    EXPECT_EQ(status(granter, kRef + 1), 0);
}

// Every value the hypervisor reads from a (hostile) v2 table is checked.
TEST_F(GrantV2, HostileEntriesAreRefused) {
    granter_v2();
    core::Domain* third = build("third");
    ASSERT_NE(third, nullptr);
    core::Mfn theirs = mfn_at(mapper, kPlay);          // the mapper's own frame, granted by the granter
    core::Mfn others = mfn_at(third, kPlay);           // a third domain's
    uint16_t permit = abi::kGtfPermitAccess, to = mapper->id;
    struct Case {
        const char* what;
        uint16_t flags;
        uint16_t domid;
        uint64_t frame;
        uint16_t off, len;
        int16_t map_status, copy_status;
    } cases[] = {
        {"another domain's frame", permit, to, others, 0, 0, st(St::bad_page), st(St::bad_page)},
        {"the grantee's own frame", permit, to, theirs, 0, 0, st(St::bad_page), st(St::bad_page)},
        {"a hypervisor frame", permit, to, 0, 0, 0, st(St::bad_page), st(St::bad_page)},
        {"beyond RAM", permit, to, fake::nframes(), 0, 0, st(St::bad_page), st(St::bad_page)},
        {"a 64-bit frame", permit, to, (uint64_t(1) << 63) | shared, 0, 0, st(St::bad_page), st(St::bad_page)},
        {"granted to somebody else", permit, third->id, shared, 0, 0, st(St::permission_denied),
         st(St::permission_denied)},
        {"accept-transfer", abi::kGtfAcceptTransfer, to, shared, 0, 0, st(St::permission_denied),
         st(St::permission_denied)},
        {"invalid", 0, to, shared, 0, 0, st(St::permission_denied), st(St::permission_denied)},
        {"sub-page past the page", uint16_t(permit | abi::kGtfSubPage), to, shared, 4000, 200, st(St::general_error),
         st(St::general_error)},
        {"sub-page wrapping 16 bits", uint16_t(permit | abi::kGtfSubPage), to, shared, 0xFFFF, 0xFFFF,
         st(St::general_error), st(St::general_error)},
        {"sub-page of another domain's frame", uint16_t(permit | abi::kGtfSubPage), to, others, 0, 64,
         st(St::general_error), st(St::bad_page)},
        {"transitive", abi::kGtfTransitive, to, shared, 0, 0, st(St::general_error), st(St::general_error)},
    };
    for (const Case& c : cases) {
        put_v2(granter, kRef, c.flags, c.domid, c.frame, c.off, c.len);
        if (c.flags == abi::kGtfTransitive) {   // trans_domid/gref: a grant the granter could name
            v2(granter, kRef)->transitive.trans_domid = third->id;
            v2(granter, kRef)->transitive.gref = kRef;
        }
        EXPECT_EQ(map(mapper, granter->id, kRef, kPlay, abi::kGntmapHostMap | abi::kGntmapReadonly).status,
                  c.map_status)
            << c.what;
        EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, kRef, 0, 64)), c.copy_status) << c.what;
        EXPECT_EQ(status(granter, kRef), 0) << c.what;
        EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 0u) << c.what;
    }
    // References past a v2 table (which holds half what a v1 one does).
    EXPECT_EQ(map(mapper, granter->id, abi::kGrantEntriesV2PerPage, kPlay).status, st(St::bad_gntref));
    EXPECT_EQ(copy(mapper, copy_from(mapper, granter->id, 0xFFFFFFFFu, 0, 8)), st(St::bad_gntref));
    EXPECT_EQ(mfn_at(mapper, kPlay), theirs) << "nothing was mapped";
}

// ---- GNTMAP_device_map -------------------------------------------------------------

TEST_F(GrantV2, DeviceMapHoldsTheGrantWithoutAPte) {
    grant(granter, kRef, mapper->id, shared);
    core::FrameTable& ft = core::frame_table();
    uint32_t count = ft[shared].count, tcount = ft[shared].type_count;
    uint64_t pte_before = l1e(mapper, kPlay);
    auto op = map(mapper, granter->id, kRef, kPlay, abi::kGntmapDeviceMap);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(op.dev_bus_addr, shared << 12) << "the machine address, as Xen PV without an IOMMU";
    EXPECT_EQ(l1e(mapper, kPlay), pte_before) << "no page-table mapping";
    EXPECT_EQ(grant_flags(granter, kRef) & kInUse, kInUse);
    EXPECT_EQ(ft[shared].count, count + 1);
    EXPECT_EQ(ft[shared].type_count, tcount + 1);
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 1u);
    // The granter cannot make it a page table or end the grant meanwhile.
    EXPECT_LT(pin_l1(granter, shared), 0);
    EXPECT_EQ(core::gnttab_seed(*granter, kRef, 0, 0, 0), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(mm_invariant_violations(), "");

    // Unmapped only by its bus address (Xen: a zero address names nothing).
    EXPECT_EQ(unmap2(mapper, op.handle, 0, 0).status, st(St::okay));
    EXPECT_TRUE(core::maptrack_at(*mapper, op.handle)->used) << "still held";
    EXPECT_EQ(unmap2(mapper, op.handle, kPlay, 0).status, st(St::okay)) << "no host part to drop";
    EXPECT_TRUE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_EQ(unmap2(mapper, op.handle, 0, op.dev_bus_addr + 4096).status, st(St::general_error));
    EXPECT_EQ(unmap2(mapper, op.handle, 0, 1).status, st(St::general_error));
    EXPECT_TRUE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_EQ(unmap2(mapper, op.handle, 0, op.dev_bus_addr).status, st(St::okay));
    EXPECT_FALSE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_EQ(grant_flags(granter, kRef) & kInUse, 0);
    EXPECT_EQ(ft[shared].count, count);
    EXPECT_EQ(ft[shared].type_count, tcount);
    EXPECT_EQ(unmap2(mapper, op.handle, 0, op.dev_bus_addr).status, st(St::bad_handle));
}

TEST_F(GrantV2, DeviceAndHostMapGoPartByPart) {
    grant(granter, kRef, mapper->id, shared);
    core::FrameTable& ft = core::frame_table();
    uint32_t count = ft[shared].count;
    auto op = map(mapper, granter->id, kRef, kPlay, abi::kGntmapDeviceMap | abi::kGntmapHostMap);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(mfn_at(mapper, kPlay), shared);
    EXPECT_EQ(ft[shared].count, count + 2) << "one reference per part";
    EXPECT_EQ(mm_invariant_violations(), "");
    // The host part by its address: the PTE goes, the grant stays in use.
    EXPECT_EQ(unmap2(mapper, op.handle, kPlay, 0).status, st(St::okay));
    EXPECT_EQ(l1e(mapper, kPlay) & pte::kPresent, 0u);
    EXPECT_EQ(grant_flags(granter, kRef) & kInUse, kInUse);
    EXPECT_EQ(ft[shared].count, count + 1);
    EXPECT_EQ(mm_invariant_violations(), "");
    EXPECT_EQ(unmap2(mapper, op.handle, kPlay, op.dev_bus_addr).status, st(St::okay))
        << "the host part is gone: its address is ignored";
    EXPECT_FALSE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_EQ(grant_flags(granter, kRef) & kInUse, 0);
    EXPECT_EQ(ft[shared].count, count);

    // Both at once, by both addresses.
    op = map(mapper, granter->id, kRef, kPlay, abi::kGntmapDeviceMap | abi::kGntmapHostMap);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(unmap2(mapper, op.handle, kPlay + 0x1000, op.dev_bus_addr).status, st(St::bad_virt_addr))
        << "a wrong host address refuses the whole operation";
    EXPECT_TRUE(core::maptrack_at(*mapper, op.handle)->device);
    EXPECT_EQ(unmap2(mapper, op.handle, kPlay, op.dev_bus_addr).status, st(St::okay));
    EXPECT_FALSE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_EQ(ft[shared].count, count);
}

TEST_F(GrantV2, DeviceMapChecksLikeAHostMap) {
    grant(granter, kRef, mapper->id, shared, true);
    uint32_t dev = abi::kGntmapDeviceMap;
    EXPECT_EQ(map(mapper, granter->id, kRef, 0, dev).status, st(St::permission_denied)) << "writable, read-only grant";
    // A page table of the granter's: read-only only.
    core::Mfn l1 = pte_ma(granter, kPlay) >> 12;
    grant(granter, kRef + 1, mapper->id, l1);
    EXPECT_EQ(map(mapper, granter->id, kRef + 1, 0, dev).status, st(St::bad_page));
    auto ro = map(mapper, granter->id, kRef + 1, 0, dev | abi::kGntmapReadonly);
    ASSERT_EQ(ro.status, st(St::okay));
    EXPECT_EQ(unmap2(mapper, ro.handle, 0, ro.dev_bus_addr).status, st(St::okay));
    // The capability's rights, as for a host map.
    core::Domain* weak = build("weak");
    ASSERT_NE(weak, nullptr);
    grant(granter, kRef + 2, weak->id, shared);
    EXPECT_EQ(map(weak, granter->id, kRef + 2, 0, dev | abi::kGntmapReadonly).status, st(St::permission_denied))
        << "no capability";
    give(weak, cap::Type::grant, cap::right::map_ro, granter->id);
    EXPECT_EQ(map(weak, granter->id, kRef + 2, 0, dev).status, st(St::permission_denied)) << "map-ro only";
    auto ok = map(weak, granter->id, kRef + 2, 0, dev | abi::kGntmapReadonly);
    EXPECT_EQ(ok.status, st(St::okay));
    EXPECT_EQ(grant_flags(granter, kRef + 2) & kInUse, abi::kGtfReading);
    // Taken apart with it held: released, the grant free again.
    destroy(weak);
    EXPECT_EQ(grant_flags(granter, kRef + 2) & kInUse, 0);
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 0u);
}

TEST_F(GrantV2, GranterGoneTakesADeviceMappingWithIt) {
    grant(granter, kRef, mapper->id, shared);
    auto op = map(mapper, granter->id, kRef, 0, abi::kGntmapDeviceMap);
    ASSERT_EQ(op.status, st(St::okay));
    destroy(granter);
    EXPECT_FALSE(core::maptrack_at(*mapper, op.handle)->used);
    EXPECT_NE(fake::log().find("nothing left behind"), std::string::npos) << fake::log();
    EXPECT_EQ(unmap2(mapper, op.handle, 0, op.dev_bus_addr).status, st(St::bad_handle));
}

// ---- a domain's own grants -----------------------------------------------------------

TEST_F(GrantV2, OwnGrantsMapAndCopyWithoutACapability) {
    core::Domain* self = build("self");
    ASSERT_NE(self, nullptr);
    ASSERT_EQ(core::caps::allows(*self, cap::Type::grant, self->id, cap::right::map_ro), false);
    core::Mfn page = mfn_at(self, kPlay);
    core::frame_va<uint8_t>(page)[5] = 0x42;
    grant(self, kRef, self->id, page);
    grant(self, kRef + 1, granter->id, page);   // its own page, granted to somebody else

    auto op = map(self, self->id, kRef, kPlay + 0x1000);
    ASSERT_EQ(op.status, st(St::okay));
    EXPECT_EQ(mfn_at(self, kPlay + 0x1000), page);
    EXPECT_EQ(get<uint8_t>(self, kPlay + 0x1000 + 5), 0x42);
    EXPECT_EQ(grant_flags(self, kRef) & kInUse, kInUse);
    EXPECT_EQ(core::gnttab_mapped_by_others(*self), 0u) << "its own mapping is not another's";
    EXPECT_EQ(mm_invariant_violations(), "");
    // The entry's checks still apply: not granted to it, DOMID_SELF (no domain id).
    EXPECT_EQ(map(self, self->id, kRef + 1, kPlay + 0x2000).status, st(St::permission_denied));
    EXPECT_EQ(map(self, abi::kDomidSelf, kRef, kPlay + 0x2000).status, st(St::bad_domain));
    EXPECT_EQ(map(self, self->id, kRef + 2, kPlay + 0x2000).status, st(St::permission_denied)) << "an empty entry";
    EXPECT_EQ(unmap(self, op.handle, kPlay + 0x1000), st(St::okay));
    EXPECT_EQ(grant_flags(self, kRef) & kInUse, 0);

    // Copies, by its id or DOMID_SELF, either direction.
    for (uint16_t dom : {uint16_t(self->id), abi::kDomidSelf}) {
        abi::GnttabCopy c = copy_from(self, dom, kRef, 5, 1);
        c.dest.offset = 9;
        EXPECT_EQ(copy(self, c), st(St::okay));
        EXPECT_EQ(core::frame_va<uint8_t>(page)[9], 0x42);
        EXPECT_EQ(copy(self, copy_to(self, dom, kRef, 100, 8)), st(St::okay));
        EXPECT_EQ(copy(self, copy_from(self, dom, kRef + 1, 0, 8)), st(St::permission_denied))
            << "granted to somebody else";
    }
}

// Taking apart a domain that maps its own grants (host, read-only, device,
// in v2) releases each mapping exactly once; every frame comes back.
TEST_F(GrantV2, TeardownWithSelfMappings) {
    core::Domain* self = build("self");
    ASSERT_NE(self, nullptr);
    ASSERT_EQ(core::gnttab_seed(*self, 0, 0, 0, 0), 0);
    ASSERT_EQ(set_version(self, 2), 0);
    core::Mfn page = mfn_at(self, kPlay), page2 = mfn_at(self, kPlay + 0x1000);
    ASSERT_EQ(core::gnttab_seed(*self, kRef, abi::kGtfPermitAccess, self->id, page), 0);
    ASSERT_EQ(core::gnttab_seed(*self, kRef + 1, abi::kGtfPermitAccess | abi::kGtfReadonly, self->id, page2), 0);
    ASSERT_EQ(core::gnttab_seed(*self, kRef + 2, abi::kGtfPermitAccess, mapper->id, page2), 0);
    give(mapper, cap::Type::grant, cap::right::map_ro | cap::right::map_rw, self->id);
    ASSERT_EQ(map(self, self->id, kRef, kPlay + 0x2000).status, st(St::okay));
    ASSERT_EQ(map(self, self->id, kRef, kPlay + 0x3000, abi::kGntmapHostMap | abi::kGntmapReadonly).status,
              st(St::okay));
    ASSERT_EQ(map(self, self->id, kRef + 1, 0, abi::kGntmapDeviceMap | abi::kGntmapReadonly).status, st(St::okay));
    ASSERT_EQ(map(self, self->id, kRef, kPlay + 0x4000, abi::kGntmapDeviceMap | abi::kGntmapHostMap).status,
              st(St::okay));
    ASSERT_EQ(map(mapper, self->id, kRef + 2, kPlay).status, st(St::okay));
    // And it maps the granter's grant, and its own status frame read-only.
    grant(granter, kRef, self->id, shared);
    give(self, cap::Type::grant, cap::right::map_rw, granter->id);
    ASSERT_EQ(map(self, granter->id, kRef, kPlay + 0x5000).status, st(St::okay));
    ASSERT_EQ(hc(self, Hypercall::update_va_mapping, kPlay + 0x6000,
                 pte::make(self->status_frames[0], pte::kPresent | pte::kUser), 0),
              0);
    EXPECT_EQ(status(self, kRef), kInUse);
    EXPECT_EQ(status(self, kRef + 1), abi::kGtfReading);
    EXPECT_EQ(core::gnttab_mapped_by_others(*self), 1u);
    EXPECT_EQ(set_version(self, 1), abi::neg(abi::Errno::ebusy));
    EXPECT_EQ(mm_invariant_violations(), "");

    fake::log().clear();
    destroy(self);
    EXPECT_TRUE(is_gone(self));
    EXPECT_NE(fake::log().find("nothing left behind"), std::string::npos) << fake::log();
    EXPECT_EQ(core::held_frames(), 0u);
    EXPECT_EQ(l1e(mapper, kPlay) & pte::kPresent, 0u) << "the mapper's mapping went with it";
    EXPECT_FALSE(grant_flags(granter, kRef) & kInUse) << "its mapping of the granter's grant went too";
    EXPECT_EQ(core::gnttab_mapped_by_others(*granter), 0u);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(mapper);
    destroy(granter);
    EXPECT_EQ(free_frames(), free_at_start) << "every frame back";
    EXPECT_EQ(core::held_frames(), 0u);
}

// The same when the one mapping its own grants is stopped first (waiting for
// its builder), then destroyed.
TEST_F(GrantV2, StoppedSelfMapperTakenApartLater) {
    grant(mapper, kRef, mapper->id, mfn_at(mapper, kPlay));
    ASSERT_EQ(map(mapper, mapper->id, kRef, kPlay + 0x1000).status, st(St::okay));
    core::domain_shutdown(*mapper, abi::ShutdownReason::crash);
    ASSERT_EQ(mapper->state, core::DomainState::stopped);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(mapper);
    destroy(granter);
    EXPECT_EQ(free_frames(), free_at_start);
    EXPECT_EQ(core::held_frames(), 0u);
}

}  // namespace
