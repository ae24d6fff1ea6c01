// Xen ELF notes: walking note containers and interpreting "Xen" notes the
// way Xen's libelf (xen/common/libelf/libelf-dominfo.c) does, minus the
// legacy __xen_guest section.

#include <base/bits.hpp>

#include "internal.hpp"

namespace elf {
namespace {

struct FeatureName {
    const char* name;
    size_t len;
    unsigned bit;
};

// Exactly the names Xen's libelf knows; other names are ignored unless
// required, as there.
constexpr FeatureName kFeatureNames[] = {
    {"writable_page_tables", 20, xen_feat::kWritablePageTables},
    {"writable_descriptor_tables", 26, xen_feat::kWritableDescriptorTables},
    {"auto_translated_physmap", 23, xen_feat::kAutoTranslatedPhysmap},
    {"supervisor_mode_kernel", 22, xen_feat::kSupervisorModeKernel},
    {"pae_pgdir_above_4gb", 19, xen_feat::kPaePgdirAbove4gb},
    {"hvm_callback_vector", 19, xen_feat::kHvmCallbackVector},
    {"dom0", 4, xen_feat::kDom0},
};

}  // namespace

namespace detail {

// Xen's elf_xen_parse_features over any character source `at(i)`, i < len
// (the string ends at `len` or its first NUL).
template <typename At>
bool parse_features(At&& at, size_t len, uint32_t* supported, uint32_t* required) {
    size_t end = 0;
    while (end < len && at(end) != '\0') ++end;
    size_t pos = 0;
    while (pos < end) {
        size_t item_end = pos;
        while (item_end < end && at(item_end) != '|') ++item_end;
        const size_t item = pos;
        const size_t item_len = item_end - pos;
        pos = item_end + 1;  // past the '|' (or one past `end`: loop ends)
        if (item_len == 0) continue;
        const bool req = at(item) == '!';
        const size_t name = req ? item + 1 : item;
        const size_t name_len = req ? item_len - 1 : item_len;
        bool known = false;
        for (const auto& f : kFeatureNames) {
            if (f.len != name_len) continue;
            bool same = true;
            for (size_t k = 0; same && k < name_len; ++k) same = at(name + k) == f.name[k];
            if (same) {
                known = true;
                if (supported) *supported |= uint32_t{1} << f.bit;
                if (req && required) *required |= uint32_t{1} << f.bit;
                break;
            }
        }
        if (!known && req) return false;
    }
    return true;
}

}  // namespace detail

bool parse_xen_features(const char* s, size_t len, uint32_t* supported, uint32_t* required) {
    return detail::parse_features([s](size_t i) { return s[i]; }, len, supported, required);
}

namespace detail {
namespace {

constexpr uint64_t align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

// A note's description: bytes [off, off+n) of the image.
struct Desc {
    uint64_t off, n;
};

// A numeric note: 4 or 8 bytes, little-endian.
bool numeric(Reader& r, Desc d, uint64_t& out) {
    if (d.n != 4 && d.n != 8) return false;
    out = r.le(d.off, static_cast<unsigned>(d.n));
    return true;
}

// A string note's length: up to its first NUL, or its whole description
// when it has none (Linux writes FEATURES without one; Xen reads on).
uint64_t string_len(Reader& r, Desc d) {
    uint64_t i = 0;
    while (i < d.n && r.u8(d.off + i) != 0) ++i;
    return i;
}

void copy_truncated(Reader& r, char (&dst)[kXenStringMax], Desc d, uint64_t len) {
    uint64_t n = len < kXenStringMax - 1 ? len : kXenStringMax - 1;
    for (uint64_t i = 0; i < n; ++i) dst[i] = static_cast<char>(r.u8(d.off + i));
    for (uint64_t i = n; i < kXenStringMax; ++i) dst[i] = '\0';
}

bool has_prefix(Reader& r, Desc d, uint64_t len, const char* prefix, size_t plen) {
    if (len < plen) return false;
    for (size_t i = 0; i < plen; ++i)
        if (r.u8(d.off + i) != static_cast<uint8_t>(prefix[i])) return false;
    return true;
}

bool is_numeric_note(uint32_t type) {
    switch (type) {
    case xen_note::kEntry:
    case xen_note::kHypercallPage:
    case xen_note::kVirtBase:
    case xen_note::kPaddrOffset:
    case xen_note::kInitP2m:
    case xen_note::kModStartPfn:
    case xen_note::kSupportedFeatures:
        return true;
    default:
        return false;
    }
}

bool is_string_note(uint32_t type) {
    switch (type) {
    case xen_note::kXenVersion:
    case xen_note::kGuestOs:
    case xen_note::kGuestVersion:
    case xen_note::kLoader:
    case xen_note::kFeatures:
        return true;
    default:
        return false;
    }
}

base::Status<Error> xen_note(Reader& r, uint32_t type, Desc desc, RawXenNotes& raw) {
    XenParams& p = raw.params;
    ++raw.xen_notes;
    if (is_numeric_note(type)) {
        uint64_t v = 0;
        if (!numeric(r, desc, v)) return base::Err{Error::BadNoteValueSize};
        switch (type) {
        case xen_note::kEntry: p.entry = v; raw.has_entry = true; break;
        case xen_note::kHypercallPage: p.hypercall_page = v; p.has_hypercall_page = true; break;
        case xen_note::kVirtBase: p.virt_base = v; raw.has_virt_base = true; break;
        case xen_note::kPaddrOffset: p.paddr_offset = v; p.has_paddr_offset = true; break;
        case xen_note::kInitP2m: p.init_p2m = v; p.has_init_p2m = true; break;
        case xen_note::kModStartPfn: p.mod_start_pfn = v != 0; break;
        case xen_note::kSupportedFeatures:
            p.supported_features |= static_cast<uint32_t>(v);  // submap 0 = first 32 bits
            break;
        default: break;
        }
        return {};
    }
    if (is_string_note(type)) {
        const uint64_t len = string_len(r, desc);
        switch (type) {
        case xen_note::kXenVersion:
            copy_truncated(r, p.xen_version, desc, len);
            raw.has_xen_version = true;
            raw.xen_version_ok = has_prefix(r, desc, len, "xen-3.0", 7);
            break;
        case xen_note::kGuestOs:
            copy_truncated(r, p.guest_os, desc, len);
            raw.has_guest_os = len > 0;
            break;
        case xen_note::kGuestVersion:
            copy_truncated(r, p.guest_version, desc, len);
            break;
        case xen_note::kLoader:
            copy_truncated(r, p.loader, desc, len);
            raw.has_loader = true;
            raw.loader_ok = has_prefix(r, desc, len, "generic", 7);
            break;
        case xen_note::kFeatures:
            if (!parse_features([&](size_t i) { return static_cast<char>(r.u8(desc.off + i)); },
                                static_cast<size_t>(len), &p.supported_features, &p.required_features))
                return base::Err{Error::UnsupportedRequiredFeature};
            break;
        default: break;
        }
    }
    // Other types (PAE_MODE, BSD_SYMTAB, HV_START_LOW, L1_MFN_VALID,
    // SUSPEND_CANCEL, PHYS32_ENTRY, unknown) carry nothing Moat uses.
    return {};
}

}  // namespace

base::Status<Error> scan_notes(Reader& r, uint64_t off, uint64_t len, RawXenNotes& raw) {
    constexpr uint64_t kNoteHdr = 12;
    uint64_t pos = 0;
    // Each iteration advances by at least kNoteHdr bytes.
    while (pos < len) {
        uint64_t rem = len - pos;
        if (rem < kNoteHdr) {
            // Tolerate zero padding at the end of the container.
            for (uint64_t i = pos; i < len; ++i)
                if (r.u8(off + i) != 0) return base::Err{Error::MalformedNote};
            break;
        }
        if (raw.total_notes >= kMaxNotes) return base::Err{Error::TooManyNotes};
        ++raw.total_notes;
        uint32_t namesz = r.u32(off + pos);
        uint32_t descsz = r.u32(off + pos + 4);
        uint32_t type = r.u32(off + pos + 8);
        uint64_t name_off = pos + kNoteHdr;
        if (name_off > len || namesz > len - name_off) return base::Err{Error::MalformedNote};
        // The padding after the name (and after the last desc) may be
        // clipped by the end of the container, but the desc itself may not.
        uint64_t desc_off = name_off + align4(namesz);
        if (descsz != 0 && (desc_off > len || descsz > len - desc_off)) return base::Err{Error::MalformedNote};
        uint64_t next = desc_off + align4(descsz);  // < 2^34 + pos: no overflow

        bool is_xen = namesz >= 4 && r.u8(off + name_off) == 'X' && r.u8(off + name_off + 1) == 'e' &&
                      r.u8(off + name_off + 2) == 'n' && r.u8(off + name_off + 3) == '\0';
        if (is_xen) TRY(xen_note(r, type, Desc{off + desc_off, descsz}, raw));
        if (r.failed()) return base::Err{Error::ReadFailed};
        pos = next;
    }
    return {};
}

}  // namespace detail
}  // namespace elf
