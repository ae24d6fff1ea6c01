// Decoding and checking the binary manifest (see manifest.hpp).
//
// nanopb decodes the payload with callbacks (proto/manifest.options) that
// write straight into manifest::System, so nothing is allocated and nothing
// large lives on the stack. Two passes over the payload: the first collects
// the domains' names, the second decodes everything else and resolves every
// name of a peer (a grant may name a domain that comes later). Then the
// checks that need the whole system (roles, memory, modules, devices,
// connections).
//
// Every error is one line. Strings from the input are only quoted once they
// are known to be well-formed names, so no line carries control characters.

#include <manifest/manifest.hpp>

#include <base/crc32.hpp>
#include <base/format.hpp>
#include <base/raw_enum.hpp>

#include <cstdarg>

#include <pb_decode.h>

#include "manifest.pb.h"

namespace manifest {
namespace {

constexpr uint32_t kDefaultMachineMib = 256;
constexpr uint32_t kDefaultVcpus = 1, kMaxVcpus = 1;
constexpr uint32_t kDefaultWeight = 256, kMaxWeight = 65535;
constexpr uint32_t kMaxCpuCap = 100;
constexpr uint32_t kIrqLines = 24;
constexpr uint64_t kIoPorts = 0x10000;
constexpr uint64_t kPage = 4096;
constexpr uint32_t kFirstImageModule = 2;  // 0: the builder's image, 1: this manifest

// ---- small freestanding helpers ----

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

bool streq(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

const char* role_name(Role r) {
    switch (r) {
        case Role::builder: return "BUILDER";
        case Role::xenstore: return "XENSTORE";
        case Role::console: return "CONSOLE";
        case Role::netback: return "NETBACK";
        case Role::blkback: return "BLKBACK";
        case Role::guest: return "GUEST";
        case Role::toolstack: return "TOOLSTACK";
        default: return "ROLE_UNSPECIFIED";
    }
}

const char* kind_name(ConnKind k) {
    switch (k) {
        case ConnKind::ring: return "RING";
        case ConnKind::console: return "CONSOLE";
        case ConnKind::xenstore: return "XENSTORE";
        case ConnKind::vif: return "VIF";
        case ConnKind::vbd: return "VBD";
        default: return "KIND_UNSPECIFIED";
    }
}

const char* right_name(uint8_t bit) {
    return bit == kGrantMapRo ? "MAP_RO" : bit == kGrantMapRw ? "MAP_RW" : "COPY";
}

using base::raw_enum;

// A name read from the input (domain name, peer, connection end): kept only
// if it fits; `ok` if it is 1 to kNameLen of [A-Za-z0-9_.-].
struct Name {
    char s[kNameLen + 1];
    size_t len;   // as on the wire, even when longer than kNameLen
    bool ok;
};

struct Ctx {
    System* out;
    char* err;
    size_t err_len;
    bool failed;
    bool full;            // second pass: everything, names resolved
    unsigned seen;        // domains met so far in this pass
    Domain* dom;          // the domain being decoded (second pass)
    Name grant_peer;      // of the grant or event being decoded
    uint8_t grant_rights;
};

__attribute__((format(printf, 2, 3))) bool fail(Ctx& c, const char* fmt, ...) {
    if (c.failed) return false;
    c.failed = true;
    if (c.err && c.err_len) {
        va_list ap;
        va_start(ap, fmt);
        base::vsnformat(c.err, c.err_len, fmt, ap);
        va_end(ap);
    }
    return false;
}

// "domain \"net\"" once the domain's name is known and well-formed, else
// "domains[3]" (its position in the payload).
struct Who {
    char s[kNameLen + 16];
};
Who who(const System& sys, const Domain& d) {
    Who w;
    if (d.name[0])
        base::snformat(w.s, sizeof w.s, "domain \"%s\"", d.name);
    else
        base::snformat(w.s, sizeof w.s, "domains[%u]", unsigned(&d - sys.domains));
    return w;
}

// ---- nanopb callbacks ----

bool read_name(pb_istream_t* stream, Name* n) {
    n->len = stream->bytes_left;
    n->ok = false;
    n->s[0] = '\0';
    if (n->len > kNameLen) return pb_read(stream, nullptr, n->len);
    if (!pb_read(stream, reinterpret_cast<pb_byte_t*>(n->s), n->len)) return false;
    n->s[n->len] = '\0';
    n->ok = n->len > 0;
    for (size_t i = 0; i < n->len; ++i) n->ok &= name_char(n->s[i]);
    return true;
}

// First pass: Domain.name.
bool cb_domain_name(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = c.out->domains[c.seen - 1];
    Name n;
    if (!read_name(stream, &n)) return false;
    if (n.len > kNameLen)
        return fail(c, "domains[%u]: name is %zu bytes, more than %u", c.seen - 1, n.len, kNameLen);
    if (!n.ok)
        return fail(c, "domains[%u]: malformed name: expected 1 to %u of A-Z a-z 0-9 _ . -", c.seen - 1, kNameLen);
    __builtin_memcpy(d.name, n.s, sizeof d.name);
    return true;
}

bool cb_domain_first(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    if (c.seen == kMaxDomains) return fail(c, "more than %u domains", kMaxDomains);
    Domain& d = c.out->domains[c.seen++];
    __builtin_memset(&d, 0, sizeof d);
    d.cmdline = "";
    moat_Domain m = moat_Domain_init_zero;
    m.name.funcs.decode = cb_domain_name;
    m.name.arg = &c;
    return pb_decode(stream, moat_Domain_fields, &m);
}

// A peer named in the second pass, as an index into System::domains.
bool resolve(Ctx& c, const Name& n, const char* what, uint16_t* index) {
    const Who w = who(*c.out, *c.dom);
    if (n.len == 0) return fail(c, "%s: %s names no domain", w.s, what);
    if (!n.ok) return fail(c, "%s: %s names a malformed domain name", w.s, what);
    int i = c.out->find(n.s);
    if (i < 0) return fail(c, "%s: %s names unknown domain \"%s\"", w.s, what, n.s);
    *index = uint16_t(i);
    return true;
}

bool cb_peer(pb_istream_t* stream, const pb_field_t*, void** arg) {
    return read_name(stream, static_cast<Name*>(*arg));
}

bool cb_right(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    uint64_t v;
    if (!pb_decode_varint(stream, &v)) return false;
    if (v < 1 || v > 3)
        return fail(c, "%s: invalid grant right %llu: expected MAP_RO, MAP_RW or COPY", who(*c.out, *c.dom).s,
                    static_cast<unsigned long long>(v));
    uint8_t bit = uint8_t(1u << (v - 1));
    if (c.grant_rights & bit)
        return fail(c, "%s: grant right %s listed twice", who(*c.out, *c.dom).s, right_name(bit));
    c.grant_rights |= bit;
    return true;
}

bool cb_grant(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_grants == kMaxPerDomain) return fail(c, "%s: more than %u grants", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_grant_pool == kMaxGrants)
        return fail(c, "%s: more than %u grants in all domains together", who(*c.out, d).s, kMaxGrants);
    c.grant_peer = Name{};
    c.grant_rights = 0;
    moat_Grant g = moat_Grant_init_zero;
    g.peer.funcs.decode = cb_peer;
    g.peer.arg = &c.grant_peer;
    g.rights.funcs.decode = cb_right;
    g.rights.arg = &c;
    if (!pb_decode(stream, moat_Grant_fields, &g)) return false;
    Grant& out = c.out->grant_pool[c.out->n_grant_pool];   // d.grants[d.n_grants]
    if (!resolve(c, c.grant_peer, "grant", &out.peer)) return false;
    const Who w = who(*c.out, d);
    if (&c.out->domains[out.peer] == &d)
        return fail(c, "%s names itself as a grant peer: its own pages need no capability", w.s);
    for (unsigned k = 0; k < d.n_grants; ++k)
        if (d.grants[k].peer == out.peer)
            return fail(c, "%s: second grant to \"%s\": list its rights once", w.s, c.grant_peer.s);
    if (!c.grant_rights)
        return fail(c, "%s: grant to \"%s\" gives no rights (MAP_RO, MAP_RW, COPY)", w.s, c.grant_peer.s);
    out.rights = c.grant_rights;
    d.n_grants++;
    c.out->n_grant_pool++;
    return true;
}

bool cb_event(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_events == kMaxPerDomain)
        return fail(c, "%s: more than %u event capabilities", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_event_pool == kMaxGrants)
        return fail(c, "%s: more than %u event capabilities in all domains together", who(*c.out, d).s, kMaxGrants);
    c.grant_peer = Name{};
    moat_Event e = moat_Event_init_zero;
    e.peer.funcs.decode = cb_peer;
    e.peer.arg = &c.grant_peer;
    if (!pb_decode(stream, moat_Event_fields, &e)) return false;
    uint16_t peer;
    if (!resolve(c, c.grant_peer, "event", &peer)) return false;
    const Who w = who(*c.out, d);
    if (&c.out->domains[peer] == &d)
        return fail(c, "%s names itself as an event peer: binding its own channels needs no capability", w.s);
    for (unsigned k = 0; k < d.n_events; ++k)
        if (d.events[k] == peer) return fail(c, "%s: second event capability for \"%s\"", w.s, c.grant_peer.s);
    c.out->event_pool[c.out->n_event_pool++] = peer;   // d.events[d.n_events]
    d.n_events++;
    return true;
}

// Domain.controls: a name, resolved (every name is known in the second pass).
bool cb_control(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (c.out->n_control_pool == kMaxControls)
        return fail(c, "%s: more than %u controlled domains in all domains together", who(*c.out, d).s, kMaxControls);
    Name n;
    if (!read_name(stream, &n)) return false;
    uint16_t peer;
    if (!resolve(c, n, "controls", &peer)) return false;
    const Who w = who(*c.out, d);
    if (&c.out->domains[peer] == &d) return fail(c, "%s names itself in controls", w.s);
    for (unsigned k = 0; k < d.n_controls; ++k)
        if (d.controls[k] == peer) return fail(c, "%s: \"%s\" named twice in controls", w.s, n.s);
    c.out->control_pool[c.out->n_control_pool++] = peer;   // d.controls[d.n_controls]
    d.n_controls++;
    return true;
}

// Domain.may_create.backends: a name, resolved; its role is checked once
// every domain's is known (check_create).
bool cb_create_backend(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_create_backends == kMaxPerDomain || c.out->n_create_backend_pool == kMaxPerDomain)
        return fail(c, "%s: more than %u back-ends in may_create", who(*c.out, d).s, kMaxPerDomain);
    Name n;
    if (!read_name(stream, &n)) return false;
    uint16_t peer;
    if (!resolve(c, n, "may_create.backends", &peer)) return false;
    for (unsigned k = 0; k < d.n_create_backends; ++k)
        if (d.create_backends[k] == peer)
            return fail(c, "%s: \"%s\" named twice in may_create.backends", who(*c.out, d).s, n.s);
    c.out->create_backend_pool[c.out->n_create_backend_pool++] = peer;   // d.create_backends[d.n_create_backends]
    d.n_create_backends++;
    return true;
}

