// Unit tests of every capability operation and every refusal.

#include <cap/audit.hpp>
#include <cap/ops.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "world.hpp"

namespace {

using namespace cap;
using captest::World;

constexpr uint32_t kAllGrant = right::map_ro | right::map_rw | right::copy;
constexpr uint32_t kAllDomain = right::control | right::build | right::install_caps;

template <typename R>
Error err(const R& r) {
    EXPECT_FALSE(r.ok());
    return r.error();
}

// --- Capability and rights ---

TEST(Capability, AllowsNeedsEveryRequestedRight) {
    auto g = Capability::grant(3, right::map_ro | right::copy);
    EXPECT_TRUE(g.allows(right::map_ro));
    EXPECT_TRUE(g.allows(right::map_ro | right::copy));
    EXPECT_TRUE(g.allows(0));
    EXPECT_FALSE(g.allows(right::map_rw));
    EXPECT_FALSE(g.allows(right::map_ro | right::map_rw));
    EXPECT_FALSE(Capability{}.allows(0));  // a null capability allows nothing
}

TEST(Capability, RightsAreDisjointAcrossTypes) {
    uint32_t seen = 0;
    for (unsigned t = 1; t < kTypeCount; ++t) {
        uint32_t r = valid_rights(static_cast<Type>(t));
        EXPECT_NE(r, 0u);
        if (r != right::use) {
            EXPECT_EQ(seen & r, 0u) << t;
            seen |= r;
        }
    }
    EXPECT_EQ(seen & right::use, 0u);
    EXPECT_EQ(valid_rights(Type::null), 0u);
    // So a Domain capability can never pass a Grant check.
    EXPECT_FALSE(Capability::domain(1, kAllDomain).allows(right::map_rw));
}

TEST(Capability, CoversRanges) {
    auto p = Capability::io_ports(0x3f8, 8);
    EXPECT_TRUE(p.covers(0x3f8, 8));
    EXPECT_TRUE(p.covers(0x3fc, 4));
    EXPECT_FALSE(p.covers(0x3fc, 5));
    EXPECT_FALSE(p.covers(0x3f7, 1));
    EXPECT_FALSE(p.covers(0x3f8, 0));
    EXPECT_FALSE(Capability::irq(4).covers(4, 1));
    auto m = Capability::mmio(~uint64_t{0} - 1, 2);
    EXPECT_TRUE(m.covers(~uint64_t{0}, 1));
    EXPECT_FALSE(m.covers(~uint64_t{0}, 2));
}

TEST(Capability, NamesDomain) {
    EXPECT_TRUE(Capability::domain(5, right::control).names_domain(5));
    EXPECT_TRUE(Capability::grant(5, right::map_ro).names_domain(5));
    EXPECT_TRUE(Capability::event(5, right::bind).names_domain(5));
    EXPECT_FALSE(Capability::irq(5).names_domain(5));
    EXPECT_FALSE(Capability::domain(4, right::control).names_domain(5));
}

TEST(Describe, EveryErrorHasADistinctSentence) {
    std::set<std::string> seen;
    for (unsigned e = 1; e <= static_cast<unsigned>(Error::not_found); ++e) {
        const char* d = describe(static_cast<Error>(e));
        ASSERT_NE(d, nullptr);
        EXPECT_NE(std::string(d), "unknown capability error") << e;
        EXPECT_TRUE(seen.insert(d).second) << d;
    }
    EXPECT_STREQ(describe(static_cast<Error>(0)), "unknown capability error");
    EXPECT_STREQ(describe(static_cast<Error>(200)), "unknown capability error");
    EXPECT_STREQ(type_name(Type::grant), "grant");
    EXPECT_STREQ(type_name(static_cast<Type>(99)), "unknown");
}

// --- Registry ---

TEST(Registry, AddRemoveLocate) {
    Registry reg;
    Slot a[4], b[2];
    CSpace sa(a, 4, 7), sb(b, 2, 8), dup(b, 2, 7);
    EXPECT_FALSE(sa.registered());
    ASSERT_TRUE(reg.add(sa).ok());
    EXPECT_EQ(sa.id(), 0u);
    EXPECT_EQ(err(reg.add(sa)), Error::space_registered);
    (void)dup;   // one CSpace per domain is the caller's rule (Registry::add is O(1))
    ASSERT_TRUE(reg.add(sb).ok());
    EXPECT_EQ(sb.id(), 1u);
    EXPECT_EQ(reg.count(), 2u);
    EXPECT_EQ(reg.find_domain(8), &sb);
    EXPECT_EQ(reg.find_domain(9), nullptr);
    EXPECT_EQ(reg.locate(&a[3]).space, &sa);
    EXPECT_EQ(reg.locate(&a[3]).index, 3u);
    EXPECT_EQ(reg.locate(&b[1]).index, 1u);
    Slot other;
    EXPECT_EQ(reg.locate(&other).space, nullptr);

    ASSERT_TRUE(create_root(sa, 0, Capability::irq(1)).ok());
    EXPECT_EQ(err(reg.remove(sa)), Error::space_not_empty);
    ASSERT_TRUE(remove(sa, 0).ok());
    ASSERT_TRUE(reg.remove(sa).ok());
    EXPECT_FALSE(sa.registered());
    EXPECT_EQ(err(reg.remove(sa)), Error::unregistered_space);
    EXPECT_EQ(reg.count(), 1u);
    CSpace again(a, 4, 9);
    ASSERT_TRUE(reg.add(again).ok());
    EXPECT_EQ(again.id(), 2u);  // registration numbers are not reused
    EXPECT_EQ(reg.find_domain(9), &again);
}

// No fixed limit: as many CSpaces as domains (the kernel's 32,752), each
// added and removed in O(1) wherever it is in the list.
TEST(Registry, ThousandsOfSpacesAddAndLeaveInAnyOrder) {
    Registry reg;
    constexpr uint32_t kN = 4000;
    std::vector<std::unique_ptr<CSpace>> v;
    std::vector<std::unique_ptr<Slot[]>> mem;
    for (uint32_t i = 0; i < kN; ++i) {
        mem.emplace_back(new Slot[1]);
        v.emplace_back(new CSpace(mem.back().get(), 1, i));
        ASSERT_TRUE(reg.add(*v.back()).ok());
    }
    EXPECT_EQ(reg.count(), kN);
    EXPECT_EQ(audit(reg), nullptr);
    // Every third one leaves (middle, ends), then the rest are still found.
    for (uint32_t i = 0; i < kN; i += 3) ASSERT_TRUE(reg.remove(*v[i]).ok());
    EXPECT_EQ(audit(reg), nullptr);
    uint32_t left = 0;
    for (CSpace* cs = reg.first(); cs; cs = cs->next_registered()) {
        EXPECT_NE(cs->domain() % 3, 0u);
        ++left;
    }
    EXPECT_EQ(left, reg.count());
    EXPECT_EQ(left, kN - (kN + 2) / 3);
    EXPECT_EQ(reg.find_domain(3), nullptr);
    EXPECT_EQ(reg.find_domain(4), v[4].get());
    EXPECT_EQ(reg.locate(&mem[1][0]).space, v[1].get());
    EXPECT_EQ(reg.locate(&mem[0][0]).space, nullptr);
    for (uint32_t i = 0; i < kN; ++i)
        if (i % 3) ASSERT_TRUE(reg.remove(*v[i]).ok());
    EXPECT_EQ(reg.count(), 0u);
    EXPECT_EQ(reg.first(), nullptr);
}

// --- create_root ---

TEST(CreateRoot, PlacesARootAndSlotZeroIsValid) {
    World w(1, 4);
    ASSERT_TRUE(create_root(w[0], 0, Capability::domain(9, right::control)).ok());
    const Slot& s = w.at(0, 0);
    EXPECT_EQ(s.cap().type, Type::domain);
    EXPECT_EQ(s.cap().object, 9u);
    EXPECT_EQ(s.parent(), nullptr);
    EXPECT_EQ(s.first_child(), nullptr);
    w.expect_sound();
}

TEST(CreateRoot, Refusals) {
    World w(1, 4);
    ASSERT_TRUE(create_root(w[0], 1, Capability::irq(3)).ok());
    auto before = w.snapshot();
    EXPECT_EQ(err(create_root(w[0], 4, Capability::irq(1))), Error::invalid_slot);
    EXPECT_EQ(err(create_root(w[0], 1, Capability::irq(1))), Error::slot_occupied);
    EXPECT_EQ(err(create_root(w[0], 0, Capability{})), Error::bad_type);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::make(static_cast<Type>(kTypeCount), 0))),
              Error::bad_type);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::domain(1, right::map_ro))), Error::bad_rights);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::make(Type::irq, right::use | right::bind, 1))),
              Error::bad_rights);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::untyped(5, 0))), Error::bad_object);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::mmio(~uint64_t{0}, 2))), Error::bad_object);
    EXPECT_EQ(err(create_root(w[0], 0, Capability::io_ports(0xfff8, 9))), Error::bad_object);
    EXPECT_TRUE(check_create_root(w[0], 0, Capability::io_ports(0xfff8, 8)).ok());
    EXPECT_EQ(w.snapshot(), before);

    Slot raw[2];
    CSpace loose(raw, 2, 77);
    EXPECT_EQ(err(create_root(loose, 0, Capability::irq(1))), Error::unregistered_space);
}

