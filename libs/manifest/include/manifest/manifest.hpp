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

inline constexpr unsigned kMaxDomains = 128;
inline constexpr unsigned kMaxConnections = 512;
inline constexpr unsigned kMaxPerDomain = 16;    // grants, events, pci, ioports, irqs, mmio: each
inline constexpr unsigned kNameLen = 32;
inline constexpr unsigned kCmdlineLen = 1023;

// Numbers as in proto/manifest.proto.
enum class Role : uint8_t { unspecified = 0, builder = 1, xenstore = 2, console = 3, netback = 4, blkback = 5, guest = 6 };
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
    char cmdline[kCmdlineLen + 1];
    RestartPolicy restart;
    uint32_t max_restarts;   // 0 = no limit
    bool debug_console;

    Grant grants[kMaxPerDomain];
    uint16_t events[kMaxPerDomain];   // peers, as indices
    Pci pci[kMaxPerDomain];
    Range ioports[kMaxPerDomain];
    uint32_t irqs[kMaxPerDomain];
    Range mmio[kMaxPerDomain];
    uint8_t n_grants, n_events, n_pci, n_ioports, n_irqs, n_mmio;
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

    // Index of the domain called `name`, or -1.
    int find(const char* name) const;
};

// The module's framing: kMagic, then the payload's length and CRC-32, each a
// little-endian uint32, then the payload.
inline constexpr char kMagic[8] = {'M', 'O', 'A', 'T', 'M', 'A', 'N', '1'};
inline constexpr size_t kHeaderBytes = 16;
// Larger payloads are refused: far above any manifest within the limits above.
inline constexpr size_t kMaxPayload = 4u << 20;

// CRC-32 as zlib's crc32() (IEEE 802.3, reflected, initial and final ~0):
// crc32("123456789") == 0xcbf43926. `crc` continues an earlier sum.
uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

// Decodes and checks a manifest module. On failure returns false and writes a
// one-line reason (no trailing newline) into err. Never trusts the input: a
// truncated, corrupted or inconsistent module is an error, never a crash.
bool decode(const uint8_t* data, size_t len, System& out, char* err, size_t err_len);

}  // namespace manifest
