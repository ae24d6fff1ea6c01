#pragma once
// Helpers shared by the core tests: a small Xen PV guest image and typed
// access to guest memory through the fake machine's page-table walk.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <core/domain.hpp>
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
        void run(core::Mfn t, unsigned level) {
            level_of[t] = kLevel[level];
            uint64_t* e = fake::table(t);
            for (unsigned i = 0; i < 512; ++i) {
                if (!(e[i] & pte::kPresent)) continue;
                core::Mfn m = pte::mfn(e[i]);
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
    } walk{ft, wmaps, romaps, links, level_of, bad};
    walk.run(l4, 4);

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
    core::PvLayout l{};
};

}  // namespace coretest