// --- copy ---

TEST(Copy, ChildWithMaskedRights) {
    World w(2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::grant(4, kAllGrant)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 5, right::map_ro | right::copy | right::control).ok());
    const Slot& c = w.at(1, 5);
    EXPECT_EQ(c.cap().type, Type::grant);
    EXPECT_EQ(c.cap().object, 4u);
    EXPECT_EQ(c.cap().rights, uint32_t{right::map_ro | right::copy});
    EXPECT_EQ(c.parent(), &w.at(0, 0));
    EXPECT_EQ(w.at(0, 0).first_child(), &c);
    EXPECT_TRUE(w.at(0, 0).cap().allows(kAllGrant));  // the source is untouched
    w.expect_sound();
}

TEST(Copy, Refusals) {
    World w(2, 4);
    ASSERT_TRUE(create_root(w[0], 0, Capability::grant(4, right::map_rw)).ok());  // no copy right
    ASSERT_TRUE(create_root(w[0], 1, Capability::irq(2)).ok());
    auto before = w.snapshot();
    EXPECT_EQ(err(copy(w[0], 4, w[1], 0, ~0u)), Error::invalid_slot);
    EXPECT_EQ(err(copy(w[0], 2, w[1], 0, ~0u)), Error::empty_slot);
    EXPECT_EQ(err(copy(w[0], 1, w[1], 9, ~0u)), Error::invalid_slot);
    EXPECT_EQ(err(copy(w[0], 1, w[0], 0, ~0u)), Error::slot_occupied);
    EXPECT_EQ(err(copy(w[0], 1, w[0], 1, ~0u)), Error::slot_occupied);  // onto itself
    EXPECT_EQ(err(copy(w[0], 0, w[1], 0, ~0u)), Error::insufficient_rights);
    EXPECT_EQ(w.snapshot(), before);

    Slot raw[2];
    CSpace loose(raw, 2, 77);
    EXPECT_EQ(err(copy(w[0], 1, loose, 0, ~0u)), Error::unregistered_space);
    EXPECT_TRUE(raw[0].empty());
    EXPECT_EQ(w.snapshot(), before);
}

