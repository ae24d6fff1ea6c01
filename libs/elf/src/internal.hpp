#pragma once
// Internal pieces shared by elf.cpp and xen_notes.cpp.

#include <cstddef>
#include <cstdint>

#include <base/result.hpp>
#include <elf/elf.hpp>

namespace elf::detail {

// A bounded little-endian view of untrusted bytes. Readers never touch
// memory outside [p, p+n): an out-of-range read yields 0, but callers check
// lengths first, so that fallback only guards against mistakes.
struct View {
    const uint8_t* p = nullptr;
    size_t n = 0;

    // [off, off+len) lies within the view.
    constexpr bool has(uint64_t off, uint64_t len) const {
        return off <= n && len <= n - off;
    }
    // The sub-view [off, off+len), if it lies within this one.
    constexpr bool sub(uint64_t off, uint64_t len, View& out) const {
        if (!has(off, len)) return false;
        out = View{p + off, static_cast<size_t>(len)};
        return true;
    }
    uint8_t u8(uint64_t off) const { return has(off, 1) ? p[off] : 0; }
    uint64_t le(uint64_t off, unsigned bytes) const {
        if (!has(off, bytes)) return 0;
        uint64_t v = 0;
        for (unsigned i = bytes; i-- > 0;) v = (v << 8) | p[off + i];
        return v;
    }
    uint16_t u16(uint64_t off) const { return static_cast<uint16_t>(le(off, 2)); }
    uint32_t u32(uint64_t off) const { return static_cast<uint32_t>(le(off, 4)); }
    uint64_t u64(uint64_t off) const { return le(off, 8); }
};

// ELF64 layout constants.
constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr size_t kShdrSize = 64;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;
constexpr uint32_t kShtNote = 7;

// Xen notes as found, before defaults and cross-checks.
struct RawXenNotes {
    XenParams params;  // strings, feature bitmaps, numeric values found
    bool has_virt_base;
    bool has_entry;
    bool has_xen_version;
    bool xen_version_ok;  // full (untruncated) value starts with "xen-3.0"
    bool has_loader;
    bool loader_ok;       // full value starts with "generic"
    bool has_guest_os;
    unsigned xen_notes;   // "Xen" notes seen
    unsigned total_notes; // all notes seen, for kMaxNotes
};

// Walks the notes in `container` (a PT_NOTE segment's or SHT_NOTE section's
// bytes), recording "Xen" notes into `raw`.
base::Status<Error> scan_notes(View container, RawXenNotes& raw);

}  // namespace elf::detail
