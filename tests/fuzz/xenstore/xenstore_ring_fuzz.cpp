// Bytes -> hostile clients on three rings (the builder's and two domains'):
// well-formed requests pushed in arbitrary pieces, raw bytes, arbitrary
// producer and consumer indices, scribbles over the store's own indices,
// partial consumption, releases and re-introductions, interleaved with
// server passes. After every pass:
//   * Engine::check_invariants holds (the ledger included), and every domain
//     can still take what is left of its reserve;
//   * a connection that is not broken never has more than a ring of
//     unconsumed responses, and the bytes the client had not consumed are
//     untouched;
//   * each connection's outstanding count matches the engine's;
//   * a broken connection stays broken and silent until re-attached.
// A released domain holds nothing any more.

#include "../input.hpp"

#include <xenstore/ring_server.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

using abi::XsType;
using Ring = abi::XenstoreDomainInterface;
constexpr uint32_t kRing = abi::kXenstoreRingSize;
constexpr int kConns = 3;  // domains 0 (builder), 1, 2

using Input = fuzz::Input;

// The engine's pools, made once and reused by every input.
void* arena() {
    static std::vector<std::max_align_t> mem(xs::Engine::arena_bytes(xs::kStandard) / sizeof(std::max_align_t) + 1);
    return mem.data();
}

const char* const kPaths[] = {"a", "a/b", "/local/domain/1/x", "/local/domain/2", "/tool", "@releaseDomain", "/", "w"};

alignas(xs::Engine) unsigned char g_engine[sizeof(xs::Engine)];
using Server = xs::PooledRingServer<kConns>;
alignas(Server) unsigned char g_server[sizeof(Server)];
Ring g_rings[kConns];
// Client-side bytes not yet pushed.
std::string g_pending[kConns];

void fail(const char* what, int d) {
    fprintf(stderr, "ring fuzz: domain %d: %s\n", d, what);
    abort();
}

// Whatever the others did, every domain can still take the rest of its reserve.
void check_reserves(const xs::Engine& e) {
    for (size_t i = 0; i < e.domains().high(); ++i) {
        const xs::Domain* d = e.domains().at(i);
        if (!d->in_use) continue;
        const xs::Amounts& r = e.domains().reserve(*d);
        xs::Amounts rest{};
        for (size_t k = 0; k < xs::kResCount; ++k) rest.v[k] = d->used.v[k] < r.v[k] ? r.v[k] - d->used.v[k] : 0;
        if (!e.domains().can_take(*d, rest).ok()) fail("its reserve was taken", d->id);
    }
}

std::string message(Input& in) {
    uint32_t type = in.byte() % abi::kXsTypeCount;
    std::string path = kPaths[in.byte() % (sizeof(kPaths) / sizeof(kPaths[0]))];
    std::string payload = path + '\0';
    switch (static_cast<XsType>(type)) {
    case XsType::write: payload.append(in.byte() % 4 ? in.byte() % 16 : 2000 + in.byte() * 8, 'v'); break;
    case XsType::watch:
    case XsType::unwatch: payload += std::string("t") + '\0'; break;
    case XsType::transaction_end: payload = std::string("F\0", 2); break;
    case XsType::introduce: payload = std::to_string(1 + in.byte() % 2) + '\0' + "1" + '\0' + "2" + '\0'; break;
    case XsType::release: payload = std::to_string(1 + in.byte() % 2) + '\0'; break;
    default: break;
    }
    uint32_t h[4] = {type, in.byte(), 0, uint32_t(payload.size())};
    std::string m(reinterpret_cast<const char*>(h), 16);
    return m + payload;
}