TEST(Registry, ASpaceHoldingCapabilitiesCannotLeave) {
    World w(1, 4);
    Slot raw[2];
    CSpace loose(raw, 2, 77);
    // So an unregistered CSpace never holds a capability: copy/mint/move
    // out of one cannot happen.
    ASSERT_TRUE(w.reg.add(loose).ok());
    ASSERT_TRUE(create_root(loose, 0, Capability::irq(1)).ok());
    // (A registered, non-empty CSpace cannot leave.)
    EXPECT_EQ(err(w.reg.remove(loose)), Error::space_not_empty);
    ASSERT_TRUE(remove(loose, 0).ok());
    ASSERT_TRUE(w.reg.remove(loose).ok());
}

TEST(Copy, CheckChangesNothingApplyCompletes) {
    World w(1, 4);
    ASSERT_TRUE(create_root(w[0], 0, Capability::event(2, right::bind)).ok());
    auto before = w.snapshot();
    auto op = check_copy(w[0], 0, w[0], 3, 0);
    ASSERT_TRUE(op.ok());
    EXPECT_EQ(w.snapshot(), before);
    apply_copy(*op);
    EXPECT_EQ(w.at(0, 3).cap().rights, 0u);  // a rightless copy is still a capability
    EXPECT_EQ(w.at(0, 3).parent(), &w.at(0, 0));
    w.expect_sound();
}

