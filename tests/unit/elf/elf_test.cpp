#include <elf/elf.hpp>
#include <elf/xen.hpp>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "elf_builder.hpp"

using namespace elftest;
namespace xn = elf::xen_note;
using elf::Error;

namespace {

constexpr uint64_t kText = 0x400000;
constexpr uint64_t kData = 0x402000;

// A valid image: text [0x400000, 0x401800) RX, data [0x402000, 0x404100)
// RW with 0x100 file bytes, VIRT_BASE 0x400000, hypercall page 0x401000.
Builder valid() {
    Builder b;
    b.entry = kText + 0x100;
    b.segs.push_back(Seg{kText, pattern(0x1800, 1), 0, PF_R | PF_X});
    b.segs.push_back(Seg{kData, pattern(0x100, 99), 0x2100, PF_R | PF_W});
    b.notes = {
        note_str(xn::kGuestOs, "Moat"),
        note_str(xn::kXenVersion, "xen-3.0"),
        note_str(xn::kLoader, "generic"),
        note_u64(xn::kVirtBase, kText),
        note_u64(xn::kEntry, kText + 0x100),
        note_u64(xn::kHypercallPage, kText + 0x1000),
    };
    return b;
}

base::Result<elf::Image, Error> parse(const std::vector<uint8_t>& v) {
    return elf::parse(v.data(), v.size());
}

// Parses `v`, expecting failure with `e`.
void expect_error(const std::vector<uint8_t>& v, Error e) {
    auto r = parse(v);
    ASSERT_FALSE(r.ok()) << "expected: " << elf::describe(e);
    EXPECT_EQ(r.error(), e) << "got: " << elf::describe(r.error())
                            << "; expected: " << elf::describe(e);
}

void expect_error(Builder b, Error e) { expect_error(b.build(), e); }

// Replaces the note of type `type` in `b` (or appends it).
Builder with_note(Builder b, Note n) {
    for (auto& x : b.notes) {
        if (x.type == n.type) {
            x = n;
            return b;
        }
    }
    b.notes.push_back(n);
    return b;
}

Builder without_note(Builder b, uint32_t type) {
    std::vector<Note> keep;
    for (auto& x : b.notes)
        if (x.type != type) keep.push_back(x);
    b.notes = keep;
    return b;
}

}  // namespace

// --- Valid images -----------------------------------------------------------

TEST(ElfParse, ValidImage) {
    auto img = parse(valid().build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    ASSERT_EQ(img->nsegments, 2u);
    const auto& t = img->segments[0];
    EXPECT_EQ(t.vaddr, kText);
    EXPECT_EQ(t.memsz, 0x1800u);
    EXPECT_EQ(t.filesz, 0x1800u);
    EXPECT_TRUE(t.executable);
    EXPECT_FALSE(t.writable);
    const auto& d = img->segments[1];
    EXPECT_EQ(d.vaddr, kData);
    EXPECT_EQ(d.memsz, 0x2100u);
    EXPECT_EQ(d.filesz, 0x100u);
    EXPECT_TRUE(d.writable);
    EXPECT_FALSE(d.executable);
    EXPECT_EQ(img->kstart, kText);
    EXPECT_EQ(img->kend, 0x405000u);
    const auto& x = img->xen;
    EXPECT_EQ(x.virt_base, kText);
    EXPECT_EQ(x.entry, kText + 0x100);
    EXPECT_TRUE(x.has_hypercall_page);
    EXPECT_EQ(x.hypercall_page, kText + 0x1000);
    EXPECT_FALSE(x.has_paddr_offset);
    EXPECT_EQ(x.paddr_offset, 0u);  // Xen's default for an image with notes
    EXPECT_STREQ(x.guest_os, "Moat");
    EXPECT_STREQ(x.loader, "generic");
    EXPECT_STREQ(x.xen_version, "xen-3.0");
    EXPECT_STREQ(x.guest_version, "");
    EXPECT_EQ(x.required_features, 0u);
    EXPECT_EQ(x.supported_features, 0u);
    EXPECT_FALSE(x.notes_from_sections);
    EXPECT_EQ(x.note_count, 6u);
}

TEST(ElfParse, NoHypercallPage) {
    auto img = parse(without_note(valid(), xn::kHypercallPage).build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_FALSE(img->xen.has_hypercall_page);
    EXPECT_EQ(img->xen.hypercall_page, 0u);
}

TEST(ElfParse, FourByteNumericNotes) {
    Builder b = with_note(valid(), note_u32(xn::kVirtBase, 0x3ff000));
    b = with_note(b, note_u32(xn::kEntry, kText + 0x200));
    b = with_note(b, note_u32(xn::kHypercallPage, kText));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->xen.virt_base, 0x3ff000u);
    EXPECT_EQ(img->xen.entry, kText + 0x200);
    EXPECT_EQ(img->xen.hypercall_page, kText);
}

TEST(ElfParse, EightByteValuesAreNotTruncated) {
    Builder b = valid();
    const uint64_t hi = 0xffffffff80000000;
    b.segs[0].vaddr = hi + kText;
    b.segs[1].vaddr = hi + kData;
    b.entry = hi + kText;
    b = with_note(b, note_u64(xn::kVirtBase, hi));
    b = with_note(b, note_u64(xn::kEntry, hi + kText + 8));
    b = with_note(b, note_u64(xn::kHypercallPage, hi + kText + 0x1000));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->kstart, hi + kText);
    EXPECT_EQ(img->kend, hi + 0x405000);
    EXPECT_EQ(img->xen.virt_base, hi);
    EXPECT_EQ(img->xen.entry, hi + kText + 8);
    EXPECT_EQ(img->xen.hypercall_page, hi + kText + 0x1000);
}

