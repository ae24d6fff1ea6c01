// Domain ids and per-domain memory (issue 16): ids up to Xen's limit found
// in O(1), not reused at once; every byte the hypervisor takes for a
// domain's state given back when it is gone; what a minimal domain costs.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include <abi/event_channel.hpp>
#include <abi/moat.hpp>
#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/kmem.hpp>
#include <core/memory.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;

struct Counters {
    core::kmem::Stats kmem;
    uint64_t free_frames, domain_bytes, table_bytes;
    unsigned in_use;
};
Counters counters() {
    return Counters{core::kmem::stats(), core::frame_allocator().free_frames(), core::domain_bytes(),
                    core::domain_table_bytes(), core::domains_in_use()};
}
void expect_same(const Counters& a, const Counters& b) {
    EXPECT_EQ(a.kmem.frames, b.kmem.frames);
    EXPECT_EQ(a.kmem.objects, b.kmem.objects);
    EXPECT_EQ(a.kmem.bytes, b.kmem.bytes);
    EXPECT_EQ(a.free_frames, b.free_frames);
    EXPECT_EQ(a.domain_bytes, b.domain_bytes);
    EXPECT_EQ(a.table_bytes, b.table_bytes);
    EXPECT_EQ(a.in_use, b.in_use);
    EXPECT_TRUE(core::kmem::check_invariants());
    EXPECT_TRUE(core::frame_allocator().check_invariants());
}

class DomainTable : public MultiDomainTest {};

// Many domains made and taken apart in random order, with state of every
// kind allocated on demand (I/O bitmaps, CSpaces of many sizes): the
// allocator's counters, the free frames and the bytes held for domains end
// where they started, and the kernel's own frames are never a guest's.
TEST_F(DomainTable, ManyDomainsComeAndGoAndEveryByteComesBack) {
    Counters start = counters();
    std::mt19937 rng(16);
    std::vector<core::Domain*> live;
    std::set<unsigned> ids_seen;
    for (unsigned round = 0; round < 3000; ++round) {
        bool make = live.empty() || (live.size() < 400 && rng() % 3 != 0);
        if (make) {
            uint32_t slots = 1 + rng() % 512;   // the builder gives no domain more (kMaxSlots is its own)
            core::Domain* d = core::domain_alloc("churn", slots);
            ASSERT_NE(d, nullptr) << "round " << round;
            ASSERT_EQ(core::domain_at(d->id), d);
            ASSERT_EQ(d->cspace->size(), slots);
            if (rng() % 4 == 0) {   // an IoPorts capability: its bitmap exists while it holds one
                ASSERT_GE(core::caps::give_root(*d, cap::Capability{cap::Type::io_ports, cap::right::use, 0x3F8, 8, 0}),
                          0);
                const uint8_t* bm = core::io_bitmap(*d);
                ASSERT_NE(bm, nullptr);
                EXPECT_EQ(bm[0x3F8 / 8], 0x00);
                EXPECT_EQ(bm[0x400 / 8], 0xFF);
            } else {
                EXPECT_EQ(core::io_bitmap(*d), nullptr);
                EXPECT_EQ(d->io_bitmap, nullptr) << "no bitmap without ports";
            }
            ids_seen.insert(d->id);
            live.push_back(d);
        } else {
            size_t i = rng() % live.size();
            core::Domain* d = live[i];
            core::DomId id = d->id;
            live.erase(live.begin() + long(i));
            core::domain_destroy_now(*d);
            EXPECT_EQ(core::domain_at(id), nullptr);
        }
        EXPECT_EQ(core::domains_in_use(), start.in_use + live.size());
    }
    EXPECT_GT(ids_seen.size(), 1000u) << "ids are not reused at once";
    // The hypervisor's frames: never a domain's.
    for (core::Mfn m = 0; m < core::frame_table().nframes(); ++m) {
        core::DomId o = core::frame_table()[m].owner;
        EXPECT_TRUE(o == core::kOwnerXen || o == core::kOwnerNone) << m;
        if (o != core::kOwnerXen && o != core::kOwnerNone) break;
    }
    EXPECT_TRUE(core::kmem::check_invariants());
    for (core::Domain* d : live) core::domain_destroy_now(*d);
    expect_same(start, counters());
    EXPECT_EQ(core::kmem::stats().frames, 0u);
    EXPECT_EQ(core::domain_bytes(), 0u);
}

