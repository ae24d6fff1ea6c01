#pragma once
// Helpers shared by the core tests: a small Xen PV guest image and typed
// access to guest memory through the fake machine's page-table walk.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <abi/hypercall.hpp>
#include <abi/memory.hpp>
#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/hypercall.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pv_build.hpp>
#include <core/frame_table.hpp>
#include <core/memory.hpp>
#include <core/pte.hpp>
#include <elf/xen.hpp>

#include "elf_builder.hpp"
#include "fake_platform.hpp"

namespace coretest {

constexpr uint64_t kVirtBase = 0x400000;
constexpr uint64_t kEntry = 0x400100;
constexpr uint64_t kHypercallPage = 0x401000;
constexpr uint64_t kData = 0x403000;
constexpr uint64_t kDataFile = 0x100, kDataMem = 0x1100;
constexpr uint64_t kText = kVirtBase;
constexpr uint64_t kTextSize = 0x2000;
constexpr uint64_t kImageEnd = 0x405000;   // kend, page rounded
constexpr uint64_t kPages = 1024;          // exactly the 4 MiB region

// Text [0x400000, 0x402000) with the hypercall page at 0x401000, data
// [0x403000, 0x404100) with 0x100 file bytes and the rest bss.
inline elftest::Builder guest_builder() {
    namespace xn = elf::xen_note;
    elftest::Builder b;
    b.entry = kEntry;
    b.segs.push_back(elftest::Seg{kText, elftest::pattern(kTextSize, 1), 0, elftest::PF_R | elftest::PF_X});
    b.segs.push_back(
        elftest::Seg{kData, elftest::pattern(kDataFile, 99), kDataMem, elftest::PF_R | elftest::PF_W});
    b.notes = {
        elftest::note_str(xn::kGuestOs, "Moat-test"),
        elftest::note_str(xn::kXenVersion, "xen-3.0"),
        elftest::note_str(xn::kLoader, "generic"),
        elftest::note_u64(xn::kVirtBase, kVirtBase),
        elftest::note_u64(xn::kEntry, kEntry),
        elftest::note_u64(xn::kHypercallPage, kHypercallPage),
    };
    return b;
}

inline std::vector<uint8_t> guest_image() { return guest_builder().build(); }

// Finishes taking apart every dying domain, as the kernel does on its way back
// to a guest (core::reap_dying), in one go.
// Whether the domain at `d` is gone (taken apart, its memory given back or
// about to be): it is on the list of domains no more. Compares pointers
// only, so it is safe on a domain already given back.
inline bool is_gone(const core::Domain* d) {
    for (const core::Domain* o = core::domains_first(); o; o = o->next)
        if (o == d) return false;
    return true;
}

// As the arch code's exit path does, switching to another vCPU: a current
// vCPU whose domain was taken apart is current no more, and the memory of
// its domain (kept while it was current) goes back.
inline void switch_away_from_gone() {
    core::Vcpu* cur = fake::calls().current;
    if (!cur || !is_gone(cur->domain)) return;
    fake::calls().current = nullptr;
    core::Budget b = core::Budget::unlimited();
    (void)core::reap_dying(b);
}

inline void reap() {
    core::Budget b = core::Budget::unlimited();
    EXPECT_TRUE(core::reap_dying(b));
    switch_away_from_gone();
}

// Reads guest memory of the loaded address space; fails the test if it cannot.
template <typename T>
T read_guest(uint64_t va) {
    T t{};
    EXPECT_TRUE(platform::copy_from_guest(&t, va, sizeof t)) << std::hex << "read at 0x" << va;
    return t;
}

inline std::vector<uint8_t> read_guest_bytes(uint64_t va, size_t n) {
    std::vector<uint8_t> v(n);
    EXPECT_TRUE(platform::copy_from_guest(v.data(), va, n)) << std::hex << "read at 0x" << va;
    return v;
}

template <typename T>
void write_guest(uint64_t va, const T& t) {
    ASSERT_TRUE(platform::copy_to_guest(va, &t, sizeof t)) << std::hex << "write at 0x" << va;
}

// Recomputes the frame table's reference counts of domain `dom` from the
// page tables rooted at `l4` and compares: a writable mapping holds a
// `writable` type reference, a page-table frame is referenced by the entry
// that links it (plus pin and vCPU for the L4), a read-only mapping holds a
// plain reference. Reports every mismatch; returns how many there were.
inline int check_frame_accounting(core::Mfn l4, core::DomId dom) {
    namespace pte = core::pte;
    core::FrameTable& ft = core::frame_table();
    std::vector<uint64_t> wmaps(ft.nframes()), romaps(ft.nframes()), links(ft.nframes());
    std::vector<core::PageType> level_of(ft.nframes(), core::PageType::none);
    static constexpr core::PageType kLevel[] = {core::PageType::none, core::PageType::l1, core::PageType::l2,
                                               core::PageType::l3, core::PageType::l4};
    int bad = 0;
    // Depth-first over the tables (the bootstrap tables are a tree).
    struct Walk {
        core::FrameTable& ft;
        std::vector<uint64_t>& w;
        std::vector<uint64_t>& ro;
        std::vector<uint64_t>& links;
        std::vector<core::PageType>& level_of;
        int& bad;
        core::DomId owner;
        bool mmio_ok(core::Mfn m) const {
            core::Domain* od = core::domain_at(owner);
            return od && core::caps::covers(*od, cap::Type::mmio, m << 12, 4096, cap::right::use);
        }
        void run(core::Mfn t, unsigned level) {
            level_of[t] = kLevel[level];
            uint64_t* e = fake::table(t);
            for (unsigned i = 0; i < 512; ++i) {
                if (!(e[i] & pte::kPresent)) continue;
                core::Mfn m = pte::mfn(e[i]);
                if (!ft.valid(m) && level == 1 && mmio_ok(m)) continue;   // device memory: no references
                if (!ft.valid(m)) {
                    ADD_FAILURE() << "entry " << i << " of L" << level << " table " << t << " maps frame " << m;
                    ++bad;
                    continue;
                }
                if (level == 1) {
                    (e[i] & pte::kWritable ? w : ro)[m]++;
                } else {
                    links[m]++;
                    run(m, level - 1);
                }
            }
        }
    } walk{ft, wmaps, romaps, links, level_of, bad, dom};
    walk.run(l4, 4);

    // The hypervisor's writable references on its grant table and status frames.
    if (core::Domain* od = core::domain_at(dom)) {
        for (unsigned k = 0; k < od->nr_grant_frames && k < core::kMaxGrantFrames; ++k) ++wmaps[od->grant_frames[k]];
        for (unsigned k = 0; k < od->nr_status_frames && k < core::kMaxStatusFrames; ++k) ++wmaps[od->status_frames[k]];
    }
    for (core::Mfn m = 0; m < ft.nframes(); ++m) {
        const core::FrameInfo& f = ft[m];
        uint64_t maps = wmaps[m] + romaps[m] + links[m];
        if (maps && f.owner != dom) {
            ADD_FAILURE() << "frame " << m << " is mapped by domain " << dom << " but owned by " << f.owner;
            ++bad;
        }
        if (f.owner != dom) continue;
        uint64_t extra = m == l4 ? 2 : 0;   // pinned, and the vCPU's guest_table
        uint64_t expect_count = maps + extra;
        if (f.count != expect_count) {
            ADD_FAILURE() << "frame " << m << ": count " << f.count << ", recomputed " << expect_count << " ("
                          << wmaps[m] << " writable, " << romaps[m] << " read-only mappings, " << links[m]
                          << " table links)";
            ++bad;
        }
        if (wmaps[m] && f.type != core::PageType::writable) {
            ADD_FAILURE() << "frame " << m << " has " << wmaps[m] << " writable mappings but type "
                          << int(f.type);
            ++bad;
        }
        if (f.type == core::PageType::writable && f.type_count != wmaps[m]) {
            ADD_FAILURE() << "frame " << m << ": writable type_count " << f.type_count << ", writable mappings "
                          << wmaps[m];
            ++bad;
        }
        if (level_of[m] != core::PageType::none) {
            if (f.type != level_of[m]) {
                ADD_FAILURE() << "frame " << m << " is a page table of type " << int(level_of[m])
                              << " but typed " << int(f.type);
                ++bad;
            } else if (f.type_count != links[m] + extra) {
                ADD_FAILURE() << "frame " << m << ": table type_count " << f.type_count << ", expected "
                              << links[m] + extra;
                ++bad;
            }
        }
    }
    return bad;
}

// ---- whole-machine memory-model check ----------------------------------------
//
// Recomputes every frame's `count` and `type_count` from scratch and checks
// the frame-table invariants (core/frame_table.hpp) over every frame of the
// machine. The references core/mm holds are exactly:
//  - each present entry of a validated page table (all 512; in an L4 not the
//    hypervisor slots 256..271), and of the [0, valid_upto) prefix of a
//    partial one: a general reference on its target, plus a type reference
//    (the next level down) in L2..L4, or a `writable` type reference for a
//    writable L1 entry;
//  - a pin: one general and one type reference;
//  - each vCPU's guest_table and guest_table_user (when not 0): one general
//    and one `l4` type reference.
//  - each grant mapping (a used maptrack entry of a running or stopped
//    domain): for each part it holds (host, device), a general reference on
//    the granted frame, plus a `writable` type reference for a writable one;
//    its PTE (kGrantPte) is counted there, not as an L1 entry;
//  - each frame of a live domain's grant table and v2 status frames: the
//    hypervisor's own general and `writable` type reference.
//  - each FIFO event-channel control block and event-array page a running
//    or stopped domain registered (core/evtchn_fifo.hpp): a general and a
//    `writable` type reference.
// Nothing else may hold references (in particular not a frame on a cleanup
// list beyond its own prefix). An L4 holds the hypervisor's slots (kFrameHvSlots)
// from the end of its validation to the end of its devalidation, not while a
// preempted validation is still under way. Returns "" when everything holds, otherwise a
// description of (up to `max_reports`) violations. No gtest macros: the fuzzer
// uses it too.
inline std::string mm_invariant_violations(unsigned max_reports = 16) {
    namespace pte = core::pte;
    core::FrameTable& ft = core::frame_table();
    const uint64_t n = ft.nframes();
    std::vector<uint64_t> cnt(n), tcnt(n), wmaps(n);
    std::string out;
    unsigned reports = 0;
    auto bad = [&](const char* fmt, auto... a) {
        if (reports++ >= max_reports) return;
        char buf[256];
        std::snprintf(buf, sizeof buf, fmt, a...);
        out += buf;
        out += '\n';
    };
    constexpr uint64_t kCommon = pte::kPresent | pte::kWritable | pte::kUser | pte::kAccessed | pte::kAvail |
                                 pte::kNx | pte::kAddrMask;
    constexpr uint64_t kL1Allowed = kCommon | pte::kDirty | pte::kGlobal;
    constexpr uint64_t kUpperAllowed = kCommon | pte::kDirty;
    auto level_of = [](core::PageType t) -> unsigned {
        return t == core::PageType::l1 ? 1 : t == core::PageType::l2 ? 2 : t == core::PageType::l3 ? 3
                                                                       : t == core::PageType::l4 ? 4 : 0;
    };
    auto type_of = [](unsigned level) {
        return level == 1 ? core::PageType::l1 : level == 2 ? core::PageType::l2 : level == 3 ? core::PageType::l3
                                                                                                : core::PageType::l4;
    };
    // Running or stopped (its memory kept until it is destroyed).
    auto live_owner = [](core::DomId o) {
        const core::Domain* od = core::domain_at(o);
        if (!od) return false;
        return od->state == core::DomainState::running || od->state == core::DomainState::stopped;
    };

    // 1. Entries of validated tables and prefixes of partial ones.
    for (core::Mfn t = 0; t < n; ++t) {
        const core::FrameInfo& f = ft[t];
        unsigned level = level_of(f.type);
        bool validated = f.flags & core::kFrameValidated, partial = f.flags & core::kFramePartial;
        if (!validated && !partial) continue;
        if (f.type == core::PageType::seg_desc && validated && !partial) continue;   // a checked descriptor page
        if (level == 0) {
            bad("frame %lu: flags %#x on a frame of type %d", t, f.flags, int(f.type));
            continue;
        }
        unsigned upto = validated ? 512 : f.valid_upto;
        if (validated && f.valid_upto != 512) bad("frame %lu: validated L%u with valid_upto %u", t, level, f.valid_upto);
        const uint64_t* e = fake::table(t);
        // The hypervisor's L4 slots hold no references. They go in when the
        // L4 completes validation and stay until its devalidation completes
        // (core/mm: validate, devalidate), so a validated L4 has them, and a
        // partial one has them only while it is being taken apart; one still
        // being validated (preempted, whatever its valid_upto) keeps the
        // guest's words there, unchecked: it is never loaded.
        if (level == 4) {
            bool hv = f.flags & core::kFrameHvSlots;
            if (validated && !hv) bad("L4 %lu: validated without the hypervisor's slots (flags %#x)", t, f.flags);
            for (unsigned i = fake::kHvFirstSlot; hv && i <= fake::kHvLastSlot; ++i) {
                bool direct_map = i == 262 && e[i] == ((fake::kDirectMapL3 << 12) | pte::kPresent | pte::kWritable);
                if (e[i] != fake::hv_slot_marker(i) && !direct_map)
                    bad("L4 %lu: hypervisor slot %u holds %#lx", t, i, e[i]);
            }
        }
        for (unsigned i = 0; i < upto; ++i) {
            if (level == 4 && i >= fake::kHvFirstSlot && i <= fake::kHvLastSlot) continue;   // checked above
            if (!(e[i] & pte::kPresent)) continue;
            if (e[i] & core::kGrantPte) {   // counted with its maptrack entry below
                if (level != 1) bad("L%u %lu entry %u: a grant PTE above L1", level, t, i);
                continue;
            }
            if (e[i] & ~(level == 1 ? kL1Allowed : kUpperAllowed))
                bad("L%u %lu entry %u: %#lx has forbidden bits", level, t, i, e[i]);
            core::Mfn c = pte::mfn(e[i]);
            if (!ft.valid(c)) {
                // Device memory its owner holds an Mmio capability for: no references.
                core::Domain* od = core::domain_at(f.owner);
                if (level == 1 && od && core::caps::covers(*od, cap::Type::mmio, c << 12, 4096, cap::right::use))
                    continue;
                bad("L%u %lu entry %u: %#lx points beyond RAM", level, t, i, e[i]);
                continue;
            }
            // Another domain's frame: only in an L1 of a domain that builds it
            // (a foreign mapping, mmu_update naming the domain).
            bool foreign_ok = ft[c].owner != f.owner && level == 1 && core::domain_at(f.owner) &&
                              core::caps::allows(*core::domain_at(f.owner), cap::Type::domain, ft[c].owner,
                                                 cap::right::build);
            if (ft[c].owner != f.owner && !foreign_ok)
                bad("L%u %lu (owner %u) entry %u maps frame %lu owned by %u", level, t, f.owner, i, c, ft[c].owner);
            ++cnt[c];
            if (level > 1) {
                ++tcnt[c];
                if (ft[c].type != type_of(level - 1))
                    bad("L%u %lu entry %u links frame %lu of type %d", level, t, i, c, int(ft[c].type));
            } else if (e[i] & pte::kWritable) {
                ++tcnt[c];
                ++wmaps[c];
                if (ft[c].type != core::PageType::writable)
                    bad("L1 %lu entry %u maps frame %lu writable, but its type is %d (flags %#x)", t, i, c,
                        int(ft[c].type), ft[c].flags);
            }
        }
    }
    // 2. Pins.
    for (core::Mfn m = 0; m < n; ++m) {
        const core::FrameInfo& f = ft[m];
        if (!(f.flags & core::kFramePinned)) continue;
        ++cnt[m];
        ++tcnt[m];
        if (!level_of(f.type) || !(f.flags & core::kFrameValidated))
            bad("frame %lu pinned but type %d flags %#x", m, int(f.type), f.flags);
    }
    // 3. vCPU base pointers and cleanup lists; grant mappings.
    uint64_t listed = 0;
    for (core::Domain* d = core::domains_first(); d; d = d->next) {
        if (core::domain_at(d->id) != d) bad("d%u: on the list of domains but not found by its id", d->id);
        if (!live_owner(d->id)) continue;
        unsigned used = 0;
        for (unsigned k = 0; k < core::kMaxMaptrack; ++k) {
            const core::Maptrack* mtp = core::maptrack_at(*d, k);
            if (!mtp || !mtp->used) continue;
            const core::Maptrack& mt = *mtp;
            ++used;
            if (k >= d->maptrack_limit) bad("d%u: maptrack entry %u in use above the limit %u", d->id, k, d->maptrack_limit);
            if (!ft.valid(mt.frame)) {
                bad("d%u: maptrack entry %u maps frame %lu beyond RAM", d->id, k, mt.frame);
                continue;
            }
            if (!live_owner(ft[mt.frame].owner) || ft[mt.frame].owner != mt.granter)
                bad("d%u: maptrack entry %u maps frame %lu owned by %u, granter %u", d->id, k, mt.frame,
                    ft[mt.frame].owner, mt.granter);
            if (!mt.host && !mt.device) bad("d%u: maptrack entry %u used with neither a host nor a device part", d->id, k);
            unsigned parts = unsigned(mt.host) + unsigned(mt.device);
            cnt[mt.frame] += parts;
            if (mt.writable) {
                tcnt[mt.frame] += parts;
                wmaps[mt.frame] += parts;
                if (ft[mt.frame].type != core::PageType::writable)
                    bad("d%u: maptrack entry %u maps frame %lu writable, type %d", d->id, k, mt.frame,
                        int(ft[mt.frame].type));
            }
        }
        if (used != d->maptrack_used) bad("d%u: %u maptrack entries used, maptrack_used %u", d->id, used, d->maptrack_used);
        // FIFO event channels: each control block and event-array page holds
        // a writable reference on a frame of the domain's.
        {
            const core::EvtchnFifo& f = d->fifo;
            std::vector<core::Mfn> fifo_frames;
            for (const auto& c : f.control)
                if (c.mfn) fifo_frames.push_back(c.mfn);
            if (f.array_pages > core::kFifoMaxArrayPages)
                bad("d%u: %u FIFO event-array pages, at most %u", d->id, f.array_pages, core::kFifoMaxArrayPages);
            for (unsigned i = 0; i < core::kFifoMaxArrayPages; ++i) {
                if (i < f.array_pages) fifo_frames.push_back(f.array_mfn[i]);
                else if (f.array_mfn[i]) bad("d%u: FIFO array slot %u holds %lu beyond array_pages", d->id, i, f.array_mfn[i]);
            }
            if (!f.active && !fifo_frames.empty()) bad("d%u: FIFO frames held while FIFO is off", d->id);
            for (core::Mfn m : fifo_frames) {
                if (!ft.valid(m)) {
                    bad("d%u: FIFO frame %lu beyond RAM", d->id, m);
                    continue;
                }
                ++cnt[m];
                ++tcnt[m];
                ++wmaps[m];
                if (ft[m].type != core::PageType::writable || ft[m].owner != d->id)
                    bad("d%u: FIFO frame %lu has type %d owner %u", d->id, m, int(ft[m].type), ft[m].owner);
            }
        }
        // Its grant table's frames and v2 status frames: the hypervisor writes
        // them, and holds a writable reference on each.
        if (d->grant_version != 1 && d->grant_version != 2) bad("d%u: grant table version %u", d->id, d->grant_version);
        if (d->nr_status_frames != (d->grant_version == 2 ? core::gnttab_status_frames_for(d->nr_grant_frames) : 0u))
            bad("d%u: %u status frames for %u grant frames in v%u", d->id, d->nr_status_frames, d->nr_grant_frames,
                d->grant_version);
        auto table_frame = [&](core::Mfn m, const char* what) {
            if (!ft.valid(m) || ft[m].owner != d->id || ft[m].type != core::PageType::writable) {
                bad("d%u: %s frame %lu not its own writable frame", d->id, what, m);
                return;
            }
            ++cnt[m];
            ++tcnt[m];
            ++wmaps[m];
        };
        for (unsigned k = 0; k < d->nr_grant_frames && k < core::kMaxGrantFrames; ++k) table_frame(d->grant_frames[k], "grant");
        for (unsigned k = 0; k < d->nr_status_frames && k < core::kMaxStatusFrames; ++k)
            table_frame(d->status_frames[k], "status");
        for (auto& v : d->vcpu) {
            // vcpu_info moved into a frame of its own: a writable reference.
            if (v.info_mfn) {
                ++cnt[v.info_mfn];
                ++tcnt[v.info_mfn];
                ++wmaps[v.info_mfn];
            }
            // Its GDT frames: a seg_desc reference each.
            for (unsigned g = 0; g < (v.gdt_ents + 511) / 512; ++g) {
                core::Mfn m = v.gdt_frames[g];
                ++cnt[m];
                ++tcnt[m];
                if (ft[m].type != core::PageType::seg_desc || ft[m].owner != d->id)
                    bad("d%u: GDT frame %lu has type %d owner %u", d->id, m, int(ft[m].type), ft[m].owner);
            }
            // Its LDT frames (MMUEXT_SET_LDT): likewise a seg_desc reference each.
            if (v.ldt_ents > 8192) bad("d%u: LDT of %u entries", d->id, v.ldt_ents);
            for (unsigned g = 0; g < (v.ldt_ents + 511) / 512 && g < 16; ++g) {
                core::Mfn m = v.ldt_frames[g];
                if (!ft.valid(m)) {
                    bad("d%u: LDT frame %lu beyond RAM", d->id, m);
                    continue;
                }
                ++cnt[m];
                ++tcnt[m];
                if (ft[m].type != core::PageType::seg_desc || ft[m].owner != d->id)
                    bad("d%u: LDT frame %lu has type %d owner %u", d->id, m, int(ft[m].type), ft[m].owner);
            }
            for (core::Mfn b : {v.guest_table, v.guest_table_user}) {
                if (!b) continue;
                if (!ft.valid(b)) {
                    bad("d%u: base pointer %lu beyond RAM", d->id, b);
                    continue;
                }
                ++cnt[b];
                ++tcnt[b];
                if (ft[b].type != core::PageType::l4 || !(ft[b].flags & core::kFrameValidated) ||
                    ft[b].owner != d->id)
                    bad("d%u: base pointer %lu has type %d flags %#x owner %u", d->id, b, int(ft[b].type),
                        ft[b].flags, ft[b].owner);
            }
            for (unsigned i = 0; i < v.ncleanup; ++i) {
                core::Mfn m = v.cleanup[i];
                ++listed;
                if (!ft.valid(m) || !(ft[m].flags & core::kFrameCleanup) || !(ft[m].flags & core::kFramePartial) ||
                    ft[m].owner != d->id)
                    bad("d%u: cleanup entry %u: frame %lu flags %#x", d->id, i, m, ft.valid(m) ? ft[m].flags : 0);
            }
        }
    }
    // 4. Per frame.
    uint64_t flagged = 0;
    for (core::Mfn m = 0; m < n; ++m) {
        const core::FrameInfo& f = ft[m];
        if (f.flags & core::kFrameCleanup) ++flagged;
        if (f.count != cnt[m])
            bad("frame %lu (owner %u, type %d, flags %#x): count %u, recomputed %lu", m, f.owner, int(f.type),
                f.flags, f.count, cnt[m]);
        if (f.type_count != tcnt[m])
            bad("frame %lu (owner %u, type %d, flags %#x): type_count %u, recomputed %lu", m, f.owner, int(f.type),
                f.flags, f.type_count, tcnt[m]);
        bool pt = level_of(f.type) != 0;
        if ((f.flags & core::kFrameValidated) && (f.flags & core::kFramePartial))
            bad("frame %lu both validated and partial", m);
        if ((f.flags & core::kFrameValidated) && f.type_count == 0) bad("frame %lu validated with no type reference", m);
        if (pt && f.type_count > 0 && !(f.flags & core::kFrameValidated))
            bad("frame %lu: L%u with %u type references, not validated (flags %#x)", m, level_of(f.type),
                f.type_count, f.flags);
        if ((f.flags & core::kFramePartial) && f.type_count != 0)
            bad("frame %lu partial with %u type references", m, f.type_count);
        if ((f.flags & core::kFrameCleanup) && !(f.flags & core::kFramePartial))
            bad("frame %lu on a cleanup list but not partial", m);
        if ((f.flags & core::kFrameHvSlots) && live_owner(f.owner) &&
            (f.type != core::PageType::l4 || !(f.flags & (core::kFrameValidated | core::kFramePartial))))
            bad("frame %lu (type %d, flags %#x) marked as holding the hypervisor's L4 slots", m, int(f.type), f.flags);
        if (pt && wmaps[m]) bad("frame %lu is an L%u and mapped writable %lu times", m, level_of(f.type), wmaps[m]);
        if ((cnt[m] || (f.flags & ~core::kFrameScrubbed)) && !live_owner(f.owner))
            bad("frame %lu referenced (%lu) or flagged (%#x) but owned by %u", m, cnt[m], f.flags, f.owner);
        // Scrubbed: free, and all zero (the next domain gets it as it is).
        if (f.flags & core::kFrameScrubbed) {
            if (f.owner != core::kOwnerNone) bad("frame %lu marked scrubbed but owned by %u", m, f.owner);
            const auto* bytes = static_cast<const uint8_t*>(platform::phys_to_virt(m << 12));
            for (unsigned i = 0; i < 4096; ++i)
                if (bytes[i]) {
                    bad("frame %lu marked scrubbed but byte %u is %#x", m, i, bytes[i]);
                    break;
                }
        }
        if (!live_owner(f.owner) && (f.count || f.type_count))
            bad("frame %lu owned by %u holds count %u type_count %u", m, f.owner, f.count, f.type_count);
    }
    if (flagged != listed) bad("%lu frames flagged for cleanup, %lu on cleanup lists", flagged, listed);
    if (reports > max_reports) out += "... and more\n";
    return out;
}

// ---- random memory operations ---------------------------------------------------
//
// Drives a domain's memory hypercalls (and a few direct core/mm calls with
// small budgets) from a stream of bytes: the property test feeds it from a
// PRNG, the fuzzer from its input. It keeps the `scratch` pages (where it
// puts request arrays) mapped writable in the loaded page table so the
// hypercalls can keep reading their arguments; everything else is fair game.
struct MmOpEngine {
    core::Domain* d = nullptr;
    core::Vcpu* v = nullptr;
    core::Domain* foreign = nullptr;   // may be null
    uint64_t scratch = 0;              // guest VA, kScratchPages pages
    uint64_t region_start = 0, region_end = 0;
    static constexpr unsigned kScratchPages = 4;
    static constexpr uint64_t kRip = 0x400802;

