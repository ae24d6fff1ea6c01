// Bytes -> a sequence of requests from the builder and three domains, built
// from a small vocabulary (so that they meet each other's nodes, watches and
// transactions) or taken raw, and now and then a flood: one domain sending
// up to 128 requests of one kind in a row (nodes, big values, watches with
// long tokens, records in a transaction, transactions) to reach its quotas.
// After every message (and every flood): exactly one reply of the right
// type and at most 4096 payload bytes, never ENOMEM (the ledger keeps every
// pool from running dry: running out is EQUOTA for whoever asked), and
// Engine::check_invariants (every node's parent exists, counts match, the
// ledger matches what each domain holds, no quota exceeded, no shared
// remainder overdrawn); every domain can still take the rest of its
// reserve. At the end every domain is released and must hold nothing.

#include "../input.hpp"

#include <xenstore/engine.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

using abi::XsType;

using Input = fuzz::Input;

// The engine's pools, made once and reused by every input.
void* arena() {
    static std::vector<std::max_align_t> mem(xs::Engine::arena_bytes(xs::kStandard) / sizeof(std::max_align_t) + 1);
    return mem.data();
}

const char* const kPaths[] = {
    "a", "a/b", "a/b/c", "d", "/local/domain/1/a", "/local/domain/2", "/local/domain/2/x/y", "/local",
    "/", "/tool", "/tool/t", "@introduceDomain", "@releaseDomain", "/local/domain/3/a/b", "bad//path",
    "/local/domain/1",
};
const char* const kPerms[] = {"n0", "r1", "w2", "b3", "n1", "n2", "r0", "b1", "x9", "r"};

alignas(xs::Engine) unsigned char g_storage[sizeof(xs::Engine)];
xs::Reply g_reply;

void fail(const char* what) {
    fprintf(stderr, "invariant: %s\n", what);
    abort();
}

void check_reply() {
    if (g_reply.hdr.len > xs::kPayloadMax) fail("reply too big");
    if (g_reply.is_error() && g_reply.hdr.len == 7 && memcmp(g_reply.payload, "ENOMEM", 7) == 0)
        fail("ENOMEM: a pool ran dry");
}

// Whatever the others did, every domain can still take what is left of its
// reserve (config.hpp), one resource at a time and all at once.
void check_reserves(const xs::Engine& e) {
    for (size_t i = 0; i < e.domains().high(); ++i) {
        const xs::Domain* d = e.domains().at(i);
        if (!d->in_use) continue;
        const xs::Amounts& r = e.domains().reserve(*d);
        xs::Amounts all{};
        for (size_t k = 0; k < xs::kResCount; ++k) {
            if (d->used.v[k] >= r.v[k]) continue;
            xs::Amounts one{};
            one.v[k] = all.v[k] = r.v[k] - d->used.v[k];
            if (!e.domains().can_take(*d, one).ok()) fail("a domain's reserve was taken");
        }
        if (!e.domains().can_take(*d, all).ok()) fail("a domain's reserve was taken");
    }
}

// One request from dom, as the ring layer sends it.
void send(xs::Engine& e, xs::DomId dom, uint32_t type, uint32_t tx, const std::string& payload) {
    std::string m(16, '\0');
    uint32_t h[4] = {type, 0, tx, uint32_t(payload.size())};
    memcpy(m.data(), h, 16);
    m += payload;
    if (!e.begin_request(dom).ok()) return;
    e.handle(dom, reinterpret_cast<const uint8_t*>(m.data()), m.size(), g_reply);
    e.end_request(dom);
    check_reply();
}

