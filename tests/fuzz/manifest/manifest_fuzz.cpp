// Fuzzes manifest::decode (libs/manifest), the builder's reading of the
// binary manifest, which it must never trust. The first byte of an input
// chooses how the rest is used:
//   even   the whole input is a module, header and all (so the magic, length
//          and CRC checks are fuzzed too);
//   1 mod 4  the rest is a payload, framed with a correct header (so the
//          fuzzer gets past the CRC to nanopb and the checks);
//   3 mod 4  the rest is a list of 3-byte edits (offset, value, operation)
//          applied to a valid payload (tests/manifests/good.textproto as
//          `moat compile` writes it), then framed: mutations reach the deep
//          checks at once.
// A decoded system must satisfy what the builder relies on (every index in
// range, names unique and well-formed, one builder, limits, memory, modules);
// a refusal must come with a one-line, terminated reason.

#include <manifest/index.hpp>
#include <manifest/manifest.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

// The payload of tests/manifests/good.textproto, compiled (447 bytes).
const uint8_t kSeed[] = {
  0x0a, 0x03, 0x08, 0x80, 0x01, 0x12, 0x22, 0x0a, 0x07, 0x62, 0x75, 0x69,
  0x6c, 0x64, 0x65, 0x72, 0x10, 0x01, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67,
  0x65, 0x73, 0x2f, 0x73, 0x74, 0x75, 0x62, 0x22, 0x02, 0x38, 0x4d, 0x28,
  0x80, 0x40, 0x88, 0x01, 0x01, 0x12, 0x36, 0x0a, 0x07, 0x63, 0x6f, 0x6e,
  0x73, 0x6f, 0x6c, 0x65, 0x10, 0x03, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67,
  0x65, 0x73, 0x2f, 0x73, 0x74, 0x75, 0x62, 0x22, 0x05, 0x34, 0x30, 0x39,
  0x36, 0x4b, 0x28, 0x80, 0x20, 0x38, 0x80, 0x04, 0x52, 0x02, 0x08, 0x02,
  0x72, 0x05, 0x08, 0xf8, 0x07, 0x10, 0x08, 0x7a, 0x01, 0x04, 0x90, 0x01,
  0x02, 0x12, 0x29, 0x0a, 0x08, 0x78, 0x65, 0x6e, 0x73, 0x74, 0x6f, 0x72,
  0x65, 0x10, 0x02, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f,
  0x73, 0x74, 0x75, 0x62, 0x22, 0x02, 0x38, 0x4d, 0x28, 0x80, 0x40, 0x52,
  0x04, 0x08, 0x01, 0x10, 0x03, 0x90, 0x01, 0x02, 0x12, 0x40, 0x0a, 0x03,
  0x6e, 0x65, 0x74, 0x10, 0x04, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67, 0x65,
  0x73, 0x2f, 0x73, 0x74, 0x75, 0x62, 0x22, 0x03, 0x31, 0x36, 0x4d, 0x28,
  0x80, 0x80, 0x01, 0x6a, 0x07, 0x30, 0x30, 0x3a, 0x30, 0x33, 0x2e, 0x30,
  0x72, 0x06, 0x08, 0x80, 0x80, 0x03, 0x10, 0x20, 0x7a, 0x01, 0x0b, 0x82,
  0x01, 0x09, 0x08, 0x80, 0x80, 0xfc, 0xf5, 0x0f, 0x10, 0x80, 0x20, 0x90,
  0x01, 0x02, 0x12, 0x54, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73, 0x74, 0x2d,
  0x31, 0x10, 0x06, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f,
  0x73, 0x74, 0x75, 0x62, 0x22, 0x03, 0x33, 0x32, 0x4d, 0x28, 0x80, 0x80,
  0x02, 0x30, 0x01, 0x38, 0xff, 0xff, 0x03, 0x40, 0x64, 0x4a, 0x0c, 0x63,
  0x6f, 0x6e, 0x73, 0x6f, 0x6c, 0x65, 0x3d, 0x68, 0x76, 0x63, 0x30, 0x5a,
  0x0d, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73, 0x74, 0x2e, 0x32, 0x12, 0x02,
  0x01, 0x03, 0x62, 0x09, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73, 0x74, 0x2e,
  0x32, 0x90, 0x01, 0x02, 0x12, 0x32, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73,
  0x74, 0x2e, 0x32, 0x10, 0x06, 0x1a, 0x0b, 0x69, 0x6d, 0x61, 0x67, 0x65,
  0x73, 0x2f, 0x73, 0x74, 0x75, 0x62, 0x22, 0x03, 0x36, 0x30, 0x4d, 0x28,
  0x80, 0xe0, 0x03, 0x5a, 0x0c, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73, 0x74,
  0x2d, 0x31, 0x12, 0x01, 0x02, 0x90, 0x01, 0x02, 0x1a, 0x14, 0x0a, 0x07,
  0x67, 0x75, 0x65, 0x73, 0x74, 0x2d, 0x31, 0x12, 0x07, 0x63, 0x6f, 0x6e,
  0x73, 0x6f, 0x6c, 0x65, 0x18, 0x02, 0x1a, 0x15, 0x0a, 0x07, 0x67, 0x75,
  0x65, 0x73, 0x74, 0x2d, 0x31, 0x12, 0x08, 0x78, 0x65, 0x6e, 0x73, 0x74,
  0x6f, 0x72, 0x65, 0x18, 0x03, 0x1a, 0x14, 0x0a, 0x07, 0x67, 0x75, 0x65,
  0x73, 0x74, 0x2e, 0x32, 0x12, 0x07, 0x63, 0x6f, 0x6e, 0x73, 0x6f, 0x6c,
  0x65, 0x18, 0x02, 0x1a, 0x10, 0x0a, 0x07, 0x67, 0x75, 0x65, 0x73, 0x74,
  0x2d, 0x31, 0x12, 0x03, 0x6e, 0x65, 0x74, 0x18, 0x01, 0x1a, 0x10, 0x0a,
  0x07, 0x67, 0x75, 0x65, 0x73, 0x74, 0x2e, 0x32, 0x12, 0x03, 0x6e, 0x65,
  0x74, 0x18, 0x01
};

