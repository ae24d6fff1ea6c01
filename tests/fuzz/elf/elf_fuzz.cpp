// Fuzzes elf::parse and elf::load. Each input is parsed as-is; inputs whose
// first byte is odd are also applied as (offset, byte) patches to a small
// valid Xen image, so mutations reach the segment and note checks quickly.
// On success the image's invariants are checked, and load()'s writes must
// each lie within one page, one segment and [kstart, kend), cover every
// segment exactly once in order, and read only from the input.

#include <elf/elf.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "elf_builder.hpp"

namespace {

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

std::vector<uint8_t> make_template(bool in_section) {
    using namespace elftest;
    namespace xn = elf::xen_note;
    Builder b;
    b.entry = 0x400010;
    b.segs.push_back(Seg{0x400000, pattern(0x40, 1), 0x40, PF_R | PF_X, 16});
    b.segs.push_back(Seg{0x401ff0, pattern(0x20, 2), 0x1100, PF_R | PF_W, 16});
    b.segs.push_back(Seg{0x800000, {}, 0x10, PF_R, 16});
    b.notes = {note_str(xn::kGuestOs, "Moat"),         note_str(xn::kXenVersion, "xen-3.0"),
               note_str(xn::kLoader, "generic"),       note_u64(xn::kVirtBase, 0x400000),
               note_u32(xn::kEntry, 0x400010),         note_u64(xn::kHypercallPage, 0x401000),
               note_u64(xn::kPaddrOffset, 0x400000),   note_u64(xn::kInitP2m, 0x900000),
               note_str(xn::kFeatures, "dom0|!writable_page_tables"),
               note_u32(xn::kSupportedFeatures, 0x100)};
    b.notes_in_section = in_section;
    return b.build();
}

struct LoadState {
    const elf::Image* img;
    const uint8_t* data;
    size_t size;
    unsigned seg;      // current segment
    uint64_t next;     // next expected vaddr in it
    uint64_t sum;
};

void on_write(void* ctx, uint64_t va, const uint8_t* src, uint64_t len) {
    auto& st = *static_cast<LoadState*>(ctx);
    const elf::Image& img = *st.img;
    CHECK(len > 0);
    // Advance to the next segment when the current one is complete.
    while (st.seg < img.nsegments &&
           st.next == img.segments[st.seg].vaddr + img.segments[st.seg].memsz) {
        ++st.seg;
        if (st.seg < img.nsegments) st.next = img.segments[st.seg].vaddr;
    }
    CHECK(st.seg < img.nsegments);
    const elf::Segment& s = img.segments[st.seg];
    CHECK(va == st.next);
    CHECK(va >= s.vaddr && len <= s.memsz && va - s.vaddr <= s.memsz - len);
    CHECK(va >= img.kstart && va < img.kend && len <= img.kend - va);
    CHECK((va >> 12) == ((va + len - 1) >> 12));  // within one page
    const uint64_t rel = va - s.vaddr;
    if (src) {
        CHECK(rel + len <= s.filesz);
        CHECK(src == st.data + s.offset + rel);
        CHECK(src >= st.data && len <= st.size && static_cast<size_t>(src - st.data) <= st.size - len);
        for (uint64_t i = 0; i < len; ++i) st.sum += src[i];  // ASan checks the reads
    } else {
        CHECK(rel >= s.filesz);
    }
    st.next = va + len;
}

void check(const uint8_t* data, size_t size) {
    auto r = elf::parse(data, size);
    if (!r.ok()) {
        CHECK(elf::describe(r.error()) != nullptr);
        return;
    }
    const elf::Image& img = r.value();
    CHECK(img.nsegments >= 1 && img.nsegments <= elf::kMaxSegments);
    CHECK(img.kstart % 4096 == 0 && img.kend % 4096 == 0);
    CHECK(img.kstart < img.kend && img.kend - img.kstart <= elf::kMaxImageSpan);
    CHECK(img.xen.entry >= img.kstart && img.xen.entry < img.kend);
    CHECK(img.xen.virt_base <= img.kstart);
    CHECK(img.xen.guest_os[0] != '\0' && img.xen.guest_os[15] == '\0');
    CHECK((img.xen.required_features & ~img.xen.supported_features) == 0);
    if (img.xen.has_hypercall_page)
        CHECK(img.xen.hypercall_page % 4096 == 0 && img.xen.hypercall_page >= img.kstart &&
              img.xen.hypercall_page < img.kend);
    for (unsigned i = 0; i < img.nsegments; ++i) {
        const elf::Segment& s = img.segments[i];
        CHECK(s.memsz > 0 && s.filesz <= s.memsz);
        CHECK(s.offset <= size && s.filesz <= size - s.offset);
        CHECK(s.vaddr >= img.kstart && s.memsz <= img.kend - s.vaddr);
        for (unsigned j = 0; j < i; ++j) {
            const elf::Segment& t = img.segments[j];
            CHECK(s.vaddr >= t.vaddr + t.memsz || t.vaddr >= s.vaddr + s.memsz);
        }
    }
    // Zero-filling a huge image is correct but slow; keep the fuzzer fast.
    if (img.kend - img.kstart > (uint64_t{64} << 20)) return;
    LoadState st{&img, data, size, 0, img.segments[0].vaddr, 0};
    auto ls = elf::load(img, data, size, on_write, &st);
    CHECK(ls.ok());
    // Every segment fully covered.
    while (st.seg < img.nsegments &&
           st.next == img.segments[st.seg].vaddr + img.segments[st.seg].memsz) {
        ++st.seg;
        if (st.seg < img.nsegments) st.next = img.segments[st.seg].vaddr;
    }
    CHECK(st.seg == img.nsegments);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check(data, size);
    if (size >= 1 && (data[0] & 1)) {
        static const std::vector<uint8_t> templates[2] = {make_template(false), make_template(true)};
        std::vector<uint8_t> buf = templates[(data[0] >> 1) & 1];
        // Sanity: the unpatched templates parse.
        static const bool ok = elf::parse(templates[0].data(), templates[0].size()).ok() &&
                               elf::parse(templates[1].data(), templates[1].size()).ok();
        CHECK(ok);
        for (size_t i = 1; i + 3 <= size; i += 3) {
            size_t off = (data[i] | (size_t{data[i + 1]} << 8)) % buf.size();
            buf[off] = data[i + 2];
        }
        // Optionally truncate: a size byte in the trailing remainder.
        if ((size - 1) % 3 == 1) buf.resize(buf.size() - data[size - 1] % buf.size());
        // Copy to an exactly-sized heap block so ASan sees any overread.
        std::vector<uint8_t> exact(buf.begin(), buf.end());
        check(exact.data(), exact.size());
    }
    return 0;
}