TEST(ElfParse, EntryDefaultsToEEntryAndVirtBaseToZero) {
    Builder b = without_note(without_note(valid(), xn::kEntry), xn::kVirtBase);
    b.entry = kText + 0x40;
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->xen.entry, kText + 0x40);
    EXPECT_EQ(img->xen.virt_base, 0u);
    EXPECT_EQ(img->xen.paddr_offset, 0u);
}

TEST(ElfParse, OptionalStringNotesMayBeAbsent) {
    Builder b = without_note(without_note(valid(), xn::kXenVersion), xn::kLoader);
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.loader, "");
    EXPECT_STREQ(img->xen.xen_version, "");
}

TEST(ElfParse, StringsAreTruncatedToFifteenChars) {
    Builder b = with_note(valid(), note_str(xn::kGuestOs, "a-very-long-guest-os-name"));
    b = with_note(b, note_str(xn::kGuestVersion, "4.2"));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.guest_os, "a-very-long-gue");
    EXPECT_STREQ(img->xen.guest_version, "4.2");
}

TEST(ElfParse, XenVersionAndLoaderArePrefixMatchedLikeXen) {
    Builder b = with_note(valid(), note_str(xn::kXenVersion, "xen-3.0-unstable"));
    b = with_note(b, note_str(xn::kLoader, "generic-x"));
    EXPECT_TRUE(parse(b.build()).ok());
}

TEST(ElfParse, LastDuplicateNoteWins) {
    Builder b = valid();
    b.notes.push_back(note_u64(xn::kEntry, kText + 0x300));
    b.notes.push_back(note_str(xn::kGuestOs, "linux"));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->xen.entry, kText + 0x300);
    EXPECT_STREQ(img->xen.guest_os, "linux");
}

TEST(ElfParse, StringNoteWithBytesAfterNul) {
    Note n = note_str(xn::kGuestOs, "Mini-OS");
    n.desc.push_back('x');  // descsz covers the NUL and a trailing byte
    auto img = parse(with_note(valid(), n).build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.guest_os, "Mini-OS");
}

TEST(ElfParse, Features) {
    Builder b = with_note(valid(), note_str(xn::kFeatures,
                                            "writable_page_tables|!supervisor_mode_kernel"));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->xen.supported_features, (1u << 0) | (1u << 3));
    EXPECT_EQ(img->xen.required_features, 1u << 3);

    b = with_note(valid(), note_str(xn::kFeatures, "unknown_thing|dom0||pae_pgdir_above_4gb|"));
    b.notes.push_back(note_u32(xn::kSupportedFeatures, 0x00000102));
    auto img2 = parse(b.build());
    ASSERT_TRUE(img2.ok()) << elf::describe(img2.error());
    EXPECT_EQ(img2->xen.supported_features, (1u << 11) | (1u << 4) | (1u << 8) | (1u << 1));
    EXPECT_EQ(img2->xen.required_features, 0u);

    // 8-byte SUPPORTED_FEATURES: submap 0 is the low 32 bits.
    b = valid();
    b.notes.push_back(note_u64(xn::kSupportedFeatures, 0xffffffff00000004ull));
    auto img3 = parse(b.build());
    ASSERT_TRUE(img3.ok()) << elf::describe(img3.error());
    EXPECT_EQ(img3->xen.supported_features, 4u);

    expect_error(with_note(valid(), note_str(xn::kFeatures, "dom0|!no_such_feature")),
                 Error::UnsupportedRequiredFeature);
    expect_error(with_note(valid(), note_str(xn::kFeatures, "!")), Error::UnsupportedRequiredFeature);
}

TEST(ElfFeatures, ParseDirectly) {
    uint32_t sup = 0, req = 0;
    EXPECT_TRUE(elf::parse_xen_features("!writable_page_tables|hvm_callback_vector", 41, &sup, &req));
    EXPECT_EQ(sup, (1u << 0) | (1u << 8));
    EXPECT_EQ(req, 1u << 0);
    // Stops at `len`: "dom0" cut to "do", unknown and not required.
    sup = req = 0;
    EXPECT_TRUE(elf::parse_xen_features("dom0", 2, &sup, &req));
    EXPECT_EQ(sup, 0u);
    // Stops at a NUL: the required unknown after it is never seen.
    EXPECT_TRUE(elf::parse_xen_features("dom0\0!bogus", 11, &sup, &req));
    EXPECT_EQ(sup, 1u << 11);
    // Prefixes and extensions of names are not names.
    sup = req = 0;
    EXPECT_FALSE(elf::parse_xen_features("!dom", 4, &sup, &req));
    EXPECT_FALSE(elf::parse_xen_features("!dom0x", 6, &sup, &req));
    EXPECT_TRUE(elf::parse_xen_features("", 0, &sup, &req));
    EXPECT_TRUE(elf::parse_xen_features("|||", 3, &sup, &req));
    EXPECT_EQ(sup, 0u);
    EXPECT_EQ(req, 0u);
}

TEST(ElfParse, NotesFromSectionsWhenNoPtNote) {
    Builder b = valid();
    b.notes_in_section = true;
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_TRUE(img->xen.notes_from_sections);
    EXPECT_STREQ(img->xen.guest_os, "Moat");
    EXPECT_EQ(img->xen.hypercall_page, kText + 0x1000);
}