// --- mint ---

TEST(Mint, SetsBadgeOnceAndCopiesKeepIt) {
    World w(2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::event(3, right::bind)).ok());
    ASSERT_TRUE(mint(w[0], 0, w[1], 0, ~0u, 42).ok());
    EXPECT_EQ(w.at(1, 0).cap().badge, 42u);
    EXPECT_EQ(w.at(1, 0).parent(), &w.at(0, 0));
    ASSERT_TRUE(copy(w[1], 0, w[1], 1, ~0u).ok());
    EXPECT_EQ(w.at(1, 1).cap().badge, 42u);
    auto before = w.snapshot();
    EXPECT_EQ(err(mint(w[1], 0, w[1], 2, ~0u, 7)), Error::already_badged);
    EXPECT_EQ(err(mint(w[1], 1, w[1], 2, ~0u, 42)), Error::already_badged);
    EXPECT_EQ(err(mint(w[0], 0, w[1], 2, ~0u, 0)), Error::bad_badge);
    EXPECT_EQ(err(mint(w[0], 0, w[1], 0, ~0u, 5)), Error::slot_occupied);
    EXPECT_EQ(err(mint(w[0], 3, w[1], 2, ~0u, 5)), Error::empty_slot);
    EXPECT_EQ(err(mint(w[0], 16, w[1], 2, ~0u, 5)), Error::invalid_slot);
    EXPECT_EQ(w.snapshot(), before);
    // A second unbadged source may mint another badge.
    ASSERT_TRUE(mint(w[0], 0, w[1], 2, 0, 43).ok());
    EXPECT_EQ(w.at(1, 2).cap().rights, 0u);
    w.expect_sound();
}

TEST(Mint, GrantNeedsCopyRight) {
    World w(1);
    ASSERT_TRUE(create_root(w[0], 0, Capability::grant(2, right::map_ro)).ok());
    EXPECT_EQ(err(mint(w[0], 0, w[0], 1, ~0u, 1)), Error::insufficient_rights);
    ASSERT_TRUE(create_root(w[0], 2, Capability::grant(2, right::map_ro | right::copy)).ok());
    ASSERT_TRUE(mint(w[0], 2, w[0], 3, right::map_ro, 1).ok());
    // The copy right was masked away: this child cannot be passed on.
    EXPECT_EQ(err(copy(w[0], 3, w[0], 4, ~0u)), Error::insufficient_rights);
}

TEST(Rights, NeverGrowDownAChain) {
    World w(3, 32);
    ASSERT_TRUE(create_root(w[0], 0, Capability::grant(9, kAllGrant)).ok());
    uint32_t masks[] = {~0u, right::map_rw | right::copy | right::map_ro, ~0u, right::copy,
                        ~0u, kAllGrant, 0};
    uint32_t expect = kAllGrant;
    size_t sp = 0;
    uint32_t idx = 0;
    for (size_t i = 0; i < std::size(masks); ++i) {
        size_t nsp = (sp + 1) % 3;
        uint32_t nidx = idx + 1;
        auto r = i == 2 ? mint(w[sp], idx, w[nsp], nidx, masks[i], 11)
                        : copy(w[sp], idx, w[nsp], nidx, masks[i]);
        ASSERT_TRUE(r.ok()) << i;
        expect &= masks[i];
        EXPECT_EQ(w.at(nsp, nidx).cap().rights, expect);
        EXPECT_EQ((w.at(nsp, nidx).cap().rights & ~w.at(sp, idx).cap().rights), 0u);
        sp = nsp;
        idx = nidx;
        if (!(expect & right::copy)) break;
    }
    EXPECT_EQ(expect, 0u);
    // The last link lost the copy right, so the chain ends there.
    EXPECT_EQ(err(copy(w[sp], idx, w[sp], 0, ~0u)), Error::insufficient_rights);
    w.expect_sound();
}

// --- move ---

