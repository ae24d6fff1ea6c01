#pragma once
// Xen PV guest parameters carried in "Xen" ELF notes
// (xen/include/public/elfnote.h), as interpreted by Moat.

#include <cstddef>
#include <cstdint>

namespace elf {

// Note types (XEN_ELFNOTE_*).
namespace xen_note {
constexpr uint32_t kInfo = 0;
constexpr uint32_t kEntry = 1;
constexpr uint32_t kHypercallPage = 2;
constexpr uint32_t kVirtBase = 3;
constexpr uint32_t kPaddrOffset = 4;
constexpr uint32_t kXenVersion = 5;
constexpr uint32_t kGuestOs = 6;
constexpr uint32_t kGuestVersion = 7;
constexpr uint32_t kLoader = 8;
constexpr uint32_t kPaeMode = 9;
constexpr uint32_t kFeatures = 10;
constexpr uint32_t kBsdSymtab = 11;
constexpr uint32_t kHvStartLow = 12;
constexpr uint32_t kL1MfnValid = 13;
constexpr uint32_t kSuspendCancel = 14;
constexpr uint32_t kInitP2m = 15;
constexpr uint32_t kModStartPfn = 16;
constexpr uint32_t kSupportedFeatures = 17;
constexpr uint32_t kPhys32Entry = 18;
}  // namespace xen_note

// XENFEAT_* bit numbers (xen/include/public/features.h).
namespace xen_feat {
constexpr unsigned kWritablePageTables = 0;
constexpr unsigned kWritableDescriptorTables = 1;
constexpr unsigned kAutoTranslatedPhysmap = 2;
constexpr unsigned kSupervisorModeKernel = 3;
constexpr unsigned kPaePgdirAbove4gb = 4;
constexpr unsigned kHvmCallbackVector = 8;
constexpr unsigned kDom0 = 11;
}  // namespace xen_feat

constexpr size_t kXenStringMax = 16;  // including the NUL; longer values are truncated

struct XenParams {
    uint64_t virt_base;       // VIRT_BASE, default 0
    uint64_t entry;           // ENTRY, default e_entry
    uint64_t hypercall_page;  // HYPERCALL_PAGE (virtual address), 0 if none
    uint64_t paddr_offset;    // PADDR_OFFSET; 0 if absent (Xen's default for images with notes)
    uint64_t init_p2m;        // INIT_P2M, 0 if none
    bool has_hypercall_page;
    bool has_paddr_offset;
    bool has_init_p2m;
    bool mod_start_pfn;       // MOD_START_PFN != 0: initrd given as a PFN, not mapped
    bool notes_from_sections; // notes came from SHT_NOTE sections, not PT_NOTE
    char guest_os[kXenStringMax];     // NUL-terminated, never empty
    char guest_version[kXenStringMax];  // "" if absent
    char loader[kXenStringMax];       // "" if absent
    char xen_version[kXenStringMax];  // "" if absent
    // Bitmaps of XENFEAT_* numbers (submap 0). Every required feature is
    // also supported. From FEATURES ("a|!b": '!' = required) and
    // SUPPORTED_FEATURES (32-bit bitmap, OR-ed in).
    uint32_t required_features;
    uint32_t supported_features;
    unsigned note_count;      // Xen notes seen (all types, known or not)
};

// Parses a FEATURES string (not necessarily NUL-terminated; stops at `len`
// or the first NUL: Linux writes its note without one, and Xen reads it to
// the note's size) into the two bitmaps, OR-ing bits in. Unknown names are
// ignored unless required, when it returns false. Empty items are ignored.
bool parse_xen_features(const char* s, size_t len, uint32_t* supported, uint32_t* required);

}  // namespace elf