int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

bool cb_pci(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_pci == kMaxPerDomain) return fail(c, "%s: more than %u PCI functions", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_pci_pool == kMaxDevices)
        return fail(c, "%s: more than %u PCI functions in all domains together", who(*c.out, d).s, kMaxDevices);
    char t[7];
    size_t n = stream->bytes_left;
    bool ok = n == sizeof t;
    if (!pb_read(stream, ok ? reinterpret_cast<pb_byte_t*>(t) : nullptr, n)) return false;
    int b1 = -1, b2 = -1, d1 = -1, d2 = -1, f = -1;
    if (ok && t[2] == ':' && t[5] == '.') {
        b1 = hex_digit(t[0]), b2 = hex_digit(t[1]), d1 = hex_digit(t[3]), d2 = hex_digit(t[4]), f = hex_digit(t[6]);
    }
    if (b1 < 0 || b2 < 0 || d1 < 0 || d2 < 0 || f < 0 || d1 * 16 + d2 > 0x1f || f > 7)
        return fail(c, "%s: malformed PCI function: expected BB:DD.F in hex (device 00-1f, function 0-7)",
                    who(*c.out, d).s);
    c.out->pci_pool[c.out->n_pci_pool++] = Pci{uint8_t(b1 * 16 + b2), uint8_t(d1 * 16 + d2), uint8_t(f)};
    d.n_pci++;
    return true;
}