TEST(Move, KeepsParentSiblingsAndChildren) {
    World w(2);
    // root r(0,0) with children a(0,1) b(0,2) c(0,3) (list order c b a);
    // b has children d(1,0) e(1,1).
    ASSERT_TRUE(create_root(w[0], 0, Capability::irq(5)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[0], 1, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 0, w[0], 2, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 0, w[0], 3, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 2, w[1], 0, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 2, w[1], 1, ~0u).ok());
    const Slot* r = &w.at(0, 0);

    ASSERT_TRUE(move(w[0], 2, w[1], 9).ok());  // b: middle sibling with children
    const Slot* b = &w.at(1, 9);
    EXPECT_TRUE(w.at(0, 2).empty());
    EXPECT_EQ(b->parent(), r);
    EXPECT_EQ(b->prev_sibling(), &w.at(0, 3));
    EXPECT_EQ(b->next_sibling(), &w.at(0, 1));
    EXPECT_EQ(w.at(1, 0).parent(), b);
    EXPECT_EQ(w.at(1, 1).parent(), b);
    w.expect_sound();

    ASSERT_TRUE(move(w[0], 3, w[0], 2).ok());  // c: first child
    EXPECT_EQ(r->first_child(), &w.at(0, 2));
    w.expect_sound();

    ASSERT_TRUE(move(w[0], 0, w[1], 15).ok());  // the root itself
    r = &w.at(1, 15);
    EXPECT_EQ(r->parent(), nullptr);
    for (const Slot* c = r->first_child(); c; c = c->next_sibling()) EXPECT_EQ(c->parent(), r);
    EXPECT_EQ(b->parent(), r);
    w.expect_sound();

    ASSERT_TRUE(move(w[1], 1, w[0], 0).ok());  // a leaf (e)
    EXPECT_EQ(w.at(0, 0).parent(), b);
    w.expect_sound();
}

TEST(Move, Refusals) {
    World w(1, 4);
    ASSERT_TRUE(create_root(w[0], 0, Capability::irq(5)).ok());
    ASSERT_TRUE(create_root(w[0], 1, Capability::irq(6)).ok());
    auto before = w.snapshot();
    EXPECT_EQ(err(move(w[0], 4, w[0], 2)), Error::invalid_slot);
    EXPECT_EQ(err(move(w[0], 2, w[0], 3)), Error::empty_slot);
    EXPECT_EQ(err(move(w[0], 0, w[0], 4)), Error::invalid_slot);
    EXPECT_EQ(err(move(w[0], 0, w[0], 1)), Error::slot_occupied);
    EXPECT_EQ(err(move(w[0], 0, w[0], 0)), Error::slot_occupied);
    Slot raw[1];
    CSpace loose(raw, 1, 99);
    EXPECT_EQ(err(move(w[0], 0, loose, 0)), Error::unregistered_space);
    EXPECT_EQ(w.snapshot(), before);
    auto op = check_move(w[0], 0, w[0], 3);
    ASSERT_TRUE(op.ok());
    EXPECT_EQ(w.snapshot(), before);
    apply_move(*op);
    EXPECT_EQ(w.at(0, 3).cap().object, 5u);
}

// --- remove ---

TEST(Remove, ChildrenTakeTheDeletedSlotsPlace) {
    World w(1);
    // r -> [x, m, y] in list order; m -> [p, q].
    ASSERT_TRUE(create_root(w[0], 0, Capability::domain(3, kAllDomain)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[0], 1, ~0u).ok());                  // y
    ASSERT_TRUE(copy(w[0], 0, w[0], 2, right::control | right::build).ok());  // m
    ASSERT_TRUE(copy(w[0], 0, w[0], 3, ~0u).ok());                  // x
    ASSERT_TRUE(copy(w[0], 2, w[0], 4, right::control).ok());       // q
    ASSERT_TRUE(copy(w[0], 2, w[0], 5, right::build).ok());         // p
    ASSERT_TRUE(remove(w[0], 2).ok());
    EXPECT_TRUE(w.at(0, 2).empty());
    std::vector<uint32_t> order;
    for (const Slot* c = w.at(0, 0).first_child(); c; c = c->next_sibling()) {
        EXPECT_EQ(c->parent(), &w.at(0, 0));
        order.push_back(w[0].index_of(c));
    }
    EXPECT_EQ(order, (std::vector<uint32_t>{3, 5, 4, 1}));
    w.expect_sound();
    // Removing a leaf and the first child.
    ASSERT_TRUE(remove(w[0], 3).ok());
    EXPECT_EQ(w.at(0, 0).first_child(), &w.at(0, 5));
    ASSERT_TRUE(remove(w[0], 1).ok());
    EXPECT_EQ(w.at(0, 4).next_sibling(), nullptr);
    w.expect_sound();
}

