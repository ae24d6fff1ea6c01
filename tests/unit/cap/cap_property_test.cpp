// Property test: random derivation trees across 4-8 CSpaces built by random
// copy/mint/move/remove (and random refusals), mirrored by a reference model
// of logical capabilities. Then a random capability is revoked in small
// random budgets until done, and destroy_domain_caps is run the same way.
// After every step the real tree must equal the model (every slot's
// capability and parent) and pass cap::audit (links consistent, acyclic,
// rights monotone, nothing dangles).

#include <cap/audit.hpp>
#include <cap/ops.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "world.hpp"

namespace {

using namespace cap;
using captest::World;

struct Model {
    struct Node {
        Capability cap;
        int parent;  // node id, -1 for a root
        int space;
        uint32_t index;
    };
    std::map<int, Node> nodes;                  // live nodes
    std::map<std::pair<int, uint32_t>, int> at;  // location -> node id
    int next_id = 0;

    int node_at(int sp, uint32_t i) const {
        auto it = at.find({sp, i});
        return it == at.end() ? -1 : it->second;
    }
    int add(const Capability& c, int parent, int sp, uint32_t i) {
        int id = next_id++;
        nodes[id] = Node{c, parent, sp, i};
        at[{sp, i}] = id;
        return id;
    }
    void erase(int id) {
        int parent = nodes[id].parent;
        for (auto& [k, n] : nodes)
            if (n.parent == id) n.parent = parent;
        at.erase({nodes[id].space, nodes[id].index});
        nodes.erase(id);
    }
    void relocate(int id, int sp, uint32_t i) {
        at.erase({nodes[id].space, nodes[id].index});
        nodes[id].space = sp;
        nodes[id].index = i;
        at[{sp, i}] = id;
    }
    std::set<int> descendants(int id) const {
        std::set<int> d;
        bool grew = true;
        while (grew) {
            grew = false;
            for (auto& [k, n] : nodes)
                if ((n.parent == id || d.count(n.parent)) && !d.count(k)) {
                    d.insert(k);
                    grew = true;
                }
        }
        return d;
    }
};

bool same_cap(const Capability& a, const Capability& b) {
    return a.type == b.type && a.rights == b.rights && a.object == b.object &&
           a.object2 == b.object2 && a.badge == b.badge;
}

// Every slot equals the model, except that slots of nodes in `loose` may
// either equal the model or be empty (a revoke in progress).
void expect_matches(World& w, const Model& m, const std::set<int>& loose = {}) {
    ASSERT_EQ(audit(w.reg), nullptr) << audit(w.reg);
    for (size_t sp = 0; sp < w.spaces.size(); ++sp) {
        for (uint32_t i = 0; i < w[sp].size(); ++i) {
            const Slot& s = w.at(sp, i);
            int id = m.node_at(static_cast<int>(sp), i);
            if (id < 0) {
                ASSERT_TRUE(s.empty()) << sp << "," << i;
                continue;
            }
            if (loose.count(id) && s.empty()) continue;
            const Model::Node& n = m.nodes.at(id);
            ASSERT_TRUE(same_cap(s.cap(), n.cap)) << sp << "," << i;
            if (loose.count(id)) continue;  // its parent may have been deleted already
            // The parent is the nearest model ancestor not yet deleted; only
            // loose ancestors may have been.
            const Slot* want = nullptr;
            for (int a = n.parent; a >= 0; a = m.nodes.at(a).parent) {
                const Model::Node& p = m.nodes.at(a);
                const Slot* ps = &w.at(p.space, p.index);
                if (!loose.count(a) || !ps->empty()) {
                    want = ps;
                    break;
                }
            }
            ASSERT_EQ(s.parent(), want) << sp << "," << i;
        }
    }
}

Capability random_root(std::mt19937& rng, size_t nspaces) {
    uint64_t obj = 1 + rng() % (nspaces + 1);  // sometimes names a domain with no CSpace
    switch (rng() % 5) {
    case 0: return Capability::domain(obj, rng() % 8);
    case 1: return Capability::grant(obj, rng() % 8 << 3);
    case 2: return Capability::event(obj, rng() % 2 ? uint32_t{right::bind} : 0);
    case 3: return Capability::irq(obj);
    default: return Capability::untyped(obj * 16, 1 + rng() % 16);
    }
}

uint32_t random_mask(std::mt19937& rng) {
    return rng() % 4 == 0 ? ~0u : static_cast<uint32_t>(rng() & 0xff);
}

// One random operation on both the world and the model; refusals must match.
void random_op(World& w, Model& m, std::mt19937& rng) {
    int nsp = static_cast<int>(w.spaces.size());
    int s1 = rng() % nsp, s2 = rng() % nsp;
    uint32_t n1 = w[s1].size(), n2 = w[s2].size();
    // Mostly in range, sometimes one past the end.
    uint32_t i1 = rng() % 32 ? rng() % n1 : n1;
    uint32_t i2 = rng() % 32 ? rng() % n2 : n2;
    // Usually aim at a live source and an empty destination, so trees grow.
    if (!m.nodes.empty() && rng() % 4) {
        auto it = m.nodes.begin();
        std::advance(it, rng() % m.nodes.size());
        s1 = it->second.space;
        i1 = it->second.index;
        n1 = w[s1].size();
    }
    if (rng() % 4) {
        uint32_t start = rng() % n2;
        for (uint32_t k = 0; k < n2; ++k)
            if (m.node_at(s2, (start + k) % n2) < 0) {
                i2 = (start + k) % n2;
                break;
            }
    }
    int src = i1 < n1 ? m.node_at(s1, i1) : -1;
    int dst = i2 < n2 ? m.node_at(s2, i2) : -1;
    auto src_err = [&]() -> int {
        if (i1 >= n1) return static_cast<int>(Error::invalid_slot);
        if (src < 0) return static_cast<int>(Error::empty_slot);
        return 0;
    };
    auto dst_err = [&]() -> int {
        if (i2 >= n2) return static_cast<int>(Error::invalid_slot);
        if (dst >= 0) return static_cast<int>(Error::slot_occupied);
        return 0;
    };
    auto check = [](const base::Status<Error>& st, int expect) {
        if (expect == 0) {
            ASSERT_TRUE(st.ok()) << describe(st.error());
        } else {
            ASSERT_FALSE(st.ok());
            ASSERT_EQ(static_cast<int>(st.error()), expect);
        }
    };
    auto before = w.snapshot();
    int expect = 0;
    switch (rng() % 10) {
    case 0: {  // create_root
        Capability c = random_root(rng, w.spaces.size());
        expect = dst_err();
        check(create_root(w[s2], i2, c), expect);
        if (!expect) m.add(c, -1, s2, i2);
        break;
    }
    case 1: case 2: case 3: {  // copy
        uint32_t mask = random_mask(rng);
        expect = src_err();
        if (!expect) expect = dst_err();
        if (!expect && !m.nodes[src].cap.allows(derive_right(m.nodes[src].cap.type)))
            expect = static_cast<int>(Error::insufficient_rights);
        check(copy(w[s1], i1, w[s2], i2, mask), expect);
        if (!expect) {
            Capability c = m.nodes[src].cap;
            c.rights &= mask;
            m.add(c, src, s2, i2);
        }
        break;
    }
    case 4: case 5: {  // mint
        uint32_t mask = random_mask(rng);
        uint64_t badge = rng() % 8;
        expect = src_err();
        if (!expect) expect = dst_err();
        if (!expect && !m.nodes[src].cap.allows(derive_right(m.nodes[src].cap.type)))
            expect = static_cast<int>(Error::insufficient_rights);
        if (!expect && badge == 0) expect = static_cast<int>(Error::bad_badge);
        if (!expect && m.nodes[src].cap.badge) expect = static_cast<int>(Error::already_badged);
        check(mint(w[s1], i1, w[s2], i2, mask, badge), expect);
        if (!expect) {
            Capability c = m.nodes[src].cap;
            c.rights &= mask;
            c.badge = badge;
            m.add(c, src, s2, i2);
        }
        break;
    }
    case 6: case 7: {  // move
        expect = src_err();
        if (!expect) expect = dst_err();
        check(move(w[s1], i1, w[s2], i2), expect);
        if (!expect) m.relocate(src, s2, i2);
        break;
    }
    default: {  // remove
        expect = src_err();
        check(remove(w[s1], i1), expect);
        if (!expect) m.erase(src);
        break;
    }
    }
    if (expect) ASSERT_EQ(w.snapshot(), before);
}

void build(World& w, Model& m, std::mt19937& rng, int ops) {
    // A few roots first so the copies have something to work on.
    for (int k = 0; k < 6; ++k) {
        int sp = rng() % w.spaces.size();
        uint32_t i = rng() % w[sp].size();
        if (m.node_at(sp, i) >= 0) continue;
        Capability c = random_root(rng, w.spaces.size());
        c.rights = valid_rights(c.type);
        ASSERT_TRUE(create_root(w[sp], i, c).ok());
        m.add(c, -1, sp, i);
    }
    for (int k = 0; k < ops; ++k) {
        ASSERT_NO_FATAL_FAILURE(random_op(w, m, rng));
        ASSERT_NO_FATAL_FAILURE(expect_matches(w, m));
    }
}

TEST(Property, RevokeRemovesExactlyTheSubtree) {
    std::mt19937 rng(12345);
    int nontrivial = 0;
    size_t largest = 0;
    for (int round = 0; round < 300; ++round) {
        unsigned nsp = 4 + rng() % 5;
        World w(nsp, 8 + rng() % 25);
        Model m;
        ASSERT_NO_FATAL_FAILURE(build(w, m, rng, 40 + rng() % 120));
        if (m.nodes.empty()) continue;
        // Usually a capability with descendants.
        auto it = m.nodes.begin();
        std::advance(it, rng() % m.nodes.size());
        for (int tries = 0; tries < 20 && rng() % 8 && m.descendants(it->first).empty(); ++tries) {
            it = m.nodes.begin();
            std::advance(it, rng() % m.nodes.size());
        }
        int victim = it->first;
        Model::Node vn = it->second;
        std::set<int> sub = m.descendants(victim);
        if (sub.size() > 2) ++nontrivial;
        largest = std::max(largest, sub.size());

        size_t calls = 0, left = sub.size();
        for (;;) {
            Budget b{1 + static_cast<uint32_t>(rng() % 3)};
            uint32_t given = b.remaining;
            auto r = revoke(w[vn.space], vn.index, b);
            ASSERT_TRUE(r.ok());
            ++calls;
            size_t deleted = given - b.remaining;
            ASSERT_LE(deleted, left);
            left -= deleted;
            if (*r == Progress::done) break;
            ASSERT_GE(deleted, 1u);  // progress on every restart
            ASSERT_EQ(b.remaining, 0u);
            ASSERT_NO_FATAL_FAILURE(expect_matches(w, m, sub));
            ASSERT_LE(calls, sub.size() + 1);
        }
        ASSERT_EQ(left, 0u);
        for (int d : sub) m.erase(d);
        ASSERT_NO_FATAL_FAILURE(expect_matches(w, m));
        ASSERT_EQ(w.at(vn.space, vn.index).first_child(), nullptr);

        // Keep going on the same world: more ops, then a domain destroyed.
        for (int k = 0; k < 30; ++k) {
            ASSERT_NO_FATAL_FAILURE(random_op(w, m, rng));
            ASSERT_NO_FATAL_FAILURE(expect_matches(w, m));
        }
        int dying = rng() % nsp;
        uint64_t d = World::domid(dying);
        std::set<int> doomed;
        for (auto& [id, n] : m.nodes)
            if (n.space == dying || n.cap.names_domain(d)) doomed.insert(id);
        for (;;) {
            Budget b{1 + static_cast<uint32_t>(rng() % 4)};
            auto r = destroy_domain_caps(w.reg, d, b);
            ASSERT_TRUE(r.ok());
            ASSERT_NO_FATAL_FAILURE(expect_matches(w, m, doomed));
            if (*r == Progress::done) break;
            ASSERT_EQ(b.remaining, 0u);
        }
        for (int id : doomed) m.erase(id);
        ASSERT_NO_FATAL_FAILURE(expect_matches(w, m));
        ASSERT_TRUE(w[dying].all_empty());
        ASSERT_TRUE(w.reg.remove(w[dying]).ok());
        ASSERT_EQ(audit(w.reg), nullptr);
    }
    EXPECT_GT(nontrivial, 50);
    std::printf("revoked subtrees: %d of 300 with more than two descendants, largest %zu\n", nontrivial, largest);
}

}  // namespace