bool cb_ioports(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_ioports == kMaxPerDomain)
        return fail(c, "%s: more than %u I/O port ranges", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_ioport_pool == kMaxDevices)
        return fail(c, "%s: more than %u I/O port ranges in all domains together", who(*c.out, d).s, kMaxDevices);
    moat_IoPortRange r = moat_IoPortRange_init_zero;
    if (!pb_decode(stream, moat_IoPortRange_fields, &r)) return false;
    if (r.count == 0) return fail(c, "%s: I/O port range at %#x has count 0", who(*c.out, d).s, r.first);
    if (r.first >= kIoPorts || r.count > kIoPorts - r.first)
        return fail(c, "%s: I/O port range %#x count %u goes past port 0xffff", who(*c.out, d).s, r.first, r.count);
    c.out->ioport_pool[c.out->n_ioport_pool++] = Range{r.first, r.count};
    d.n_ioports++;
    return true;
}

bool cb_irq(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    uint64_t v;
    if (!pb_decode_varint(stream, &v)) return false;
    if (d.n_irqs == kMaxPerDomain) return fail(c, "%s: more than %u irqs", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_irq_pool == kMaxDevices)
        return fail(c, "%s: more than %u irqs in all domains together", who(*c.out, d).s, kMaxDevices);
    if (v >= kIrqLines)
        return fail(c, "%s: irq %llu out of range 0-%u", who(*c.out, d).s, static_cast<unsigned long long>(v),
                    kIrqLines - 1);
    c.out->irq_pool[c.out->n_irq_pool++] = uint32_t(v);
    d.n_irqs++;
    return true;
}

bool cb_mmio(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    if (d.n_mmio == kMaxPerDomain) return fail(c, "%s: more than %u MMIO ranges", who(*c.out, d).s, kMaxPerDomain);
    if (c.out->n_mmio_pool == kMaxDevices)
        return fail(c, "%s: more than %u MMIO ranges in all domains together", who(*c.out, d).s, kMaxDevices);
    moat_MmioRange r = moat_MmioRange_init_zero;
    if (!pb_decode(stream, moat_MmioRange_fields, &r)) return false;
    auto base = static_cast<unsigned long long>(r.base), size = static_cast<unsigned long long>(r.size);
    if (r.size == 0 || r.base % kPage != 0 || r.size % kPage != 0)
        return fail(c, "%s: MMIO range %#llx size %#llx: base and size must be multiples of 4K, size not 0",
                    who(*c.out, d).s, base, size);
    if (r.size - 1 > UINT64_MAX - r.base)
        return fail(c, "%s: MMIO range %#llx size %#llx wraps around", who(*c.out, d).s, base, size);
    c.out->mmio_pool[c.out->n_mmio_pool++] = Range{r.base, r.size};
    d.n_mmio++;
    return true;
}

bool cb_cmdline(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    Domain& d = *c.dom;
    size_t n = stream->bytes_left;
    if (n > kCmdlineLen)
        return fail(c, "%s: cmdline is %zu bytes, more than %u", who(*c.out, d).s, n, kCmdlineLen);
    System& s = *c.out;
    if (n + 1 > kCmdlineBytes - s.n_cmdline_pool)
        return fail(c, "%s: the command lines of all domains together are more than %u bytes", who(s, d).s,
                    kCmdlineBytes);
    char* text = s.cmdline_pool + s.n_cmdline_pool;
    if (!pb_read(stream, reinterpret_cast<pb_byte_t*>(text), n)) return false;
    text[n] = '\0';
    for (size_t i = 0; i < n; ++i)
        if (text[i] == '\0') return fail(c, "%s: cmdline contains a NUL byte", who(s, d).s);
    s.n_cmdline_pool += uint32_t(n + 1);
    d.cmdline = text;
    return true;
}