    // Random source: returns the next byte (0 when exhausted, for the fuzzer).
    uint8_t (*next_byte)(void*) = nullptr;
    void* src = nullptr;
    char last[200] = {};   // what the last step did

    uint32_t rnd(uint32_t bound) {
        if (bound <= 1) return 0;
        uint32_t x = next_byte(src);
        if (bound > 256) x = x | (uint32_t(next_byte(src)) << 8);
        if (bound > 65536) x = x | (uint32_t(next_byte(src)) << 16);
        return x % bound;
    }

    bool alive() const { return d->state == core::DomainState::running; }

    int64_t hcall(uint64_t nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
                  unsigned* continuations = nullptr) {
        core::Regs r = v->regs;
        r.rax = nr;
        r.rdi = a1;
        r.rsi = a2;
        r.rdx = a3;
        r.r10 = a4;
        r.rip = kRip;
        r.rcx = kRip;
        for (unsigned k = 0; k < 100000; ++k) {
            core::hypercall(*v, r);
            if (!alive() || r.rip == kRip) break;
            if (continuations) ++*continuations;
            r.rip += 2;
        }
        return static_cast<int64_t>(r.rax);
    }

    std::vector<core::Mfn> owned, pts, spare;
    void collect() {
        owned.clear();
        pts.clear();
        spare.clear();
        core::FrameTable& ft = core::frame_table();
        for (core::Mfn m = 0; m < ft.nframes(); ++m) {
            const core::FrameInfo& f = ft[m];
            if (f.owner != d->id) continue;
            owned.push_back(m);
            if (core::is_page_table(f.type)) pts.push_back(m);
            if (f.count == 0 && f.type_count == 0 && m != d->shared_info_mfn) spare.push_back(m);
        }
    }
    core::Mfn pick_of(const std::vector<core::Mfn>& v) { return v.empty() ? core::Mfn{1} : v[rnd(uint32_t(v.size()))]; }

