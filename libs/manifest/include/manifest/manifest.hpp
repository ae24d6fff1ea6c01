#pragma once
// The system manifest as the builder sees it: decoded (nanopb) from the
// binary boot module `moat compile` writes, checked, every name of a peer
// resolved to an index into System::domains. Portable: compiled for the
// builder domain and hosted for tests and the fuzzer.
//
// The module is "MOATMAN1", a little-endian uint32 length and CRC-32 of the
// payload, then the payload: a moat.System protobuf (proto/manifest.proto).

#include <cstddef>
#include <cstdint>

namespace manifest {

// A manifest holds thousands of small domains (issue 16), so what varies in
// size per domain (command lines, capabilities, devices) lives in pools of
// System sized for the whole system, not in each Domain: a Domain is ~140
// bytes, the decoded System ~1.7 MiB at these limits.
inline constexpr unsigned kMaxDomains = 4096;
inline constexpr unsigned kMaxConnections = 4 * kMaxDomains;   // a console, a store ring and two more each
inline constexpr unsigned kMaxPerDomain = 16;    // grants, events, pci, ioports, irqs, mmio: each
inline constexpr unsigned kMaxGrants = 4 * kMaxDomains;    // grants of all domains together; events too
inline constexpr unsigned kMaxDevices = 1024;    // pci, ioports, irqs, mmio of all domains together: each
// The domains a TOOLSTACK controls (Domain.controls): at most every other
// domain, in one pool (there is at most one toolstack).
inline constexpr unsigned kMaxControls = kMaxDomains;
// A TOOLSTACK's create quota (Domain.may_create, `moat create`): at most
// kMaxCreated live-created domains at once, connected to at most
// kMaxPerDomain back-ends.
inline constexpr unsigned kMaxCreated = 64;
inline constexpr unsigned kNameLen = 32;
inline constexpr unsigned kCmdlineLen = 1023;
inline constexpr unsigned kCmdlineBytes = 512 * 1024;   // all command lines together, each with its NUL

// Numbers as in proto/manifest.proto.
enum class Role : uint8_t {
    unspecified = 0, builder = 1, xenstore = 2, console = 3, netback = 4, blkback = 5, guest = 6, toolstack = 7
};
enum class RestartPolicy : uint8_t { never = 0, on_crash = 1, always = 2 };
enum class ConnKind : uint8_t { unspecified = 0, ring = 1, console = 2, xenstore = 3, vif = 4, vbd = 5 };

// Grant rights, as bits.
inline constexpr uint8_t kGrantMapRo = 1, kGrantMapRw = 2, kGrantCopy = 4;

struct Grant {
    uint16_t peer;    // index into System::domains
    uint8_t rights;   // kGrant* bits, at least one
};
struct Pci {
    uint8_t bus, device, function;
};
struct Range {
    uint64_t first, count;   // ioports: port and count; mmio: base and size in bytes
};

struct Domain {
    char name[kNameLen + 1];
    Role role;
    uint32_t module;         // boot module holding its image (0 is the builder's)
    uint32_t ramdisk_module; // boot module holding its ramdisk (start_info mod_start/mod_len); 0 = none
    uint64_t memory_kib;
    uint32_t vcpus;          // defaults applied: 1
    uint32_t weight;         // defaults applied: 256
    uint32_t cpu_cap;        // 0 = uncapped
    const char* cmdline;     // NUL-terminated, in System's pool ("" when unset)
    RestartPolicy restart;
    uint32_t max_restarts;   // 0 = no limit
    bool debug_console;