struct Hooked {
    xs::RingServer* server;
    unsigned attaches[kConns];
};
Hooked g_hooked;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    xs::Hooks hooks{&g_hooked,
                    [](void* ctx, xs::DomId d, uint64_t, uint32_t) {
                        auto* h = static_cast<Hooked*>(ctx);
                        if (d < kConns) {
                            h->server->attach(d, &g_rings[d], d);
                            h->attaches[d]++;
                        }
                    },
                    [](void* ctx, xs::DomId d) { static_cast<Hooked*>(ctx)->server->detach(d); }};
    auto* e = new (g_engine) xs::Engine(0, hooks, xs::kStandard, arena(), xs::Engine::arena_bytes(xs::kStandard));
    xs::RingServer* server = new (g_server) Server(*e);
    g_hooked = Hooked{server, {}};
    memset(g_rings, 0, sizeof g_rings);
    for (auto& p : g_pending) p.clear();
    server->attach(0, &g_rings[0], 0);
    for (xs::DomId d = 1; d < kConns; ++d)
        if (!e->introduce(d).ok()) fail("introduce", d);

    Input in{data, size};
    while (in.n) {
        uint8_t op = in.byte();
        int d = (op >> 4) % kConns;
        Ring& r = g_rings[d];
        switch (op & 15) {
        case 0:
        case 1:
        case 2:  // a well-formed request, queued
            g_pending[d] += message(in);
            [[fallthrough]];
        case 3: {  // push queued bytes, as much as the client believes fits
            uint32_t k = in.byte() * 8u + 1;
            uint32_t space = kRing - (r.req_prod - r.req_cons);
            if (space > kRing) space = 0;
            size_t n = std::min<size_t>({k, space, g_pending[d].size()});
            for (size_t i = 0; i < n; ++i) r.req[abi::xenstore_ring_slot(r.req_prod + uint32_t(i))] = g_pending[d][i];
            g_pending[d].erase(0, n);
            r.req_prod += uint32_t(n);
            break;
        }
        case 4: {  // raw bytes
            uint32_t k = in.byte();
            for (uint32_t i = 0; i < k; ++i) r.req[abi::xenstore_ring_slot(r.req_prod + i)] = char(in.byte());
            r.req_prod += k;
            break;
        }
        case 5: r.req_prod = in.u32(); break;
        case 6: r.rsp_cons = in.u32(); break;
        case 7:
        case 8: {  // consume some responses
            uint32_t k = in.byte() * 4u;
            uint32_t avail = r.rsp_prod - r.rsp_cons;
            r.rsp_cons += std::min(k, avail);
            break;
        }
        case 9:  // scribble on the store's indices
            r.req_cons = in.u32();
            r.rsp_prod = in.u32();
            break;
        case 10:  // release and re-introduce, fresh page
            if (d != 0 && e->release(xs::DomId(d)).ok()) {
                if (server->find(xs::DomId(d))) fail("connection survived release", d);
                if (const xs::Domain* rec = e->domains().find(xs::DomId(d)))
                    for (uint32_t u : rec->used.v)
                        if (u) fail("a released domain still holds something", d);
                memset(&r, 0, sizeof r);
                g_pending[d].clear();
                if (!e->introduce(xs::DomId(d)).ok()) fail("re-introduce", d);
            }
            break;
        default: {  // a pass over one connection, or over all
            bool all = (op & 15) >= 13;
            struct Snap {
                bool live;
                unsigned attaches;
                uint32_t cons, prod;
                char rsp[kRing];
            } snap[kConns];
            for (int i = 0; i < kConns; ++i) {
                xs::Connection* c = server->find(xs::DomId(i));
                snap[i].live = c && !c->broken();
                snap[i].attaches = g_hooked.attaches[i];
                snap[i].cons = g_rings[i].rsp_cons;
                snap[i].prod = c ? c->produced() : 0;
                memcpy(snap[i].rsp, g_rings[i].rsp, kRing);
            }
            if (all) {
                server->serve_all(nullptr, nullptr, nullptr);
            } else if (xs::Connection* c = server->find(xs::DomId(d))) {
                bool was_broken = c->broken();
                xs::ServeResult res = server->serve(*c);
                if (was_broken && (res.progress || res.notify || res.broke)) fail("broken connection served", d);
                if (res.broke != (!was_broken && c->broken())) fail("break not reported exactly once", d);
            }
            if (const char* why = e->check_invariants()) fail(why, d);
            check_reserves(*e);
            for (int i = 0; i < kConns; ++i) {
                xs::Connection* c = server->find(xs::DomId(i));
                if (!c) continue;
                const xs::Domain* dom = e->domains().find(xs::DomId(i));
                if (c->outstanding() != (dom ? dom->outstanding : 0)) fail("outstanding count differs", i);
                if (c->broken() && c->outstanding() != 0) fail("broken connection holds requests", i);
                // Checked across a pass that served i and kept its attachment.
                if (!(all || i == d) || !snap[i].live || c->broken() || snap[i].attaches != g_hooked.attaches[i])
                    continue;
                Ring& q = g_rings[i];
                if (c->produced() - snap[i].cons > kRing) fail("response ring overfilled", i);
                if (q.rsp_prod != c->produced() && c->produced() != snap[i].prod)
                    fail("produced index not published", i);
                // Only bytes beyond what the client had not consumed were written.
                if (snap[i].prod - snap[i].cons <= kRing)
                    for (uint32_t k = snap[i].cons; k != snap[i].prod; ++k)
                        if (q.rsp[abi::xenstore_ring_slot(k)] != snap[i].rsp[abi::xenstore_ring_slot(k)])
                            fail("unconsumed response overwritten", i);
            }
            break;
        }
        }
    }
    return 0;
}