    core::Mfn target() {
        switch (rnd(16)) {
        case 0: case 1: case 2: case 3: case 4: case 5: return pick_of(owned);
        case 6: case 7: case 8: return pick_of(pts);
        case 9: case 10: case 11: return pick_of(spare);
        case 12:
            if (foreign) return rnd(2) ? foreign->shared_info_mfn : foreign->vcpu[0].guest_table;
            return 3;
        case 13: return rnd(fake::kReservedFrames);
        case 14: return core::frame_table().nframes() + rnd(300);
        default: return v->guest_table;
        }
    }
    uint64_t flags() {
        namespace pte = core::pte;
        uint64_t fl = rnd(10) ? pte::kPresent : 0;
        if (rnd(2)) fl |= pte::kWritable;
        if (rnd(2)) fl |= pte::kAccessed;
        if (rnd(3) == 0) fl |= pte::kDirty;
        if (rnd(16) == 0) fl |= pte::kPse;
        if (rnd(32) == 0) fl |= pte::kPcd;
        if (rnd(32) == 0) fl |= pte::kPwt;
        if (rnd(16) == 0) fl |= pte::kGlobal;
        if (rnd(8) == 0) fl |= pte::kNx;
        if (rnd(64) == 0) fl |= 1ull << 52;
        return fl;
    }
    unsigned index() {
        static constexpr unsigned kIdx[] = {0, 1, 2, 3, 4, 5, 256, 271, 272, 300, 511};
        return rnd(3) ? kIdx[rnd(sizeof kIdx / sizeof kIdx[0])] : rnd(512);
    }

