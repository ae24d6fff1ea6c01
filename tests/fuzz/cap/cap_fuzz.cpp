// Fuzzes the capability operations: the input is a sequence of operations on
// four small CSpaces (a byte for the operation, then bytes for its slots,
// rights mask, badge or budget). After every operation the derivation tree
// must pass cap::audit (links consistent, acyclic, rights monotone, nothing
// dangling); a refused operation must leave every slot byte-for-byte as it
// was; revoke must finish with no descendants; destroy_domain_caps must
// leave nothing naming the domain and its CSpace empty. cap::audit also
// checks each CSpace's lookup index against its slots, and lookups are
// compared with the scans the index replaced.

#include "../input.hpp"

#include <cap/audit.hpp>
#include <cap/ops.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

constexpr unsigned kSpaces = 4;
constexpr uint32_t kSizes[kSpaces] = {12, 12, 8, 5};
constexpr uint32_t kTotal = 12 + 12 + 8 + 5;
constexpr unsigned kMaxOps = 512;

using Input = fuzz::Input;

struct World {
    alignas(cap::Slot) unsigned char mem[kTotal * sizeof(cap::Slot)];
    cap::Slot* base() { return reinterpret_cast<cap::Slot*>(mem); }
    alignas(cap::CSpace) unsigned char space_mem[kSpaces][sizeof(cap::CSpace)];
    cap::CSpace* spaces[kSpaces];
    cap::Registry reg;

    World() {
        uint32_t off = 0;
        for (unsigned i = 0; i < kSpaces; ++i) {
            spaces[i] = new (space_mem[i]) cap::CSpace(base() + off, kSizes[i], 1 + i);
            off += kSizes[i];
            CHECK(reg.add(*spaces[i]).ok());
        }
    }
    cap::CSpace& space(uint8_t b) { return *spaces[b % kSpaces]; }
};

// Slot index: mostly in range, 1 in 16 one past the end.
uint32_t slot_of(cap::CSpace& cs, uint8_t b) { return (b & 0xf0) == 0xf0 ? cs.size() : b % cs.size(); }

cap::Capability root_of(Input& in) {
    uint8_t t = in.byte(), o = in.byte(), r = in.byte();
    auto type = static_cast<cap::Type>(t % (cap::kTypeCount + 1));  // includes null and one invalid
    uint64_t obj = 1 + o % 5;                                       // domains 1-4 and one without a CSpace
    uint64_t count = r >> 6;                                        // 0-3: sometimes an empty range
    return cap::Capability::make(type, (r & 0x3f) == 0x3f ? ~0u : uint32_t{r} & 0xff, obj, count);
}

bool names_or_held(const cap::Capability& c, uint64_t domid, bool held) {
    return !c.empty() && (held || c.names_domain(domid));
}

