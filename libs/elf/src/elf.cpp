// ELF64 header, program header and segment validation; the page-chunked
// loader. Every field is read through detail::View (bounded, byte-wise
// little-endian); the buffer is never cast to a structure.

#include <base/bits.hpp>

#include "internal.hpp"

namespace elf {
namespace {

using detail::View;
using base::Err;

constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint32_t kPfX = 1;
constexpr uint32_t kPfW = 2;

// Program header fields.
struct Phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

Phdr read_phdr(View f, uint64_t at) {
    return Phdr{f.u32(at), f.u32(at + 4), f.u64(at + 8), f.u64(at + 16),
                f.u64(at + 24), f.u64(at + 32), f.u64(at + 40), f.u64(at + 48)};
}

constexpr uint64_t kLastPage = ~uint64_t{0} - (base::kPageSize - 1);

}  // namespace

base::Result<Image, Error> parse(const uint8_t* data, size_t size) {
    const View f{data, data ? size : 0};

    // ELF header.
    if (f.n < detail::kEhdrSize) return Err{Error::TooSmall};
    if (f.u8(0) != 0x7f || f.u8(1) != 'E' || f.u8(2) != 'L' || f.u8(3) != 'F')
        return Err{Error::BadMagic};
    if (f.u8(4) != 2) return Err{Error::NotElf64};
    if (f.u8(5) != 1) return Err{Error::NotLittleEndian};
    if (f.u8(6) != 1 || f.u32(20) != 1) return Err{Error::BadVersion};
    if (f.u16(18) != kEmX86_64) return Err{Error::NotX86_64};
    if (f.u16(16) != kEtExec) return Err{Error::NotExecutable};
    const uint64_t e_entry = f.u64(24);
    const uint64_t phoff = f.u64(32);
    const uint64_t shoff = f.u64(40);
    const uint16_t phentsize = f.u16(54);
    const uint16_t phnum = f.u16(56);
    const uint16_t shentsize = f.u16(58);
    const uint16_t shnum = f.u16(60);

    // Program header table (phnum <= 0xffff, so the product cannot overflow).
    if (phnum == 0) return Err{Error::NoLoadableSegment};
    if (phentsize != detail::kPhdrSize) return Err{Error::BadPhEntSize};
    if (!f.has(phoff, uint64_t{phnum} * detail::kPhdrSize)) return Err{Error::PhdrTableOutOfFile};

    Image img{};
    uint64_t paddr[kMaxSegments] = {};

    // PT_LOAD segments: file bounds, sizes, alignment, count.
    for (unsigned i = 0; i < phnum; ++i) {
        const Phdr ph = read_phdr(f, phoff + uint64_t{i} * detail::kPhdrSize);
        if (ph.type != detail::kPtLoad) continue;
        if (ph.filesz > ph.memsz) return Err{Error::FileszExceedsMemsz};
        if (!f.has(ph.offset, ph.filesz)) return Err{Error::SegmentOutOfFile};
        if (ph.align > 1) {
            if ((ph.align & (ph.align - 1)) != 0) return Err{Error::BadAlignment};
            if ((ph.vaddr & (ph.align - 1)) != (ph.offset & (ph.align - 1)))
                return Err{Error::MisalignedSegment};
        }
        if (ph.memsz == 0) continue;  // occupies nothing
        if (img.nsegments == kMaxSegments) return Err{Error::TooManySegments};
        paddr[img.nsegments] = ph.paddr;
        img.segments[img.nsegments++] = Segment{ph.vaddr, ph.memsz, ph.filesz, ph.offset,
                                                (ph.flags & kPfW) != 0, (ph.flags & kPfX) != 0};
    }
    if (img.nsegments == 0) return Err{Error::NoLoadableSegment};

    // Xen notes: PT_NOTE segments first (skipping p_offset 0, which some
    // binutils emit, as Xen does), then SHT_NOTE sections.
    detail::RawXenNotes raw{};
    for (unsigned i = 0; i < phnum; ++i) {
        const Phdr ph = read_phdr(f, phoff + uint64_t{i} * detail::kPhdrSize);
        if (ph.type != detail::kPtNote || ph.offset == 0) continue;
        View c;
        if (!f.sub(ph.offset, ph.filesz, c)) return Err{Error::NoteOutOfFile};
        TRY(detail::scan_notes(c, raw));
    }
    if (raw.xen_notes == 0 && shnum != 0) {
        if (shentsize != detail::kShdrSize) return Err{Error::BadShEntSize};
        if (!f.has(shoff, uint64_t{shnum} * detail::kShdrSize)) return Err{Error::ShdrTableOutOfFile};
        for (unsigned i = 1; i < shnum; ++i) {  // section 0 is the null section
            const uint64_t at = shoff + uint64_t{i} * detail::kShdrSize;
            if (f.u32(at + 4) != detail::kShtNote) continue;
            View c;
            if (!f.sub(f.u64(at + 24), f.u64(at + 32), c)) return Err{Error::NoteOutOfFile};
            TRY(detail::scan_notes(c, raw));
        }
        raw.params.notes_from_sections = raw.xen_notes != 0;
    }
    if (raw.xen_notes == 0) return Err{Error::NoXenNotes};

    XenParams& xp = img.xen;
    xp = raw.params;
    xp.note_count = raw.xen_notes;
    if (!raw.has_guest_os) return Err{Error::MissingGuestOs};
    if (raw.has_xen_version && !raw.xen_version_ok) return Err{Error::BadXenVersion};
    if (raw.has_loader && !raw.loader_ok) return Err{Error::BadLoader};

    // Placement. With PADDR_OFFSET, Xen's rule: p_paddr + VIRT_BASE -
    // PADDR_OFFSET (mod 2^64, as in Xen); it must keep each byte's offset
    // within its page. Without, p_vaddr.
    if (xp.has_paddr_offset) {
        if (!raw.has_virt_base) return Err{Error::PaddrOffsetWithoutVirtBase};
        const uint64_t virt_offset = xp.virt_base - xp.paddr_offset;
        for (unsigned i = 0; i < img.nsegments; ++i) {
            Segment& s = img.segments[i];
            const uint64_t placed = paddr[i] + virt_offset;
            if ((placed & (base::kPageSize - 1)) != (s.vaddr & (base::kPageSize - 1)))
                return Err{Error::PaddrOffsetInconsistent};
            s.vaddr = placed;
        }
    } else {
        xp.paddr_offset = xp.virt_base;
    }

    // Overflow (including page rounding), overlap, span.
    uint64_t lo = ~uint64_t{0}, hi = 0;
    for (unsigned i = 0; i < img.nsegments; ++i) {
        const Segment& s = img.segments[i];
        if (base::add_overflows(s.vaddr, s.memsz) || s.vaddr + s.memsz > kLastPage)
            return Err{Error::AddressOverflow};
        for (unsigned j = 0; j < i; ++j) {
            const Segment& t = img.segments[j];
            if (s.vaddr < t.vaddr + t.memsz && t.vaddr < s.vaddr + s.memsz)
                return Err{Error::OverlappingSegments};
        }
        if (s.vaddr < lo) lo = s.vaddr;
        if (s.vaddr + s.memsz > hi) hi = s.vaddr + s.memsz;
    }
    img.kstart = base::align_down(lo, base::kPageSize);
    img.kend = base::align_up(hi, base::kPageSize);  // hi <= kLastPage: no wrap
    if (img.kend - img.kstart > kMaxImageSpan) return Err{Error::ImageTooLarge};

    // Xen parameters against the image.
    if (xp.virt_base > img.kstart) return Err{Error::VirtBaseAboveImage};
    if (!raw.has_entry) xp.entry = e_entry;
    if (xp.entry < img.kstart || xp.entry >= img.kend) return Err{Error::EntryOutsideImage};
    if (xp.has_hypercall_page) {
        if (xp.hypercall_page < img.kstart || xp.hypercall_page >= img.kend)
            return Err{Error::HypercallPageOutsideImage};
        if (!base::is_aligned(xp.hypercall_page, base::kPageSize))
            return Err{Error::HypercallPageMisaligned};
    }
    if (xp.has_init_p2m && xp.init_p2m >= img.kstart && xp.init_p2m < img.kend)
        return Err{Error::InitP2mInsideImage};
    return img;
}

base::Status<Error> load(const Image& image, const uint8_t* data, size_t size, WriteFn write,
                         void* ctx) {
    const View f{data, data ? size : 0};
    if (image.nsegments == 0) return Err{Error::NoLoadableSegment};
    if (image.nsegments > kMaxSegments) return Err{Error::TooManySegments};
    // Re-check everything load relies on before writing anything.
    for (unsigned i = 0; i < image.nsegments; ++i) {
        const Segment& s = image.segments[i];
        if (s.filesz > s.memsz) return Err{Error::FileszExceedsMemsz};
        if (!f.has(s.offset, s.filesz)) return Err{Error::SegmentOutOfFile};
        if (base::add_overflows(s.vaddr, s.memsz)) return Err{Error::AddressOverflow};
    }
    for (unsigned i = 0; i < image.nsegments; ++i) {
        const Segment& s = image.segments[i];
        const uint64_t end = s.vaddr + s.memsz;
        const uint64_t file_end = s.vaddr + s.filesz;
        uint64_t va = s.vaddr;
        // One chunk per call, each ending at the next page boundary, the
        // end of the file bytes, or the end of the segment; loop count is
        // at most memsz / 4K + 2.
        while (va < end) {
            const uint64_t page_end = base::align_down(va, base::kPageSize) + base::kPageSize;
            uint64_t stop = end;
            if (page_end != 0 && page_end < stop) stop = page_end;  // page_end 0: top page
            if (va < file_end) {
                if (file_end < stop) stop = file_end;
                write(ctx, va, f.p + s.offset + (va - s.vaddr), stop - va);
            } else {
                write(ctx, va, nullptr, stop - va);
            }
            va = stop;
        }
    }
    return {};
}

}  // namespace elf
