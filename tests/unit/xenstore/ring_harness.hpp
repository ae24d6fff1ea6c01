#pragma once
// Drives xs::Connection / xs::RingServer over xenstore_domain_interface
// pages in plain memory, with a fake client written independently of the
// runtime's xenbus client: it pushes request bytes as ring space allows and
// takes response bytes, splitting them into messages itself.

#include "harness.hpp"

#include <xenstore/hosted.hpp>
#include <xenstore/ring_server.hpp>

#include <abi/xs_wire.hpp>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace xstest {

using Ring = abi::XenstoreDomainInterface;
inline constexpr uint32_t kRingSize = abi::kXenstoreRingSize;

// A message as it came off the response ring.
struct Msg {
    uint32_t type, req_id, tx_id;
    std::string body;
    bool is_event() const { return type == uint32_t(XsType::watch_event); }
    bool is_error() const { return type == uint32_t(XsType::error); }
    std::string error() const { return is_error() ? body.substr(0, body.size() - 1) : ""; }
};

inline std::vector<uint8_t> request(XsType t, const std::string& payload, uint32_t req_id, uint32_t tx = 0) {
    return msg(t, payload, tx, req_id);
}

// The client end of one ring.
struct FakeClient {
    std::unique_ptr<Ring> ring = std::make_unique<Ring>();
    std::deque<uint8_t> pending;  // request bytes not yet on the ring
    std::string in;               // response bytes taken, not yet split into messages

    FakeClient() { memset(ring.get(), 0, sizeof(Ring)); }
    // Starts both rings at `idx` (to test the wrap of slots and of 32-bit indices).
    void start_at(uint32_t idx) {
        ring->req_cons = ring->req_prod = idx;
        ring->rsp_cons = ring->rsp_prod = idx;
    }

    void queue(const std::vector<uint8_t>& bytes) { pending.insert(pending.end(), bytes.begin(), bytes.end()); }
    // Moves up to `limit` queued bytes onto the request ring, as space allows; returns how many.
    size_t push(size_t limit = SIZE_MAX) {
        uint32_t space = kRingSize - (ring->req_prod - ring->req_cons);
        size_t n = 0;
        while (n < limit && space && !pending.empty()) {
            ring->req[abi::xenstore_ring_slot(ring->req_prod)] = char(pending.front());
            pending.pop_front();
            ring->req_prod++;
            space--;
            n++;
        }
        return n;
    }
    // Takes up to `limit` response bytes.
    size_t take(size_t limit = SIZE_MAX) {
        size_t n = 0;
        while (n < limit && ring->rsp_cons != ring->rsp_prod) {
            in.push_back(ring->rsp[abi::xenstore_ring_slot(ring->rsp_cons)]);
            ring->rsp_cons++;
            n++;
        }
        return n;
    }
    uint32_t rsp_unconsumed() const { return ring->rsp_prod - ring->rsp_cons; }
    // Complete messages taken so far (removed from `in`).
    std::vector<Msg> messages() {
        std::vector<Msg> v;
        for (;;) {
            if (in.size() < 16) break;
            uint32_t h[4];
            memcpy(h, in.data(), 16);
            EXPECT_LE(h[3], xs::kPayloadMax);
            if (in.size() < 16 + size_t(h[3])) break;
            v.push_back(Msg{h[0], h[1], h[2], in.substr(16, h[3])});
            in.erase(0, 16 + size_t(h[3]));
        }
        return v;
    }
};

// Connections a test's server holds.
inline constexpr size_t kConnections = 129;

// An engine (builder = domain 0), a server, and clients attached to it.
struct World {
    std::unique_ptr<xs::HostedEngine> engine;
    std::unique_ptr<xs::PooledRingServer<kConnections>> server;
    std::vector<std::unique_ptr<FakeClient>> clients;  // index = domain id
    unsigned notifies[8] = {};
    unsigned breaks[8] = {};

    World() : engine(std::make_unique<xs::HostedEngine>(kBuilder)), server(std::make_unique<xs::PooledRingServer<kConnections>>(*engine)) {
        for (int i = 0; i < 8; ++i) clients.push_back(std::make_unique<FakeClient>());
    }
    FakeClient& c(xs::DomId d) { return *clients[d]; }
    xs::Connection* attach(xs::DomId d) { return server->attach(d, clients[d]->ring.get(), 100 + d); }
    void introduce(xs::DomId d) {
        ASSERT_TRUE(engine->introduce(d, 0, 0).ok());
        ASSERT_NE(attach(d), nullptr);
    }
    xs::ServeResult serve(xs::DomId d) {
        xs::Connection* conn = server->find(d);
        EXPECT_NE(conn, nullptr);
        xs::ServeResult r = server->serve(*conn);
        EXPECT_EQ(engine->check_invariants(), nullptr);
        return r;
    }
    bool serve_all() {
        return server->serve_all(
            this, [](void* w, xs::Connection& c) { static_cast<World*>(w)->notifies[c.dom()]++; },
            [](void* w, xs::Connection& c) { static_cast<World*>(w)->breaks[c.dom()]++; });
    }
    // Sends one request from d and returns its reply (pushing, serving and
    // taking until it is there). Other messages taken meanwhile (events,
    // before or after it) stay in inbox[d], in order.
    Msg call(xs::DomId d, XsType t, const std::string& payload, uint32_t req_id = 1, uint32_t tx = 0) {
        FakeClient& cl = c(d);
        cl.queue(request(t, payload, req_id, tx));
        for (int round = 0; round < 1000; ++round) {
            cl.push();
            serve_all();
            cl.take();
            for (auto& m : cl.messages()) inbox[d].push_back(m);
            for (auto it = inbox[d].begin(); it != inbox[d].end(); ++it)
                if (!it->is_event()) {
                    Msg m = *it;
                    inbox[d].erase(it);
                    return m;
                }
        }
        ADD_FAILURE() << "no reply";
        return Msg{};
    }
    // Serves everyone, takes what d has, returns (and forgets) d's inbox.
    std::vector<Msg> drain(xs::DomId d, size_t limit = SIZE_MAX) {
        serve_all();
        c(d).take(limit);
        for (auto& m : c(d).messages()) inbox[d].push_back(m);
        std::vector<Msg> v(inbox[d].begin(), inbox[d].end());
        inbox[d].clear();
        return v;
    }
    std::deque<Msg> inbox[8];
};

inline std::string event_str(const Msg& m) {
    auto nul = m.body.find('\0');
    return m.body.substr(0, nul) + "|" + m.body.substr(nul + 1, m.body.size() - nul - 2);
}

}  // namespace xstest