void run(const uint8_t* data, size_t size) {
    World w;
    Input in{data, size};
    for (unsigned k = 0; k < kMaxOps && !in.empty(); ++k) {
        uint8_t op = in.byte();
        cap::CSpace& a = w.space(in.byte());
        uint32_t ia = slot_of(a, in.byte());
        unsigned char before[sizeof(w.mem)];
        std::memcpy(before, w.mem, sizeof(w.mem));
        bool refused = false;
        switch (op % 10) {
        case 0: {
            refused = !cap::create_root(a, ia, root_of(in)).ok();
            break;
        }
        case 1: case 2: {
            cap::CSpace& b = w.space(in.byte());
            uint32_t ib = slot_of(b, in.byte());
            uint32_t mask = in.byte();
            refused = !cap::copy(a, ia, b, ib, mask == 0xff ? ~0u : mask).ok();
            if (!refused) CHECK((b.slot(ib)->cap().rights & ~a.slot(ia)->cap().rights) == 0);
            break;
        }
        case 3: {
            cap::CSpace& b = w.space(in.byte());
            uint32_t ib = slot_of(b, in.byte());
            uint32_t mask = in.byte();
            uint64_t badge = in.byte() % 4;
            refused = !cap::mint(a, ia, b, ib, mask == 0xff ? ~0u : mask, badge).ok();
            if (!refused) CHECK(b.slot(ib)->cap().badge == badge && badge != 0);
            break;
        }
        case 4: case 5: {
            cap::CSpace& b = w.space(in.byte());
            uint32_t ib = slot_of(b, in.byte());
            refused = !cap::move(a, ia, b, ib).ok();
            break;
        }
        case 6: {
            refused = !cap::remove(a, ia).ok();
            if (!refused) CHECK(a.slot(ia)->empty());
            break;
        }
        case 7: {
            uint8_t budget = in.byte() % 4;  // 0 is refused
            bool finished = false;
            for (unsigned calls = 0; calls <= kTotal + 1; ++calls) {
                cap::Budget b{budget};
                auto r = cap::revoke(a, ia, b);
                if (!r.ok()) { refused = true; break; }
                CHECK(cap::audit(w.reg) == nullptr);
                if (*r == cap::Progress::done) { finished = true; break; }
                CHECK(b.remaining == 0);
            }
            if (!refused) {
                CHECK(finished);
                CHECK(!a.slot(ia)->empty() && a.slot(ia)->first_child() == nullptr);
            }
            break;
        }
        case 8: {
            uint64_t domid = 1 + in.byte() % 5;
            uint8_t budget = in.byte() % 4;
            bool finished = false;
            for (unsigned calls = 0; calls <= kTotal + 1; ++calls) {
                cap::Budget b{budget};
                auto r = cap::destroy_domain_caps(w.reg, domid, b);
                if (!r.ok()) { refused = true; break; }
                CHECK(cap::audit(w.reg) == nullptr);
                if (*r == cap::Progress::done) { finished = true; break; }
            }
            if (!refused) {
                CHECK(finished);
                for (cap::CSpace* cs : w.spaces) {
                    if (!cs->registered()) continue;
                    for (uint32_t i = 0; i < cs->size(); ++i)
                        CHECK(!names_or_held(cs->slot(i)->cap(), domid, cs->domain() == domid));
                }
            }
            break;
        }
        default: {
            // Lookups change nothing; an empty CSpace may leave and rejoin.
            const cap::Capability& c = a.slot(ia % a.size())->cap();
            if (!c.empty()) {
                CHECK(cap::find(a, c.type, c.object, c.rights));
                CHECK(a.holds(c.type, c.rights));
                // A right the type cannot hold is never found.
                CHECK(!cap::find(a, c.type, c.object, c.rights | ~cap::valid_rights(c.type)));
            }
            // The index answers as the scan from slot 0 it replaced.
            auto t = static_cast<cap::Type>(in.byte() % (cap::kTypeCount + 1));
            uint64_t obj = in.byte() % 6;
            uint32_t want = in.byte() & cap::valid_rights(t);
            uint32_t lowest = cap::kNoSlot, empty = cap::kNoSlot, nempty = 0;
            bool held = false, covered = false;
            for (uint32_t i = a.size(); i-- > 0;) {
                const cap::Capability& s = a.slot(i)->cap();
                if (s.empty()) { empty = i; ++nempty; }
                if (s.type == t && s.object == obj && s.allows(want)) lowest = i;
                held |= s.type == t && s.allows(want);
                covered |= s.type == t && s.covers(obj, 2) && s.allows(want);
            }
            auto fs = cap::find_slot(a, t, obj, want);
            CHECK(fs.ok() == (lowest != cap::kNoSlot) && (!fs.ok() || *fs == lowest));
            auto fe = cap::find_empty(a);
            CHECK(fe.ok() == (empty != cap::kNoSlot) && (!fe.ok() || *fe == empty));
            CHECK(a.free_count() == nempty && a.holds(t, want) == held);
            CHECK(cap::find_range(a, t, obj, 2, want) == covered);
            auto got = cap::inspect(a, ia);
            CHECK(got.ok() == (ia < a.size()));
            if (a.all_empty() && (in.byte() & 1)) {
                CHECK(w.reg.remove(a).ok());
                CHECK(w.reg.add(a).ok());
            } else if (!a.all_empty()) {
                CHECK(w.reg.remove(a).error() == cap::Error::space_not_empty);
            }
            CHECK(std::memcmp(before, w.mem, sizeof(w.mem)) == 0);
            break;
        }
        }
        if (refused) CHECK(std::memcmp(before, w.mem, sizeof(w.mem)) == 0);
        CHECK(cap::audit(w.reg) == nullptr);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    run(data, size);
    return 0;
}