TEST(ElfParse, SectionsUsedWhenPtNoteHasNoXenNotes) {
    // A PT_NOTE at p_offset 0 (a binutils quirk) is skipped, as in Xen; the
    // notes come from the SHT_NOTE section.
    Builder c = valid();
    c.notes_in_section = true;
    c.segs.push_back(Seg{0, {}, 0, PF_R, 4, false, 0, PT_NOTE});
    auto w = c.build();
    put64(w, Builder::phdr_at(2) + 8, 0);    // p_offset 0
    put64(w, Builder::phdr_at(2) + 32, 64);  // p_filesz 64: the ELF header, not notes
    auto img = parse(w);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_TRUE(img->xen.notes_from_sections);
    put64(w, Builder::phdr_at(2) + 8, 1);    // the same bytes at offset 1 are parsed
    EXPECT_FALSE(parse(w).ok());

    // A PT_NOTE holding only a GNU note: the sections are consulted.
    Builder t = valid();
    t.notes_in_section = true;
    t.segs.push_back(Seg{0, serialize_notes({Note{3, {1, 2, 3, 4}, "GNU"}}), 0, PF_R, 4, false, 0,
                         PT_NOTE});
    auto tv = t.build();
    auto img2 = parse(tv);
    ASSERT_TRUE(img2.ok()) << elf::describe(img2.error());
    EXPECT_TRUE(img2->xen.notes_from_sections);
    EXPECT_EQ(img2->xen.note_count, 6u);
    // Without the section headers the same image has no Xen notes.
    put16(tv, 60, 0);
    expect_error(tv, Error::NoXenNotes);
}

TEST(ElfParse, NoteSegmentZeroPaddingTolerated) {
    Builder b = valid();
    b.raw_notes = {0, 0, 0, 0, 0, 0, 0, 0};
    EXPECT_TRUE(parse(b.build()).ok());
    b.raw_notes = {0, 0, 0, 1};
    expect_error(b, Error::MalformedNote);
}

TEST(ElfParse, LastNotePaddingMayBeClipped) {
    Builder b = valid();
    b.notes.push_back(Note{xn::kGuestVersion, {'1', 0}});  // descsz 2, padded to 4
    auto v = b.build();
    // Shrink the PT_NOTE by the 2 padding bytes.
    put64(v, Builder::phdr_at(b.note_phdr) + 32, b.notes_size - 2);
    auto img = parse(v);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.guest_version, "1");
    // One byte more and the desc itself is cut.
    put64(v, Builder::phdr_at(b.note_phdr) + 32, b.notes_size - 3);
    expect_error(v, Error::MalformedNote);
}

TEST(ElfParse, LinuxStylePaddrOffset) {
    // Linux x86-64: VIRT_BASE 0xffffffff80000000, PADDR_OFFSET 0, p_paddr =
    // p_vaddr - VIRT_BASE, and a zero-based per-CPU segment whose p_vaddr is
    // 0 but whose Xen placement follows the text.
    const uint64_t vb = 0xffffffff80000000;
    Builder b;
    b.entry = vb + 0x1000000;
    b.segs.push_back(Seg{vb + 0x1000000, pattern(0x2000, 3), 0, PF_R | PF_X, 4096, true, 0x1000000});
    b.segs.push_back(Seg{0, pattern(0x800, 5), 0x1000, PF_R | PF_W, 4096, true, 0x1002000});
    b.notes = {note_str(xn::kGuestOs, "linux"), note_str(xn::kXenVersion, "xen-3.0"),
               note_u64(xn::kVirtBase, vb), note_u64(xn::kPaddrOffset, 0),
               note_u64(xn::kEntry, vb + 0x1000040),
               note_u64(xn::kHypercallPage, vb + 0x1001000),
               note_u64(xn::kInitP2m, 0xffffea8000000000)};
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_TRUE(img->xen.has_paddr_offset);
    EXPECT_EQ(img->xen.paddr_offset, 0u);
    EXPECT_EQ(img->segments[0].vaddr, vb + 0x1000000);
    EXPECT_EQ(img->segments[1].vaddr, vb + 0x1002000);
    EXPECT_EQ(img->kstart, vb + 0x1000000);
    EXPECT_EQ(img->kend, vb + 0x1003000);
    EXPECT_TRUE(img->xen.has_init_p2m);
    EXPECT_EQ(img->xen.init_p2m, 0xffffea8000000000u);
}

TEST(ElfParse, PaddrOffsetEqualToVirtBaseMeansPaddrIsVaddr) {
    Builder b = with_note(valid(), note_u64(xn::kPaddrOffset, kText));
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->segments[0].vaddr, kText);
    EXPECT_EQ(img->segments[1].vaddr, kData);
}

TEST(ElfParse, SegmentsMaySharePage) {
    Builder b = valid();
    b.segs[0].bytes = pattern(0x1100, 1);
    b.segs[1].vaddr = kText + 0x1100;
    b.segs[1].align = 0x100;
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->kend, 0x404000u);
}

TEST(ElfParse, EmptyLoadSegmentsCountOnlyForTheSpan) {
    // Xen's elf_parse_binary takes every loadable segment's p_paddr and
    // p_memsz into pstart/pend, empty ones too: the image then reaches
    // 0x10000000. Nothing is loaded for it.
    Builder b = valid();
    b.segs.push_back(Seg{0x10000000, {}, 0, PF_R});
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->nsegments, 2u);
    EXPECT_EQ(img->kend, 0x10000000u);
    // A PT_LOAD with none of PF_R/PF_W/PF_X is not loadable at all.
    b = valid();
    b.segs.push_back(Seg{0x10000000, pattern(0x10, 1), 0, 0});
    auto img2 = parse(b.build());
    ASSERT_TRUE(img2.ok()) << elf::describe(img2.error());
    EXPECT_EQ(img2->nsegments, 2u);
    EXPECT_EQ(img2->kend, 0x405000u);
}

