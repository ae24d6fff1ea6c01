#pragma once
// ELF64 x86-64 executable parser and loader for Xen PV kernels.
//
// parse() validates an untrusted image (ELF header, program headers, PT_LOAD
// segments, Xen ELF notes) without ever reading outside the image,
// overflowing, or looping more than the image's size allows. load() then
// feeds the segments' bytes, page by page, to a caller-supplied writer.
//
// The image is read through a Source: in memory, or piece by piece from
// wherever it lives (the builder domain streams a 65 MB Linux image from its
// boot module and never holds it whole). parse() reads only the headers and
// notes; the segments' bytes are for load(), or for a caller that copies
// them itself (Image::segments says where each file range goes).

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <base/result.hpp>
#include <elf/xen.hpp>

namespace elf {

enum class Error : uint8_t {
    // ELF header.
    TooSmall = 1,             // shorter than an ELF64 header
    BadMagic,                 // not \x7fELF
    NotElf64,                 // EI_CLASS != ELFCLASS64
    NotLittleEndian,          // EI_DATA != ELFDATA2LSB
    BadVersion,               // EI_VERSION or e_version != EV_CURRENT
    NotX86_64,                // e_machine != EM_X86_64
    NotExecutable,            // e_type != ET_EXEC
    // Program headers and segments.
    BadPhEntSize,             // e_phentsize != sizeof(Elf64_Phdr)
    PhdrTableOutOfFile,       // program header table not within the file
    TooManySegments,          // more than kMaxSegments PT_LOAD segments
    SegmentOutOfFile,         // a segment's file bytes not within the file
    FileszExceedsMemsz,       // p_filesz > p_memsz
    AddressOverflow,          // p_vaddr + p_memsz (page rounded) wraps
    BadAlignment,             // p_align not 0 or a power of two
    MisalignedSegment,        // p_vaddr % p_align != p_offset % p_align
    OverlappingSegments,      // two PT_LOAD segments share virtual bytes
    NoLoadableSegment,        // no PT_LOAD with p_memsz > 0
    ImageTooLarge,            // [kstart, kend) larger than kMaxImageSpan
    BadShEntSize,             // e_shentsize != sizeof(Elf64_Shdr) (only checked when needed)
    ShdrTableOutOfFile,       // section header table not within the file
    // Xen notes.
    NoXenNotes,               // no "Xen" note in any PT_NOTE or SHT_NOTE
    MalformedNote,            // a note header/name/desc runs past its container
    NoteOutOfFile,            // a PT_NOTE segment or SHT_NOTE section not within the file
    TooManyNotes,             // more than kMaxNotes notes in total
    BadNoteValueSize,         // numeric note not 4 or 8 bytes
    BadXenVersion,            // XEN_VERSION present and not "xen-3.0"
    BadLoader,                // LOADER present and not "generic"
    MissingGuestOs,           // no GUEST_OS note
    UnsupportedRequiredFeature,  // FEATURES names an unknown '!'-required feature
    VirtBaseAboveImage,       // VIRT_BASE > kstart
    PaddrOffsetWithoutVirtBase,  // PADDR_OFFSET given, VIRT_BASE not
    PaddrOffsetInconsistent,  // p_paddr + VIRT_BASE - PADDR_OFFSET not congruent to p_vaddr mod 4K
    EntryOutsideImage,        // entry not in [kstart, kend)
    HypercallPageOutsideImage,  // HYPERCALL_PAGE not in [kstart, kend)
    HypercallPageMisaligned,  // HYPERCALL_PAGE not page aligned
    InitP2mInsideImage,       // INIT_P2M inside [kstart, kend)
    ImageStartMisaligned,     // the image's first byte (VIRT_BASE + lowest p_paddr - PADDR_OFFSET) is not page aligned
    ReadFailed,               // the source could not deliver bytes within its size
};

// A clear human sentence fragment, e.g. "not an ELF image (bad magic)".
// Never null; unknown values give "unknown ELF error".
const char* describe(Error e);

constexpr unsigned kMaxSegments = 32;
constexpr unsigned kMaxNotes = 1024;                 // across all note containers
constexpr uint64_t kMaxImageSpan = uint64_t{1} << 30;  // 1 GiB

// Where a segment goes: where Xen's libelf puts it, by physical address:
// p_paddr + VIRT_BASE - PADDR_OFFSET (PADDR_OFFSET 0 when the note is absent,
// VIRT_BASE 0 when that one is), i.e. virt_kstart + p_paddr - pstart. This
// may differ from p_vaddr (Linux's zero-based per-CPU segment has p_vaddr 0).
// "Loadable" is Xen's: PT_LOAD with one of PF_R/PF_W/PF_X.
struct Segment {
    uint64_t vaddr;   // first guest virtual byte (not necessarily page aligned)
    uint64_t paddr;   // p_paddr
    uint64_t memsz;   // > 0
    uint64_t filesz;  // <= memsz; bytes [offset, offset+filesz) of the file
    uint64_t offset;
    bool writable;    // PF_W
    bool executable;  // PF_X
};

struct Image {
    Segment segments[kMaxSegments];  // loadable segments with p_memsz > 0, in program header order
    unsigned nsegments;
    // Xen's virt_kstart / virt_kend: pstart and pend (lowest p_paddr and
    // highest p_paddr + p_memsz of every loadable segment, empty ones
    // included, as in elf_parse_binary) moved by VIRT_BASE - PADDR_OFFSET.
    // kstart is page aligned (Xen's builder refuses an image whose start is
    // not); kend is rounded up to a page.
    uint64_t kstart;
    uint64_t kend;
    XenParams xen;
};

// Where the image's bytes come from. With `data` set, the image is those
// `size` bytes in memory; otherwise read(ctx, off, dst, len) copies bytes
// [off, off+len) (always within `size`) to dst and says whether it could.
struct Source {
    uint64_t size;
    const uint8_t* data;
    bool (*read)(void* ctx, uint64_t off, void* dst, size_t len);
    void* ctx;
};

inline Source memory_source(const uint8_t* data, size_t size) {
    return Source{data ? size : 0, data, nullptr, nullptr};
}

// Checks, in order: ELF header; program header table; each PT_LOAD's file
// bounds, sizes, alignment and count; Xen notes (PT_NOTE segments, falling
// back to SHT_NOTE sections when no PT_NOTE holds a "Xen" note); note
// contents; segment placement (overflow, overlap, span); VIRT_BASE, entry,
// hypercall page and INIT_P2M against [kstart, kend).
base::Result<Image, Error> parse(const Source& src);
inline base::Result<Image, Error> parse(const uint8_t* data, size_t size) {
    return parse(memory_source(data, size));
}

// load() writer: `len` bytes for guest virtual addresses [vaddr, vaddr+len),
// taken from `src`, or zeros when `src` is null. A call never crosses a page
// boundary and lies within one segment's [vaddr, vaddr+memsz). Segments are
// emitted in order; within a segment, addresses increase. Two segments may
// touch the same page (never the same byte).
using WriteFn = void (*)(void* ctx, uint64_t vaddr, const uint8_t* src, uint64_t len);

// Copies every segment's file bytes and zero-fills memsz beyond filesz.
// `src` must be the image `image` was parsed from; the segment bounds are
// re-checked against it anyway, and nothing is written for an image that
// fails them. A source that is not in memory is read in pieces of at most
// 512 bytes (each still within one page and one segment); a failed read
// stops the load with ReadFailed.
base::Status<Error> load(const Image& image, const Source& src, WriteFn write, void* ctx);
inline base::Status<Error> load(const Image& image, const uint8_t* data, size_t size, WriteFn write,
                                void* ctx) {
    return load(image, memory_source(data, size), write, ctx);
}

// Same, with any callable `void(uint64_t vaddr, const uint8_t* src, uint64_t len)`.
template <typename Write>
base::Status<Error> load(const Image& image, const Source& src, Write&& write) {
    using W = std::remove_reference_t<Write>;
    return load(image, src,
                [](void* ctx, uint64_t vaddr, const uint8_t* bytes, uint64_t len) {
                    (*static_cast<W*>(ctx))(vaddr, bytes, len);
                },
                const_cast<void*>(static_cast<const void*>(&write)));
}
template <typename Write>
base::Status<Error> load(const Image& image, const uint8_t* data, size_t size, Write&& write) {
    return load(image, memory_source(data, size), static_cast<Write&&>(write));
}

}  // namespace elf