// Ids: the next free one after the last handed out, wrapping; a gone id
// names nobody; Xen's reserved ids and beyond are never a domain.
TEST_F(DomainTable, IdsAreNotReusedAtOnceAndReservedOnesNameNobody) {
    core::Domain* a = core::domain_alloc("a", 1);
    core::Domain* b = core::domain_alloc("b", 1);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(b->id, a->id + 1);
    core::DomId aid = a->id;
    core::domain_destroy_now(*a);
    EXPECT_EQ(core::domain_at(aid), nullptr);
    core::Domain* c = core::domain_alloc("c", 1);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->id, b->id + 1) << "not the id just freed";
    for (unsigned id : {unsigned(abi::kDomidFirstReserved), unsigned(abi::kDomidSelf), 0x7FF1u, 0x7FF2u, 0x7FF4u,
                        0xFFFFu, 0x10000u, ~0u})
        EXPECT_EQ(core::domain_at(id), nullptr) << id;
    core::domain_destroy_now(*b);
    core::domain_destroy_now(*c);
}

// Every id of Xen's range can be had, and none beyond: 32,752 domains at
// once (tiny ones, on a machine big enough for them), then all gone.
// Disabled by default: taking 32,752 domains apart costs O(N^2) today
// (each teardown scans every registered CSpace for capabilities naming the
// domain), 218 s under ASan on a busy 2-core machine (it passed so on
// 2026-12-07). Run with --gtest_also_run_disabled_tests.
TEST(DomainIds, DISABLED_EveryIdOfXensRangeAndNoMore) {
    // A Domain takes an 8 KiB block, its one-slot CSpace (with its index) a
    // slab object of at most 256 bytes, the id table 64 frames.
    fake::reset(uint64_t(core::kMaxDomains) * 2 + core::kMaxDomains / 16 + 256);
    Counters start = counters();
    std::vector<core::Domain*> all;
    all.reserve(core::kMaxDomains);
    while (core::Domain* d = core::domain_alloc("d", 1)) all.push_back(d);
    ASSERT_EQ(all.size(), core::kMaxDomains) << "ran out of memory before ids";
    std::vector<bool> seen(core::kMaxDomains);
    for (core::Domain* d : all) {
        ASSERT_LT(d->id, abi::kDomidFirstReserved);
        EXPECT_FALSE(seen[d->id]);
        seen[d->id] = true;
        EXPECT_EQ(core::domain_at(d->id), d);
    }
    EXPECT_EQ(core::domains_in_use(), core::kMaxDomains);
    // Full: refused, whatever memory is left.
    EXPECT_EQ(core::domain_alloc("one too many", 1), nullptr);
    // One goes: its id (and only it) can be had again, after a full wrap.
    core::DomId freed = all[1234]->id;
    core::domain_destroy_now(*all[1234]);
    core::Domain* again = core::domain_alloc("again", 1);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->id, freed);
    all[1234] = again;
    for (core::Domain* d : all) core::domain_destroy_now(*d);
    expect_same(start, counters());
    EXPECT_EQ(core::domain_table_bytes(), 0u);
}