    // Each list is n_* consecutive entries of one of System's pools (the
    // decoder appends a domain's entries as it meets them, one domain at a
    // time), at most kMaxPerDomain.
    const Grant* grants;
    const uint16_t* events;   // peers, as indices
    const Pci* pci;
    const Range* ioports;
    const uint32_t* irqs;
    const Range* mmio;
    uint8_t n_grants, n_events, n_pci, n_ioports, n_irqs, n_mmio;
    // TOOLSTACK only (none for any other role): the domains it controls, as
    // indices, each once, never itself nor the builder; n_controls
    // consecutive entries of System::control_pool.
    const uint16_t* controls;
    uint16_t n_controls;
    // TOOLSTACK only: its create quota (create_domains 0: none, every create
    // refused). create_domains 1 to kMaxCreated, create_memory_kib whole
    // pages within the machine's memory, create_backends CONSOLE, XENSTORE,
    // NETBACK or BLKBACK domains (indices), each once; n_create_backends consecutive entries
    // of System::create_backend_pool.
    uint8_t create_domains;
    uint64_t create_memory_kib;
    const uint16_t* create_backends;
    uint8_t n_create_backends;
};

struct Connection {
    uint16_t frontend, backend;   // indices into System::domains
    ConnKind kind;
    // VIF: the front-end's MAC (has_mac false: the builder derives one).
    bool has_mac;
    uint8_t mac[6];
    // VBD: the back-end's sectors the front-end sees (sectors 0: to the end).
    bool read_only;
    uint64_t first_sector, sectors;
};

struct System {
    uint32_t memory_mib;          // defaults applied: 256
    uint16_t n_domains;
    uint16_t n_connections;
    Domain domains[kMaxDomains];
    Connection connections[kMaxConnections];

    // The pools Domain's lists and command lines point into; n_* of each in use.
    Grant grant_pool[kMaxGrants];
    uint16_t event_pool[kMaxGrants];
    Pci pci_pool[kMaxDevices];
    Range ioport_pool[kMaxDevices];
    uint32_t irq_pool[kMaxDevices];
    Range mmio_pool[kMaxDevices];
    uint16_t control_pool[kMaxControls];
    uint16_t create_backend_pool[kMaxPerDomain];
    char cmdline_pool[kCmdlineBytes];
    uint32_t n_grant_pool, n_event_pool, n_pci_pool, n_ioport_pool, n_irq_pool, n_mmio_pool, n_control_pool,
        n_create_backend_pool, n_cmdline_pool;

    // The TOOLSTACK's may_create.disks (a system has one toolstack; here
    // rather than in every Domain): where created guests' disks may lie
    // (has_create_disks false: nowhere). Sectors [create_disk_first,
    // create_disk_first + create_disk_sectors) of BLKBACK domain
    // create_disk_backend (an index, also in the toolstack's
    // create_backends); create_disk_sectors non-zero, the end within 64
    // bits; no VBD of the manifest overlaps them.
    bool has_create_disks;
    uint16_t create_disk_backend;
    uint64_t create_disk_first, create_disk_sectors;

    // Names to indices: open addressing, index + 1 per used bucket (0: empty),
    // filled by the decoder once the names are checked. find() costs a few
    // probes, not a pass over every domain.
    static constexpr unsigned kNameBuckets = 2 * kMaxDomains;   // a power of two, at most half full
    uint16_t name_buckets[kNameBuckets];

    // The decoder's working space for its whole-system checks (module
    // kinds, connection chains), here so that nothing large is on a stack.
    struct Scratch {
        uint8_t module_holds[2 + 2 * kMaxDomains];
        uint16_t head_frontend[kMaxDomains], head_vbd_backend[kMaxDomains], head_mac;   // connection + 1; 0: none
        uint16_t prev[kMaxConnections];   // the chain's previous connection + 1
    } scratch;

    System() = default;
    // Domains point into the pools of their own System: never copied.
    System(const System&) = delete;
    System& operator=(const System&) = delete;

    // Index of the domain called `name`, or -1.
    int find(const char* name) const;
};

// The module's framing: kMagic, then the payload's length and CRC-32, each a
// little-endian uint32, then the payload.
inline constexpr char kMagic[8] = {'M', 'O', 'A', 'T', 'M', 'A', 'N', '1'};
inline constexpr size_t kHeaderBytes = 16;
// Larger payloads are refused: far above any manifest within the limits above.
inline constexpr size_t kMaxPayload = 4u << 20;

// CRC-32 as zlib's crc32() (base::crc32, which the control channel's frames
// use too): crc32("123456789") == 0xcbf43926. `crc` continues an earlier sum.
uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

// Decodes and checks a manifest module. On failure returns false and writes a
// one-line reason (no trailing newline) into err. Never trusts the input: a
// truncated, corrupted or inconsistent module is an error, never a crash.
bool decode(const uint8_t* data, size_t len, System& out, char* err, size_t err_len);

}  // namespace manifest