    // (table, index) pairs the scratch pages depend on in the loaded tables.
    bool protected_entry(core::Mfn t, unsigned i) {
        namespace pte = core::pte;
        uint64_t l4 = fake::current_l4();
        if (l4 == fake::kNoTable) return false;
        for (unsigned p = 0; p < kScratchPages; ++p) {
            uint64_t va = scratch + p * 4096;
            core::Mfn m = l4;
            for (unsigned level = 4; level >= 1; --level) {
                unsigned idx = pte::index(va, level);
                if (m == t && idx == i) return true;
                uint64_t e = fake::table(m)[idx];
                if (!(e & pte::kPresent) || level == 1) break;
                m = pte::mfn(e);
                if (m >= fake::nframes()) break;
            }
        }
        return false;
    }
    bool scratch_ok() {
        uint64_t l4 = fake::current_l4();
        if (l4 == fake::kNoTable) return false;
        for (unsigned p = 0; p < kScratchPages; ++p) {
            uint64_t pa;
            bool w;
            if (!fake::translate(l4, scratch + p * 4096, &pa, &w) || !w) return false;
        }
        return true;
    }
    void put(uint64_t off, const void* p, size_t n) {
        if (!platform::copy_to_guest(scratch + off, p, n)) std::abort();   // the engine keeps it mapped
    }

