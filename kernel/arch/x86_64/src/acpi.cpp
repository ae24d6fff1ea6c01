// ACPI at boot: RSDP -> RSDT/XSDT -> DMAR, MCFG (see acpi.hpp).
//
// Tables are read in place through the direct map, which covers the first
// 4 GiB from boot on (where firmware puts them); a table elsewhere, or one
// that runs past 4 GiB, is ignored. Nothing read here is trusted past the
// length its header gives, and a header is trusted only once its checksum
// holds.

#include <arch/acpi.hpp>
#include <arch/layout.h>

#include <core/log.hpp>

namespace arch::acpi {

namespace {

constexpr uint64_t kMapped = 4ull << 30;          // what the boot direct map covers
constexpr uint32_t kMaxTableLength = 1u << 20;    // far beyond any real DMAR, MCFG or RSDT
constexpr uint32_t kHeaderLength = 36;

Tables g_tables;

bool mapped(uint64_t pa, uint64_t len) { return pa < kMapped && len <= kMapped - pa; }
const uint8_t* at(uint64_t pa) { return reinterpret_cast<const uint8_t*>(DIRECTMAP_VIRT + pa); }

template <class T>
T rd(const uint8_t* p) {
    T v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

uint8_t checksum(const uint8_t* p, uint32_t n) {
    uint8_t s = 0;
    for (uint32_t i = 0; i < n; ++i) s = uint8_t(s + p[i]);
    return s;
}

// The table at `pa` if its header holds (signature `sig` when given, a sane
// length, the checksum over that length): its length in *len.
const uint8_t* table_at(uint64_t pa, const char* sig, uint32_t* len) {
    if (!mapped(pa, kHeaderLength)) return nullptr;
    const uint8_t* t = at(pa);
    if (sig && __builtin_memcmp(t, sig, 4) != 0) return nullptr;
    uint32_t n = rd<uint32_t>(t + 4);
    if (n < kHeaderLength || n > kMaxTableLength || !mapped(pa, n)) {
        core::log("acpi: table %.4s at %#lx: bad length %u, ignored", reinterpret_cast<const char*>(t), pa, n);
        return nullptr;
    }
    if (checksum(t, n) != 0) {
        core::log("acpi: table %.4s at %#lx: bad checksum, ignored", reinterpret_cast<const char*>(t), pa);
        return nullptr;
    }
    *len = n;
    return t;
}

// "RSD PTR " on a 16-byte boundary in [lo, hi), with a good checksum.
uint64_t find_rsdp(uint64_t lo, uint64_t hi) {
    for (uint64_t pa = lo; pa + 20 <= hi; pa += 16) {
        const uint8_t* p = at(pa);
        if (__builtin_memcmp(p, "RSD PTR ", 8) != 0 || checksum(p, 20) != 0) continue;
        if (p[15] >= 2) {   // ACPI 2.0+: the extended checksum covers its whole length
            uint32_t n = rd<uint32_t>(p + 20);
            if (n < 36 || n > 64 || checksum(p, n) != 0) continue;
        }
        return pa;
    }
    return 0;
}

// One device scope (DMAR's "Device Scope Structure") at `s`, `n` bytes.
DeviceScope parse_scope(const uint8_t* s, uint32_t n) {
    DeviceScope d{s[0], s[4], kNoSource};
    // One path entry: the device sits on the start bus itself. Longer paths
    // go through bridges whose secondary bus numbers would have to be read.
    if (n == 8) d.source_id = uint16_t(s[5] << 8 | (s[6] & 0x1F) << 3 | (s[7] & 7));
    return d;
}

// The DMAR: its remapping structures, each within the table and within its
// own length. Any structure that is not is a malformed table: all of it is
// dropped (a unit half read could leave devices out of every unit).
void parse_dmar(const uint8_t* t, uint32_t len) {
    constexpr uint32_t kFirst = 48;
    if (len < kFirst) {
        core::log("acpi: DMAR of %u bytes is too short, ignored", len);
        return;
    }
    Tables got{};   // its DMAR part, copied out once all of it held
    got.host_address_width = uint8_t(t[36] + 1);
    got.dmar_intr_remap = t[37] & 1;
    for (uint32_t off = kFirst; off < len;) {
        if (len - off < 4) {
            core::log("acpi: DMAR: %u stray bytes at its end, table ignored", len - off);
            return;
        }
        uint16_t type = rd<uint16_t>(t + off), n = rd<uint16_t>(t + off + 2);
        if (n < 4 || n > len - off) {
            core::log("acpi: DMAR: structure at +%u has length %u (table %u bytes), table ignored", off, n, len);
            return;
        }
        const uint8_t* s = t + off;
        if (type == 0) {   // DRHD: one DMA-remapping hardware unit
            if (n < 16) {
                core::log("acpi: DMAR: unit at +%u is %u bytes, table ignored", off, n);
                return;
            }
            ++got.drhd_seen;
            if (got.ndrhd < kMaxDrhd) {
                Drhd& u = got.drhd[got.ndrhd++];
                u = Drhd{};
                u.include_all = s[4] & 1;
                u.segment = rd<uint16_t>(s + 6);
                u.base = rd<uint64_t>(s + 8);
                for (uint32_t k = 16; k < n;) {
                    uint8_t sl = n - k >= 2 ? s[k + 1] : 0;
                    if (sl < 6 || sl > n - k) {
                        core::log("acpi: DMAR: unit %#lx: device scope at +%u has length %u, table ignored", u.base, k,
                                  sl);
                        return;
                    }
                    ++u.scopes_seen;
                    if (u.nscopes < kMaxScopes) u.scopes[u.nscopes++] = parse_scope(s + k, sl);
                    k += sl;
                }
            }
        } else if (type == 1) {
            ++got.rmrr;
        }
        off += n;
    }
    Tables& out = g_tables;
    out.has_dmar = true;
    out.host_address_width = got.host_address_width;
    out.dmar_intr_remap = got.dmar_intr_remap;
    out.ndrhd = got.ndrhd;
    out.drhd_seen = got.drhd_seen;
    for (unsigned i = 0; i < got.ndrhd; ++i) out.drhd[i] = got.drhd[i];
    out.rmrr = got.rmrr;
}

// The MCFG: the allocation for segment 0 that starts at bus 0.
void parse_mcfg(const uint8_t* t, uint32_t len) {
    constexpr uint32_t kFirst = 44, kEntry = 16;
    for (uint32_t off = kFirst; off + kEntry <= len; off += kEntry) {
        uint64_t base = rd<uint64_t>(t + off);
        uint16_t seg = rd<uint16_t>(t + off + 8);
        uint8_t first = t[off + 10], last = t[off + 11];
        if (seg != 0 || first != 0 || last < first) continue;
        if ((base & 0xFFFFF) || !mapped(base, (uint64_t(last) + 1) << 20)) {
            core::log("acpi: MCFG: ECAM window %#lx (buses 0-%u) is not in the direct map, ignored", base, last);
            continue;
        }
        g_tables.has_mcfg = true;
        g_tables.ecam_base = base;
        g_tables.ecam_last_bus = last;
        return;
    }
}

}  // namespace

const Tables& tables() { return g_tables; }

void init() {
    // The EBDA's segment is at 0x40E; its first KiB, then the BIOS area.
    uint64_t ebda = uint64_t(rd<uint16_t>(at(0x40E))) << 4;
    uint64_t rsdp = ebda >= 0x80000 && ebda < 0xA0000 ? find_rsdp(ebda, ebda + 1024) : 0;
    if (!rsdp) rsdp = find_rsdp(0xE0000, 0x100000);
    if (!rsdp) {
        core::log("acpi: no RSDP found: no DMAR, no MCFG");
        return;
    }
    const uint8_t* p = at(rsdp);
    uint8_t rev = p[15];
    uint64_t xsdt = rev >= 2 ? rd<uint64_t>(p + 24) : 0;
    uint32_t len = 0, entry = 8;
    const uint8_t* root = xsdt ? table_at(xsdt, "XSDT", &len) : nullptr;
    if (!root) {
        entry = 4;
        root = table_at(rd<uint32_t>(p + 16), "RSDT", &len);
    }
    if (!root) {
        core::log("acpi: RSDP at %#lx names no valid RSDT/XSDT: no DMAR, no MCFG", rsdp);
        return;
    }
    unsigned n = (len - kHeaderLength) / entry;
    for (unsigned i = 0; i < n; ++i) {
        const uint8_t* e = root + kHeaderLength + i * entry;
        uint64_t pa = entry == 8 ? rd<uint64_t>(e) : rd<uint32_t>(e);
        uint32_t tl = 0;
        if (const uint8_t* t = table_at(pa, "DMAR", &tl)) {
            if (!g_tables.has_dmar) parse_dmar(t, tl);
        } else if (const uint8_t* m = table_at(pa, "MCFG", &tl)) {
            if (!g_tables.has_mcfg) parse_mcfg(m, tl);
        }
    }
    core::log("acpi: RSDP at %#lx (revision %u), %u tables in the %s; DMAR: %s, %u unit(s); MCFG: %s", rsdp, rev, n,
              entry == 8 ? "XSDT" : "RSDT", g_tables.has_dmar ? "yes" : "no", g_tables.ndrhd,
              g_tables.has_mcfg ? "yes" : "no");
    for (unsigned i = 0; i < g_tables.ndrhd; ++i) {
        const Drhd& u = g_tables.drhd[i];
        core::log("acpi: DMAR unit %u at %#lx, segment %u%s, %u device scope(s)", i, u.base, u.segment,
                  u.include_all ? ", all PCI functions" : "", u.scopes_seen);
    }
}

}  // namespace arch::acpi