TEST(Remove, RootsChildrenBecomeRoots) {
    World w(2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::irq(2)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 0, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 1, ~0u).ok());
    ASSERT_TRUE(copy(w[1], 1, w[1], 2, ~0u).ok());
    ASSERT_TRUE(remove(w[0], 0).ok());
    for (uint32_t i : {0u, 1u}) {
        EXPECT_EQ(w.at(1, i).parent(), nullptr);
        EXPECT_EQ(w.at(1, i).next_sibling(), nullptr);
        EXPECT_EQ(w.at(1, i).prev_sibling(), nullptr);
    }
    EXPECT_EQ(w.at(1, 2).parent(), &w.at(1, 1));
    w.expect_sound();
}

TEST(Remove, Refusals) {
    World w(1, 2);
    auto before = w.snapshot();
    EXPECT_EQ(err(remove(w[0], 2)), Error::invalid_slot);
    EXPECT_EQ(err(remove(w[0], 0)), Error::empty_slot);
    EXPECT_EQ(w.snapshot(), before);
}

// --- inspect ---

TEST(Inspect, ReturnsTheCapability) {
    World w(1, 2);
    ASSERT_TRUE(create_root(w[0], 1, Capability::pci_device(0x0310)).ok());
    auto c = inspect(w[0], 1);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->type, Type::pci_device);
    EXPECT_EQ(c->object, 0x310u);
    auto e = inspect(w[0], 0);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->type, Type::null);
    EXPECT_EQ(err(inspect(w[0], 2)), Error::invalid_slot);
}

// --- revoke ---

// Builds r(0,0) with a tree across spaces 0-3 and an unrelated tree.
void build_fan(World& w) {
    ASSERT_TRUE(create_root(w[0], 0, Capability::grant(7, kAllGrant)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 0, ~0u).ok());
    ASSERT_TRUE(mint(w[0], 0, w[2], 0, right::map_ro | right::copy, 5).ok());
    ASSERT_TRUE(copy(w[1], 0, w[3], 0, ~0u).ok());
    ASSERT_TRUE(copy(w[3], 0, w[3], 1, ~0u).ok());
    ASSERT_TRUE(copy(w[2], 0, w[1], 1, ~0u).ok());
    ASSERT_TRUE(copy(w[1], 1, w[0], 1, ~0u).ok());
    // Unrelated: same object, separate root.
    ASSERT_TRUE(create_root(w[2], 5, Capability::grant(7, kAllGrant)).ok());
    ASSERT_TRUE(copy(w[2], 5, w[3], 5, ~0u).ok());
}

TEST(Revoke, DeletesEveryDescendantAcrossSpaces) {
    World w(4);
    build_fan(w);
    Budget b{100};
    auto r = revoke(w[0], 0, b);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, Progress::done);
    EXPECT_EQ(b.remaining, 100u - 6u);
    EXPECT_FALSE(w.at(0, 0).empty());  // the revoked slot stays
    EXPECT_EQ(w.at(0, 0).first_child(), nullptr);
    for (auto [sp, i] : {std::pair{1, 0}, {2, 0}, {3, 0}, {3, 1}, {1, 1}, {0, 1}})
        EXPECT_TRUE(w.at(sp, i).empty()) << sp << "," << i;
    EXPECT_FALSE(w.at(2, 5).empty());
    EXPECT_EQ(w.at(3, 5).parent(), &w.at(2, 5));
    w.expect_sound();
}

TEST(Revoke, PreemptsAndResumes) {
    World w(4);
    build_fan(w);
    int calls = 0;
    for (;;) {
        Budget b{1};
        auto r = revoke(w[0], 0, b);
        ASSERT_TRUE(r.ok());
        ++calls;
        w.expect_sound();
        if (*r == Progress::done) break;
        EXPECT_EQ(b.remaining, 0u);
        ASSERT_LT(calls, 10);
    }
    EXPECT_EQ(calls, 6);  // one deletion per call; the sixth call also sees none left
    EXPECT_EQ(w.at(0, 0).first_child(), nullptr);
}

TEST(Revoke, ALeafIsDoneAtOnce) {
    World w(1, 2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::module(1)).ok());
    Budget b{1};
    auto r = revoke(w[0], 0, b);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, Progress::done);
    EXPECT_EQ(b.remaining, 1u);
}