TEST(ElfParse, ThirtyTwoSegmentsAccepted) {
    Builder b = valid();
    b.segs.resize(1);
    b.segs[0].bytes = pattern(0x1100, 1);
    for (int i = 1; i < 32; ++i) b.segs.push_back(Seg{kText + 0x2000 + 0x1000 * i, {1}, 0x10, PF_R});
    auto img = parse(b.build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_EQ(img->nsegments, 32u);
}

// --- Refusals ---------------------------------------------------------------

TEST(ElfErrors, Header) {
    auto v = valid().build();
    expect_error(std::vector<uint8_t>(v.begin(), v.begin() + 63), Error::TooSmall);
    EXPECT_EQ(elf::parse(nullptr, 4096).error(), Error::TooSmall);
    auto w = v; w[1] = 'X'; expect_error(w, Error::BadMagic);
    w = v; w[4] = 1; expect_error(w, Error::NotElf64);
    w = v; w[5] = 2; expect_error(w, Error::NotLittleEndian);
    w = v; w[6] = 0; expect_error(w, Error::BadVersion);
    w = v; put32(w, 20, 2); expect_error(w, Error::BadVersion);
    w = v; put16(w, 18, 3); expect_error(w, Error::NotX86_64);
    w = v; put16(w, 16, 3); expect_error(w, Error::NotExecutable);
}

TEST(ElfErrors, ProgramHeaderTable) {
    auto v = valid().build();
    auto w = v; put16(w, 54, 64); expect_error(w, Error::BadPhEntSize);
    w = v; put16(w, 56, 0xffff); expect_error(w, Error::PhdrTableOutOfFile);
    w = v; put64(w, 32, v.size() - 56); expect_error(w, Error::PhdrTableOutOfFile);
    w = v; put64(w, 32, ~uint64_t{0} - 8); expect_error(w, Error::PhdrTableOutOfFile);
    w = v; put16(w, 56, 0); expect_error(w, Error::NoLoadableSegment);
}

TEST(ElfErrors, TooManySegments) {
    Builder b = valid();
    b.segs.resize(1);
    b.segs[0].bytes = pattern(0x1100, 1);
    for (int i = 1; i < 33; ++i) b.segs.push_back(Seg{kText + 0x2000 + 0x1000 * i, {1}, 0x10, PF_R});
    expect_error(b, Error::TooManySegments);
}

TEST(ElfErrors, SegmentBounds) {
    Builder b = valid();
    auto v = b.build();
    const size_t p = Builder::phdr_at(1);
    auto w = v; put64(w, p + 8, v.size() - 0x80); expect_error(w, Error::SegmentOutOfFile);
    w = v; put64(w, p + 8, ~uint64_t{0} - 0xff); put64(w, p + 16, ~uint64_t{0} - 0xff);
    expect_error(w, Error::SegmentOutOfFile);  // offset + filesz wraps
    w = v; put64(w, p + 32, 0x3000); expect_error(w, Error::FileszExceedsMemsz);
    w = v; put64(w, p + 16, 0xfffffffffffff000); put64(w, p + 24, 0xfffffffffffff000);
    expect_error(w, Error::AddressOverflow);  // p_paddr + p_memsz is exactly 2^64 + 0x1100
    // Segments go at p_paddr + VIRT_BASE (0x400000 here) - PADDR_OFFSET (0).
    w = v; put64(w, p + 16, 0xffffffffffffd000); put64(w, p + 24, 0xffffffffffffd000 - kText);
    put64(w, p + 40, 0x2001);
    expect_error(w, Error::AddressOverflow);  // ends in the last page: kend would wrap
    put64(w, p + 40, 0x2000);                 // ends at the last page: fine, but far away
    expect_error(w, Error::ImageTooLarge);
    // p_paddr itself fine, but moved by VIRT_BASE past 2^64.
    w = v; put64(w, p + 16, 0xffffffffffffe000); put64(w, p + 24, 0xffffffffffffe000);
    expect_error(w, Error::AddressOverflow);
    w = v; put64(w, p + 48, 0x3000); expect_error(w, Error::BadAlignment);
    w = v; put64(w, p + 16, kData + 0x10); expect_error(w, Error::MisalignedSegment);
}

TEST(ElfErrors, OverlapAndSpan) {
    Builder b = valid();
    b.segs[1].vaddr = kText + 0x1000;  // inside text's [0x400000, 0x401800)
    expect_error(b, Error::OverlappingSegments);
    b = valid();
    b.segs[1].vaddr = kText + 0x17ff;
    b.segs[1].align = 1;
    expect_error(b, Error::OverlappingSegments);
    b = valid();
    b.segs[1].vaddr = kText + 0x1800;  // touching is fine
    b.segs[1].align = 1;
    EXPECT_TRUE(parse(b.build()).ok());
    b = valid();
    b.segs[1].memsz = (uint64_t{1} << 30);  // span 0x400000..0x40402000+
    expect_error(b, Error::ImageTooLarge);
    b = valid();
    b.segs[1].memsz = (uint64_t{1} << 30) - 0x2000;  // kend - kstart == 1 GiB exactly
    EXPECT_TRUE(parse(b.build()).ok());
}

TEST(ElfErrors, NoLoadableSegment) {
    Builder b = valid();
    for (auto& s : b.segs) s.memsz = 0, s.bytes.clear();
    expect_error(b, Error::NoLoadableSegment);
}

TEST(ElfErrors, SectionHeaders) {
    Builder b = valid();
    b.notes_in_section = true;
    auto v = b.build();
    auto w = v; put16(w, 58, 40); expect_error(w, Error::BadShEntSize);
    w = v; put64(w, 40, v.size() - 64); expect_error(w, Error::ShdrTableOutOfFile);
    w = v; put64(w, b.shoff + 64 + 32, v.size()); expect_error(w, Error::NoteOutOfFile);
}

TEST(ElfErrors, NoXenNotes) {
    Builder b = valid();
    b.notes.clear();
    expect_error(b, Error::NoXenNotes);
    b = valid();
    for (auto& n : b.notes) n.name = "GNU";
    expect_error(b, Error::NoXenNotes);
    b = valid();
    for (auto& n : b.notes) n.name = "Xe";
    expect_error(b, Error::NoXenNotes);
}

TEST(ElfErrors, MalformedNotes) {
    Builder b = valid();
    auto v = b.build();
    const size_t n0 = b.notes_off;
    auto w = v; put32(w, n0, 0x1000); expect_error(w, Error::MalformedNote);       // namesz
    w = v; put32(w, n0, 0xffffffff); expect_error(w, Error::MalformedNote);
    w = v; put32(w, n0 + 4, 0x1000); expect_error(w, Error::MalformedNote);        // descsz
    w = v; put32(w, n0 + 4, 0xfffffffd); expect_error(w, Error::MalformedNote);
    w = v; put64(w, Builder::phdr_at(b.note_phdr) + 32, v.size());
    expect_error(w, Error::NoteOutOfFile);
    b = valid();
    b.raw_notes = {4, 0, 0, 0, 0, 0};  // a truncated header
    expect_error(b, Error::MalformedNote);
}

TEST(ElfErrors, TooManyNotesCounted) {
    Builder b = valid();
    for (int i = 0; i < 1018; ++i) b.notes.push_back(Note{99, {}, "X"});
    EXPECT_TRUE(parse(b.build()).ok());  // exactly 1024
    b.notes.push_back(Note{99, {}, "X"});
    expect_error(b, Error::TooManyNotes);
}

TEST(ElfErrors, NoteValues) {
    Note n{xn::kEntry, {1, 2}};
    expect_error(with_note(valid(), n), Error::BadNoteValueSize);
    expect_error(with_note(valid(), Note{xn::kVirtBase, {}}), Error::BadNoteValueSize);
    expect_error(with_note(valid(), Note{xn::kSupportedFeatures, std::vector<uint8_t>(16, 0)}),
                 Error::BadNoteValueSize);
    // A string note without a NUL ends at its size (as Xen reads it), an
    // empty one is the empty string.
    auto img = parse(with_note(valid(), Note{xn::kGuestOs, {'M', 'o', 'a', 't'}}).build());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.guest_os, "Moat");
    auto img2 = parse(with_note(valid(), Note{xn::kFeatures, {}}).build());
    ASSERT_TRUE(img2.ok()) << elf::describe(img2.error());
    EXPECT_EQ(img2->xen.supported_features, 0u);
    // Notes Moat ignores are not checked (Linux's 16-byte L1_MFN_VALID).
    EXPECT_TRUE(parse(with_note(valid(), Note{xn::kL1MfnValid, std::vector<uint8_t>(16, 1)}).build()).ok());
}