// Second pass: the whole domain, checked on its own.
bool cb_domain_full(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    if (c.seen == c.out->n_domains) return fail(c, "domains changed between passes");  // cannot happen
    System& s = *c.out;
    Domain& d = s.domains[c.seen++];
    c.dom = &d;
    // Its lists begin where the pools are: its entries are the next ones.
    d.cmdline = "";
    d.grants = s.grant_pool + s.n_grant_pool;
    d.events = s.event_pool + s.n_event_pool;
    d.pci = s.pci_pool + s.n_pci_pool;
    d.ioports = s.ioport_pool + s.n_ioport_pool;
    d.irqs = s.irq_pool + s.n_irq_pool;
    d.mmio = s.mmio_pool + s.n_mmio_pool;
    d.controls = s.control_pool + s.n_control_pool;
    d.create_backends = s.create_backend_pool + s.n_create_backend_pool;
    d.n_create_backends = 0;
    d.create_domains = 0;
    d.create_memory_kib = 0;
    moat_Domain m = moat_Domain_init_zero;
    m.may_create.backends.funcs.decode = cb_create_backend;
    m.may_create.backends.arg = &c;
    Name disk_backend{};
    m.may_create.disks.backend.funcs.decode = cb_peer;
    m.may_create.disks.backend.arg = &disk_backend;
    pb_callback_t* cbs[] = {&m.cmdline, &m.grants, &m.events, &m.pci, &m.ioports, &m.irqs, &m.mmio, &m.controls};
    bool (*fns[])(pb_istream_t*, const pb_field_t*, void**) = {cb_cmdline, cb_grant, cb_event, cb_pci,
                                                               cb_ioports, cb_irq, cb_mmio, cb_control};
    for (unsigned k = 0; k < sizeof cbs / sizeof cbs[0]; ++k) {
        cbs[k]->funcs.decode = fns[k];
        cbs[k]->arg = &c;
    }
    if (!pb_decode(stream, moat_Domain_fields, &m)) return false;

    const Who w = who(*c.out, d);
    int32_t role = raw_enum(m.role);
    if (role == 0) return fail(c, "%s has no role", w.s);
    if (role < 0 || role > int32_t(Role::toolstack)) return fail(c, "%s has unknown role %d", w.s, int(role));
    d.role = Role(role);
    if (d.n_controls && d.role != Role::toolstack)
        return fail(c, "%s: controls is for the TOOLSTACK only, not %s", w.s, role_name(d.role));
    d.module = m.module;
    d.ramdisk_module = m.ramdisk_module;
    if (m.memory_kib == 0) return fail(c, "%s has no memory_kib (not compiled by 'moat compile'?)", w.s);
    if (m.memory_kib % (kPage / 1024) != 0)
        return fail(c, "%s: memory_kib %llu is not a whole number of 4K pages", w.s,
                    static_cast<unsigned long long>(m.memory_kib));
    d.memory_kib = m.memory_kib;
    d.vcpus = m.vcpus ? m.vcpus : kDefaultVcpus;
    if (d.vcpus > kMaxVcpus)
        return fail(c, "%s: vcpus %u out of range: the core runs at most %u per domain", w.s, d.vcpus, kMaxVcpus);
    d.weight = m.weight ? m.weight : kDefaultWeight;
    if (d.weight > kMaxWeight) return fail(c, "%s: weight %u out of range 1-65535 (0 or unset: 256)", w.s, d.weight);
    d.cpu_cap = m.cpu_cap;
    if (d.cpu_cap > kMaxCpuCap)
        return fail(c, "%s: cpu_cap %u out of range 1-100 (0 or unset: uncapped)", w.s, d.cpu_cap);
    int32_t policy = raw_enum(m.restart.policy);
    if (policy < 0 || policy > int32_t(RestartPolicy::always))
        return fail(c, "%s: unknown restart policy %d", w.s, int(policy));
    d.restart = RestartPolicy(policy);
    d.max_restarts = m.restart.max_restarts;
    if (d.restart == RestartPolicy::never && d.max_restarts != 0)
        return fail(c, "%s: max_restarts has no effect with restart policy NEVER", w.s);
    if (d.role == Role::builder && d.restart != RestartPolicy::never)
        return fail(c, "%s: the builder is never restarted: its restart policy must be NEVER", w.s);
    d.debug_console = m.debug_console;
    if (m.has_may_create) {
        if (d.role != Role::toolstack)
            return fail(c, "%s: may_create is for the TOOLSTACK only, not %s", w.s, role_name(d.role));
        if (m.may_create.domains == 0 || m.may_create.domains > kMaxCreated)
            return fail(c, "%s: may_create.domains %u out of range 1-%u", w.s, m.may_create.domains, kMaxCreated);
        if (m.may_create.memory_kib == 0 || m.may_create.memory_kib % (kPage / 1024) != 0)
            return fail(c, "%s: may_create.memory_kib %llu is not a non-zero whole number of 4K pages", w.s,
                        static_cast<unsigned long long>(m.may_create.memory_kib));
        d.create_domains = uint8_t(m.may_create.domains);
        d.create_memory_kib = m.may_create.memory_kib;
        if (m.may_create.has_disks) {
            const moat_CreateDisks& a = m.may_create.disks;
            System& s = *c.out;
            if (s.has_create_disks) return fail(c, "%s: a second may_create.disks", w.s);   // one toolstack: cannot happen
            if (!resolve(c, disk_backend, "may_create.disks.backend", &s.create_disk_backend)) return false;
            if (a.sectors == 0) return fail(c, "%s: may_create.disks has no sectors", w.s);
            if (a.first_sector + a.sectors < a.first_sector)
                return fail(c, "%s: may_create.disks: the sectors overflow", w.s);
            s.has_create_disks = true;
            s.create_disk_first = a.first_sector;
            s.create_disk_sectors = a.sectors;
        }
    } else if (d.n_create_backends) {
        return fail(c, "%s: may_create.backends without may_create", w.s);   // cannot happen
    }
    return true;
}

