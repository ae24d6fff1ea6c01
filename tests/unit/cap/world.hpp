#pragma once
// Test helpers: a set of registered CSpaces with heap-backed slots, and a
// snapshot of every slot (capability plus links as (space, index)) to prove
// that refused operations change nothing.

#include <cap/audit.hpp>
#include <cap/ops.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

namespace captest {

struct World {
    cap::Registry reg;
    std::vector<std::unique_ptr<cap::Slot[]>> mem;
    std::vector<std::unique_ptr<cap::CSpace>> spaces;

    // Space i belongs to domain domid(i) = 1 + i.
    explicit World(unsigned n, uint32_t nslots = 16) {
        for (unsigned i = 0; i < n; ++i) add(nslots);
    }
    cap::CSpace& add(uint32_t nslots) {
        mem.emplace_back(new cap::Slot[nslots]);
        spaces.emplace_back(new cap::CSpace(mem.back().get(), nslots, 1 + spaces.size()));
        EXPECT_TRUE(reg.add(*spaces.back()).ok());
        return *spaces.back();
    }
    cap::CSpace& operator[](size_t i) { return *spaces[i]; }
    static uint64_t domid(size_t i) { return 1 + i; }
    const cap::Slot& at(size_t sp, uint32_t i) { return *spaces[sp]->slot(i); }

    // (space id, index) of a slot, or (-1, 0) for null.
    std::pair<int, uint32_t> loc(const cap::Slot* s) const {
        if (!s) return {-1, 0};
        auto l = reg.locate(s);
        EXPECT_NE(l.space, nullptr);
        return {l.space ? static_cast<int>(l.space->id()) : -2, l.index};
    }

    using SlotImage = std::tuple<uint8_t, uint32_t, uint64_t, uint64_t, uint64_t,
                                 std::pair<int, uint32_t>, std::pair<int, uint32_t>,
                                 std::pair<int, uint32_t>, std::pair<int, uint32_t>>;
    std::vector<SlotImage> snapshot() const {
        std::vector<SlotImage> v;
        for (auto& cs : spaces)
            for (uint32_t i = 0; i < cs->size(); ++i) {
                const cap::Slot* s = cs->slot(i);
                const cap::Capability& c = s->cap();
                v.emplace_back(static_cast<uint8_t>(c.type), c.rights, c.object, c.object2, c.badge,
                               loc(s->parent()), loc(s->first_child()), loc(s->next_sibling()),
                               loc(s->prev_sibling()));
            }
        return v;
    }
    void expect_sound() const {
        const char* why = cap::audit(reg);
        EXPECT_EQ(why, nullptr) << why;
    }
};

}  // namespace captest
