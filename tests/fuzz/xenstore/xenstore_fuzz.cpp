// Bytes -> a sequence of requests from the builder and three domains, built
// from a small vocabulary (so that they meet each other's nodes, watches and
// transactions) or taken raw. After every message: exactly one reply of the
// right type and at most 4096 payload bytes, and Engine::check_invariants
// (every node's parent exists, counts match, no quota exceeded).

#include "../input.hpp"

#include <xenstore/engine.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

namespace {

using abi::XsType;

using Input = fuzz::Input;

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto* e = new (g_storage) xs::Engine(0);
    for (xs::DomId d = 1; d <= 3; ++d)
        if (!e->introduce(d).ok()) fail("introduce");
    Input in{data, size};
    uint32_t tx_ids[4] = {};
    while (in.n) {
        uint8_t ctl = in.byte();
        xs::DomId dom = ctl & 3;
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
            if (g_reply.hdr.len > xs::kPayloadMax) fail("reply too big");
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
            if (g_reply.hdr.len > xs::kPayloadMax) fail("reply too big");
            if (g_reply.hdr.req_id != ctl) fail("req_id not echoed");
            if (g_reply.hdr.type != type && !g_reply.is_error()) fail("reply type");
            if (g_reply.is_error() && (g_reply.hdr.len < 2 || g_reply.payload[g_reply.hdr.len - 1] != '\0'))
                fail("error reply not a name");
            if (type == uint32_t(XsType::transaction_start) && !g_reply.is_error())
                tx_ids[dom] = uint32_t(strtoul(g_reply.payload, nullptr, 10));
        }
        if (const char* why = e->check_invariants()) fail(why);
        if (ctl & 0x10) {
            while (e->next_event(dom, g_reply))
                if (g_reply.hdr.len > xs::kPayloadMax) fail("event too big");
        }
    }
    return 0;
}
