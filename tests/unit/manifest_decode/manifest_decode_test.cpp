// manifest::decode (libs/manifest), hosted: the manifests `moat compile`
// writes decode to what their text says; a damaged module (short, wrong
// magic, wrong length, bad CRC, every bit flipped, every truncation) is
// refused; and every limit and rule the builder relies on is refused with its
// own one-line message. Test manifests are built in-process with libprotobuf
// (proto/manifest.proto, C++) and framed here.

#include <manifest/index.hpp>
#include <manifest/manifest.hpp>

#include "manifest.pb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

namespace {

using Bytes = std::string;

void put_le32(Bytes* b, uint32_t v) {
    for (int i = 0; i < 4; ++i) b->push_back(char((v >> (8 * i)) & 0xff));
}

// "MOATMAN1", length, CRC-32, payload: the module `moat compile` writes.
Bytes frame(const Bytes& payload) {
    Bytes b("MOATMAN1");
    put_le32(&b, uint32_t(payload.size()));
    put_le32(&b, manifest::crc32(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    return b + payload;
}

Bytes frame(const moat::System& s) {
    Bytes payload;
    EXPECT_TRUE(s.SerializeToString(&payload));
    return frame(payload);
}

struct Result {
    bool ok;
    std::string err;
};

// One System for all tests: it is large (the builder keeps it static).
manifest::System& decoded() {
    static auto* s = new manifest::System;
    return *s;
}

Result decode(const Bytes& b) {
    char err[512];
    std::memset(err, 'x', sizeof err);
    bool ok = manifest::decode(reinterpret_cast<const uint8_t*>(b.data()), b.size(), decoded(), err, sizeof err);
    std::string e(err, strnlen(err, sizeof err));
    EXPECT_LT(e.size(), sizeof err) << "error not NUL-terminated";
    EXPECT_EQ(e.find('\n'), std::string::npos) << "error is not one line: " << e;
    if (ok) EXPECT_EQ(e, "") << "error text on success";
    if (!ok) EXPECT_NE(e, "") << "no error text on failure";
    return {ok, e};
}

std::string decode_error(const moat::System& s) {
    Result r = decode(frame(s));
    EXPECT_FALSE(r.ok) << "decoded although it should not";
    return r.err;
}

moat::Domain* add_domain(moat::System* s, const std::string& name, moat::Domain::Role role, uint32_t module,
                         uint64_t kib = 4096) {
    moat::Domain* d = s->add_domains();
    d->set_name(name);
    d->set_role(role);
    d->set_module(module);
    d->set_memory_kib(kib);
    return d;
}

void add_connection(moat::System* s, const std::string& front, const std::string& back, moat::Connection::Kind k) {
    moat::Connection* c = s->add_connections();
    c->set_frontend(front);
    c->set_backend(back);
    c->set_kind(k);
}

// A valid system: builder, console, xenstore and two guests sharing image 3.
moat::System base_system() {
    moat::System s;
    add_domain(&s, "builder", moat::Domain::BUILDER, 0, 8192);
    add_domain(&s, "console", moat::Domain::CONSOLE, 2);
    add_domain(&s, "xenstore", moat::Domain::XENSTORE, 2);
    add_domain(&s, "g", moat::Domain::GUEST, 3);
    add_domain(&s, "h", moat::Domain::GUEST, 3);
    add_connection(&s, "g", "console", moat::Connection::CONSOLE);
    add_connection(&s, "g", "xenstore", moat::Connection::XENSTORE);
    add_connection(&s, "g", "h", moat::Connection::RING);
    return s;
}

moat::Domain* dom(moat::System* s, const std::string& name) {
    for (auto& d : *s->mutable_domains())
        if (d.name() == name) return &d;
    ADD_FAILURE() << "no domain " << name;
    return s->mutable_domains(0);
}

// Varint, for payloads written by hand.
void put_varint(Bytes* b, uint64_t v) {
    while (v >= 0x80) {
        b->push_back(char(v | 0x80));
        v >>= 7;
    }
    b->push_back(char(v));
}

// A length-delimited field.
Bytes field(uint32_t number, const Bytes& body) {
    Bytes b;
    put_varint(&b, uint64_t(number) << 3 | 2);
    put_varint(&b, body.size());
    return b + body;
}

Bytes read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(ManifestCrc, MatchesZlib) {
    const char* check = "123456789";
    EXPECT_EQ(manifest::crc32(reinterpret_cast<const uint8_t*>(check), 9), 0xcbf43926u);
    EXPECT_EQ(manifest::crc32(nullptr, 0), 0u);
    // Continuing an earlier sum gives the sum of the whole.
    uint32_t part = manifest::crc32(reinterpret_cast<const uint8_t*>(check), 4);
    EXPECT_EQ(manifest::crc32(reinterpret_cast<const uint8_t*>(check) + 4, 5, part), 0xcbf43926u);
}

// examples/demo.textproto, compiled by `moat compile` when the test runs.
TEST(ManifestDecode, DemoRoundTrip) {
    Result r = decode(read_file(MANIFEST_DEMO_FILE));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& s = decoded();
    EXPECT_EQ(s.memory_mib, 256u);
    ASSERT_EQ(s.n_domains, 9u);
    const char* names[] = {"builder", "console", "xenstore", "netback", "blkback", "toolstack", "ping", "pong", "loner"};
    const manifest::Role roles[] = {manifest::Role::builder, manifest::Role::console,   manifest::Role::xenstore,
                                    manifest::Role::netback, manifest::Role::blkback,   manifest::Role::toolstack,
                                    manifest::Role::guest,   manifest::Role::guest,     manifest::Role::guest};
    // builder; console, xenstore, netback, blkback, toolstack, demo_front, demo_back, demo_loner.
    const uint32_t modules[] = {0, 2, 3, 4, 5, 6, 7, 8, 9};
    const uint64_t kib[] = {16384, 8192, 16384, 16384, 16384, 8192, 16384, 16384, 16384};
    for (unsigned i = 0; i < 9; ++i) {
        SCOPED_TRACE(names[i]);
        const manifest::Domain& d = s.domains[i];
        EXPECT_STREQ(d.name, names[i]);
        EXPECT_EQ(s.find(names[i]), int(i));
        EXPECT_EQ(d.role, roles[i]);
        EXPECT_EQ(d.module, modules[i]);
        EXPECT_EQ(d.ramdisk_module, 0u);
        EXPECT_EQ(d.memory_kib, kib[i]);
        EXPECT_EQ(d.vcpus, 1u);
    }
    EXPECT_EQ(s.find("nobody"), -1);
    EXPECT_EQ(s.find(""), -1);

    const manifest::Domain& builder = s.domains[0];
    EXPECT_EQ(builder.weight, 512u);
    EXPECT_TRUE(builder.debug_console);
    EXPECT_EQ(builder.restart, manifest::RestartPolicy::never);

    const manifest::Domain& console = s.domains[1];
    EXPECT_EQ(console.restart, manifest::RestartPolicy::always);
    EXPECT_EQ(console.max_restarts, 5u);
    ASSERT_EQ(console.n_ioports, 1u);
    EXPECT_EQ(console.ioports[0].first, 0x3f8u);
    EXPECT_EQ(console.ioports[0].count, 8u);
    EXPECT_EQ(console.n_irqs, 0u);   // no Irq capabilities yet: the console polls
    EXPECT_TRUE(console.debug_console);

    const manifest::Domain& xenstore = s.domains[2];
    EXPECT_EQ(xenstore.restart, manifest::RestartPolicy::on_crash);
    EXPECT_EQ(xenstore.max_restarts, 3u);
    EXPECT_FALSE(xenstore.debug_console);

    for (unsigned i : {3u, 4u}) {
        const manifest::Domain& drv = s.domains[i];
        ASSERT_EQ(drv.n_pci, 1u);
        EXPECT_EQ(drv.pci[0].bus, 0u);
        EXPECT_EQ(drv.pci[0].device, i == 3 ? 4u : 5u);
        EXPECT_EQ(drv.pci[0].function, 0u);
    }

    const manifest::Domain& toolstack = s.domains[5];
    ASSERT_EQ(toolstack.n_ioports, 1u);
    EXPECT_EQ(toolstack.ioports[0].first, 0x2f8u);
    ASSERT_EQ(toolstack.n_controls, 2u);
    EXPECT_EQ(toolstack.controls[0], 6u);
    EXPECT_EQ(toolstack.controls[1], 7u);

    const manifest::Domain& ping = s.domains[6];
    EXPECT_STREQ(ping.cmdline, "rounds=1000 ip=10.0.2.15 ping=10.0.2.16 count=10 stay host-udp=5555");
    EXPECT_EQ(ping.weight, 256u);   // default
    EXPECT_EQ(ping.cpu_cap, 0u);

    const manifest::Domain& pong = s.domains[7];
    ASSERT_EQ(pong.n_grants, 1u);
    EXPECT_EQ(pong.grants[0].peer, 6u);
    EXPECT_EQ(pong.grants[0].rights, manifest::kGrantMapRw | manifest::kGrantCopy);
    EXPECT_STREQ(pong.cmdline, "ip=10.0.2.16 answer=10 udp-echo=7 stay");

    const manifest::Domain& loner = s.domains[8];
    EXPECT_EQ(loner.weight, 128u);
    EXPECT_EQ(loner.cpu_cap, 50u);
    EXPECT_STREQ(loner.cmdline, "peers=9");
    EXPECT_EQ(loner.n_grants + loner.n_events + loner.n_pci + loner.n_ioports + loner.n_irqs + loner.n_mmio, 0);

    ASSERT_EQ(s.n_connections, 18u);
    EXPECT_EQ(s.connections[0].frontend, 2u);
    EXPECT_EQ(s.connections[0].backend, 1u);
    EXPECT_EQ(s.connections[0].kind, manifest::ConnKind::console);
    EXPECT_EQ(s.connections[6].frontend, 5u);   // the toolstack's console
    EXPECT_EQ(s.connections[6].backend, 1u);
    EXPECT_EQ(s.connections[7].frontend, 1u);
    EXPECT_EQ(s.connections[7].backend, 2u);
    EXPECT_EQ(s.connections[7].kind, manifest::ConnKind::xenstore);
    EXPECT_EQ(s.connections[14].frontend, 6u);
    EXPECT_EQ(s.connections[14].backend, 7u);
    EXPECT_EQ(s.connections[14].kind, manifest::ConnKind::ring);
    for (unsigned k : {15u, 16u}) {
        EXPECT_EQ(s.connections[k].frontend, k == 15 ? 6u : 7u);
        EXPECT_EQ(s.connections[k].backend, 3u);
        EXPECT_EQ(s.connections[k].kind, manifest::ConnKind::vif);
        EXPECT_FALSE(s.connections[k].has_mac);
    }
    const manifest::Connection& vbd = s.connections[17];
    EXPECT_EQ(vbd.frontend, 6u);
    EXPECT_EQ(vbd.backend, 4u);
    EXPECT_EQ(vbd.kind, manifest::ConnKind::vbd);
    EXPECT_EQ(vbd.first_sector, 0u);
    EXPECT_EQ(vbd.sectors, 2048u);
    EXPECT_FALSE(vbd.read_only);
}

// tests/manifests/good.textproto (every feature), compiled by `moat compile`.
TEST(ManifestDecode, GoodRoundTrip) {
    Result r = decode(read_file(MANIFEST_GOOD_FILE));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& s = decoded();
    EXPECT_EQ(s.memory_mib, 128u);
    ASSERT_EQ(s.n_domains, 6u);
    ASSERT_EQ(s.n_connections, 5u);
    for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(s.domains[i].module, i == 0 ? 0u : 2u) << i;  // one image
    // guest-1's ramdisk is the next module after the one image.
    for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(s.domains[i].ramdisk_module, i == 4 ? 3u : 0u) << i;

    const manifest::Domain& net = s.domains[3];
    EXPECT_STREQ(net.name, "net");
    EXPECT_EQ(net.role, manifest::Role::netback);
    ASSERT_EQ(net.n_pci, 1u);
    EXPECT_EQ(net.pci[0].bus, 0);
    EXPECT_EQ(net.pci[0].device, 3);
    EXPECT_EQ(net.pci[0].function, 0);
    ASSERT_EQ(net.n_mmio, 1u);
    EXPECT_EQ(net.mmio[0].first, 0xfebf0000u);
    EXPECT_EQ(net.mmio[0].count, 0x1000u);
    ASSERT_EQ(net.n_ioports, 1u);
    EXPECT_EQ(net.ioports[0].first, 0xc000u);
    EXPECT_EQ(net.ioports[0].count, 0x20u);
    ASSERT_EQ(net.n_irqs, 1u);
    EXPECT_EQ(net.irqs[0], 11u);

    // guest-1 names guest.2, defined after it.
    const manifest::Domain& g1 = s.domains[4];
    EXPECT_STREQ(g1.name, "guest-1");
    EXPECT_EQ(g1.weight, 65535u);
    EXPECT_EQ(g1.cpu_cap, 100u);
    EXPECT_STREQ(g1.cmdline, "console=hvc0");
    ASSERT_EQ(g1.n_grants, 1u);
    EXPECT_EQ(g1.grants[0].peer, 5u);
    EXPECT_EQ(g1.grants[0].rights, manifest::kGrantMapRo | manifest::kGrantCopy);
    ASSERT_EQ(g1.n_events, 1u);
    EXPECT_EQ(g1.events[0], 5u);
    EXPECT_EQ(s.domains[5].grants[0].peer, 4u);
    EXPECT_EQ(s.domains[5].grants[0].rights, manifest::kGrantMapRw);
    EXPECT_EQ(s.connections[4].frontend, 5u);
    EXPECT_EQ(s.connections[4].backend, 3u);
}

TEST(ManifestDecode, BaseSystemAndDefaults) {
    moat::System s = base_system();
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& d = decoded();
    EXPECT_EQ(d.memory_mib, 256u);   // machine unset
    EXPECT_EQ(d.domains[3].vcpus, 1u);
    EXPECT_EQ(d.domains[3].weight, 256u);
    EXPECT_EQ(d.domains[3].cpu_cap, 0u);
    EXPECT_EQ(d.domains[3].restart, manifest::RestartPolicy::never);
    EXPECT_EQ(d.domains[3].max_restarts, 0u);

    s.mutable_machine()->set_memory_mib(64);
    dom(&s, "g")->set_vcpus(1);
    dom(&s, "g")->set_weight(1);
    r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(decoded().memory_mib, 64u);
    EXPECT_EQ(decoded().domains[3].weight, 1u);
    // What the builder does not read is skipped.
    dom(&s, "g")->set_image("some/where");
    dom(&s, "g")->set_memory("4M");
    EXPECT_TRUE(decode(frame(s)).ok);
}

TEST(ManifestDecode, Header) {
    const Bytes good = frame(base_system());
    ASSERT_TRUE(decode(good).ok);

    EXPECT_EQ(decode("").err, "manifest is 0 bytes, shorter than its 16-byte header");
    EXPECT_EQ(decode(good.substr(0, 15)).err, "manifest is 15 bytes, shorter than its 16-byte header");
    char err[8];
    EXPECT_FALSE(manifest::decode(nullptr, 0, decoded(), err, sizeof err));
    EXPECT_STREQ(err, "manifes");   // cut to the buffer, terminated
    EXPECT_FALSE(manifest::decode(nullptr, 100, decoded(), nullptr, 0));

    Bytes b = good;
    b[7] = '2';
    EXPECT_EQ(decode(b).err, "not a manifest: no MOATMAN1 magic");
    b = good;
    b[0] = 'm';
    EXPECT_EQ(decode(b).err, "not a manifest: no MOATMAN1 magic");

    const size_t n = good.size() - 16;
    EXPECT_EQ(decode(good.substr(0, good.size() - 1)).err,
              "manifest is " + std::to_string(good.size() - 1) + " bytes, but its header says 16 + " +
                  std::to_string(n) + " (truncated)");
    EXPECT_EQ(decode(good + "x").err, "manifest is " + std::to_string(good.size() + 1) +
                                          " bytes, but its header says 16 + " + std::to_string(n) +
                                          " (trailing bytes)");
    b = good;
    b[11] = char(0x7f);   // length 0x7f0000xx
    EXPECT_EQ(decode(b).err, "manifest payload of " + std::to_string(0x7f000000u + uint8_t(good[8]) +
                                                                     (uint8_t(good[9]) << 8)) +
                                 " bytes is larger than " + std::to_string(manifest::kMaxPayload));

    b = good;
    b[12] ^= 1;
    Result r = decode(b);
    EXPECT_EQ(r.err.rfind("manifest CRC-32 mismatch: header says 0x", 0), 0u) << r.err;
    b = good;
    b[b.size() - 3] ^= 0x10;
    r = decode(b);
    EXPECT_EQ(r.err.rfind("manifest CRC-32 mismatch: ", 0), 0u) << r.err;

    // An empty payload is a system with no domains.
    EXPECT_EQ(decode(frame(Bytes())).err, "no domain has role BUILDER");
}

// Every single-bit flip of a module is refused (CRC-32 catches them all);
// with the CRC fixed up, nothing crashes and errors stay one line.
TEST(ManifestDecode, EveryBitFlip) {
    Bytes payload;
    ASSERT_TRUE(base_system().SerializeToString(&payload));
    const Bytes good = frame(payload);
    for (size_t i = 0; i < good.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            Bytes b = good;
            b[i] ^= char(1 << bit);
            EXPECT_FALSE(decode(b).ok) << "byte " << i << " bit " << bit;
        }
    for (size_t i = 0; i < payload.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            Bytes p = payload;
            p[i] ^= char(1 << bit);
            decode(frame(p));   // checks the error's form
        }
}

TEST(ManifestDecode, EveryTruncation) {
    Bytes payload;
    ASSERT_TRUE(base_system().SerializeToString(&payload));
    const Bytes good = frame(payload);
    for (size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(decode(good.substr(0, n)).ok) << n;
    // Cut payloads, framed anew: refused or (cut between fields) a smaller
    // system, never a crash.
    for (size_t n = 0; n < payload.size(); ++n) decode(frame(payload.substr(0, n)));
    EXPECT_EQ(decode(frame(payload.substr(0, payload.size() - 1))).err,
              "manifest payload is not a valid moat.System: parent stream too short");
}

TEST(ManifestDecode, GarbagePayload) {
    EXPECT_EQ(decode(frame(Bytes("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11))).err,
              "manifest payload is not a valid moat.System: varint overflow");
    EXPECT_EQ(decode(frame(Bytes("\x12\x05\x0a", 3))).err,
              "manifest payload is not a valid moat.System: parent stream too short");
    // Wire type 7 does not exist: on a known field, and on an unknown one (15).
    EXPECT_EQ(decode(frame(Bytes("\x0f", 1))).err, "manifest payload is not a valid moat.System: wrong wire type");
    EXPECT_EQ(decode(frame(Bytes("\x7f", 1))).err, "manifest payload is not a valid moat.System: invalid wire_type");
}

TEST(ManifestDecode, Limits) {
    {
        moat::System s = base_system();
        for (unsigned i = 5; i < manifest::kMaxDomains; ++i)
            add_domain(&s, "d" + std::to_string(i), moat::Domain::GUEST, 3, 4);
        Result r = decode(frame(s));
        EXPECT_TRUE(r.ok) << r.err;
        EXPECT_EQ(decoded().n_domains, manifest::kMaxDomains);
        add_domain(&s, "one-more", moat::Domain::GUEST, 3, 4);
        EXPECT_EQ(decode_error(s), "more than " + std::to_string(manifest::kMaxDomains) + " domains");
    }
    {
        moat::System s = base_system();
        while (s.connections_size() < int(manifest::kMaxConnections))
            add_connection(&s, "h", "g", moat::Connection::RING);
        // Duplicates, but the count is checked as they are read.
        add_connection(&s, "h", "g", moat::Connection::RING);
        EXPECT_EQ(decode_error(s), "more than " + std::to_string(manifest::kMaxConnections) + " connections");
    }
    struct PerDomain {
        const char* what;
        std::function<void(moat::Domain*, int)> add;
    };
    const PerDomain lists[] = {
        {"grants",
         [](moat::Domain* d, int i) {
             auto* g = d->add_grants();
             g->set_peer("p" + std::to_string(i));
             g->add_rights(moat::Grant::MAP_RO);
         }},
        {"event capabilities", [](moat::Domain* d, int i) { d->add_events()->set_peer("p" + std::to_string(i)); }},
        {"PCI functions",
         [](moat::Domain* d, int i) {
             char t[8];
             std::snprintf(t, sizeof t, "00:%02x.0", i);
             d->add_pci(t);
         }},
        {"I/O port ranges",
         [](moat::Domain* d, int i) {
             auto* r = d->add_ioports();
             r->set_first(0x1000 + 16 * i);
             r->set_count(16);
         }},
        {"irqs", [](moat::Domain* d, int i) { d->add_irqs(uint32_t(i)); }},
        {"MMIO ranges",
         [](moat::Domain* d, int i) {
             auto* r = d->add_mmio();
             r->set_base(0xf0000000u + 0x1000u * uint32_t(i));
             r->set_size(0x1000);
         }},
    };
    for (const PerDomain& l : lists) {
        SCOPED_TRACE(l.what);
        moat::System s = base_system();
        for (int i = 0; i <= int(manifest::kMaxPerDomain); ++i)
            add_domain(&s, "p" + std::to_string(i), moat::Domain::GUEST, 3, 4);
        moat::Domain* d = dom(&s, "g");
        for (int i = 0; i < int(manifest::kMaxPerDomain); ++i) l.add(d, i);
        Result r = decode(frame(s));
        EXPECT_TRUE(r.ok) << r.err;
        l.add(d, int(manifest::kMaxPerDomain));
        EXPECT_EQ(decode_error(s), std::string("domain \"g\": more than 16 ") + l.what);
    }
    {
        moat::System s = base_system();
        dom(&s, "g")->set_name(std::string(32, 'n'));
        dom(&s, "h")->set_name(std::string(33, 'n'));
        EXPECT_EQ(decode_error(s), "domains[4]: name is 33 bytes, more than 32");
    }
    {
        moat::System s = base_system();
        dom(&s, "g")->set_cmdline(std::string(1023, 'c'));
        s.clear_connections();
        Result r = decode(frame(s));
        ASSERT_TRUE(r.ok) << r.err;
        EXPECT_EQ(std::strlen(decoded().domains[3].cmdline), 1023u);
        dom(&s, "g")->set_cmdline(std::string(1024, 'c'));
        EXPECT_EQ(decode_error(s), "domain \"g\": cmdline is 1024 bytes, more than 1023");
        dom(&s, "g")->set_cmdline(std::string("a\0b", 3));
        EXPECT_EQ(decode_error(s), "domain \"g\": cmdline contains a NUL byte");
    }
}

// One mutation of base_system() and the message it must give.
struct Case {
    const char* name;
    std::function<void(moat::System*)> mutate;
    const char* error;
};

class ManifestRules : public ::testing::TestWithParam<Case> {};

TEST_P(ManifestRules, Refused) {
    moat::System s = base_system();
    GetParam().mutate(&s);
    EXPECT_EQ(decode_error(s), GetParam().error);
}

using moat::Connection;
using moat::Domain;
using moat::Grant;
using moat::Restart;
using S = moat::System;

void grant(S* s, const std::string& from, const std::string& peer, std::initializer_list<int> rights) {
    moat::Grant* g = dom(s, from)->add_grants();
    g->set_peer(peer);
    for (int r : rights) g->add_rights(Grant::Right(r));
}

void ioports(S* s, const std::string& d, uint32_t first, uint32_t count) {
    auto* r = dom(s, d)->add_ioports();
    r->set_first(first);
    r->set_count(count);
}

void mmio(S* s, const std::string& d, uint64_t base, uint64_t size) {
    auto* r = dom(s, d)->add_mmio();
    r->set_base(base);
    r->set_size(size);
}

const Case kCases[] = {
    // Names.
    {"no_name", [](S* s) { dom(s, "h")->clear_name(); }, "domains[4] has no name"},
    {"malformed_name", [](S* s) { dom(s, "h")->set_name("a b"); },
     "domains[4]: malformed name: expected 1 to 32 of A-Z a-z 0-9 _ . -"},
    {"control_char_name", [](S* s) { dom(s, "h")->set_name("a\nb"); },
     "domains[4]: malformed name: expected 1 to 32 of A-Z a-z 0-9 _ . -"},
    {"duplicate_name", [](S* s) { dom(s, "h")->set_name("g"); },
     "duplicate domain name \"g\" (domains[3] and [4])"},
    // Roles.
    {"no_role", [](S* s) { dom(s, "h")->set_role(Domain::ROLE_UNSPECIFIED); }, "domain \"h\" has no role"},
    {"unknown_role", [](S* s) { dom(s, "h")->set_role(Domain::Role(42)); }, "domain \"h\" has unknown role 42"},
    // nanopb reads enums without negative values as uint32: -1 does not fit.
    {"negative_role", [](S* s) { dom(s, "h")->set_role(Domain::Role(-1)); },
     "manifest payload is not a valid moat.System: integer too large"},
    {"no_builder", [](S* s) { s->mutable_domains()->DeleteSubrange(0, 1); }, "no domain has role BUILDER"},
    {"two_builders",
     [](S* s) {
         dom(s, "h")->set_role(Domain::BUILDER);
         dom(s, "h")->set_module(0);
     },
     "more than one BUILDER domain (\"builder\" and \"h\")"},
    {"two_xenstores", [](S* s) { dom(s, "h")->set_role(Domain::XENSTORE); },
     "more than one XENSTORE domain (\"xenstore\" and \"h\")"},
    {"two_consoles", [](S* s) { dom(s, "h")->set_role(Domain::CONSOLE); },
     "more than one CONSOLE domain (\"console\" and \"h\")"},
    // Memory.
    {"no_memory", [](S* s) { dom(s, "h")->set_memory_kib(0); },
     "domain \"h\" has no memory_kib (not compiled by 'moat compile'?)"},
    {"memory_not_pages", [](S* s) { dom(s, "h")->set_memory_kib(4098); },
     "domain \"h\": memory_kib 4098 is not a whole number of 4K pages"},
    {"over_memory",
     [](S* s) {
         s->mutable_machine()->set_memory_mib(24);
         dom(s, "h")->set_memory_kib(4096 + 4);
     },
     "domains need more than the machine's 24M of memory (at domain \"h\")"},
    {"over_default_memory", [](S* s) { dom(s, "g")->set_memory_kib(uint64_t(256) * 1024); },
     "domains need more than the machine's 256M of memory (at domain \"g\")"},
    {"huge_memory", [](S* s) { dom(s, "g")->set_memory_kib(UINT64_MAX - 3); },
     "domains need more than the machine's 256M of memory (at domain \"g\")"},
    // Scheduling and restarts.
    {"vcpus", [](S* s) { dom(s, "h")->set_vcpus(2); },
     "domain \"h\": vcpus 2 out of range: the core runs at most 1 per domain"},
    {"weight", [](S* s) { dom(s, "h")->set_weight(65536); },
     "domain \"h\": weight 65536 out of range 1-65535 (0 or unset: 256)"},
    {"cpu_cap", [](S* s) { dom(s, "h")->set_cpu_cap(101); },
     "domain \"h\": cpu_cap 101 out of range 1-100 (0 or unset: uncapped)"},
    {"restart_policy", [](S* s) { dom(s, "h")->mutable_restart()->set_policy(Restart::Policy(3)); },
     "domain \"h\": unknown restart policy 3"},
    {"max_restarts_never", [](S* s) { dom(s, "h")->mutable_restart()->set_max_restarts(2); },
     "domain \"h\": max_restarts has no effect with restart policy NEVER"},
    {"builder_restart", [](S* s) { dom(s, "builder")->mutable_restart()->set_policy(Restart::ALWAYS); },
     "domain \"builder\": the builder is never restarted: its restart policy must be NEVER"},
    // Modules.
    {"builder_module", [](S* s) { dom(s, "builder")->set_module(1); },
     "domain \"builder\": the builder's module is 1, not 0"},
    // Ramdisks: numbered with the images, the builder has none, a module
    // holds an image or a ramdisk.
    {"builder_ramdisk", [](S* s) { dom(s, "builder")->set_ramdisk_module(2); },
     "domain \"builder\": the builder has no ramdisk (ramdisk_module 2)"},
    {"ramdisk_gap", [](S* s) { dom(s, "g")->set_ramdisk_module(5); },
     "domain \"g\": ramdisk_module 5, expected 4 or an earlier one from 2"},
    {"ramdisk_1", [](S* s) { dom(s, "g")->set_ramdisk_module(1); },
     "domain \"g\": ramdisk_module 1, expected 4 or an earlier one from 2"},
    {"ramdisk_own_image", [](S* s) { dom(s, "g")->set_ramdisk_module(3); },
     "domain \"g\": ramdisk_module 3 is its image's module"},
    {"ramdisk_an_image", [](S* s) { dom(s, "g")->set_ramdisk_module(2); },
     "domain \"g\": ramdisk_module 2 holds an earlier domain's image"},
    {"image_a_ramdisk",
     [](S* s) {
         dom(s, "g")->set_ramdisk_module(4);
         dom(s, "h")->set_module(4);
     },
     "domain \"h\": module 4 holds an earlier domain's ramdisk"},
    {"no_module", [](S* s) { dom(s, "console")->set_module(0); }, "domain \"console\": module 0, expected 2"},
    {"module_1", [](S* s) { dom(s, "h")->set_module(1); },
     "domain \"h\": module 1, expected 4 or an earlier one from 2"},
    {"module_gap", [](S* s) { dom(s, "g")->set_module(4); },
     "domain \"g\": module 4, expected 3 or an earlier one from 2"},
    // Grants.
    {"grant_unknown", [](S* s) { grant(s, "g", "nobody", {Grant::MAP_RO}); },
     "domain \"g\": grant names unknown domain \"nobody\""},
    {"grant_no_peer", [](S* s) { grant(s, "g", "", {Grant::MAP_RO}); }, "domain \"g\": grant names no domain"},
    {"grant_malformed_peer", [](S* s) { grant(s, "g", "a\"b", {Grant::MAP_RO}); },
     "domain \"g\": grant names a malformed domain name"},
    {"grant_long_peer", [](S* s) { grant(s, "g", std::string(33, 'h'), {Grant::MAP_RO}); },
     "domain \"g\": grant names a malformed domain name"},
    {"grant_self", [](S* s) { grant(s, "g", "g", {Grant::MAP_RO}); },
     "domain \"g\" names itself as a grant peer: its own pages need no capability"},
    {"grant_twice",
     [](S* s) {
         grant(s, "g", "h", {Grant::MAP_RO});
         grant(s, "g", "h", {Grant::COPY});
     },
     "domain \"g\": second grant to \"h\": list its rights once"},
    {"grant_no_rights", [](S* s) { grant(s, "g", "h", {}); },
     "domain \"g\": grant to \"h\" gives no rights (MAP_RO, MAP_RW, COPY)"},
    {"grant_unspecified_right", [](S* s) { grant(s, "g", "h", {0}); },
     "domain \"g\": invalid grant right 0: expected MAP_RO, MAP_RW or COPY"},
    {"grant_unknown_right", [](S* s) { grant(s, "g", "h", {9}); },
     "domain \"g\": invalid grant right 9: expected MAP_RO, MAP_RW or COPY"},
    {"grant_right_twice", [](S* s) { grant(s, "g", "h", {Grant::COPY, Grant::MAP_RW, Grant::COPY}); },
     "domain \"g\": grant right COPY listed twice"},
    // Events.
    {"event_unknown", [](S* s) { dom(s, "g")->add_events()->set_peer("nobody"); },
     "domain \"g\": event names unknown domain \"nobody\""},
    {"event_self", [](S* s) { dom(s, "g")->add_events()->set_peer("g"); },
     "domain \"g\" names itself as an event peer: binding its own channels needs no capability"},
    {"event_twice",
     [](S* s) {
         dom(s, "g")->add_events()->set_peer("h");
         dom(s, "g")->add_events()->set_peer("h");
     },
     "domain \"g\": second event capability for \"h\""},
    // Devices.
    {"pci_malformed", [](S* s) { dom(s, "g")->add_pci("0:03.0"); },
     "domain \"g\": malformed PCI function: expected BB:DD.F in hex (device 00-1f, function 0-7)"},
    {"pci_device", [](S* s) { dom(s, "g")->add_pci("00:20.0"); },
     "domain \"g\": malformed PCI function: expected BB:DD.F in hex (device 00-1f, function 0-7)"},
    {"pci_function", [](S* s) { dom(s, "g")->add_pci("00:1f.8"); },
     "domain \"g\": malformed PCI function: expected BB:DD.F in hex (device 00-1f, function 0-7)"},
    {"pci_shared",
     [](S* s) {
         dom(s, "g")->add_pci("0a:1F.7");
         dom(s, "h")->add_pci("0A:1f.7");
     },
     "PCI function 0a:1f.7 of domain \"h\" already belongs to domain \"g\""},
    {"pci_twice",
     [](S* s) {
         dom(s, "g")->add_pci("00:03.0");
         dom(s, "g")->add_pci("00:03.0");
     },
     "PCI function 00:03.0 of domain \"g\" already belongs to domain \"g\""},
    {"irq_range", [](S* s) { dom(s, "g")->add_irqs(24); }, "domain \"g\": irq 24 out of range 0-23"},
    {"irq_shared",
     [](S* s) {
         dom(s, "console")->add_irqs(4);
         dom(s, "h")->add_irqs(4);
     },
     "irq 4 of domain \"h\" already belongs to domain \"console\""},
    {"ioports_count", [](S* s) { ioports(s, "g", 0x60, 0); }, "domain \"g\": I/O port range at 0x60 has count 0"},
    {"ioports_past_end", [](S* s) { ioports(s, "g", 0xfff0, 0x11); },
     "domain \"g\": I/O port range 0xfff0 count 17 goes past port 0xffff"},
    {"ioports_first_past_end", [](S* s) { ioports(s, "g", 0x10000, 1); },
     "domain \"g\": I/O port range 0x10000 count 1 goes past port 0xffff"},
    {"ioports_overlap",
     [](S* s) {
         ioports(s, "g", 0x3f8, 8);
         ioports(s, "h", 0x3ff, 1);
     },
     "I/O port range 0x3ff-0x3ff of domain \"h\" overlaps 0x3f8-0x3ff of domain \"g\""},
    {"mmio_unaligned", [](S* s) { mmio(s, "g", 0xfebf0800, 0x1000); },
     "domain \"g\": MMIO range 0xfebf0800 size 0x1000: base and size must be multiples of 4K, size not 0"},
    {"mmio_empty", [](S* s) { mmio(s, "g", 0xfebf0000, 0); },
     "domain \"g\": MMIO range 0xfebf0000 size 0x0: base and size must be multiples of 4K, size not 0"},
    {"mmio_wraps", [](S* s) { mmio(s, "g", 0xfffffffffffff000ull, 0x2000); },
     "domain \"g\": MMIO range 0xfffffffffffff000 size 0x2000 wraps around"},
    {"mmio_overlap",
     [](S* s) {
         mmio(s, "g", 0xfebf0000, 0x2000);
         mmio(s, "h", 0xfebf1000, 0x1000);
     },
     "MMIO range 0xfebf1000-0xfebf1fff of domain \"h\" overlaps 0xfebf0000-0xfebf1fff of domain \"g\""},
    // Connections.
    {"connection_unknown_frontend", [](S* s) { add_connection(s, "nobody", "h", Connection::RING); },
     "connections[3]: frontend names unknown domain \"nobody\""},
    {"connection_unknown_backend", [](S* s) { add_connection(s, "h", "nobody", Connection::RING); },
     "connections[3]: backend names unknown domain \"nobody\""},
    {"connection_no_backend", [](S* s) { add_connection(s, "h", "", Connection::RING); },
     "connections[3]: backend names no domain"},
    {"connection_no_kind", [](S* s) { add_connection(s, "h", "g", Connection::KIND_UNSPECIFIED); },
     "connections[3] (\"h\" to \"g\") has no kind (RING, CONSOLE, XENSTORE, VIF or VBD)"},
    {"connection_unknown_kind", [](S* s) { add_connection(s, "h", "g", Connection::Kind(7)); },
     "connections[3] (\"h\" to \"g\") has no kind (RING, CONSOLE, XENSTORE, VIF or VBD)"},
    {"connection_self", [](S* s) { add_connection(s, "h", "h", Connection::RING); },
     "connections[3]: connection from \"h\" to itself"},
    {"console_backend_role", [](S* s) { add_connection(s, "h", "g", Connection::CONSOLE); },
     "CONSOLE connection's backend \"g\" has role GUEST, not CONSOLE"},
    {"xenstore_backend_role", [](S* s) { add_connection(s, "h", "console", Connection::XENSTORE); },
     "XENSTORE connection's backend \"console\" has role CONSOLE, not XENSTORE"},
    {"connection_twice", [](S* s) { add_connection(s, "g", "h", Connection::RING); },
     "duplicate RING connection from \"g\" to \"h\""},
    {"console_twice", [](S* s) { add_connection(s, "g", "console", Connection::CONSOLE); },
     "duplicate CONSOLE connection from \"g\" to \"console\""},
};

INSTANTIATE_TEST_SUITE_P(All, ManifestRules, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(ManifestDecode, SecondConsoleConnectionOfAFrontend) {
    // Two CONSOLE connections of one frontend to two CONSOLE-role backends
    // cannot be written (one console domain), but two XENSTORE ones to the
    // same backend are duplicates, and one of each kind is fine.
    moat::System s = base_system();
    add_connection(&s, "h", "console", Connection::CONSOLE);
    add_connection(&s, "h", "xenstore", Connection::XENSTORE);
    EXPECT_TRUE(decode(frame(s)).ok);
    add_connection(&s, "h", "xenstore", Connection::XENSTORE);
    EXPECT_EQ(decode_error(s), "duplicate XENSTORE connection from \"h\" to \"xenstore\"");
}

// VIF and VBD connections: the back-end's role, a mac only on a VIF and well
// formed, a disk exactly on a VBD, writable virtual disks of one back-end
// apart, macs distinct.
TEST(ManifestDecode, NetworkAndDiskConnections) {
    auto with_backends = [] {
        moat::System s = base_system();
        add_domain(&s, "net", moat::Domain::NETBACK, 4);
        add_domain(&s, "blk", moat::Domain::BLKBACK, 5);
        return s;
    };
    auto vif = [](moat::System* s, const char* fe, const char* be, const char* mac) {
        add_connection(s, fe, be, moat::Connection::VIF);
        if (mac) s->mutable_connections(s->connections_size() - 1)->set_mac(mac);
    };
    auto vbd = [](moat::System* s, const char* fe, const char* be, uint64_t first, uint64_t n, bool ro) {
        add_connection(s, fe, be, moat::Connection::VBD);
        moat::VirtualDisk* d = s->mutable_connections(s->connections_size() - 1)->mutable_disk();
        d->set_first_sector(first);
        d->set_sectors(n);
        d->set_read_only(ro);
    };
    moat::System s = with_backends();
    vif(&s, "g", "net", "00:16:3E:00:00:0a");
    vif(&s, "g", "net", nullptr);   // a second vif of one front-end is fine
    vbd(&s, "g", "blk", 0, 100, false);
    vbd(&s, "h", "blk", 100, 0, false);   // to the end, right after g's
    vbd(&s, "h", "blk", 50, 10, true);    // read-only inside g's writable one: refused below
    EXPECT_EQ(decode_error(s), "VBD of \"h\" overlaps a VBD of \"g\" on \"blk\", and one of them is writable");
    s.mutable_connections()->RemoveLast();
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& d = decoded();
    const manifest::Connection& v0 = d.connections[3];
    EXPECT_EQ(v0.kind, manifest::ConnKind::vif);
    ASSERT_TRUE(v0.has_mac);
    const uint8_t want[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x0a};
    EXPECT_EQ(std::memcmp(v0.mac, want, 6), 0);
    EXPECT_FALSE(d.connections[4].has_mac);
    EXPECT_EQ(d.connections[6].first_sector, 100u);
    EXPECT_EQ(d.connections[6].sectors, 0u);

    struct Bad {
        const char* why;
        void (*make)(moat::System*);
        const char* error;
    };
    static const Bad bad[] = {
        {"vif to a blkback", [](moat::System* s) { add_connection(s, "g", "blk", moat::Connection::VIF); },
         "VIF connection's backend \"blk\" has role BLKBACK, not NETBACK"},
        {"vbd to a netback",
         [](moat::System* s) {
             add_connection(s, "g", "net", moat::Connection::VBD);
             s->mutable_connections(s->connections_size() - 1)->mutable_disk();
         },
         "VBD connection's backend \"net\" has role NETBACK, not BLKBACK"},
        {"multicast mac",
         [](moat::System* s) {
             add_connection(s, "g", "net", moat::Connection::VIF);
             s->mutable_connections(s->connections_size() - 1)->set_mac("01:00:5e:00:00:01");
         },
         "connections[3]: mac \"01:00:5e:00:00:01\" is not a unicast xx:xx:xx:xx:xx:xx address"},
        {"short mac",
         [](moat::System* s) {
             add_connection(s, "g", "net", moat::Connection::VIF);
             s->mutable_connections(s->connections_size() - 1)->set_mac("00:16:3e:00:00");
         },
         "connections[3]: mac \"00:16:3e:00:00\" is not a unicast xx:xx:xx:xx:xx:xx address"},
        {"mac on a ring",
         [](moat::System* s) { s->mutable_connections(2)->set_mac("00:16:3e:00:00:01"); },
         "connections[2]: a mac is for VIF connections only"},
        {"vbd without disk", [](moat::System* s) { add_connection(s, "g", "blk", moat::Connection::VBD); },
         "connections[3]: a VBD connection needs its disk"},
        {"disk on a vif",
         [](moat::System* s) {
             add_connection(s, "g", "net", moat::Connection::VIF);
             s->mutable_connections(s->connections_size() - 1)->mutable_disk()->set_sectors(8);
         },
         "connections[3]: a disk is for VBD connections only"},
        {"sectors wrap",
         [](moat::System* s) {
             add_connection(s, "g", "blk", moat::Connection::VBD);
             auto* d = s->mutable_connections(s->connections_size() - 1)->mutable_disk();
             d->set_first_sector(~0ull - 4);
             d->set_sectors(10);
         },
         "connections[3]: disk sectors overflow"},
        {"same mac twice",
         [](moat::System* s) {
             add_connection(s, "g", "net", moat::Connection::VIF);
             s->mutable_connections(s->connections_size() - 1)->set_mac("00:16:3e:00:00:01");
             add_connection(s, "h", "net", moat::Connection::VIF);
             s->mutable_connections(s->connections_size() - 1)->set_mac("00:16:3e:00:00:01");
         },
         "VIFs of \"h\" and \"g\" have the same mac"},
    };
    for (const Bad& b : bad) {
        SCOPED_TRACE(b.why);
        moat::System t = with_backends();
        b.make(&t);
        EXPECT_EQ(decode_error(t), b.error);
    }
}

// The toolstack's create quota: decoded as written; on another role, with
// back-ends that cannot serve created guests, or with disks that are not a
// BLKBACK's, not in its back-ends, empty, overflowing or overlapping a
// manifest VBD (read-only or not), refused.
TEST(ManifestDecode, CreateQuota) {
    auto with_quota = [] {
        moat::System s = base_system();
        add_domain(&s, "blk", moat::Domain::BLKBACK, 4);
        moat::Domain* t = add_domain(&s, "toolstack", moat::Domain::TOOLSTACK, 5);
        moat::CreateQuota* q = t->mutable_may_create();
        q->set_domains(3);
        q->set_memory_kib(16384);
        q->add_backends("console");
        q->add_backends("xenstore");
        q->add_backends("blk");
        moat::CreateDisks* a = q->mutable_disks();
        a->set_backend("blk");
        a->set_first_sector(4096);
        a->set_sectors(4096);
        add_connection(&s, "g", "blk", moat::Connection::VBD);
        moat::VirtualDisk* d = s.mutable_connections(s.connections_size() - 1)->mutable_disk();
        d->set_first_sector(0);
        d->set_sectors(4096);   // ends right where the quota's begin
        return s;
    };
    {
        moat::System s = with_quota();
        Result r = decode(frame(s));
        ASSERT_TRUE(r.ok) << r.err;
        const manifest::Domain& t = decoded().domains[6];
        EXPECT_EQ(t.create_domains, 3u);
        EXPECT_EQ(t.create_memory_kib, 16384u);
        ASSERT_EQ(t.n_create_backends, 3u);
        EXPECT_EQ(t.create_backends[2], 5u);
        EXPECT_TRUE(decoded().has_create_disks);
        EXPECT_EQ(decoded().create_disk_backend, 5u);
        EXPECT_EQ(decoded().create_disk_first, 4096u);
        EXPECT_EQ(decoded().create_disk_sectors, 4096u);
    }
    {
        moat::System s = with_quota();
        dom(&s, "toolstack")->mutable_may_create()->clear_disks();
        Result r = decode(frame(s));
        ASSERT_TRUE(r.ok) << r.err;
        EXPECT_FALSE(decoded().has_create_disks);
    }
    struct Bad {
        std::function<void(moat::System*)> change;
        std::string error;
    };
    auto disks = [](moat::System* s) { return dom(s, "toolstack")->mutable_may_create()->mutable_disks(); };
    const Bad bad[] = {
        {[](moat::System* s) { *dom(s, "g")->mutable_may_create() = dom(s, "toolstack")->may_create(); },
         "domain \"g\": may_create is for the TOOLSTACK only, not GUEST"},
        {[](moat::System* s) { dom(s, "toolstack")->mutable_may_create()->set_domains(65); },
         "domain \"toolstack\": may_create.domains 65 out of range 1-64"},
        {[](moat::System* s) { dom(s, "toolstack")->mutable_may_create()->add_backends("h"); },
         "domain \"toolstack\": may_create.backends names \"h\", a GUEST: only CONSOLE, XENSTORE, NETBACK and BLKBACK domains serve created guests"},
        {[&](moat::System* s) { disks(s)->set_backend("console"); },
         "domain \"toolstack\": may_create.disks.backend \"console\" is a CONSOLE, not a BLKBACK"},
        {[&](moat::System* s) { disks(s)->set_backend("nobody"); },
         "domain \"toolstack\": may_create.disks.backend names unknown domain \"nobody\""},
        {[&](moat::System* s) { disks(s)->clear_backend(); },
         "domain \"toolstack\": may_create.disks.backend names no domain"},
        {[](moat::System* s) {
             auto* q = dom(s, "toolstack")->mutable_may_create();
             q->clear_backends();
             q->add_backends("console");
         },
         "domain \"toolstack\": may_create.disks.backend \"blk\" is not in may_create.backends"},
        {[&](moat::System* s) { disks(s)->set_sectors(0); }, "domain \"toolstack\": may_create.disks has no sectors"},
        {[&](moat::System* s) {
             disks(s)->set_first_sector(~0ull - 10);
             disks(s)->set_sectors(11);
         },
         "domain \"toolstack\": may_create.disks: the sectors overflow"},
        {[&](moat::System* s) { disks(s)->set_first_sector(4095); },
         "domain \"toolstack\": may_create.disks overlap the VBD of \"g\" on \"blk\""},
        {[](moat::System* s) {   // read-only, to the end of the device
             add_connection(s, "h", "blk", moat::Connection::VBD);
             moat::VirtualDisk* d = s->mutable_connections(s->connections_size() - 1)->mutable_disk();
             d->set_first_sector(8191);
             d->set_read_only(true);
         },
         "domain \"toolstack\": may_create.disks overlap the VBD of \"h\" on \"blk\""},
    };
    for (const Bad& b : bad) {
        moat::System s = with_quota();
        b.change(&s);
        EXPECT_EQ(decode_error(s), b.error);
    }
}

TEST(ManifestDecode, ModulesSharedAndInOrder) {
    moat::System s = base_system();
    add_domain(&s, "i", Domain::GUEST, 4);
    add_domain(&s, "j", Domain::GUEST, 2);   // an earlier image again
    add_domain(&s, "k", Domain::GUEST, 5);
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(decoded().domains[7].module, 5u);
    // The builder need not come first.
    moat::System t;
    add_domain(&t, "a", Domain::GUEST, 2);
    add_domain(&t, "b", Domain::BUILDER, 0);
    add_domain(&t, "c", Domain::GUEST, 3);
    r = decode(frame(t));
    EXPECT_TRUE(r.ok) << r.err;
}

// Ramdisks are boot modules numbered with the images (a domain's image
// first); domains may share one; the field is a plain uint32 on the wire.
TEST(ManifestDecode, Ramdisks) {
    moat::System s = base_system();
    dom(&s, "g")->set_ramdisk_module(4);
    dom(&s, "h")->set_ramdisk_module(4);   // shared
    add_domain(&s, "i", Domain::GUEST, 5)->set_ramdisk_module(6);
    add_domain(&s, "j", Domain::GUEST, 3)->set_ramdisk_module(6);
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& d = decoded();
    const uint32_t want[] = {0, 0, 0, 4, 4, 6, 6};
    for (unsigned i = 0; i < 7; ++i) EXPECT_EQ(d.domains[i].ramdisk_module, want[i]) << i;
    EXPECT_EQ(d.domains[5].module, 5u);

    // Every domain with an image and a ramdisk of its own: the most modules
    // a manifest can have (2 + 2 x (kMaxDomains - 1)).
    moat::System t;
    add_domain(&t, "builder", Domain::BUILDER, 0);
    for (unsigned i = 1; i < manifest::kMaxDomains; ++i)
        add_domain(&t, "d" + std::to_string(i), Domain::GUEST, 2 * i, 4)->set_ramdisk_module(2 * i + 1);
    r = decode(frame(t));
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(decoded().domains[manifest::kMaxDomains - 1].ramdisk_module, 2 * manifest::kMaxDomains - 1);
    const std::string last = "d" + std::to_string(manifest::kMaxDomains - 1);
    dom(&t, last)->set_ramdisk_module(2 * manifest::kMaxDomains);
    EXPECT_EQ(decode_error(t), "domain \"" + last + "\": ramdisk_module " + std::to_string(2 * manifest::kMaxDomains) +
                                   ", expected " + std::to_string(2 * manifest::kMaxDomains - 1) +
                                   " or an earlier one from 2");
}

// Encodings libprotobuf does not write but a decoder must take: fields in any
// order (connections and grants naming domains not read yet), unpacked
// repeated scalars, a field repeated (the last value wins).
TEST(ManifestDecode, OtherEncodings) {
    moat::System s = base_system();
    grant(&s, "builder", "h", {Grant::MAP_RW});
    Bytes domains, connections;
    for (const auto& d : s.domains()) domains += field(2, d.SerializeAsString());
    for (const auto& c : s.connections()) connections += field(3, c.SerializeAsString());
    Result r = decode(frame(connections + domains));
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(decoded().n_connections, 3u);
    EXPECT_EQ(decoded().connections[0].backend, 1u);
    EXPECT_EQ(decoded().domains[0].grants[0].peer, 4u);

    // irqs (15) and rights (Grant 2) unpacked, name (1) twice.
    moat::Domain extra;
    extra.set_name("first");
    extra.set_role(Domain::GUEST);
    extra.set_module(3);
    extra.set_memory_kib(4);
    Bytes e = extra.SerializeAsString();
    e += field(1, "extra");
    e += Bytes("\x78\x05\x78\x07", 4);   // irqs: 5, irqs: 7
    e += field(11, field(1, "h") + Bytes("\x10\x01\x10\x03", 4));   // grants { peer: "h" rights: MAP_RO rights: COPY }
    r = decode(frame(domains + field(2, e) + connections));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::Domain& d = decoded().domains[5];
    EXPECT_STREQ(d.name, "extra");
    EXPECT_EQ(decoded().find("first"), -1);
    ASSERT_EQ(d.n_irqs, 2u);
    EXPECT_EQ(d.irqs[0], 5u);
    EXPECT_EQ(d.irqs[1], 7u);
    ASSERT_EQ(d.n_grants, 1u);
    EXPECT_EQ(d.grants[0].rights, manifest::kGrantMapRo | manifest::kGrantCopy);

    // A string where a submessage belongs: refused, not misread.
    r = decode(frame(domains + Bytes("\x10\x05", 2)));
    EXPECT_FALSE(r.ok);
    // A uint32 that does not fit.
    moat::Domain big = extra;
    Bytes b = big.SerializeAsString() + Bytes("\x30\xff\xff\xff\xff\x1f", 6);   // vcpus: 2^36 - 1
    EXPECT_EQ(decode(frame(domains + field(2, b))).err,
              "manifest payload is not a valid moat.System: integer too large");
}

}  // namespace

// Issue 16: a manifest of kMaxDomains small guests, each with a console and a
// XenStore ring, decodes, and every name is found again.
TEST(ManifestDecode, ThousandsOfDomains) {
    moat::System s;
    add_domain(&s, "builder", moat::Domain::BUILDER, 0, 8192);
    add_domain(&s, "console", moat::Domain::CONSOLE, 2);
    add_domain(&s, "xenstore", moat::Domain::XENSTORE, 2);
    s.mutable_machine()->set_memory_mib(64 * 1024);
    for (unsigned i = 3; i < manifest::kMaxDomains; ++i) {
        const std::string name = "guest-" + std::to_string(i);
        add_domain(&s, name, moat::Domain::GUEST, 3, 4104)->set_cmdline("role=idle n=" + std::to_string(i));
        add_connection(&s, name, "console", moat::Connection::CONSOLE);
        add_connection(&s, name, "xenstore", moat::Connection::XENSTORE);
    }
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& d = decoded();
    ASSERT_EQ(d.n_domains, manifest::kMaxDomains);
    EXPECT_EQ(d.n_connections, 2 * (manifest::kMaxDomains - 3));
    for (unsigned i = 0; i < manifest::kMaxDomains; ++i) {
        EXPECT_EQ(d.find(s.domains(int(i)).name().c_str()), int(i));
        EXPECT_EQ(std::string(d.domains[i].cmdline), s.domains(int(i)).cmdline());
    }
    EXPECT_EQ(d.find("guest-99999"), -1);
    EXPECT_EQ(d.find(""), -1);
    // The whole decoded system stays small enough for the builder's memory.
    EXPECT_LE(sizeof(manifest::System), 2u << 20);
    EXPECT_LE(sizeof(manifest::Index), 1u << 20);

    // A late duplicate is still found (through the name table), naming the first.
    add_domain(&s, "guest-7", moat::Domain::GUEST, 3, 4);
    s.mutable_domains()->SwapElements(s.domains_size() - 1, 100);
    s.mutable_domains()->DeleteSubrange(s.domains_size() - 1, 1);
    EXPECT_EQ(decode_error(s), "duplicate domain name \"guest-7\" (domains[7] and [100])");
}

// What all domains hold together is bounded too (the pools of System), with
// its own message at the domain that goes past it.
TEST(ManifestDecode, PoolLimits) {
    {
        // kMaxGrants grants from kMaxGrants / 16 domains, then one more.
        moat::System s = base_system();
        for (unsigned p = 0; p < manifest::kMaxPerDomain; ++p)
            add_domain(&s, "p" + std::to_string(p), moat::Domain::GUEST, 3, 4);
        const unsigned holders = manifest::kMaxGrants / manifest::kMaxPerDomain;
        for (unsigned h = 0; h < holders; ++h) {
            moat::Domain* d = add_domain(&s, "h" + std::to_string(h), moat::Domain::GUEST, 3, 4);
            for (unsigned p = 0; p < manifest::kMaxPerDomain; ++p) {
                auto* g = d->add_grants();
                g->set_peer("p" + std::to_string(p));
                g->add_rights(moat::Grant::MAP_RO);
            }
        }
        s.mutable_machine()->set_memory_mib(1024);
        Result r = decode(frame(s));
        ASSERT_TRUE(r.ok) << r.err;
        EXPECT_EQ(decoded().n_grant_pool, manifest::kMaxGrants);
        // Each domain's list is its own stretch of the pool.
        const manifest::Domain& last = decoded().domains[decoded().n_domains - 1];
        ASSERT_EQ(last.n_grants, manifest::kMaxPerDomain);
        EXPECT_EQ(last.grants[15].peer, uint16_t(decoded().find("p15")));
        auto* g = add_domain(&s, "late", moat::Domain::GUEST, 3, 4)->add_grants();
        g->set_peer("p0");
        g->add_rights(moat::Grant::COPY);
        EXPECT_EQ(decode_error(s), "domain \"late\": more than " + std::to_string(manifest::kMaxGrants) +
                                       " grants in all domains together");
    }
    {
        // Command lines: kCmdlineBytes with their NULs, not one byte more.
        moat::System s = base_system();
        s.clear_connections();
        const unsigned n = manifest::kCmdlineBytes / (manifest::kCmdlineLen + 1);
        for (unsigned i = 0; i < n; ++i)
            add_domain(&s, "c" + std::to_string(i), moat::Domain::GUEST, 3, 4)->set_cmdline(std::string(1023, 'x'));
        Result r = decode(frame(s));
        ASSERT_TRUE(r.ok) << r.err;
        EXPECT_EQ(decoded().n_cmdline_pool, manifest::kCmdlineBytes);
        dom(&s, "g")->set_cmdline("y");
        EXPECT_EQ(decode_error(s), "domain \"c" + std::to_string(n - 1) + "\": the command lines of all domains " +
                                       "together are more than " + std::to_string(manifest::kCmdlineBytes) + " bytes");
    }
    {
        // Devices: kMaxDevices irqs in all (the decoder counts them as it
        // reads, before it finds two domains sharing a line).
        moat::System s = base_system();
        const unsigned holders = manifest::kMaxDevices / manifest::kMaxPerDomain;
        for (unsigned h = 0; h <= holders; ++h) {
            moat::Domain* d = add_domain(&s, "i" + std::to_string(h), moat::Domain::GUEST, 3, 4);
            for (unsigned k = 0; k < (h < holders ? manifest::kMaxPerDomain : 1); ++k) d->add_irqs(k);
        }
        EXPECT_EQ(decode_error(s), "domain \"i" + std::to_string(holders) + "\": more than " +
                                       std::to_string(manifest::kMaxDevices) + " irqs in all domains together");
    }
}

// manifest::Index: one link per (holder, peer) with what the grants, events
// and connections give together; the same links by peer; each domain's
// connections.
TEST(ManifestIndex, LinksAndConnections) {
    moat::System s = base_system();   // g: CONSOLE, XENSTORE, RING to h
    auto* gr = dom(&s, "h")->add_grants();   // h also names g in a grant
    gr->set_peer("g");
    gr->add_rights(moat::Grant::COPY);
    dom(&s, "g")->add_events()->set_peer("h");   // and g an event for h (the ring implies it)
    Result r = decode(frame(s));
    ASSERT_TRUE(r.ok) << r.err;
    const manifest::System& d = decoded();
    auto index = std::make_unique<manifest::Index>();
    index->build(d);
    const unsigned builder = 0, console = 1, xenstore = 2, g = 3, h = 4;

    auto link = [&](unsigned holder, unsigned peer) -> const manifest::Link* {
        unsigned n;
        const manifest::Link* l = index->links_of(holder, &n);
        const manifest::Link* found = nullptr;
        for (unsigned k = 0; k < n; ++k) {
            EXPECT_EQ(l[k].holder, holder);
            EXPECT_NE(l[k].peer, holder);
            if (l[k].peer == peer) {
                EXPECT_EQ(found, nullptr) << "two links " << holder << " -> " << peer;
                found = &l[k];
            }
        }
        return found;
    };
    // g, the front-end: may bind to each back-end, grants nothing to map.
    for (unsigned p : {console, xenstore, h}) {
        const manifest::Link* l = link(g, p);
        ASSERT_NE(l, nullptr) << p;
        EXPECT_TRUE(l->bind);
        EXPECT_EQ(l->grant, 0);
    }
    // The back-ends map g's ring; h's own grant adds COPY to the ring's MAP_RW.
    EXPECT_EQ(link(console, g)->grant, manifest::kGrantMapRw);
    EXPECT_EQ(link(h, g)->grant, manifest::kGrantMapRw | manifest::kGrantCopy);
    EXPECT_TRUE(link(h, g)->bind);
    // The store serves the builder's ring; nobody else names the builder.
    ASSERT_NE(link(xenstore, builder), nullptr);
    EXPECT_EQ(link(xenstore, builder)->grant, manifest::kGrantMapRw);
    EXPECT_EQ(link(console, builder), nullptr);
    unsigned n;
    index->links_of(builder, &n);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(link(console, h), nullptr);

    // By peer: g is named by the console, the store and h, and by nobody else.
    const uint32_t* naming = index->naming(g, &n);
    ASSERT_EQ(n, 3u);
    unsigned holders = 0;
    for (unsigned k = 0; k < n; ++k) {
        EXPECT_EQ(index->at(naming[k]).peer, g);
        holders |= 1u << index->at(naming[k]).holder;
    }
    EXPECT_EQ(holders, 1u << console | 1u << xenstore | 1u << h);
    uint32_t total = 0;
    for (unsigned i = 0; i < d.n_domains; ++i) {
        index->naming(i, &n);
        total += n;
    }
    EXPECT_EQ(total, index->links());

    // Connections: g is an end of all three, h of the ring, in manifest order.
    const uint16_t* cs = index->connections_of(g, &n);
    ASSERT_EQ(n, 3u);
    EXPECT_EQ(cs[0], 0);
    EXPECT_EQ(cs[1], 1);
    EXPECT_EQ(cs[2], 2);
    cs = index->connections_of(h, &n);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(cs[0], 2);
    index->connections_of(builder, &n);
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(index->is_device_backend(h));
    EXPECT_FALSE(index->is_device_backend(console));
    EXPECT_FALSE(index->is_device_backend(xenstore));
}