// A minimal PV domain (one vCPU, a few event channels, a 16-slot CSpace,
// no maptrack, no I/O ports): what the hypervisor holds for it, shared info
// frame included, is within 16 KiB; physinfo reports the sum; mapping
// grants and binding many ports grow it chunk by chunk, and all of it goes
// back with the domain.
TEST_F(DomainTable, AMinimalDomainCostsAtMost16KiB) {
    auto r = core::build_pv_domain(core::BuildSpec{"tiny", image.data(), image.size(), "", kPages, 256, 16});
    ASSERT_TRUE(r.ok());
    core::Domain* d = *r;
    // A handful of ports: the console's, the store's, a timer VIRQ.
    for (int i = 0; i < 3; ++i) {
        abi::EvtchnAllocUnbound a{abi::kDomidSelf, abi::kDomidSelf, 0};
        put(d, kScratch, a);
        ASSERT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::alloc_unbound), kScratch), 0);
    }
    std::printf("sizeof(Domain) %zu (its kmem block %zu), sizeof(Vcpu) %zu; minimal domain: %lu bytes\n",
                sizeof(core::Domain), core::kmem::footprint(sizeof(core::Domain)), sizeof(core::Vcpu), d->hv_bytes);
    EXPECT_LE(d->hv_bytes, 16384u);
    EXPECT_EQ(d->hv_bytes, core::kmem::footprint(sizeof(core::Domain)) + core::kmem::footprint(16 * sizeof(cap::Slot)) +
                               core::kmem::footprint(core::kEvtchnBucketPorts * sizeof(core::Channel)) + 4096);
    EXPECT_EQ(d->io_bitmap, nullptr);
    EXPECT_EQ(d->maptrack_dir, nullptr);
    EXPECT_EQ(core::domain_bytes(), d->hv_bytes);

    // More ports than a bucket holds: one bucket more.
    uint64_t before = d->hv_bytes;
    for (unsigned i = 0; i < core::kEvtchnBucketPorts; ++i) {
        abi::EvtchnAllocUnbound a{abi::kDomidSelf, abi::kDomidSelf, 0};
        put(d, kScratch, a);
        ASSERT_EQ(hc(d, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::alloc_unbound), kScratch), 0);
    }
    EXPECT_EQ(d->hv_bytes, before + core::kmem::footprint(core::kEvtchnBucketPorts * sizeof(core::Channel)));
    EXPECT_NE(d->evtchn_bucket[1], nullptr);
    EXPECT_EQ(d->evtchn_bucket[2], nullptr);
    EXPECT_EQ(core::port_state(*d, core::kMaxEvtchnPorts - 1), core::ChannelState::free);
    EXPECT_EQ(core::port_channel(*d, core::kMaxEvtchnPorts), nullptr);

    // A grant of another domain's mapped: its maptrack directory and first chunk.
    core::Domain* g = build("granter");
    ASSERT_NE(g, nullptr);
    // physinfo says the same (its caller needs an Untyped capability).
    ASSERT_GE(core::caps::give_root(*g, cap::Capability{cap::Type::untyped, cap::right::use, 0,
                                                        core::frame_table().nframes(), 0}),
              0);
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::physinfo);
    put(g, kScratch, op);
    ASSERT_EQ(hc(g, Hypercall::domctl, kScratch), 0);
    EXPECT_EQ(get<abi::MoatDomctl>(g, kScratch).u.physinfo.hv_domain_bytes, core::domain_bytes());

    give(d, cap::Type::grant, cap::right::map_rw | cap::right::map_ro, g->id);
    grant(g, 8, d->id, mfn_at(g, kPlay));
    before = d->hv_bytes;
    auto m = map(d, g->id, 8, kPlay);
    ASSERT_EQ(m.status, int16_t(abi::GntStatus::okay));
    EXPECT_EQ(d->hv_bytes, before + core::kmem::footprint(core::kMaptrackChunks * sizeof(core::Maptrack*)) +
                               core::kmem::footprint(core::kMaptrackChunk * sizeof(core::Maptrack)));
    EXPECT_EQ(d->maptrack_used, 1u);
    EXPECT_EQ(mm_invariant_violations(), "");

    // The granter goes first (its grant mapped by d), then d: nothing of
    // either is left anywhere.
    destroy(g);
    EXPECT_EQ(d->maptrack_used, 0u);
    destroy(d);
    EXPECT_EQ(core::domain_bytes(), 0u);
    EXPECT_EQ(core::kmem::stats().frames, 0u);
    EXPECT_EQ(core::kmem::stats().objects, 0u);
    EXPECT_EQ(free_frames(), free_at_start);
}

}  // namespace