TEST(ElfErrors, StringNoteValues) {
    expect_error(with_note(valid(), note_str(xn::kXenVersion, "xen-2.0")), Error::BadXenVersion);
    expect_error(with_note(valid(), note_str(xn::kXenVersion, "")), Error::BadXenVersion);
    expect_error(with_note(valid(), note_str(xn::kLoader, "elf")), Error::BadLoader);
    expect_error(without_note(valid(), xn::kGuestOs), Error::MissingGuestOs);
    expect_error(with_note(valid(), note_str(xn::kGuestOs, "")), Error::MissingGuestOs);
}

TEST(ElfErrors, Addresses) {
    // valid() with its p_paddr written out (text at 0, data at 0x2000), so
    // that changing the notes moves it.
    Builder pinned = valid();
    for (auto& s : pinned.segs) s.paddr = s.vaddr - kText, s.has_paddr = true;
    expect_error(with_note(pinned, note_u64(xn::kVirtBase, kText + 0x1000)), Error::EntryOutsideImage);
    expect_error(with_note(without_note(valid(), xn::kVirtBase), note_u64(xn::kPaddrOffset, 0)),
                 Error::PaddrOffsetWithoutVirtBase);
    expect_error(with_note(pinned, note_u64(xn::kPaddrOffset, 0x10)), Error::PaddrOffsetInconsistent);
    // Page-congruent but moving the image below VIRT_BASE.
    expect_error(with_note(pinned, note_u64(xn::kPaddrOffset, 0x1000)), Error::VirtBaseAboveImage);
    // Placement wrapping past 2^64: VIRT_BASE - PADDR_OFFSET puts the text
    // at 0xfffffffffffff000 (all modulo 2^64, as in Xen).
    expect_error(with_note(pinned, note_u64(xn::kPaddrOffset, 0x401000)), Error::AddressOverflow);
    // Xen's builder pads the region up to the image's first byte a page at
    // a time: an image starting inside a page is refused.
    Builder odd = pinned;
    odd.segs[0].vaddr += 0x10;
    odd.segs[0].paddr += 0x10;
    odd.segs[0].align = 0x10;
    expect_error(odd, Error::ImageStartMisaligned);
    expect_error(with_note(valid(), note_u64(xn::kEntry, kText - 1)), Error::EntryOutsideImage);
    expect_error(with_note(valid(), note_u64(xn::kEntry, 0x405000)), Error::EntryOutsideImage);
    EXPECT_TRUE(parse(with_note(valid(), note_u64(xn::kEntry, 0x404fff)).build()).ok());
    Builder b = without_note(valid(), xn::kEntry);
    b.entry = 0;
    expect_error(b, Error::EntryOutsideImage);
    expect_error(with_note(valid(), note_u64(xn::kHypercallPage, 0x405000)),
                 Error::HypercallPageOutsideImage);
    expect_error(with_note(valid(), note_u64(xn::kHypercallPage, kText - 0x1000)),
                 Error::HypercallPageOutsideImage);
    expect_error(with_note(valid(), note_u64(xn::kHypercallPage, kText + 0x800)),
                 Error::HypercallPageMisaligned);
    expect_error(with_note(valid(), note_u64(xn::kInitP2m, 0x404000)), Error::InitP2mInsideImage);
    EXPECT_TRUE(parse(with_note(valid(), note_u64(xn::kInitP2m, 0x405000)).build()).ok());
}