    uint64_t random_va() {
        switch (rnd(4)) {
        case 0: case 1: return region_start + uint64_t(rnd(uint32_t((region_end - region_start) >> 12))) * 4096;
        case 2: return 0x40000000ull + uint64_t(rnd(2048)) * 4096;
        default: return (uint64_t(rnd(1u << 24)) << 24) | (uint64_t(rnd(4096)) << 12);
        }
    }

    // One mmu_update request: a random entry of a random table (or plain frame).
    bool make_update(abi::MmuUpdate& u) {
        core::Mfn t = rnd(5) < 3 ? pick_of(pts) : rnd(4) ? pick_of(spare) : target();
        unsigned i = index();
        if (core::frame_table().valid(t) && protected_entry(t, i)) return false;
        uint64_t cmd = rnd(4) == 0 ? abi::kMmuPtUpdatePreserveAd : abi::kMmuNormalPtUpdate;
        u.ptr = (t << 12) | (uint64_t(i) << 3) | cmd;
        u.val = rnd(8) == 0 ? 0 : core::pte::make(target(), flags());
        return true;
    }

    int64_t mmu_batch(const std::vector<abi::MmuUpdate>& reqs) {
        put(0, reqs.data(), reqs.size() * sizeof(abi::MmuUpdate));
        uint64_t done = 0;
        put(4096 - 8, &done, 8);
        return hcall(uint64_t(abi::Hypercall::mmu_update), scratch, reqs.size(), scratch + 4096 - 8,
                     abi::kDomidSelf);
    }
    int64_t ext(abi::MmuextCmd cmd, uint64_t arg1) {
        abi::MmuextOp op{};
        op.cmd = uint32_t(cmd);
        op.arg1.mfn = arg1;
        put(0, &op, sizeof op);
        return hcall(uint64_t(abi::Hypercall::mmuext_op), scratch, 1, 0, abi::kDomidSelf);
    }
    int64_t reservation(abi::MemoryOp op, const std::vector<uint64_t>& ext) {
        abi::XenMemoryReservation res{};
        res.extent_start = scratch + 1024;
        res.nr_extents = ext.size();
        res.domid = abi::kDomidSelf;
        put(512, &res, sizeof res);
        if (!ext.empty()) put(1024, ext.data(), ext.size() * 8);
        return hcall(uint64_t(abi::Hypercall::memory_op), uint64_t(op), scratch + 512);
    }