TEST(Revoke, Refusals) {
    World w(1, 2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::module(1)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[0], 1, ~0u).ok());
    auto before = w.snapshot();
    Budget b{3}, zero{0};
    EXPECT_EQ(err(revoke(w[0], 2, b)), Error::invalid_slot);
    ASSERT_TRUE(remove(w[0], 1).ok());
    EXPECT_EQ(err(revoke(w[0], 1, b)), Error::empty_slot);
    ASSERT_TRUE(copy(w[0], 0, w[0], 1, ~0u).ok());
    EXPECT_EQ(err(revoke(w[0], 0, zero)), Error::no_budget);
    EXPECT_EQ(b.remaining, 3u);
    EXPECT_EQ(w.snapshot(), before);
}

// --- find ---

TEST(Find, LooksForTypeObjectAndRights) {
    World w(1, 8);
    ASSERT_TRUE(create_root(w[0], 3, Capability::grant(2, right::map_ro)).ok());
    ASSERT_TRUE(create_root(w[0], 5, Capability::grant(2, right::map_rw | right::map_ro)).ok());
    ASSERT_TRUE(create_root(w[0], 6, Capability::domain(2, right::control)).ok());
    ASSERT_TRUE(create_root(w[0], 0, Capability::io_ports(0x60, 5)).ok());
    EXPECT_TRUE(find(w[0], Type::grant, 2, right::map_ro));
    EXPECT_TRUE(find(w[0], Type::grant, 2, right::map_rw));
    EXPECT_FALSE(find(w[0], Type::grant, 3, right::map_ro));
    EXPECT_FALSE(find(w[0], Type::grant, 2, right::copy));
    EXPECT_FALSE(find(w[0], Type::event, 2, 0));
    EXPECT_TRUE(find(w[0], Type::domain, 2, right::control));
    EXPECT_FALSE(find(w[0], Type::null, 0, 0));  // empty slots are never found
    auto s = find_slot(w[0], Type::grant, 2, right::map_rw);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(*s, 5u);
    EXPECT_EQ(err(find_slot(w[0], Type::grant, 2, right::copy)), Error::not_found);
    EXPECT_TRUE(find_range(w[0], Type::io_ports, 0x64, 1, right::use));
    EXPECT_FALSE(find_range(w[0], Type::io_ports, 0x64, 2, right::use));
    EXPECT_FALSE(find_range(w[0], Type::mmio, 0x64, 1, right::use));
    auto e = find_empty(w[0]);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(*e, 1u);
    World full(1, 1);
    ASSERT_TRUE(create_root(full[0], 0, Capability::debug_console()).ok());
    EXPECT_EQ(err(find_empty(full[0])), Error::not_found);
}

// --- revoke_object / destroy_domain_caps ---

TEST(RevokeObject, DeletesEveryCapabilityForTheObject) {
    World w(3);
    ASSERT_TRUE(create_root(w[0], 0, Capability::irq(9)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 0, ~0u).ok());
    ASSERT_TRUE(copy(w[1], 0, w[2], 0, ~0u).ok());
    ASSERT_TRUE(create_root(w[2], 1, Capability::irq(9)).ok());
    ASSERT_TRUE(create_root(w[2], 2, Capability::irq(8)).ok());
    ASSERT_TRUE(create_root(w[2], 3, Capability::module(9)).ok());
    Budget zero{0};
    EXPECT_EQ(err(revoke_object(w.reg, Type::irq, 9, zero)), Error::no_budget);
    Budget b{10};
    EXPECT_EQ(err(revoke_object(w.reg, Type::null, 9, b)), Error::bad_type);
    int calls = 0;
    for (;;) {
        Budget one{1};
        auto r = revoke_object(w.reg, Type::irq, 9, one);
        ASSERT_TRUE(r.ok());
        ++calls;
        w.expect_sound();
        if (*r == Progress::done) break;
    }
    EXPECT_EQ(calls, 4);  // three single deletions, then a deletion and a clean scan
    for (int sp = 0; sp < 3; ++sp) EXPECT_FALSE(find(w[sp], Type::irq, 9, 0));
    EXPECT_TRUE(find(w[2], Type::irq, 8, 0));
    EXPECT_TRUE(find(w[2], Type::module, 9, 0));
}

