// cap_op on the host, as a guest issues it: operations on its own CSpace,
// placing capabilities into another domain's (install-caps), revoke across
// every CSpace (preemptible), and the capabilities naming a domain going
// with it. Each refusal changes nothing.

#include <gtest/gtest.h>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::CapOp;
using abi::Hypercall;

constexpr int64_t kEperm = -1, kEnoent = -2, kEinval = -22, kEexist = -17, kEsrch = -3;

class CapOps : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        a = build("a");
        b = build("b");
        c = build("c");
        ASSERT_TRUE(a && b && c);
    }

    int64_t cap_op(core::Domain* d, CapOp op, abi::CapOpArgs& args, unsigned* continued = nullptr) {
        put(d, kScratch, args);
        int64_t r = hc(d, Hypercall::cap_op, uint64_t(op), kScratch, 0, 0, 0, continued);
        args = get<abi::CapOpArgs>(d, kScratch);
        return r;
    }
    abi::CapOpArgs args(uint32_t src, uint32_t dst, core::DomId dom = abi::kDomidSelf, uint32_t rights = ~0u,
                        uint64_t badge = 0) {
        abi::CapOpArgs x{};
        x.src_slot = src;
        x.dst_slot = dst;
        x.domain = dom;
        x.rights = rights;
        x.badge = badge;
        return x;
    }
    // The slot holding a capability of `t` naming `object` in d's CSpace, or -1.
    long slot_of(core::Domain* d, cap::Type t, uint64_t object) {
        for (uint32_t i = 0; i < d->cspace->size(); ++i) {
            const cap::Capability& x = d->cspace->slot(i)->cap();
            if (x.type == t && x.object == object) return i;
        }
        return -1;
    }

    core::Domain *a = nullptr, *b = nullptr, *c = nullptr;
};

TEST_F(CapOps, CopyNeverAddsRights) {
    give(a, cap::Type::grant, cap::right::map_ro | cap::right::copy, b->id);
    long s = slot_of(a, cap::Type::grant, b->id);
    ASSERT_GE(s, 0);
    auto x = args(uint32_t(s), 20, abi::kDomidSelf, cap::right::map_ro | cap::right::map_rw);
    ASSERT_EQ(cap_op(a, CapOp::copy, x), 0);
    auto in = args(20, 0);
    ASSERT_EQ(cap_op(a, CapOp::inspect, in), 0);
    EXPECT_EQ(in.cap.type, uint32_t(abi::CapType::grant));
    EXPECT_EQ(in.cap.rights, uint32_t(cap::right::map_ro)) << "map_rw was never the source's";
    EXPECT_EQ(in.cap.object, b->id);
    // The copy lacks `copy`: it cannot be copied further.
    auto again = args(20, 21);
    EXPECT_EQ(cap_op(a, CapOp::copy, again), kEperm);
}

TEST_F(CapOps, BadSlotsAreRefused) {
    give(a, cap::Type::event, cap::right::bind, b->id);
    long s = slot_of(a, cap::Type::event, b->id);
    ASSERT_GE(s, 0);
    auto beyond = args(100000, 5);
    EXPECT_EQ(cap_op(a, CapOp::copy, beyond), kEinval);
    auto empty = args(40, 41);
    EXPECT_EQ(cap_op(a, CapOp::copy, empty), kEnoent);
    auto occupied = args(uint32_t(s), uint32_t(s));
    EXPECT_EQ(cap_op(a, CapOp::copy, occupied), kEexist);
    auto dst_beyond = args(uint32_t(s), 0xFFFFFFFFu);
    EXPECT_EQ(cap_op(a, CapOp::copy, dst_beyond), kEinval);
    auto mint0 = args(uint32_t(s), 30, abi::kDomidSelf, ~0u, 0);
    EXPECT_EQ(cap_op(a, CapOp::mint, mint0), kEinval) << "badge 0";
    EXPECT_EQ(hc(a, Hypercall::cap_op, 99, kScratch), -38) << "ENOSYS";
    EXPECT_EQ(hc(a, Hypercall::cap_op, uint64_t(CapOp::inspect), 0xFFFF830000000000ull), -14) << "EFAULT";
    EXPECT_EQ(slot_of(a, cap::Type::event, b->id), s) << "nothing moved";
}

TEST_F(CapOps, InstallingIntoAnotherNeedsInstallCaps) {
    give(a, cap::Type::grant, cap::right::map_ro | cap::right::copy, b->id);
    long s = slot_of(a, cap::Type::grant, b->id);
    auto x = args(uint32_t(s), 3, c->id);
    EXPECT_EQ(cap_op(a, CapOp::copy, x), kEperm);
    EXPECT_EQ(slot_of(c, cap::Type::grant, b->id), -1);
    auto rm = args(0, 0, c->id);
    EXPECT_EQ(cap_op(a, CapOp::remove, rm), kEperm);
    give(a, cap::Type::domain, cap::right::install_caps, c->id);
    EXPECT_EQ(cap_op(a, CapOp::copy, x), 0);
    EXPECT_EQ(slot_of(c, cap::Type::grant, b->id), 3);
    // Move and revoke act on the caller's own CSpace only.
    auto mv = args(uint32_t(s), 9, c->id);
    EXPECT_EQ(cap_op(a, CapOp::move, mv), kEinval);
    // A stopped domain takes no capabilities.
    core::domain_shutdown(*c, abi::ShutdownReason::poweroff);
    auto y = args(uint32_t(s), 4, c->id);
    EXPECT_EQ(cap_op(a, CapOp::copy, y), kEsrch);
}

TEST_F(CapOps, RevokeReachesEveryCSpaceAndIsPreemptible) {
    // A big CSpace for b, full of capabilities derived from a's one.
    core::Domain* big = nullptr;
    {
        auto r = core::build_pv_domain(core::BuildSpec{"big", image.data(), image.size(), "", kPages, 256, 512});
        ASSERT_TRUE(r.ok());
        big = *r;
    }
    give(a, cap::Type::grant, cap::right::map_ro | cap::right::copy, b->id);
    give(a, cap::Type::domain, cap::right::install_caps, big->id);
    long s = slot_of(a, cap::Type::grant, b->id);
    ASSERT_GE(s, 0);
    for (uint32_t i = 0; i < 500; ++i) {
        auto x = args(uint32_t(s), i, big->id);
        ASSERT_EQ(cap_op(a, CapOp::copy, x), 0) << i;
    }
    unsigned continued = 0;
    auto rv = args(uint32_t(s), 0);
    EXPECT_EQ(cap_op(a, CapOp::revoke, rv, &continued), 0);
    EXPECT_GE(continued, 1u) << "500 deletions do not fit one invocation";
    EXPECT_EQ(slot_of(big, cap::Type::grant, b->id), -1);
    EXPECT_EQ(slot_of(a, cap::Type::grant, b->id), s) << "revoke keeps the original";
}

TEST_F(CapOps, CapabilitiesNamingADomainGoWithIt) {
    give(a, cap::Type::grant, cap::right::map_ro, b->id);
    give(c, cap::Type::event, cap::right::bind, b->id);
    give(b, cap::Type::event, cap::right::bind, a->id);
    destroy(b);
    EXPECT_EQ(slot_of(a, cap::Type::grant, b->id), -1);
    EXPECT_EQ(slot_of(c, cap::Type::event, b->id), -1);
    EXPECT_EQ(b->cspace, nullptr);
    // A new domain in b's slot inherits nothing.
    core::Domain* again = build("again");
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->id, b->id);
    EXPECT_FALSE(core::caps::allows(*a, cap::Type::grant, again->id, cap::right::map_ro));
}

}  // namespace
