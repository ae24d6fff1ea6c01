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

bool bytes_equal(const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

}  // namespace

bool parse_xen_features(const char* s, size_t len, uint32_t* supported, uint32_t* required) {
    size_t end = 0;
    while (end < len && s[end] != '\0') ++end;
    size_t pos = 0;
    while (pos < end) {
        size_t item_end = pos;
        while (item_end < end && s[item_end] != '|') ++item_end;
        const char* item = s + pos;
        size_t item_len = item_end - pos;
        pos = item_end + 1;  // past the '|' (or one past `end`: loop ends)
        if (item_len == 0) continue;
        bool req = item[0] == '!';
        const char* name = req ? item + 1 : item;
        size_t name_len = req ? item_len - 1 : item_len;
        bool known = false;
        for (const auto& f : kFeatureNames) {
            if (f.len == name_len && bytes_equal(f.name, name, name_len)) {
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

namespace detail {
namespace {

constexpr uint64_t align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

// A numeric note: 4 or 8 bytes, little-endian.
bool numeric(View desc, uint64_t& out) {
    if (desc.n != 4 && desc.n != 8) return false;
    out = desc.le(0, static_cast<unsigned>(desc.n));
    return true;
}

// A string note: NUL-terminated within descsz. `len` excludes the NUL.
bool string(View desc, const char*& s, size_t& len) {
    for (size_t i = 0; i < desc.n; ++i) {
        if (desc.p[i] == 0) {
            s = reinterpret_cast<const char*>(desc.p);
            len = i;
            return true;
        }
    }
    return false;
}

void copy_truncated(char (&dst)[kXenStringMax], const char* s, size_t len) {
    size_t n = len < kXenStringMax - 1 ? len : kXenStringMax - 1;
    for (size_t i = 0; i < n; ++i) dst[i] = s[i];
    for (size_t i = n; i < kXenStringMax; ++i) dst[i] = '\0';
}

bool has_prefix(const char* s, size_t len, const char* prefix, size_t plen) {
    return len >= plen && bytes_equal(s, prefix, plen);
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

base::Status<Error> xen_note(uint32_t type, View desc, RawXenNotes& raw) {
    XenParams& p = raw.params;
    ++raw.xen_notes;
    if (is_numeric_note(type)) {
        uint64_t v = 0;
        if (!numeric(desc, v)) return base::Err{Error::BadNoteValueSize};
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
        const char* s = nullptr;
        size_t len = 0;
        if (!string(desc, s, len)) return base::Err{Error::BadNoteString};
        switch (type) {
        case xen_note::kXenVersion:
            copy_truncated(p.xen_version, s, len);
            raw.has_xen_version = true;
            raw.xen_version_ok = has_prefix(s, len, "xen-3.0", 7);
            break;
        case xen_note::kGuestOs:
            copy_truncated(p.guest_os, s, len);
            raw.has_guest_os = len > 0;
            break;
        case xen_note::kGuestVersion:
            copy_truncated(p.guest_version, s, len);
            break;
        case xen_note::kLoader:
            copy_truncated(p.loader, s, len);
            raw.has_loader = true;
            raw.loader_ok = has_prefix(s, len, "generic", 7);
            break;
        case xen_note::kFeatures:
            if (!parse_xen_features(s, len, &p.supported_features, &p.required_features))
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

base::Status<Error> scan_notes(View c, RawXenNotes& raw) {
    constexpr uint64_t kNoteHdr = 12;
    uint64_t pos = 0;
    // Each iteration advances by at least kNoteHdr bytes.
    while (pos < c.n) {
        uint64_t rem = c.n - pos;
        if (rem < kNoteHdr) {
            // Tolerate zero padding at the end of the container.
            for (uint64_t i = pos; i < c.n; ++i)
                if (c.p[i] != 0) return base::Err{Error::MalformedNote};
            break;
        }
        if (raw.total_notes >= kMaxNotes) return base::Err{Error::TooManyNotes};
        ++raw.total_notes;
        uint32_t namesz = c.u32(pos);
        uint32_t descsz = c.u32(pos + 4);
        uint32_t type = c.u32(pos + 8);
        uint64_t name_off = pos + kNoteHdr;
        if (!c.has(name_off, namesz)) return base::Err{Error::MalformedNote};
        // The padding after the name (and after the last desc) may be
        // clipped by the end of the container, but the desc itself may not.
        uint64_t desc_off = name_off + align4(namesz);
        View desc{};
        if (descsz != 0 && !c.sub(desc_off, descsz, desc)) return base::Err{Error::MalformedNote};
        uint64_t next = desc_off + align4(descsz);  // < 2^34 + pos: no overflow

        View name{};
        (void)c.sub(name_off, namesz, name);
        bool is_xen = namesz >= 4 && name.p[0] == 'X' && name.p[1] == 'e' && name.p[2] == 'n' &&
                      name.p[3] == '\0';
        if (is_xen) TRY(xen_note(type, desc, raw));
        pos = next;
    }
    return {};
}

}  // namespace detail
}  // namespace elf