TEST(ElfDescribe, EveryErrorHasItsOwnSentence) {
    std::set<std::string> seen;
    for (int i = 1; i <= static_cast<int>(Error::ReadFailed); ++i) {
        std::string s = elf::describe(static_cast<Error>(i));
        EXPECT_NE(s, "unknown ELF error") << i;
        EXPECT_FALSE(s.empty());
        EXPECT_TRUE(seen.insert(s).second) << "duplicate: " << s;
    }
    EXPECT_STREQ(elf::describe(static_cast<Error>(0)), "unknown ELF error");
    EXPECT_STREQ(elf::describe(static_cast<Error>(200)), "unknown ELF error");
    EXPECT_STREQ(elf::describe(Error::BadMagic), "not an ELF image (bad magic)");
}

// --- load() -----------------------------------------------------------------

namespace {

struct Write {
    uint64_t vaddr;
    bool zero;
    std::vector<uint8_t> bytes;
};

std::vector<Write> record(const elf::Image& img, const std::vector<uint8_t>& v) {
    std::vector<Write> out;
    auto st = elf::load(img, v.data(), v.size(), [&](uint64_t va, const uint8_t* src, uint64_t len) {
        Write w{va, src == nullptr, {}};
        if (src) w.bytes.assign(src, src + len);
        else w.bytes.assign(len, 0);
        out.push_back(w);
    });
    EXPECT_TRUE(st.ok());
    return out;
}

}  // namespace

TEST(ElfLoad, CopiesAndZeroFillsInPageChunks) {
    Builder b = valid();
    auto v = b.build();
    auto img = parse(v);
    ASSERT_TRUE(img.ok());
    auto writes = record(*img, v);

    // Exact sequence: text in two chunks; data file bytes, then zero fill
    // up to 0x403000, 0x404000, 0x404100.
    struct Expect { uint64_t va, len; bool zero; };
    const Expect want[] = {
        {0x400000, 0x1000, false}, {0x401000, 0x800, false},
        {0x402000, 0x100, false},  {0x402100, 0xf00, true},
        {0x403000, 0x1000, true},  {0x404000, 0x100, true},
    };
    ASSERT_EQ(writes.size(), std::size(want));
    for (size_t i = 0; i < writes.size(); ++i) {
        EXPECT_EQ(writes[i].vaddr, want[i].va) << i;
        EXPECT_EQ(writes[i].bytes.size(), want[i].len) << i;
        EXPECT_EQ(writes[i].zero, want[i].zero) << i;
    }

    // Reassemble guest memory and compare byte for byte.
    std::map<uint64_t, uint8_t> mem;
    for (const auto& w : writes)
        for (size_t i = 0; i < w.bytes.size(); ++i) {
            EXPECT_TRUE(mem.emplace(w.vaddr + i, w.bytes[i]).second) << "written twice";
        }
    auto text = pattern(0x1800, 1), data = pattern(0x100, 99);
    for (uint64_t i = 0; i < 0x1800; ++i) ASSERT_EQ(mem.at(kText + i), text[i]) << i;
    for (uint64_t i = 0; i < 0x100; ++i) ASSERT_EQ(mem.at(kData + i), data[i]) << i;
    for (uint64_t i = 0x100; i < 0x2100; ++i) ASSERT_EQ(mem.at(kData + i), 0) << i;
    EXPECT_EQ(mem.size(), 0x1800u + 0x2100u);
    EXPECT_EQ(mem.count(0x401800), 0u);
    EXPECT_EQ(mem.count(0x404100), 0u);
}

TEST(ElfLoad, UnalignedSegmentsSplitAtPageBoundaries) {
    Builder b = valid();
    b.segs[1].vaddr = kText + 0x1900;
    b.segs[1].align = 0x100;
    b.segs[1].bytes = pattern(0x1000, 7);  // file bytes end mid-page at 0x402900
    b.segs[1].memsz = 0x1800;              // ends at 0x403100
    auto v = b.build();
    auto img = parse(v);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    auto writes = record(*img, v);
    ASSERT_EQ(writes.size(), 6u);
    EXPECT_EQ(writes[2].vaddr, 0x401900u); EXPECT_EQ(writes[2].bytes.size(), 0x700u);
    EXPECT_EQ(writes[3].vaddr, 0x402000u); EXPECT_EQ(writes[3].bytes.size(), 0x900u);
    EXPECT_FALSE(writes[3].zero);
    EXPECT_EQ(writes[4].vaddr, 0x402900u); EXPECT_EQ(writes[4].bytes.size(), 0x700u);
    EXPECT_TRUE(writes[4].zero);
    EXPECT_EQ(writes[5].vaddr, 0x403000u); EXPECT_EQ(writes[5].bytes.size(), 0x100u);
    auto d = pattern(0x1000, 7);
    EXPECT_EQ(std::vector<uint8_t>(d.begin(), d.begin() + 0x700), writes[2].bytes);
    EXPECT_EQ(std::vector<uint8_t>(d.begin() + 0x700, d.end()), writes[3].bytes);
}

