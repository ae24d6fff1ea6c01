#pragma once
// A driver for xs::Engine in tests: builds wire messages, returns replies as
// strings.

#include <xenstore/engine.hpp>
#include <xenstore/hosted.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace xstest {

using abi::XsType;

inline constexpr xs::DomId kBuilder = 0;

struct Rep {
    uint32_t type;
    uint32_t req_id;
    uint32_t tx_id;
    std::string body;
    bool err() const { return type == static_cast<uint32_t>(XsType::error); }
    // The error name without its NUL, or "" for success.
    std::string error() const { return err() ? body.substr(0, body.size() - 1) : ""; }
};

inline std::string z(const std::string& s) { return s + std::string(1, '\0'); }

inline std::vector<uint8_t> msg(XsType t, const std::string& payload, uint32_t tx = 0, uint32_t req = 7) {
    std::vector<uint8_t> m(16 + payload.size());
    uint32_t h[4] = {static_cast<uint32_t>(t), req, tx, static_cast<uint32_t>(payload.size())};
    memcpy(m.data(), h, 16);
    memcpy(m.data() + 16, payload.data(), payload.size());
    return m;
}

struct Store {
    std::unique_ptr<xs::HostedEngine> e = std::make_unique<xs::HostedEngine>(kBuilder);
    // Engine::check_invariants after every request (bulk fills turn it off
    // and check at their milestones: it takes time quadratic in the nodes).
    bool check = true;

    Rep raw(xs::DomId d, const std::vector<uint8_t>& m) {
        auto out = std::make_unique<xs::Reply>();
        e->handle(d, m.data(), m.size(), *out);
        EXPECT_LE(out->hdr.len, xs::kPayloadMax);
        return Rep{out->hdr.type, out->hdr.req_id, out->hdr.tx_id, std::string(out->payload, out->hdr.len)};
    }
    Rep op(xs::DomId d, XsType t, const std::string& payload, uint32_t tx = 0) {
        Rep r = raw(d, msg(t, payload, tx));
        EXPECT_TRUE(r.err() || r.type == static_cast<uint32_t>(t));
        EXPECT_EQ(r.req_id, 7u);
        EXPECT_EQ(r.tx_id, tx);
        if (check) EXPECT_EQ(e->check_invariants(), nullptr);
        return r;
    }
    // The error name, or "OK"/the body on success.
    std::string write(xs::DomId d, const std::string& p, const std::string& v, uint32_t tx = 0) {
        return res(op(d, XsType::write, z(p) + v, tx));
    }
    std::string read(xs::DomId d, const std::string& p, uint32_t tx = 0) {
        return res(op(d, XsType::read, z(p), tx));
    }
    std::string mkdir(xs::DomId d, const std::string& p, uint32_t tx = 0) { return res(op(d, XsType::mkdir, z(p), tx)); }
    std::string rm(xs::DomId d, const std::string& p, uint32_t tx = 0) { return res(op(d, XsType::rm, z(p), tx)); }
    std::string dir(xs::DomId d, const std::string& p, uint32_t tx = 0) { return res(op(d, XsType::directory, z(p), tx)); }
    std::string get_perms(xs::DomId d, const std::string& p) { return res(op(d, XsType::get_perms, z(p))); }
    std::string set_perms(xs::DomId d, const std::string& p, const std::vector<std::string>& perms, uint32_t tx = 0) {
        std::string s = z(p);
        for (auto& x : perms) s += z(x);
        return res(op(d, XsType::set_perms, s, tx));
    }
    std::string watch(xs::DomId d, const std::string& p, const std::string& tok) {
        return res(op(d, XsType::watch, z(p) + z(tok)));
    }
    std::string unwatch(xs::DomId d, const std::string& p, const std::string& tok) {
        return res(op(d, XsType::unwatch, z(p) + z(tok)));
    }
    uint32_t tx_start(xs::DomId d) {
        Rep r = op(d, XsType::transaction_start, z(""));
        if (r.err()) return 0;
        return static_cast<uint32_t>(std::stoul(r.body));
    }
    std::string tx_end(xs::DomId d, uint32_t tx, bool commit) {
        Rep r = raw(d, msg(XsType::transaction_end, z(commit ? "T" : "F"), tx));
        if (check) EXPECT_EQ(e->check_invariants(), nullptr);
        return res(r);
    }
    void introduce(xs::DomId d) { ASSERT_EQ(res(op(kBuilder, XsType::introduce, z(std::to_string(d)) + z("1234") + z("5"))), "OK"); }
    // Events queued for d, as "path|token" strings; drains them.
    std::vector<std::string> events(xs::DomId d) {
        std::vector<std::string> v;
        auto out = std::make_unique<xs::Reply>();
        while (e->next_event(d, *out)) {
            EXPECT_EQ(out->hdr.type, static_cast<uint32_t>(XsType::watch_event));
            std::string b(out->payload, out->hdr.len);
            EXPECT_EQ(b.back(), '\0');
            auto nul = b.find('\0');
            v.push_back(b.substr(0, nul) + "|" + b.substr(nul + 1, b.size() - nul - 2));
        }
        return v;
    }
    static std::string res(const Rep& r) {
        if (r.err()) return r.error();
        if (r.body == std::string("OK\0", 3)) return "OK";
        return r.body;
    }
};

}  // namespace xstest