manifest::System g_system;

std::vector<uint8_t> frame(const uint8_t* payload, size_t n) {
    std::vector<uint8_t> b(manifest::kMagic, manifest::kMagic + sizeof manifest::kMagic);
    uint32_t len = uint32_t(n), crc = manifest::crc32(payload, n);
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(len >> (8 * i)));
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(crc >> (8 * i)));
    b.insert(b.end(), payload, payload + n);
    return b;
}

bool name_ok(const char* s) {
    size_t n = strnlen(s, manifest::kNameLen + 1);
    if (n == 0 || n > manifest::kNameLen) return false;
    for (size_t i = 0; i < n; ++i) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

void check_system(const manifest::System& s) {
    using manifest::kMaxPerDomain;
    CHECK(s.n_domains >= 1 && s.n_domains <= manifest::kMaxDomains);
    CHECK(s.n_connections <= manifest::kMaxConnections);
    CHECK(s.memory_mib != 0);
    unsigned builders = 0, consoles = 0, stores = 0;
    uint64_t memory = 0;
    uint32_t next_module = 2;
    uint8_t holds[2 + 2 * manifest::kMaxDomains] = {};   // 1 image, 2 ramdisk
    for (unsigned i = 0; i < s.n_domains; ++i) {
        const manifest::Domain& d = s.domains[i];
        CHECK(name_ok(d.name));
        CHECK(s.find(d.name) == int(i));
        for (unsigned j = 0; j < i; ++j) CHECK(std::strcmp(d.name, s.domains[j].name) != 0);
        CHECK(d.role >= manifest::Role::builder && d.role <= manifest::Role::toolstack);
        builders += d.role == manifest::Role::builder;
        consoles += d.role == manifest::Role::console;
        stores += d.role == manifest::Role::xenstore;
        CHECK(d.memory_kib != 0 && d.memory_kib % 4 == 0);
        memory += d.memory_kib;
        if (d.role == manifest::Role::builder) {
            CHECK(d.module == 0 && d.ramdisk_module == 0);
        } else {
            // Images and ramdisks share the numbering; a module is one or the other.
            CHECK(d.module >= 2 && d.module <= next_module);
            if (d.module == next_module) holds[next_module++] = 1;
            CHECK(holds[d.module] == 1);
            if (d.ramdisk_module != 0) {
                CHECK(d.ramdisk_module >= 2 && d.ramdisk_module <= next_module && d.ramdisk_module != d.module);
                if (d.ramdisk_module == next_module) holds[next_module++] = 2;
                CHECK(holds[d.ramdisk_module] == 2);
            }
        }
        CHECK(d.vcpus == 1);
        CHECK(d.weight >= 1 && d.weight <= 65535);
        CHECK(d.cpu_cap <= 100);
        CHECK(d.restart <= manifest::RestartPolicy::always);
        // Command lines and lists: inside System's pools, within their limits.
        CHECK(d.cmdline != nullptr);
        if (d.cmdline[0]) {
            CHECK(d.cmdline >= s.cmdline_pool && d.cmdline < s.cmdline_pool + s.n_cmdline_pool);
            CHECK(std::memchr(d.cmdline, 0, size_t(s.cmdline_pool + s.n_cmdline_pool - d.cmdline)) != nullptr);
            CHECK(std::strlen(d.cmdline) <= manifest::kCmdlineLen);
        }
        auto in_pool = [](const auto* list, unsigned n, const auto* pool, unsigned used) {
            return n == 0 || (list >= pool && list + n <= pool + used);
        };
        CHECK(in_pool(d.grants, d.n_grants, s.grant_pool, s.n_grant_pool));
        CHECK(in_pool(d.events, d.n_events, s.event_pool, s.n_event_pool));
        CHECK(in_pool(d.pci, d.n_pci, s.pci_pool, s.n_pci_pool));
        CHECK(in_pool(d.ioports, d.n_ioports, s.ioport_pool, s.n_ioport_pool));
        CHECK(in_pool(d.irqs, d.n_irqs, s.irq_pool, s.n_irq_pool));
        CHECK(in_pool(d.mmio, d.n_mmio, s.mmio_pool, s.n_mmio_pool));
        CHECK(in_pool(d.controls, d.n_controls, s.control_pool, s.n_control_pool));
        CHECK(d.n_controls == 0 || d.role == manifest::Role::toolstack);
        for (unsigned k = 0; k < d.n_controls; ++k) {
            CHECK(d.controls[k] < s.n_domains && d.controls[k] != i);
            CHECK(s.domains[d.controls[k]].role != manifest::Role::builder);
            for (unsigned q = 0; q < k; ++q) CHECK(d.controls[q] != d.controls[k]);
        }
        CHECK(d.n_grants <= kMaxPerDomain && d.n_events <= kMaxPerDomain && d.n_pci <= kMaxPerDomain &&
              d.n_ioports <= kMaxPerDomain && d.n_irqs <= kMaxPerDomain && d.n_mmio <= kMaxPerDomain);
        for (unsigned k = 0; k < d.n_grants; ++k) {
            CHECK(d.grants[k].peer < s.n_domains && d.grants[k].peer != i);
            CHECK(d.grants[k].rights != 0 && d.grants[k].rights <= 7);
        }
        for (unsigned k = 0; k < d.n_events; ++k) CHECK(d.events[k] < s.n_domains && d.events[k] != i);
        for (unsigned k = 0; k < d.n_pci; ++k) CHECK(d.pci[k].device <= 0x1f && d.pci[k].function <= 7);
        for (unsigned k = 0; k < d.n_irqs; ++k) CHECK(d.irqs[k] < 24);
        for (unsigned k = 0; k < d.n_ioports; ++k)
            CHECK(d.ioports[k].count >= 1 && d.ioports[k].first + d.ioports[k].count <= 0x10000);
        for (unsigned k = 0; k < d.n_mmio; ++k) {
            const manifest::Range& r = d.mmio[k];
            CHECK(r.count != 0 && r.first % 4096 == 0 && r.count % 4096 == 0 && r.count - 1 <= UINT64_MAX - r.first);
        }
    }
    CHECK(builders == 1 && consoles <= 1 && stores <= 1);
    CHECK(memory <= uint64_t(s.memory_mib) * 1024);
    for (unsigned i = 0; i < s.n_connections; ++i) {
        const manifest::Connection& c = s.connections[i];
        CHECK(c.frontend < s.n_domains && c.backend < s.n_domains && c.frontend != c.backend);
        CHECK(c.kind >= manifest::ConnKind::ring && c.kind <= manifest::ConnKind::vbd);
        if (c.kind == manifest::ConnKind::console) CHECK(s.domains[c.backend].role == manifest::Role::console);
        if (c.kind == manifest::ConnKind::xenstore) CHECK(s.domains[c.backend].role == manifest::Role::xenstore);
        if (c.kind == manifest::ConnKind::vif) CHECK(s.domains[c.backend].role == manifest::Role::netback);
        if (c.kind == manifest::ConnKind::vbd) CHECK(s.domains[c.backend].role == manifest::Role::blkback);
        CHECK(!c.has_mac || (c.kind == manifest::ConnKind::vif && !(c.mac[0] & 1)));
        CHECK(c.kind == manifest::ConnKind::vbd || (c.first_sector == 0 && c.sectors == 0 && !c.read_only));
        CHECK(c.sectors == 0 || c.first_sector + c.sectors >= c.first_sector);
    }
    // The builder's index of what an accepted system gives: one link per
    // (holder, peer), never a domain naming itself, every link by its peer.
    static manifest::Index index;
    index.build(s);
    uint32_t by_peer = 0;
    for (unsigned i = 0; i < s.n_domains; ++i) {
        unsigned n;
        const manifest::Link* l = index.links_of(i, &n);
        for (unsigned k = 0; k < n; ++k) {
            CHECK(l[k].holder == i && l[k].peer < s.n_domains && l[k].peer != i);
            CHECK(l[k].grant != 0 || l[k].bind);
            for (unsigned j = 0; j < k; ++j) CHECK(l[j].peer != l[k].peer);
        }
        const uint32_t* naming = index.naming(i, &n);
        for (unsigned k = 0; k < n; ++k) CHECK(index.at(naming[k]).peer == i);
        by_peer += n;
        index.connections_of(i, &n);
    }
    CHECK(by_peer == index.links());
}

void run(const std::vector<uint8_t>& module) {
    char err[160];
    std::memset(err, 0x55, sizeof err);
    if (manifest::decode(module.data(), module.size(), g_system, err, sizeof err)) {
        CHECK(err[0] == '\0');
        check_system(g_system);
    } else {
        size_t n = strnlen(err, sizeof err);
        CHECK(n > 0 && n < sizeof err);
        CHECK(std::memchr(err, '\n', n) == nullptr);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t mode = data[0];
    ++data, --size;
    if (mode % 2 == 0) {
        run(std::vector<uint8_t>(data, data + size));
    } else if (mode % 4 == 1) {
        run(frame(data, size));
    } else {
        std::vector<uint8_t> p(kSeed, kSeed + sizeof kSeed);
        for (size_t i = 0; i + 3 <= size; i += 3) {
            size_t at = p.empty() ? 0 : (size_t(data[i]) | size_t(data[i + 2] & 0x3f) << 8) % (p.size() + 1);
            uint8_t value = data[i + 1];
            switch (data[i + 2] >> 6) {
                case 0: if (at < p.size()) p[at] = value; break;                    // overwrite
                case 1: p.insert(p.begin() + long(at), value); break;               // insert
                case 2: if (at < p.size()) p.erase(p.begin() + long(at)); break;    // delete
                case 3: if (at < p.size()) p[at] ^= uint8_t(1u << (value & 7)); break;  // flip a bit
            }
        }
        run(frame(p.data(), p.size()));
    }
    return 0;
}