TEST(DestroyDomainCaps, RemovesNamingAndHeldCapabilities) {
    World w(4);
    const uint64_t d = World::domid(2);  // space 2 is the dying domain
    // Naming the domain, held elsewhere.
    ASSERT_TRUE(create_root(w[0], 0, Capability::domain(d, kAllDomain)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 0, right::control).ok());
    ASSERT_TRUE(create_root(w[1], 1, Capability::grant(d, kAllGrant)).ok());
    ASSERT_TRUE(create_root(w[3], 1, Capability::event(d, right::bind)).ok());
    // Held in the dying domain, with descendants elsewhere.
    ASSERT_TRUE(create_root(w[0], 2, Capability::irq(4)).ok());
    ASSERT_TRUE(copy(w[0], 2, w[2], 0, ~0u).ok());
    ASSERT_TRUE(copy(w[2], 0, w[3], 2, ~0u).ok());
    ASSERT_TRUE(create_root(w[2], 1, Capability::domain(World::domid(0), right::control)).ok());
    // Untouched: other domains, other types with the same number.
    ASSERT_TRUE(create_root(w[1], 3, Capability::grant(World::domid(3), kAllGrant)).ok());
    ASSERT_TRUE(create_root(w[1], 4, Capability::irq(d)).ok());

    Budget zero{0};
    EXPECT_EQ(err(destroy_domain_caps(w.reg, d, zero)), Error::no_budget);
    int calls = 0;
    for (;;) {
        Budget b{2};
        auto r = destroy_domain_caps(w.reg, d, b);
        ASSERT_TRUE(r.ok());
        ++calls;
        w.expect_sound();
        if (*r == Progress::done) break;
        ASSERT_LT(calls, 10);
    }
    EXPECT_EQ(calls, 3);  // six deletions in budgets of two, then a clean scan
    EXPECT_TRUE(w[2].all_empty());
    for (int sp = 0; sp < 4; ++sp)
        for (uint32_t i = 0; i < w[sp].size(); ++i)
            EXPECT_FALSE(w.at(sp, i).cap().names_domain(d)) << sp << "," << i;
    // The dying domain's copy was deleted alone: its child is re-parented.
    EXPECT_EQ(w.at(3, 2).parent(), &w.at(0, 2));
    EXPECT_FALSE(w.at(1, 3).empty());
    EXPECT_FALSE(w.at(1, 4).empty());
    ASSERT_TRUE(w.reg.remove(w[2]).ok());
    w.expect_sound();
}

// --- audit catches breakage ---

TEST(Audit, IsNotVacuous) {
    World w(2, 2);
    ASSERT_TRUE(create_root(w[0], 0, Capability::irq(1)).ok());
    ASSERT_TRUE(copy(w[0], 0, w[1], 0, ~0u).ok());
    EXPECT_EQ(audit(w.reg), nullptr);
    // The empty slot as it is (its bytes hold the CSpace's index too, so
    // zeroes would not restore it).
    alignas(Slot) unsigned char clean[sizeof(Slot)];
    std::memcpy(clean, static_cast<const void*>(w[1].slot(1)), sizeof(Slot));
    // Forge a duplicate of the child behind the library's back: it claims a
    // parent whose child list does not hold it.
    std::memcpy(static_cast<void*>(w[1].slot(1)), w[1].slot(0), sizeof(Slot));
    EXPECT_STREQ(audit(w.reg), "slot missing from its parent's child list");
    std::memcpy(static_cast<void*>(w[1].slot(1)), clean, sizeof(Slot));
    EXPECT_EQ(audit(w.reg), nullptr);
    // An empty slot with a link.
    std::memcpy(static_cast<void*>(w[1].slot(1)), w[1].slot(0), sizeof(Slot));
    reinterpret_cast<Capability*>(static_cast<void*>(w[1].slot(1)))->type = Type::null;
    EXPECT_STREQ(audit(w.reg), "empty slot has links");
    std::memcpy(static_cast<void*>(w[1].slot(1)), clean, sizeof(Slot));
    EXPECT_EQ(audit(w.reg), nullptr);
    // Rights above the parent's.
    reinterpret_cast<Capability*>(static_cast<void*>(w[1].slot(0)))->rights = right::use | right::bind;
    EXPECT_STREQ(audit(w.reg), "rights not valid for type");
}

}  // namespace