// "xx:xx:xx:xx:xx:xx", a unicast address (bit 0 of the first byte clear).
bool parse_mac(const char* s, uint8_t out[6]) {
    for (int i = 0; i < 6; ++i) {
        int hi = hex_digit(s[3 * i]), lo = hi < 0 ? -1 : hex_digit(s[3 * i + 1]);
        char sep = s[3 * i + 2];
        if (lo < 0 || sep != (i < 5 ? ':' : '\0')) return false;
        out[i] = uint8_t(hi << 4 | lo);
    }
    return !(out[0] & 1);
}

bool cb_connection(pb_istream_t* stream, const pb_field_t*, void** arg) {
    auto& c = *static_cast<Ctx*>(*arg);
    System& s = *c.out;
    if (s.n_connections == kMaxConnections) return fail(c, "more than %u connections", kMaxConnections);
    unsigned i = s.n_connections;
    Name front{}, back{};
    moat_Connection m = moat_Connection_init_zero;
    m.frontend.funcs.decode = cb_peer;
    m.frontend.arg = &front;
    m.backend.funcs.decode = cb_peer;
    m.backend.arg = &back;
    if (!pb_decode(stream, moat_Connection_fields, &m)) return false;
    Connection& out = s.connections[i];
    const Name* ends[2] = {&front, &back};
    uint16_t* idx[2] = {&out.frontend, &out.backend};
    const char* what[2] = {"frontend", "backend"};
    for (int e = 0; e < 2; ++e) {
        const Name& n = *ends[e];
        if (n.len == 0) return fail(c, "connections[%u]: %s names no domain", i, what[e]);
        if (!n.ok) return fail(c, "connections[%u]: %s names a malformed domain name", i, what[e]);
        int k = s.find(n.s);
        if (k < 0) return fail(c, "connections[%u]: %s names unknown domain \"%s\"", i, what[e], n.s);
        *idx[e] = uint16_t(k);
    }
    int32_t kind = raw_enum(m.kind);
    if (kind <= 0 || kind > int32_t(ConnKind::vbd))
        return fail(c, "connections[%u] (\"%s\" to \"%s\") has no kind (RING, CONSOLE, XENSTORE, VIF or VBD)", i,
                    front.s, back.s);
    out.kind = ConnKind(kind);
    if (out.frontend == out.backend) return fail(c, "connections[%u]: connection from \"%s\" to itself", i, front.s);
    out.has_mac = m.mac[0] != 0;
    if (out.has_mac && out.kind != ConnKind::vif) return fail(c, "connections[%u]: a mac is for VIF connections only", i);
    if (out.has_mac && !parse_mac(m.mac, out.mac))
        return fail(c, "connections[%u]: mac \"%s\" is not a unicast xx:xx:xx:xx:xx:xx address", i, m.mac);
    if (m.has_disk != (out.kind == ConnKind::vbd))
        return fail(c, "connections[%u]: %s", i, m.has_disk ? "a disk is for VBD connections only"
                                                                 : "a VBD connection needs its disk");
    out.read_only = m.disk.read_only;
    out.first_sector = m.disk.first_sector;
    out.sectors = m.disk.sectors;
    if (out.sectors && out.first_sector + out.sectors < out.first_sector)
        return fail(c, "connections[%u]: disk sectors overflow", i);
    s.n_connections++;
    return true;
}

// ---- whole-system checks ----

uint32_t name_hash(const char* s) {
    uint32_t h = 2166136261u;   // FNV-1a
    for (; *s; ++s) h = (h ^ uint8_t(*s)) * 16777619u;
    return h;
}

// Every domain has a name, no two the same; fills System::name_buckets.
bool check_names(Ctx& c) {
    System& s = *c.out;
    __builtin_memset(s.name_buckets, 0, sizeof s.name_buckets);
    for (unsigned i = 0; i < s.n_domains; ++i) {
        const char* name = s.domains[i].name;
        if (!name[0]) return fail(c, "domains[%u] has no name", i);
        // At most kMaxDomains names in twice as many buckets: an empty one
        // comes. The first domain of a name is the one in the table.
        for (uint32_t b = name_hash(name);; ++b) {
            uint16_t& slot = s.name_buckets[b % System::kNameBuckets];
            if (slot == 0) {
                slot = uint16_t(i + 1);
                break;
            }
            if (streq(s.domains[slot - 1].name, name))
                return fail(c, "duplicate domain name \"%s\" (domains[%u] and [%u])", name, slot - 1u, i);
        }
    }
    return true;
}

bool check_roles(Ctx& c) {
    const System& s = *c.out;
    const Role unique[] = {Role::builder, Role::xenstore, Role::console, Role::toolstack};
    for (Role r : unique) {
        int first = -1;
        for (unsigned i = 0; i < s.n_domains; ++i) {
            if (s.domains[i].role != r) continue;
            if (first >= 0)
                return fail(c, "more than one %s domain (\"%s\" and \"%s\")", role_name(r), s.domains[first].name,
                            s.domains[i].name);
            first = int(i);
        }
        if (r == Role::builder && first < 0) return fail(c, "no domain has role BUILDER");
    }
    // The toolstack controls guests and services, never the builder (which
    // nobody may pause: it restarts everyone).
    for (unsigned i = 0; i < s.n_domains; ++i)
        for (unsigned k = 0; k < s.domains[i].n_controls; ++k)
            if (s.domains[s.domains[i].controls[k]].role == Role::builder)
                return fail(c, "domain \"%s\" names the builder \"%s\" in controls: nobody controls the builder",
                            s.domains[i].name, s.domains[s.domains[i].controls[k]].name);
    return true;
}

