// Fuzz memory validation (core/mm and the memory hypercalls). Each input is a
// sequence of operations (see coretest::MmOpEngine) on a fresh small fake
// machine holding two built domains; the first is driven, the second supplies
// foreign frames. After every operation every frame's count and type count is
// recomputed from the page tables, pins and base pointers, and the frame-table
// invariants are checked; any violation traps.

#include "../input.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "test_domain.hpp"

namespace {

namespace xn = elf::xen_note;

constexpr uint64_t kFrames = 640;
constexpr uint64_t kBase = 0x300000;         // the region is [3 MiB, 4 MiB): 256 pages
constexpr uint64_t kDomPages = 288;          // 32 owned frames beyond the region
constexpr uint64_t kScratch = 0x3F0000;      // the engine's request pages
constexpr unsigned kMaxSteps = 300;

// A one-page image at 3 MiB: a small domain, so reset and build stay cheap.
std::vector<uint8_t> small_image() {
    elftest::Builder b;
    b.entry = kBase + 0x100;
    b.segs.push_back(elftest::Seg{kBase, elftest::pattern(0x1000, 3), 0, elftest::PF_R | elftest::PF_X});
    b.notes = {
        elftest::note_str(xn::kGuestOs, "Moat-fuzz"),
        elftest::note_str(xn::kXenVersion, "xen-3.0"),
        elftest::note_str(xn::kLoader, "generic"),
        elftest::note_u64(xn::kVirtBase, kBase),
        elftest::note_u64(xn::kEntry, kBase + 0x100),
    };
    return b.build();
}

using Input = fuzz::Input;

core::Domain* build(const std::vector<uint8_t>& image, const char* name) {
    auto r = core::build_pv_domain(core::BuildSpec{name, image.data(), image.size(), "", kDomPages});
    if (!r.ok()) {
        std::fprintf(stderr, "mm_fuzz: build failed, stage %d\n", int(r.error().stage));
        __builtin_trap();
    }
    return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<uint8_t> image = small_image();
    fake::reset(kFrames);
    core::Domain* d = build(image, "a");
    core::Domain* other = build(image, "b");
    core::Vcpu* v = &d->vcpu[0];
    platform::load_page_table(v->guest_table);
    fake::calls().current = v;

    Input in{data, size};
    coretest::MmOpEngine eng;
    eng.d = d;
    eng.v = v;
    eng.foreign = other;
    eng.scratch = kScratch;
    eng.region_start = kBase;
    eng.region_end = kBase + 0x100000;
    eng.next_byte = &Input::next;
    eng.src = &in;
    if (!eng.scratch_ok()) __builtin_trap();

    for (unsigned s = 0; s < kMaxSteps && in.n > 0; ++s) {
        eng.last[0] = 0;
        bool alive = eng.step();
        std::string bad = coretest::mm_invariant_violations(8);
        if (!bad.empty()) {
            std::fprintf(stderr, "mm_fuzz: step %u (%s):\n%s", s, eng.last, bad.c_str());
            __builtin_trap();
        }
        if (!alive) break;   // e.g. crashed for too many unfinished devalidations: still consistent
    }
    // Drain what is left: afterwards nothing may stay queued.
    for (unsigned k = 0; k < 10000 && d->state == core::DomainState::running && v->ncleanup; ++k) {
        core::Budget b{16};
        core::MmCtx c{*d, *v, b};
        (void)core::finish_cleanup(c);
    }
    if (d->state == core::DomainState::running && v->ncleanup) __builtin_trap();
    std::string bad = coretest::mm_invariant_violations(8);
    if (!bad.empty()) {
        std::fprintf(stderr, "mm_fuzz: after draining:\n%s", bad.c_str());
        __builtin_trap();
    }
    return 0;
}
