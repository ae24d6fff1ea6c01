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