// Whether two virtual disks share a sector (sectors 0: to the device's end).
bool disks_overlap(const Connection& a, const Connection& b) {
    constexpr uint64_t kEnd = ~0ull;
    uint64_t a_end = a.sectors ? a.first_sector + a.sectors : kEnd;
    uint64_t b_end = b.sectors ? b.first_sector + b.sectors : kEnd;
    return a.first_sector < b_end && b.first_sector < a_end;
}

// A create quota: within the machine's memory, back-ends that serve what a
// created guest connects to (CONSOLE, XENSTORE, NETBACK, BLKBACK), disks
// apart from the manifest's.
bool check_create(Ctx& c) {
    const System& s = *c.out;
    for (unsigned i = 0; i < s.n_domains; ++i) {
        const Domain& d = s.domains[i];
        if (!d.create_domains) continue;
        if (d.create_memory_kib > uint64_t(s.memory_mib) * 1024)
            return fail(c, "domain \"%s\": may_create.memory is more than the machine's %uM", d.name, s.memory_mib);
        for (unsigned k = 0; k < d.n_create_backends; ++k) {
            const Domain& b = s.domains[d.create_backends[k]];
            if (b.role != Role::console && b.role != Role::xenstore && b.role != Role::netback &&
                b.role != Role::blkback)
                return fail(c, "domain \"%s\": may_create.backends names \"%s\", a %s: only CONSOLE, XENSTORE, NETBACK and BLKBACK domains serve created guests",
                            d.name, b.name, role_name(b.role));
        }
        if (!s.has_create_disks) continue;   // it is this domain's: the only one with may_create
        const Domain& b = s.domains[s.create_disk_backend];
        if (b.role != Role::blkback)
            return fail(c, "domain \"%s\": may_create.disks.backend \"%s\" is a %s, not a BLKBACK", d.name, b.name,
                        role_name(b.role));
        bool named = false;
        for (unsigned k = 0; k < d.n_create_backends; ++k) named |= d.create_backends[k] == s.create_disk_backend;
        if (!named)
            return fail(c, "domain \"%s\": may_create.disks.backend \"%s\" is not in may_create.backends", d.name,
                        b.name);
        // Created guests reach these sectors only: none of the manifest's
        // disks, read-only or not.
        Connection area{};
        area.backend = s.create_disk_backend;
        area.first_sector = s.create_disk_first;
        area.sectors = s.create_disk_sectors;
        for (unsigned k = 0; k < s.n_connections; ++k) {
            const Connection& v = s.connections[k];
            if (v.kind == ConnKind::vbd && v.backend == area.backend && disks_overlap(v, area))
                return fail(c, "domain \"%s\": may_create.disks overlap the VBD of \"%s\" on \"%s\"", d.name,
                            s.domains[v.frontend].name, b.name);
        }
    }
    return true;
}

bool check_memory(Ctx& c) {
    const System& s = *c.out;
    uint64_t machine = uint64_t(s.memory_mib) * 1024, total = 0;
    for (unsigned i = 0; i < s.n_domains; ++i) {
        const Domain& d = s.domains[i];
        if (d.memory_kib > machine - total)
            return fail(c, "domains need more than the machine's %uM of memory (at domain \"%s\")", s.memory_mib, d.name);
        total += d.memory_kib;
    }
    return true;
}

// Module 0 is the builder's image; the others' images and ramdisks are
// modules 2, 3, ... in the order the domains first use them, a domain's image
// before its ramdisk (moat compile, docs/system.md). A module holds an image
// or a ramdisk, never both; the builder has no ramdisk.
bool check_modules(Ctx& c) {
    const System& s = *c.out;
    enum : uint8_t { kNone, kImage, kRamdisk };
    // What each module met so far holds (each domain adds at most two).
    uint8_t* holds = c.out->scratch.module_holds;
    static_assert(sizeof c.out->scratch.module_holds >= kFirstImageModule + 2 * kMaxDomains);
    __builtin_memset(holds, 0, sizeof c.out->scratch.module_holds);
    uint32_t next = kFirstImageModule;
    auto take = [&](const Domain& d, uint32_t m, uint8_t what, const char* field) {
        if (m == next) {
            holds[next++] = what;
            return true;
        }
        if (m < kFirstImageModule || m > next) {
            if (next == kFirstImageModule) return fail(c, "domain \"%s\": %s %u, expected %u", d.name, field, m, next);
            return fail(c, "domain \"%s\": %s %u, expected %u or an earlier one from %u", d.name, field, m, next,
                        kFirstImageModule);
        }
        if (holds[m] != what)
            return fail(c, "domain \"%s\": %s %u holds an earlier domain's %s", d.name, field, m,
                        holds[m] == kImage ? "image" : "ramdisk");
        return true;
    };
    for (unsigned i = 0; i < s.n_domains; ++i) {
        const Domain& d = s.domains[i];
        if (d.role == Role::builder) {
            if (d.module != 0) return fail(c, "domain \"%s\": the builder's module is %u, not 0", d.name, d.module);
            if (d.ramdisk_module != 0)
                return fail(c, "domain \"%s\": the builder has no ramdisk (ramdisk_module %u)", d.name,
                            d.ramdisk_module);
            continue;
        }
        if (!take(d, d.module, kImage, "module")) return false;
        if (d.ramdisk_module == 0) continue;
        if (d.ramdisk_module == d.module)
            return fail(c, "domain \"%s\": ramdisk_module %u is its image's module", d.name, d.ramdisk_module);
        if (!take(d, d.ramdisk_module, kRamdisk, "ramdisk_module")) return false;
    }
    return true;
}