// Up to 128 requests of one kind from dom, to run into its quotas.
void flood(xs::Engine& e, xs::DomId dom, uint8_t kind, Input& in, uint32_t* tx_ids) {
    unsigned count = 1u + in.byte() / 2u;
    size_t len = size_t(in.byte() % 36) * xs::kBlobBlockBytes;  // 0 .. 2100 bytes
    std::string base = "f" + std::to_string(in.byte() % 4) + "/";
    for (unsigned i = 0; i < count; ++i) {
        std::string n = base + std::to_string(i);
        switch (kind % 5) {
        case 0: send(e, dom, uint32_t(XsType::write), 0, n + '\0'); break;
        case 1: send(e, dom, uint32_t(XsType::write), 0, n + '\0' + std::string(len, 'v')); break;
        case 2: send(e, dom, uint32_t(XsType::watch), 0, n + '\0' + std::string(len, 't') + '\0'); break;
        case 3: send(e, dom, uint32_t(XsType::read), tx_ids[dom], n + '\0'); break;
        case 4:
            send(e, dom, uint32_t(XsType::transaction_start), 0, std::string(1, '\0'));
            if (!g_reply.is_error()) tx_ids[dom] = uint32_t(strtoul(g_reply.payload, nullptr, 10));
            break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto* e = new (g_storage) xs::Engine(0, {}, xs::kStandard, arena(), xs::Engine::arena_bytes(xs::kStandard));
    for (xs::DomId d = 1; d <= 3; ++d)
        if (!e->introduce(d).ok()) fail("introduce");
    Input in{data, size};
    uint32_t tx_ids[4] = {};
    bool flooded = false;  // one flood an input: the checks grow with the store
    while (in.n) {
        uint8_t ctl = in.byte();
        xs::DomId dom = ctl & 3;
        if ((ctl & 0xf0) == 0x70) {
            if (!flooded) flood(*e, dom, ctl >> 2, in, tx_ids);
            flooded = true;
            if (const char* why = e->check_invariants()) fail(why);
            check_reserves(*e);
            continue;
        }
        std::string payload;
        uint32_t type;
        uint32_t tx = 0;
        if (ctl & 0x80) {
            // Raw message bytes.
            size_t len = in.byte() | (size_t(in.byte() & 0x1f) << 8);
            if (len > in.n) len = in.n;
            std::string raw(reinterpret_cast<const char*>(in.p), len);
            in.p += len;
            in.n -= len;
            e->handle(dom, reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), g_reply);
            check_reply();
        } else {
            type = in.byte() % abi::kXsTypeCount;
            uint8_t sel = in.byte();
            std::string path = kPaths[sel % (sizeof(kPaths) / sizeof(kPaths[0]))];
            payload = path + '\0';
            switch (static_cast<XsType>(type)) {
            case XsType::write: payload.append(in.byte() % 64 ? in.byte() % 8 : 3000, 'v'); break;
            case XsType::watch:
            case XsType::unwatch: payload += std::string(1, char('a' + in.byte() % 3)) + '\0'; break;
            case XsType::set_perms:
                for (int k = in.byte() % 4; k >= 0; --k)
                    payload += std::string(kPerms[in.byte() % (sizeof(kPerms) / sizeof(kPerms[0]))]) + '\0';
                break;
            case XsType::transaction_end: payload = in.byte() & 1 ? std::string("T\0", 2) : std::string("F\0", 2); break;
            case XsType::transaction_start:
            case XsType::reset_watches: payload = std::string(1, '\0'); break;
            case XsType::introduce: payload = std::to_string(in.byte() % 6) + '\0' + "1" + '\0' + "2" + '\0'; break;
            case XsType::release:
            case XsType::get_domain_path:
            case XsType::is_domain_introduced: payload = std::to_string(in.byte() % 6) + '\0'; break;
            default: break;
            }
            if (ctl & 0x40) tx = tx_ids[dom];
            if (ctl & 0x20) tx = in.byte() % 8;
            std::string m(16, '\0');
            uint32_t h[4] = {type, ctl, tx, uint32_t(payload.size())};
            memcpy(m.data(), h, 16);
            m += payload;
            if (!e->begin_request(dom).ok()) continue;
            e->handle(dom, reinterpret_cast<const uint8_t*>(m.data()), m.size(), g_reply);
            e->end_request(dom);
            check_reply();
            if (g_reply.hdr.req_id != ctl) fail("req_id not echoed");
            if (g_reply.hdr.type != type && !g_reply.is_error()) fail("reply type");
            if (g_reply.is_error() && (g_reply.hdr.len < 2 || g_reply.payload[g_reply.hdr.len - 1] != '\0'))
                fail("error reply not a name");
            if (type == uint32_t(XsType::transaction_start) && !g_reply.is_error())
                tx_ids[dom] = uint32_t(strtoul(g_reply.payload, nullptr, 10));
        }
        if (const char* why = e->check_invariants()) fail(why);
        check_reserves(*e);
        if (ctl & 0x10) {
            while (e->next_event(dom, g_reply))
                if (g_reply.hdr.len > xs::kPayloadMax) fail("event too big");
        }
    }
    // A release gives back everything the domain held.
    for (xs::DomId d = 1; d <= 5; ++d) {
        if (!e->is_introduced(d)) continue;
        if (!e->release(d).ok()) fail("release");
        if (const xs::Domain* rec = e->domains().find(d))
            for (uint32_t u : rec->used.v)
                if (u) fail("a released domain still holds something");
        if (const char* why = e->check_invariants()) fail(why);
    }
    check_reserves(*e);
    return 0;
}