    // Makes the scratch pages reachable again after a base pointer change.
    void restore(core::Mfn good) {
        for (unsigned k = 0; k < 1000 && alive(); ++k) {
            core::Budget b = core::Budget::unlimited();
            core::MmCtx c{*d, *v, b};
            if (core::finish_cleanup(c) != 0) continue;
            long r = core::new_baseptr(c, good, false);
            if (r == 0 || r != core::kRestart) return;
        }
    }

    // One random step. False once the domain is gone.
    bool step() {
        if (!alive()) return false;
        collect();
        switch (rnd(14)) {
        case 0: case 1: case 2: {   // mmu_update, one to a few requests
            std::vector<abi::MmuUpdate> reqs;
            unsigned k = rnd(4) == 0 ? 2 + rnd(6) : 1;
            for (unsigned j = 0; j < k; ++j) {
                abi::MmuUpdate u;
                if (make_update(u)) reqs.push_back(u);
            }
            if (reqs.empty()) break;
            int64_t rc = mmu_batch(reqs);
            std::snprintf(last, sizeof last, "mmu_update x%zu first %#lx=%#lx -> %ld", reqs.size(), reqs[0].ptr,
                          reqs[0].val, rc);
            break;
        }
        case 3: {   // update_va_mapping
            uint64_t va = random_va();
            if (va >= scratch && va < scratch + kScratchPages * 4096) break;
            uint64_t val = rnd(6) == 0 ? 0 : core::pte::make(target(), flags());
            int64_t rc = hcall(uint64_t(abi::Hypercall::update_va_mapping), va, val, rnd(3));
            std::snprintf(last, sizeof last, "update_va_mapping %#lx=%#lx -> %ld", va, val, rc);
            break;
        }
        case 4: {   // pin
            unsigned level = 1 + rnd(4);
            core::Mfn m = rnd(2) ? pick_of(spare) : target();
            int64_t rc = ext(abi::MmuextCmd(unsigned(abi::MmuextCmd::pin_l1_table) + level - 1), m);
            std::snprintf(last, sizeof last, "pin L%u %lu -> %ld", level, m, rc);
            break;
        }
        case 5: {   // unpin
            core::Mfn m = rnd(4) ? pick_of(pts) : target();
            int64_t rc = ext(abi::MmuextCmd::unpin_table, m);
            std::snprintf(last, sizeof last, "unpin %lu -> %ld", m, rc);
            break;
        }
        case 6: {   // new_baseptr / new_user_baseptr
            bool user = rnd(2);
            core::Mfn m = user && rnd(3) == 0 ? 0 : rnd(2) ? pick_of(pts) : target();
            core::Mfn before = v->guest_table;
            int64_t rc = ext(user ? abi::MmuextCmd::new_user_baseptr : abi::MmuextCmd::new_baseptr, m);
            std::snprintf(last, sizeof last, "new_%sbaseptr %lu -> %ld", user ? "user_" : "", m, rc);
            if (alive() && !scratch_ok()) restore(before);
            break;
        }
        case 7: {   // decrease_reservation
            std::vector<uint64_t> e;
            unsigned k = 1 + rnd(3);
            for (unsigned j = 0; j < k; ++j) e.push_back(rnd(2) ? pick_of(spare) : target());
            int64_t rc = reservation(abi::MemoryOp::decrease_reservation, e);
            std::snprintf(last, sizeof last, "decrease_reservation %lu.. x%u -> %ld", e[0], k, rc);
            break;
        }
        case 8: {   // increase_reservation
            std::vector<uint64_t> e(1 + rnd(3), 0);
            int64_t rc = reservation(abi::MemoryOp::increase_reservation, e);
            std::snprintf(last, sizeof last, "increase_reservation x%zu -> %ld", e.size(), rc);
            break;
        }
        case 9: {   // finish_cleanup with a small budget
            core::Budget b{1 + rnd(20)};
            core::MmCtx c{*d, *v, b};
            long rc = core::finish_cleanup(c);
            std::snprintf(last, sizeof last, "finish_cleanup -> %ld (%u left)", rc, v->ncleanup);
            break;
        }
        case 10: {   // pin with a small budget, not retried: leaves partial tables behind
            if (v->ncleanup > 16) break;
            unsigned level = 1 + rnd(4);
            core::Mfn m = rnd(2) ? pick_of(spare) : pick_of(pts);
            core::Budget b{4 + rnd(60)};
            core::MmCtx c{*d, *v, b};
            long rc = core::pin_table(c, m, core::level_type(level));
            std::snprintf(last, sizeof last, "direct pin L%u %lu -> %ld", level, m, rc);
            break;
        }
        case 11: {   // unpin with a small budget: queues devalidations
            if (v->ncleanup > 16) break;
            core::Mfn m = pick_of(pts);
            core::Budget b{1 + rnd(30)};
            core::MmCtx c{*d, *v, b};
            long rc = core::unpin_table(c, m);
            std::snprintf(last, sizeof last, "direct unpin %lu -> %ld (%u queued)", m, rc, v->ncleanup);
            break;
        }
        case 12: {   // fill a spare frame with plausible entries (plain writes), maybe link it
            if (spare.empty()) break;
            core::Mfn t = pick_of(spare);
            unsigned level = 1 + rnd(3);
            std::vector<abi::MmuUpdate> reqs;
            unsigned k = 1 + rnd(12);
            for (unsigned j = 0; j < k; ++j) {
                core::Mfn c = level == 1 ? pick_of(owned) : rnd(2) ? pick_of(spare) : pick_of(pts);
                uint64_t fl = core::pte::kPresent | core::pte::kAccessed | (rnd(2) ? core::pte::kWritable : 0);
                reqs.push_back(abi::MmuUpdate{(t << 12) | (uint64_t(rnd(512)) << 3), core::pte::make(c, fl)});
            }
            int64_t rc = mmu_batch(reqs);
            std::snprintf(last, sizeof last, "fill %lu as L%u x%u -> %ld", t, level, k, rc);
            break;
        }
        default: {   // machphys update
            core::Mfn m = target();
            abi::MmuUpdate u{(m << 12) | abi::kMmuMachphysUpdate, rnd(4096)};
            int64_t rc = mmu_batch({u});
            std::snprintf(last, sizeof last, "machphys %lu -> %ld", m, rc);
            break;
        }
        }
        return alive();
    }
};

// A fresh machine and one domain built from guest_image(), its address space
// loaded. Keeps the image alive (the builder reads from it).
class DomainTest : public ::testing::Test {
protected:
    void SetUp() override {
        fake::reset();
        free_at_start = core::frame_allocator().free_frames();
        image = guest_image();
        auto r = core::build_pv_domain(spec(kPages));
        ASSERT_TRUE(r.ok()) << "build failed, stage " << int(r.error().stage);
        d = *r;
        v = &d->vcpu[0];
        auto lay = core::compute_pv_layout(kVirtBase, kText, kImageEnd, kPages);
        ASSERT_TRUE(lay.ok());
        l = *lay;
        platform::load_page_table(v->guest_table);
        fake::calls().current = v;
    }

    core::BuildSpec spec(uint64_t pages, const char* cmdline = "console=hvc0 quiet") const {
        return core::BuildSpec{"test", image.data(), image.size(), cmdline, pages};
    }

    bool crashed() const { return fake::log().find("crashed") != std::string::npos; }

    uint64_t free_at_start = 0;
    std::vector<uint8_t> image;
    core::Domain* d = nullptr;
    core::Vcpu* v = nullptr;

    // A hypercall `nr` made by v as a PV guest makes it (syscall from just
    // before kSyscallRip), in `r`; its result (rax).
    static constexpr uint64_t kSyscallRip = 0x400802;
    core::Regs r{};
    int64_t call(uint64_t nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
        r = v->regs;
        r.rax = nr;
        r.rdi = a1;
        r.rsi = a2;
        r.rdx = a3;
        r.rip = kSyscallRip;
        r.rcx = kSyscallRip;
        core::hypercall(*v, r);
        return static_cast<int64_t>(r.rax);
    }
    core::PvLayout l{};
};

}  // namespace coretest