// Resources that belong to one domain only.
// Only domains that have devices are compared, each with those before it
// (and itself), so a manifest of thousands of guests without devices costs
// one pass; the order (and so the first error said) is that of every pair.
bool has_devices(const Domain& d) { return d.n_pci || d.n_irqs || d.n_ioports || d.n_mmio; }

bool check_devices(Ctx& c) {
    const System& s = *c.out;
    // The domains with devices, as a chain through the scratch (index + 1).
    uint16_t* next = c.out->scratch.prev;
    static_assert(kMaxConnections >= kMaxDomains);
    uint16_t first = 0, *tail = &first;
    for (unsigned i = 0; i < s.n_domains; ++i)
        if (has_devices(s.domains[i])) {
            *tail = uint16_t(i + 1);
            tail = &next[i];
        }
    *tail = 0;
    for (unsigned i1 = first; i1; i1 = next[i1 - 1]) {
        const unsigned i = i1 - 1;
        const Domain& a = s.domains[i];
        for (unsigned j1 = first; j1 && j1 <= i1; j1 = next[j1 - 1]) {
            const unsigned j = j1 - 1;
            const Domain& b = s.domains[j];
            for (unsigned x = 0; x < a.n_pci; ++x)
                for (unsigned y = 0; y < (i == j ? x : b.n_pci); ++y) {
                    const Pci &p = a.pci[x], &q = b.pci[y];
                    if (p.bus == q.bus && p.device == q.device && p.function == q.function)
                        return fail(c, "PCI function %02x:%02x.%x of domain \"%s\" already belongs to domain \"%s\"",
                                    p.bus, p.device, p.function, a.name, b.name);
                }
            for (unsigned x = 0; x < a.n_irqs; ++x)
                for (unsigned y = 0; y < (i == j ? x : b.n_irqs); ++y)
                    if (a.irqs[x] == b.irqs[y])
                        return fail(c, "irq %u of domain \"%s\" already belongs to domain \"%s\"", a.irqs[x], a.name,
                                    b.name);
            struct {
                const Range *ra, *rb;
                unsigned na, nb;
                const char* what;
            } kinds[] = {{a.ioports, b.ioports, a.n_ioports, b.n_ioports, "I/O port range"},
                         {a.mmio, b.mmio, a.n_mmio, b.n_mmio, "MMIO range"}};
            for (const auto& k : kinds)
                for (unsigned x = 0; x < k.na; ++x)
                    for (unsigned y = 0; y < (i == j ? x : k.nb); ++y) {
                        const Range &p = k.ra[x], &q = k.rb[y];
                        // Both checked not to wrap: last = first + count - 1.
                        if (p.first > q.first + (q.count - 1) || q.first > p.first + (p.count - 1)) continue;
                        return fail(c, "%s %#llx-%#llx of domain \"%s\" overlaps %#llx-%#llx of domain \"%s\"", k.what,
                                    static_cast<unsigned long long>(p.first),
                                    static_cast<unsigned long long>(p.first + (p.count - 1)), a.name,
                                    static_cast<unsigned long long>(q.first),
                                    static_cast<unsigned long long>(q.first + (q.count - 1)), b.name);
                    }
        }
    }
    return true;
}

// Each connection is compared only with the earlier ones it can clash
// with, found through chains in the scratch: VBDs of its back-end, VIFs with
// a mac, and (RING, CONSOLE, XENSTORE) connections of its front-end. The
// first error said is the one a comparison with every earlier connection
// would say first: the kinds of those three chains never meet.
bool check_connections(Ctx& c) {
    const System& s = *c.out;
    System::Scratch& x = c.out->scratch;
    __builtin_memset(x.head_frontend, 0, sizeof x.head_frontend);
    __builtin_memset(x.head_vbd_backend, 0, sizeof x.head_vbd_backend);
    x.head_mac = 0;
    for (unsigned i = 0; i < s.n_connections; ++i) {
        const Connection& k = s.connections[i];
        const Domain &f = s.domains[k.frontend], &b = s.domains[k.backend];
        if (k.kind != ConnKind::ring) {
            Role want = k.kind == ConnKind::console ? Role::console
                        : k.kind == ConnKind::xenstore ? Role::xenstore
                        : k.kind == ConnKind::vif      ? Role::netback
                                                       : Role::blkback;
            if (b.role != want)
                return fail(c, "%s connection's backend \"%s\" has role %s, not %s", kind_name(k.kind), b.name,
                            role_name(b.role), role_name(want));
        }
        // The chain k joins, and the earliest connection on it k clashes with.
        uint16_t* head = k.kind == ConnKind::vbd ? &x.head_vbd_backend[k.backend]
                         : k.kind == ConnKind::vif ? (k.has_mac ? &x.head_mac : nullptr)
                                                   : &x.head_frontend[k.frontend];
        int clash = -1;
        for (unsigned j1 = head ? *head : 0; j1; j1 = x.prev[j1 - 1]) {
            const Connection& o = s.connections[j1 - 1];
            bool bad = false;
            if (k.kind == ConnKind::vbd)
                // Two read-write virtual disks of one back-end never overlap
                // (nor does a read-write one overlap any other).
                bad = o.kind == ConnKind::vbd && (!k.read_only || !o.read_only) && disks_overlap(k, o);
            else if (k.kind == ConnKind::vif)
                bad = __builtin_memcmp(k.mac, o.mac, 6) == 0;
            else   // same front-end, by the chain: a RING to the same back-end, a second CONSOLE or XENSTORE
                bad = o.kind == k.kind && (k.kind != ConnKind::ring || o.backend == k.backend);
            if (bad) clash = int(j1 - 1);   // the chain runs backwards: the last found is the earliest
        }
        if (clash >= 0) {
            const Connection& o = s.connections[clash];
            if (k.kind == ConnKind::vbd)
                return fail(c, "VBD of \"%s\" overlaps a VBD of \"%s\" on \"%s\", and one of them is writable", f.name,
                            s.domains[o.frontend].name, b.name);
            if (k.kind == ConnKind::vif)
                return fail(c, "VIFs of \"%s\" and \"%s\" have the same mac", f.name, s.domains[o.frontend].name);
            // A front-end may have several VIFs and VBDs, also to one
            // back-end, but one of each other kind per peer, and one
            // CONSOLE and one XENSTORE in all.
            if (o.backend == k.backend)
                return fail(c, "duplicate %s connection from \"%s\" to \"%s\"", kind_name(k.kind), f.name, b.name);
            return fail(c, "\"%s\" has a second %s connection", f.name, kind_name(k.kind));
        }
        if (head) {
            x.prev[i] = *head;
            *head = uint16_t(i + 1);
        }
    }
    return true;
}