TEST(ElfLoad, PlainCallbackAndRevalidation) {
    auto v = valid().build();
    auto img = parse(v);
    ASSERT_TRUE(img.ok());
    uint64_t total = 0;
    auto cb = [](void* ctx, uint64_t, const uint8_t*, uint64_t len) { *static_cast<uint64_t*>(ctx) += len; };
    EXPECT_TRUE(elf::load(*img, v.data(), v.size(), cb, &total).ok());
    EXPECT_EQ(total, 0x1800u + 0x2100u);

    // A buffer too short for the image: refused before any write.
    total = 0;
    auto st = elf::load(*img, v.data(), 0x100, cb, &total);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error(), Error::SegmentOutOfFile);
    EXPECT_EQ(total, 0u);

    elf::Image forged = *img;
    forged.segments[1].filesz = forged.segments[1].memsz + 1;
    EXPECT_EQ(elf::load(forged, v.data(), v.size(), cb, &total).error(), Error::FileszExceedsMemsz);
    forged = *img;
    forged.segments[0].vaddr = ~uint64_t{0} - 10;
    EXPECT_EQ(elf::load(forged, v.data(), v.size(), cb, &total).error(), Error::AddressOverflow);
    forged = *img;
    forged.nsegments = 33;
    EXPECT_EQ(elf::load(forged, v.data(), v.size(), cb, &total).error(), Error::TooManySegments);
    EXPECT_EQ(total, 0u);
}

// --- What Debian's Linux 6.1 image needs ---------------------------------

namespace {

// The shape of Linux 6.1's vmlinux (linux-image-6.1.0-*-amd64), scaled
// down: text, data, the zero-based per-CPU segment (p_vaddr 0, p_paddr
// after the data), init+bss; 2 MiB alignment; its Xen notes exactly as it
// writes them (FEATURES without a NUL, 16-byte L1_MFN_VALID, 8-byte
// PHYS32_ENTRY, no HYPERCALL_PAGE); and 40 sections.
constexpr uint64_t kLinuxBase = 0xffffffff80000000;
Builder linux_like() {
    Builder b;
    b.entry = 0x1000000;  // e_entry: the 32-bit physical entry, not the PV one
    b.segs.push_back(Seg{kLinuxBase + 0x1000000, pattern(0x3000, 1), 0, PF_R | PF_X, 0x200000, true, 0x1000000});
    b.segs.push_back(Seg{kLinuxBase + 0x1200000, pattern(0x1000, 2), 0, PF_R | PF_W, 0x200000, true, 0x1200000});
    b.segs.push_back(Seg{0, pattern(0x2000, 3), 0, PF_R | PF_W, 0x200000, true, 0x1201000});
    b.segs.push_back(Seg{kLinuxBase + 0x1203000, pattern(0x1000, 4), 0x5000, PF_R | PF_W | PF_X, 0x200000, true,
                         0x1203000});
    const std::string features = "!writable_page_tables|pae_pgdir_above_4gb";
    Note feat{xn::kFeatures, std::vector<uint8_t>(features.begin(), features.end())};  // no NUL
    Note l1{xn::kL1MfnValid, {}};
    put64(l1.desc, 0, 1);
    put64(l1.desc, 8, 1);
    b.notes = {note_str(xn::kGuestOs, "linux"),
               note_str(xn::kGuestVersion, "2.6"),
               note_str(xn::kXenVersion, "xen-3.0"),
               note_u64(xn::kVirtBase, kLinuxBase),
               note_u64(xn::kInitP2m, 0x8000000000),
               note_u64(xn::kEntry, kLinuxBase + 0x12031c0),
               feat,
               note_u32(xn::kSupportedFeatures, 0x8801),
               note_str(xn::kPaeMode, "yes"),
               note_str(xn::kLoader, "generic"),
               l1,
               note_u32(xn::kSuspendCancel, 1),
               note_u32(xn::kModStartPfn, 1),
               note_u64(xn::kHvStartLow, 0xffff800000000000),
               note_u64(xn::kPaddrOffset, 0),
               note_u64(xn::kPhys32Entry, 0x1000850)};
    b.extra_sections = 39;
    return b;
}

}  // namespace

TEST(ElfLinux, FeaturesNoteWithoutNul) {
    Builder b = linux_like();
    auto v = b.build();
    auto img = parse(v);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    // Bit 0 (writable_page_tables) required and supported, bit 4
    // (pae_pgdir_above_4gb) supported, SUPPORTED_FEATURES 0x8801 OR-ed in.
    EXPECT_EQ(img->xen.required_features, 1u);
    EXPECT_EQ(img->xen.supported_features, 0x8801u | 0x10u);
    // The note's size is 41: the string ends there, not in the padding.
    Note odd{xn::kFeatures, {'p', 'a', 'e', '_', 'p', 'g', 'd', 'i', 'r', '_', 'a', 'b', 'o', 'v', 'e', '_', '4', 'g',
                             'b', '|', '!', 'd', 'o', 'm', '0'}};
    auto img2 = parse(with_note(linux_like(), odd).build());
    ASSERT_TRUE(img2.ok()) << elf::describe(img2.error());
    EXPECT_EQ(img2->xen.required_features, 1u << 11);
    // Cut one byte short, the last item is "!dom" and unknown: refused.
    odd.desc.pop_back();
    auto img3 = parse(with_note(linux_like(), odd).build());
    ASSERT_FALSE(img3.ok());
    EXPECT_EQ(img3.error(), Error::UnsupportedRequiredFeature);
    // Padding that is not zero does not leak into the string either.
    Builder c = linux_like();
    c.notes = {note_str(xn::kGuestOs, "linux"), note_u64(xn::kVirtBase, kLinuxBase),
               note_u64(xn::kPaddrOffset, 0), note_u64(xn::kEntry, kLinuxBase + 0x12031c0),
               Note{xn::kFeatures, {'d', 'o', 'm', '0'}}};
    auto w = c.build();
    auto img4 = parse(w);
    ASSERT_TRUE(img4.ok()) << elf::describe(img4.error());
    EXPECT_EQ(img4->xen.supported_features, 1u << 11);
}

