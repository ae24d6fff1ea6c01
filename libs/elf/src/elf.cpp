// ELF64 header, program header and segment validation; the page-chunked
// loader. Every field is read through detail::Reader (bounded, byte-wise
// little-endian); the image is never cast to a structure.

#include <base/bits.hpp>

#include "internal.hpp"

namespace elf {
namespace {

using detail::Reader;
using base::Err;

constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint32_t kPfX = 1;
constexpr uint32_t kPfW = 2;
constexpr uint32_t kPfR = 4;

// Program header fields.
struct Phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

Phdr read_phdr(Reader& f, uint64_t at) {
    return Phdr{f.u32(at), f.u32(at + 4), f.u64(at + 8), f.u64(at + 16),
                f.u64(at + 24), f.u64(at + 32), f.u64(at + 40), f.u64(at + 48)};
}

// Xen's elf_phdr_is_loadable.
bool loadable(const Phdr& ph) { return ph.type == detail::kPtLoad && (ph.flags & (kPfR | kPfW | kPfX)) != 0; }

constexpr uint64_t kLastPage = ~uint64_t{0} - (base::kPageSize - 1);

base::Result<Image, Error> parse_with(Reader& f) {
    // ELF header.
    if (f.size() < detail::kEhdrSize) return Err{Error::TooSmall};
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
    // pstart / pend over every loadable segment, empty ones included (as
    // elf_parse_binary computes them).
    uint64_t pstart = ~uint64_t{0}, pend = 0;

    // Loadable segments: file bounds, sizes, alignment, count.
    for (unsigned i = 0; i < phnum; ++i) {
        const Phdr ph = read_phdr(f, phoff + uint64_t{i} * detail::kPhdrSize);
        if (!loadable(ph)) continue;
        if (ph.filesz > ph.memsz) return Err{Error::FileszExceedsMemsz};
        if (!f.has(ph.offset, ph.filesz)) return Err{Error::SegmentOutOfFile};
        if (ph.align > 1) {
            if ((ph.align & (ph.align - 1)) != 0) return Err{Error::BadAlignment};
            if ((ph.vaddr & (ph.align - 1)) != (ph.offset & (ph.align - 1)))
                return Err{Error::MisalignedSegment};
        }
        // p_paddr + p_memsz must not wrap: Xen would compute a nonsensical pend.
        if (base::add_overflows(ph.paddr, ph.memsz)) return Err{Error::AddressOverflow};
        if (ph.paddr < pstart) pstart = ph.paddr;
        if (ph.paddr + ph.memsz > pend) pend = ph.paddr + ph.memsz;
        if (ph.memsz == 0) continue;  // occupies nothing
        if (img.nsegments == kMaxSegments) return Err{Error::TooManySegments};
        img.segments[img.nsegments++] = Segment{ph.vaddr, ph.paddr, ph.memsz, ph.filesz, ph.offset,
                                                (ph.flags & kPfW) != 0, (ph.flags & kPfX) != 0};
    }
    if (img.nsegments == 0) return Err{Error::NoLoadableSegment};

    // Xen notes: PT_NOTE segments first (skipping p_offset 0, which some
    // binutils emit, as Xen does), then SHT_NOTE sections.
    detail::RawXenNotes raw{};
    for (unsigned i = 0; i < phnum; ++i) {
        const Phdr ph = read_phdr(f, phoff + uint64_t{i} * detail::kPhdrSize);
        if (ph.type != detail::kPtNote || ph.offset == 0) continue;
        if (!f.has(ph.offset, ph.filesz)) return Err{Error::NoteOutOfFile};
        TRY(detail::scan_notes(f, ph.offset, ph.filesz, raw));
    }
    if (raw.xen_notes == 0 && shnum != 0) {
        if (shentsize != detail::kShdrSize) return Err{Error::BadShEntSize};
        if (!f.has(shoff, uint64_t{shnum} * detail::kShdrSize)) return Err{Error::ShdrTableOutOfFile};
        for (unsigned i = 1; i < shnum; ++i) {  // section 0 is the null section
            const uint64_t at = shoff + uint64_t{i} * detail::kShdrSize;
            if (f.u32(at + 4) != detail::kShtNote) continue;
            const uint64_t off = f.u64(at + 24), len = f.u64(at + 32);
            if (!f.has(off, len)) return Err{Error::NoteOutOfFile};
            TRY(detail::scan_notes(f, off, len, raw));
        }
        raw.params.notes_from_sections = raw.xen_notes != 0;
    }
    if (f.failed()) return Err{Error::ReadFailed};
    if (raw.xen_notes == 0) return Err{Error::NoXenNotes};

    XenParams& xp = img.xen;
    xp = raw.params;
    xp.note_count = raw.xen_notes;
    if (!raw.has_guest_os) return Err{Error::MissingGuestOs};
    if (raw.has_xen_version && !raw.xen_version_ok) return Err{Error::BadXenVersion};
    if (raw.has_loader && !raw.loader_ok) return Err{Error::BadLoader};

    // Placement, Xen's elf_xen_addr_calc_check: virt_offset = VIRT_BASE -
    // PADDR_OFFSET (PADDR_OFFSET defaults to 0 for images with notes,
    // VIRT_BASE to 0), every segment at p_paddr + virt_offset (mod 2^64, as
    // in Xen). That must keep each byte's offset within its page, which
    // p_vaddr has too (a linker never separates them).
    if (xp.has_paddr_offset && !raw.has_virt_base) return Err{Error::PaddrOffsetWithoutVirtBase};
    if (!xp.has_paddr_offset) xp.paddr_offset = 0;
    const uint64_t virt_offset = xp.virt_base - xp.paddr_offset;
    for (unsigned i = 0; i < img.nsegments; ++i) {
        Segment& s = img.segments[i];
        const uint64_t placed = s.paddr + virt_offset;
        if ((placed & (base::kPageSize - 1)) != (s.vaddr & (base::kPageSize - 1)))
            return Err{Error::PaddrOffsetInconsistent};
        s.vaddr = placed;
    }

    // Overflow (including page rounding), overlap.
    for (unsigned i = 0; i < img.nsegments; ++i) {
        const Segment& s = img.segments[i];
        if (base::add_overflows(s.vaddr, s.memsz) || s.vaddr + s.memsz > kLastPage)
            return Err{Error::AddressOverflow};
        for (unsigned j = 0; j < i; ++j) {
            const Segment& t = img.segments[j];
            if (s.vaddr < t.vaddr + t.memsz && t.vaddr < s.vaddr + s.memsz)
                return Err{Error::OverlappingSegments};
        }
    }
    // [virt_kstart, virt_kend): the whole of [pstart, pend) moved, which
    // must not wrap either.
    const uint64_t kstart = pstart + virt_offset, kend = pend + virt_offset;
    if (kend < kstart || kend > kLastPage) return Err{Error::AddressOverflow};
    if (!base::is_aligned(kstart, base::kPageSize)) return Err{Error::ImageStartMisaligned};
    img.kstart = kstart;
    img.kend = base::align_up(kend, base::kPageSize);  // kend <= kLastPage: no wrap
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
    if (f.failed()) return Err{Error::ReadFailed};
    return img;
}

}  // namespace

base::Result<Image, Error> parse(const Source& src) {
    Reader f(src);
    auto r = parse_with(f);
    // Whatever went wrong after a failed read (bytes read as 0) is that read's fault.
    if (!r.ok() && f.failed()) return Err{Error::ReadFailed};
    return r;
}

base::Status<Error> load(const Image& image, const Source& src, WriteFn write, void* ctx) {
    Reader f(src);
    if (image.nsegments == 0) return Err{Error::NoLoadableSegment};
    if (image.nsegments > kMaxSegments) return Err{Error::TooManySegments};
    // Re-check everything load relies on before writing anything.
    for (unsigned i = 0; i < image.nsegments; ++i) {
        const Segment& s = image.segments[i];
        if (s.filesz > s.memsz) return Err{Error::FileszExceedsMemsz};
        if (!f.has(s.offset, s.filesz)) return Err{Error::SegmentOutOfFile};
        if (base::add_overflows(s.vaddr, s.memsz)) return Err{Error::AddressOverflow};
    }
    constexpr uint64_t kPiece = 512;
    uint8_t piece[kPiece];
    for (unsigned i = 0; i < image.nsegments; ++i) {
        const Segment& s = image.segments[i];
        const uint64_t end = s.vaddr + s.memsz;
        const uint64_t file_end = s.vaddr + s.filesz;
        uint64_t va = s.vaddr;
        // One chunk per call, each ending at the next page boundary, the
        // end of the file bytes, or the end of the segment (and, for a
        // source read in pieces, after at most kPiece file bytes); loop
        // count is at most memsz / 512 + 2.
        while (va < end) {
            const uint64_t page_end = base::align_down(va, base::kPageSize) + base::kPageSize;
            uint64_t stop = end;
            if (page_end != 0 && page_end < stop) stop = page_end;  // page_end 0: top page
            if (va < file_end) {
                if (file_end < stop) stop = file_end;
                const uint64_t off = s.offset + (va - s.vaddr);
                if (src.data) {
                    write(ctx, va, src.data + off, stop - va);
                } else {
                    if (stop - va > kPiece) stop = va + kPiece;
                    if (!src.read || !src.read(src.ctx, off, piece, static_cast<size_t>(stop - va)))
                        return Err{Error::ReadFailed};
                    write(ctx, va, piece, stop - va);
                }
            } else {
                write(ctx, va, nullptr, stop - va);
            }
            va = stop;
        }
    }
    return {};
}

}  // namespace elf