// One pass over the payload: names only, or everything (`full`).
bool run_pass(Ctx& c, const uint8_t* payload, size_t len, bool full) {
    c.full = full;
    c.seen = 0;
    moat_System m = moat_System_init_zero;
    m.domains.funcs.decode = full ? cb_domain_full : cb_domain_first;
    m.domains.arg = &c;
    if (full) {
        m.connections.funcs.decode = cb_connection;
        m.connections.arg = &c;
    }
    pb_istream_t stream = pb_istream_from_buffer(payload, len);
    if (!pb_decode(&stream, moat_System_fields, &m)) {
        if (!c.failed) fail(c, "manifest payload is not a valid moat.System: %s", PB_GET_ERROR(&stream));
        return false;
    }
    c.out->memory_mib = m.machine.memory_mib ? m.machine.memory_mib : kDefaultMachineMib;
    return true;
}

uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc) { return base::crc32(data, len, crc); }

int System::find(const char* name) const {
    if (!name) return -1;
    for (uint32_t b = name_hash(name);; ++b) {
        uint16_t slot = name_buckets[b % kNameBuckets];
        if (slot == 0) return -1;
        if (slot <= n_domains && streq(domains[slot - 1].name, name)) return int(slot - 1);
    }
}

bool decode(const uint8_t* data, size_t len, System& out, char* err, size_t err_len) {
    Ctx c{};
    c.out = &out;
    c.err = err;
    c.err_len = err_len;
    if (err && err_len) err[0] = '\0';
    out.n_domains = out.n_connections = 0;
    out.memory_mib = kDefaultMachineMib;
    out.n_grant_pool = out.n_event_pool = out.n_pci_pool = out.n_ioport_pool = out.n_irq_pool = out.n_mmio_pool = 0;
    out.n_control_pool = 0;
    out.n_create_backend_pool = 0;
    out.has_create_disks = false;
    out.create_disk_backend = 0;
    out.create_disk_first = out.create_disk_sectors = 0;
    out.n_cmdline_pool = 0;
    __builtin_memset(out.name_buckets, 0, sizeof out.name_buckets);

    if (!data && len) return fail(c, "no manifest");
    if (len < kHeaderBytes)
        return fail(c, "manifest is %zu bytes, shorter than its %zu-byte header", len, kHeaderBytes);
    for (size_t i = 0; i < sizeof kMagic; ++i)
        if (data[i] != uint8_t(kMagic[i])) return fail(c, "not a manifest: no MOATMAN1 magic");
    const size_t payload_len = le32(data + 8);
    const uint32_t want_crc = le32(data + 12);
    if (payload_len > kMaxPayload)
        return fail(c, "manifest payload of %zu bytes is larger than %zu", payload_len, kMaxPayload);
    if (payload_len != len - kHeaderBytes)
        return fail(c, "manifest is %zu bytes, but its header says %zu + %zu (%s)", len, kHeaderBytes, payload_len,
                    payload_len > len - kHeaderBytes ? "truncated" : "trailing bytes");
    const uint8_t* payload = data + kHeaderBytes;
    const uint32_t got_crc = crc32(payload, payload_len);
    if (got_crc != want_crc)
        return fail(c, "manifest CRC-32 mismatch: header says 0x%08x, payload has 0x%08x", want_crc, got_crc);

    // First pass: names.
    if (!run_pass(c, payload, payload_len, false)) return false;
    out.n_domains = uint16_t(c.seen);
    if (!check_names(c)) return false;
    // Second pass: everything, names resolved.
    if (!run_pass(c, payload, payload_len, true)) return false;
    if (c.seen != out.n_domains) return fail(c, "domains changed between passes");  // cannot happen

    return check_roles(c) && check_create(c) && check_memory(c) && check_modules(c) && check_devices(c) && check_connections(c);
}

}  // namespace manifest