TEST(ElfLinux, PlacedByPhysicalAddress) {
    auto v = linux_like().build();
    auto img = parse(v);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    const auto& x = img->xen;
    EXPECT_STREQ(x.guest_os, "linux");
    EXPECT_EQ(x.virt_base, kLinuxBase);
    EXPECT_TRUE(x.has_paddr_offset);
    EXPECT_EQ(x.paddr_offset, 0u);
    EXPECT_EQ(x.entry, kLinuxBase + 0x12031c0);
    EXPECT_FALSE(x.has_hypercall_page);
    EXPECT_TRUE(x.has_init_p2m);
    EXPECT_EQ(x.init_p2m, 0x8000000000u);
    EXPECT_TRUE(x.mod_start_pfn);
    EXPECT_FALSE(x.notes_from_sections);
    ASSERT_EQ(img->nsegments, 4u);
    // Every segment at VIRT_BASE + p_paddr: the per-CPU one (p_vaddr 0)
    // right after the data, not at 0.
    EXPECT_EQ(img->segments[0].vaddr, kLinuxBase + 0x1000000);
    EXPECT_EQ(img->segments[1].vaddr, kLinuxBase + 0x1200000);
    EXPECT_EQ(img->segments[2].vaddr, kLinuxBase + 0x1201000);
    EXPECT_EQ(img->segments[2].paddr, 0x1201000u);
    EXPECT_EQ(img->segments[3].vaddr, kLinuxBase + 0x1203000);
    EXPECT_EQ(img->kstart, kLinuxBase + 0x1000000);
    EXPECT_EQ(img->kend, kLinuxBase + 0x1208000);
    // Loading writes the per-CPU bytes at their placed address.
    bool seen = false;
    auto percpu = pattern(0x2000, 3);
    auto st = elf::load(*img, v.data(), v.size(), [&](uint64_t va, const uint8_t* src, uint64_t len) {
        if (va == kLinuxBase + 0x1201000) {
            seen = true;
            ASSERT_NE(src, nullptr);
            EXPECT_EQ(0, std::memcmp(src, percpu.data(), len));
        }
        EXPECT_TRUE(va >= img->kstart && va + len <= img->kend);
    });
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(seen);
}

// --- Streaming from a source that is not in memory -----------------------

namespace {

struct Streamed {
    const std::vector<uint8_t>* image;
    uint64_t reads = 0, bytes = 0, largest = 0;
    uint64_t fail_at = ~uint64_t{0};  // the read covering this offset fails

    static bool read(void* ctx, uint64_t off, void* dst, size_t len) {
        auto& s = *static_cast<Streamed*>(ctx);
        EXPECT_LE(off + len, s.image->size());
        if (off + len > s.image->size()) return false;
        if (s.fail_at >= off && s.fail_at < off + len) return false;
        ++s.reads;
        s.bytes += len;
        if (len > s.largest) s.largest = len;
        std::memcpy(dst, s.image->data() + off, len);
        return true;
    }
    elf::Source source() { return elf::Source{image->size(), nullptr, &Streamed::read, this}; }
};

}  // namespace

TEST(ElfStream, ParsesAndLoadsWithoutTheWholeImage) {
    Builder b = linux_like();
    auto v = b.build();
    // 2 MiB aligned segments: megabytes of file, as in vmlinux.
    ASSERT_GT(v.size(), 0x600000u);
    Streamed st{&v};
    auto img = elf::parse(st.source());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    auto mem = parse(v);
    ASSERT_TRUE(mem.ok());
    EXPECT_EQ(img->kstart, mem->kstart);
    EXPECT_EQ(img->kend, mem->kend);
    EXPECT_EQ(img->xen.supported_features, mem->xen.supported_features);
    // Headers and notes only: a few blocks of at most 512 bytes.
    EXPECT_LE(st.largest, 512u);
    EXPECT_LT(st.bytes, 4096u) << st.reads << " reads";

    // Loading through the source gives the same bytes at the same places.
    std::map<uint64_t, uint8_t> a, c;
    auto rec = [](std::map<uint64_t, uint8_t>& m) {
        return [&m](uint64_t va, const uint8_t* src, uint64_t len) {
            EXPECT_LE((va & 4095) + len, 4096u);
            for (uint64_t i = 0; i < len; ++i) m[va + i] = src ? src[i] : 0;
        };
    };
    auto ra = rec(a), rc = rec(c);
    ASSERT_TRUE(elf::load(*img, st.source(), ra).ok());
    ASSERT_TRUE(elf::load(*mem, v.data(), v.size(), rc).ok());
    EXPECT_EQ(a, c);
    EXPECT_LE(st.largest, 512u);
}

TEST(ElfStream, ReadFailures) {
    auto v = linux_like().build();
    Streamed st{&v};
    st.fail_at = 0;  // the header
    auto r = elf::parse(st.source());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), Error::ReadFailed);
    // The notes.
    Builder b = linux_like();
    b.build();
    st.fail_at = b.notes_off + 20;
    auto r2 = elf::parse(st.source());
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error(), Error::ReadFailed);
    // A segment's bytes, while loading: the load stops there.
    st.fail_at = ~uint64_t{0};
    auto img = elf::parse(st.source());
    ASSERT_TRUE(img.ok());
    st.fail_at = b.seg_off[2] + 0x100;
    uint64_t written = 0;
    auto l = elf::load(*img, st.source(), [&](uint64_t, const uint8_t*, uint64_t len) { written += len; });
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error(), Error::ReadFailed);
    EXPECT_GT(written, 0u);
    // A source without a reader at all.
    elf::Source none{v.size(), nullptr, nullptr, nullptr};
    auto r3 = elf::parse(none);
    ASSERT_FALSE(r3.ok());
    EXPECT_EQ(r3.error(), Error::ReadFailed);
}
