#include <elf/elf.hpp>

namespace elf {

const char* describe(Error e) {
    switch (e) {
    case Error::TooSmall: return "image too small to hold an ELF64 header";
    case Error::BadMagic: return "not an ELF image (bad magic)";
    case Error::NotElf64: return "not a 64-bit ELF image (EI_CLASS is not ELFCLASS64)";
    case Error::NotLittleEndian: return "not a little-endian ELF image";
    case Error::BadVersion: return "unsupported ELF version (EI_VERSION or e_version is not 1)";
    case Error::NotX86_64: return "ELF image is not for x86-64 (e_machine is not EM_X86_64)";
    case Error::NotExecutable: return "ELF image is not an executable (e_type is not ET_EXEC)";
    case Error::BadPhEntSize: return "bad program header table (e_phentsize is not 56)";
    case Error::PhdrTableOutOfFile: return "bad program header table (it extends past the end of the file)";
    case Error::TooManySegments: return "too many loadable segments (more than 32)";
    case Error::SegmentOutOfFile: return "a loadable segment's file bytes extend past the end of the file";
    case Error::FileszExceedsMemsz: return "a loadable segment has p_filesz larger than p_memsz";
    case Error::AddressOverflow: return "a loadable segment's address range (p_paddr + p_memsz, or where VIRT_BASE - PADDR_OFFSET moves it) wraps around the address space";
    case Error::BadAlignment: return "a loadable segment's p_align is not a power of two";
    case Error::MisalignedSegment: return "a loadable segment's p_vaddr and p_offset disagree modulo p_align";
    case Error::OverlappingSegments: return "two loadable segments overlap in memory";
    case Error::NoLoadableSegment: return "no loadable segment (no PT_LOAD with nonzero size)";
    case Error::ImageTooLarge: return "image spans more than 1 GiB of address space";
    case Error::BadShEntSize: return "bad section header table (e_shentsize is not 64)";
    case Error::ShdrTableOutOfFile: return "bad section header table (it extends past the end of the file)";
    case Error::NoXenNotes: return "not a Xen PV image (no \"Xen\" ELF notes)";
    case Error::MalformedNote: return "malformed ELF note (its name or description runs past its segment or section)";
    case Error::NoteOutOfFile: return "a note segment or section extends past the end of the file";
    case Error::TooManyNotes: return "too many ELF notes (more than 1024)";
    case Error::BadNoteValueSize: return "a numeric Xen note is not 4 or 8 bytes long";
    case Error::BadXenVersion: return "XEN_VERSION note is not \"xen-3.0\"";
    case Error::BadLoader: return "LOADER note is not \"generic\"";
    case Error::MissingGuestOs: return "GUEST_OS note missing or empty";
    case Error::UnsupportedRequiredFeature: return "FEATURES note requires an unknown feature";
    case Error::VirtBaseAboveImage: return "VIRT_BASE lies above the start of the image";
    case Error::PaddrOffsetWithoutVirtBase: return "PADDR_OFFSET note given without a VIRT_BASE note";
    case Error::PaddrOffsetInconsistent: return "PADDR_OFFSET places a segment at a different offset within a page than its p_vaddr";
    case Error::EntryOutsideImage: return "entry point lies outside the image";
    case Error::HypercallPageOutsideImage: return "HYPERCALL_PAGE lies outside the image";
    case Error::HypercallPageMisaligned: return "HYPERCALL_PAGE is not page aligned";
    case Error::InitP2mInsideImage: return "INIT_P2M lies inside the image";
    case Error::ImageStartMisaligned: return "the image does not start on a page boundary (its lowest p_paddr, moved by VIRT_BASE - PADDR_OFFSET)";
    case Error::ReadFailed: return "the image could not be read";
    }
    return "unknown ELF error";
}

}  // namespace elf
