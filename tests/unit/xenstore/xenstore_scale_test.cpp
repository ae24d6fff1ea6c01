// The store at scale (issue 16): the domain index, the watch index and the
// ring server's ready list under hostile churn (domains introduced and
// released in random order with watches firing), each against a
// brute-force model; sizings for thousands of domains and the reserve each
// domain is guaranteed; and counters showing that one request costs the
// same with 10, 100 or 1,000 domains in the store.

#include "harness.hpp"
#include "ring_harness.hpp"

#include <xenstore/hosted.hpp>
#include <xenstore/ring_server.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace xstest;
using std::string;
using xs::Res;

// An engine sized for `domains` unprivileged domains in plenty of memory.
xs::Sizing roomy(uint32_t domains) { return xs::Engine::sizing_for(size_t(64) << 20, domains); }

string home(xs::DomId d) { return "/local/domain/" + std::to_string(d); }

// ---------------------------------------------------------------------------
// Sizing.

TEST(Sizing, StandardIsWhatItWas) {
    EXPECT_TRUE(xs::kStandard.adds_up());
    EXPECT_EQ(xs::kStandard.domains, 128u);
    for (size_t i = 0; i < xs::kResCount; ++i) EXPECT_EQ(xs::kStandard.reserve.v[i], xs::kReserve.v[i]);
}

TEST(Sizing, ReservesAddUpForAnyMemoryAndDomainCount) {
    for (size_t mib : {1, 2, 4, 8, 16, 32, 64, 128}) {
        for (uint32_t d : {1u, 8u, 128u, 1000u, 2000u, 4096u, 16384u}) {
            xs::Sizing s = xs::Engine::sizing_for(mib << 20, d);
            SCOPED_TRACE("MiB " + std::to_string(mib) + " domains " + std::to_string(d));
            if (s.domains == 0) continue;  // not even one fits
            EXPECT_TRUE(s.adds_up());
            EXPECT_LE(xs::Engine::arena_bytes(s), mib << 20);
            EXPECT_LE(s.domains, d);
            for (size_t i = 0; i < xs::kResCount; ++i) {
                EXPECT_GE(s.reserve.v[i], xs::kMinReserve.v[i]);
                EXPECT_LE(s.reserve.v[i], xs::kReserve.v[i]);
            }
            // Fewer domains than asked only once the reserve is down to the least.
            if (s.domains < d)
                for (size_t i = 0; i < xs::kResCount; ++i) EXPECT_EQ(s.reserve.v[i], xs::kMinReserve.v[i]);
        }
    }
    // Enough memory: every domain gets the full reserve.
    xs::Sizing big = roomy(2000);
    EXPECT_EQ(big.domains, 2000u);
    for (size_t i = 0; i < xs::kResCount; ++i) EXPECT_EQ(big.reserve.v[i], xs::kReserve.v[i]);
    // Tight memory: the reserve scales down before the domain count does.
    xs::Sizing tight = xs::Engine::sizing_for(size_t(16) << 20, 2000);
    EXPECT_EQ(tight.domains, 2000u);
    EXPECT_LT(tight.reserve[Res::blocks], xs::kReserve[Res::blocks]);
}

// Every one of 1,500 domains can hold its whole reserve while one hostile
// domain has taken all it can of the shared remainder, in a store whose
// memory made the reserve scale down.
TEST(Sizing, EveryDomainGetsItsReserveAtScale) {
    constexpr uint32_t kDomains = 1500;
    xs::Sizing s = xs::Engine::sizing_for(size_t(20) << 20, kDomains);
    ASSERT_EQ(s.domains, kDomains);
    ASSERT_LT(s.reserve[Res::records], xs::kReserve[Res::records]);
    Store st;
    st.e = std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, s);
    st.check = false;
    for (xs::DomId d = 1; d <= kDomains; ++d) st.introduce(d);
    // The hostile ones: as many nodes as each can, with values as large as
    // allowed, until the quota or the shared remainder stops them.
    for (xs::DomId h = 1; h <= 8; ++h) {
        string r = "OK";
        for (int i = 0; r == "OK"; ++i) r = st.write(h, home(h) + "/f" + std::to_string(i), string(2000, 'x'));
        EXPECT_EQ(r, "EQUOTA");
    }
    // Everybody else: its home plus reserve - 1 nodes, each one record and
    // one block (the path; no value).
    uint32_t per = s.reserve[Res::records] - 1;
    for (xs::DomId d = 9; d <= kDomains; ++d)
        for (uint32_t i = 0; i < per; ++i) ASSERT_EQ(st.write(d, home(d) + "/n" + std::to_string(i), ""), "OK") << d;
    EXPECT_EQ(st.e->check_invariants(), nullptr);
    // One more domain than the sizing has records for is refused.
    EXPECT_EQ(st.res(st.op(kBuilder, XsType::introduce, z(std::to_string(kDomains + 1)) + z("1") + z("1"))), "ENOSPC");
}

// ---------------------------------------------------------------------------
// The domain index.

TEST(DomainIndex, IdsUpToXensLimitIntroducedAndReleasedInAnyOrder) {
    std::mt19937 rng(16);
    Store st;
    st.e = std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, roomy(3000));
    st.check = false;
    std::set<xs::DomId> in;
    std::vector<xs::DomId> order;
    auto pick_new = [&] {
        for (;;) {
            xs::DomId d = xs::DomId(1 + rng() % (xs::kDomIdLimit - 1));  // 1 .. 32751
            if (!in.count(d)) return d;
        }
    };
    // The extremes first.
    for (xs::DomId d : {xs::DomId(1), xs::DomId(xs::kDomIdLimit - 1)}) {
        st.introduce(d);
        in.insert(d);
    }
    for (int step = 0; step < 12000; ++step) {
        bool add = in.size() < 50 || (in.size() < 2900 && rng() % 3 != 0);
        if (add) {
            xs::DomId d = pick_new();
            st.introduce(d);
            in.insert(d);
        } else {
            auto it = in.begin();
            std::advance(it, rng() % in.size());
            ASSERT_EQ(st.res(st.op(kBuilder, XsType::release, z(std::to_string(*it)))), "OK");
            in.erase(it);
        }
        if (step % 1000 == 0) {
            ASSERT_EQ(st.e->check_invariants(), nullptr);
            for (xs::DomId d : in) ASSERT_TRUE(st.e->is_introduced(d)) << d;
        }
        // A random id: introduced exactly when the model says so.
        xs::DomId probe = xs::DomId(rng() % xs::kDomIdLimit);
        ASSERT_EQ(st.e->is_introduced(probe), in.count(probe) == 1) << probe;
    }
    // Records: the builder's and one per introduced domain, nothing left of the released.
    EXPECT_EQ(st.e->domains().in_use(), in.size() + 1);
    EXPECT_EQ(st.e->check_invariants(), nullptr);
    // Xen's reserved ids are no domain's.
    EXPECT_EQ(st.res(st.op(kBuilder, XsType::introduce, z(std::to_string(xs::kDomIdLimit)) + z("1") + z("1"))),
              "EINVAL");
    EXPECT_FALSE(st.e->is_introduced(xs::DomId(xs::kDomIdLimit)));
}

// ---------------------------------------------------------------------------
// The watch index against a brute-force model.

struct ModelWatch {
    xs::DomId dom;
    string path;  // absolute, or special
    string token;
    bool relative;
};

bool self_or_below(const string& p, const string& anc) {
    if (anc == "/") return true;
    return p.size() >= anc.size() && p.compare(0, anc.size(), anc) == 0 && (p.size() == anc.size() || p[anc.size()] == '/');
}

struct WatchModel {
    std::vector<ModelWatch> watches;
    std::set<string> pub;  // nodes that exist under /pub
    std::map<xs::DomId, std::vector<string>> expect;

    // Readable by d: everything under /pub (everyone may read it); a
    // domain's home only by that domain (and the builder).
    static bool readable(const string& p, xs::DomId d) {
        if (d == kBuilder || self_or_below(p, "/pub")) return true;
        return self_or_below(p, home(d));
    }
    void event(const ModelWatch& w, const string& p) {
        string shown = w.relative ? p.substr(home(w.dom).size() + 1) : p;
        expect[w.dom].push_back(shown + "|" + w.token);
    }
    void changed(const string& p, bool exact) {
        for (auto& w : watches) {
            if (w.path[0] == '@') continue;
            bool hit = exact ? w.path == p : self_or_below(p, w.path);
            if (hit && readable(p, w.dom)) event(w, p);
        }
    }
    void special(const string& which) {
        // @introduceDomain and @releaseDomain belong to the builder: only it hears them.
        for (auto& w : watches)
            if (w.path == which && w.dom == kBuilder) event(w, which);
    }
    void write(const string& p) {
        if (self_or_below(p, "/pub"))
            for (string q = p; q != "/"; q = q.substr(0, std::max<size_t>(1, q.rfind('/')))) pub.insert(q);
        changed(p, false);
    }
    void rm(const string& p) {
        std::vector<string> gone;
        for (auto& q : pub)
            if (self_or_below(q, p)) gone.push_back(q);
        changed(p, false);
        for (auto& q : gone) {
            if (q != p) changed(q, true);
            pub.erase(q);
        }
    }
};

std::vector<string> sorted(std::vector<string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

TEST(WatchIndex, FiresWhatABruteForceScanWouldUnderChurn) {
    std::mt19937 rng(1616);
    Store st;
    st.e = std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, roomy(400));
    st.check = false;
    WatchModel m;
    ASSERT_EQ(st.write(kBuilder, "/pub", ""), "OK");
    ASSERT_EQ(st.set_perms(kBuilder, "/pub", {"r0"}), "OK");
    m.pub.insert("/pub");
    ASSERT_EQ(st.watch(kBuilder, "@introduceDomain", "intro"), "OK");
    ASSERT_EQ(st.watch(kBuilder, "@releaseDomain", "rel"), "OK");
    m.watches.push_back({kBuilder, "@introduceDomain", "intro", false});
    m.watches.push_back({kBuilder, "@releaseDomain", "rel", false});
    st.events(kBuilder);

    const char* abs_paths[] = {"/", "/pub", "/pub/a", "/pub/b", "/pub/a/b", "/pub/b/a", "/pub/a/b/c", "/pub/c/a/b",
                               "/local", "@introduceDomain", "@releaseDomain"};
    const char* rel_paths[] = {"data", "data/x", "control/shutdown"};
    const char* parts[] = {"a", "b", "c"};
    std::vector<xs::DomId> doms;
    std::set<xs::DomId> ids;

    auto check_events = [&](const char* what, int step) {
        std::vector<xs::DomId> all(doms);
        all.push_back(kBuilder);
        for (xs::DomId d : all) {
            auto got = sorted(st.events(d));
            auto want = sorted(m.expect[d]);
            m.expect[d].clear();
            ASSERT_EQ(got, want) << what << " at step " << step << ", domain " << d;
        }
    };

    for (int step = 0; step < 6000; ++step) {
        unsigned op = rng() % 100;
        if (op < 8 || doms.size() < 4) {
            // Introduce a new domain, any id.
            xs::DomId d;
            do d = xs::DomId(1 + rng() % (xs::kDomIdLimit - 1));
            while (ids.count(d));
            if (doms.size() >= 380) continue;
            st.introduce(d);
            doms.push_back(d);
            ids.insert(d);
            m.special("@introduceDomain");
            check_events("introduce", step);
        } else if (op < 13) {
            // Release one, any of them.
            size_t i = rng() % doms.size();
            xs::DomId d = doms[i];
            ASSERT_EQ(st.res(st.op(kBuilder, XsType::release, z(std::to_string(d)))), "OK");
            doms.erase(doms.begin() + long(i));
            ids.erase(d);
            std::erase_if(m.watches, [&](const ModelWatch& w) { return w.dom == d; });
            m.expect.erase(d);
            m.special("@releaseDomain");
            check_events("release", step);
        } else if (op < 40) {
            // A domain adds a watch (the registration event is not the index's: dropped).
            xs::DomId d = doms[rng() % doms.size()];
            bool rel = rng() % 4 == 0;
            string p = rel ? rel_paths[rng() % 3] : abs_paths[rng() % (sizeof abs_paths / sizeof *abs_paths)];
            string tok = "t" + std::to_string(rng() % 3);
            string r = st.watch(d, p, tok);
            string absp = rel ? home(d) + "/" + p : p;
            bool dup = std::any_of(m.watches.begin(), m.watches.end(), [&](const ModelWatch& w) {
                return w.dom == d && w.path == absp && w.token == tok;
            });
            ASSERT_EQ(r, dup ? "EEXIST" : "OK") << p;
            if (!dup) m.watches.push_back({d, absp, tok, rel});
            st.events(d);
        } else if (op < 50) {
            // A domain removes one of its watches.
            xs::DomId d = doms[rng() % doms.size()];
            std::vector<size_t> mine;
            for (size_t i = 0; i < m.watches.size(); ++i)
                if (m.watches[i].dom == d) mine.push_back(i);
            if (mine.empty()) continue;
            size_t i = mine[rng() % mine.size()];
            ModelWatch w = m.watches[i];
            string shown = w.relative ? w.path.substr(home(d).size() + 1) : w.path;
            ASSERT_EQ(st.unwatch(d, shown, w.token), "OK");
            m.watches.erase(m.watches.begin() + long(i));
        } else if (op < 85) {
            // The builder writes somewhere public, or in a domain's home.
            string p;
            if (rng() % 3) {
                p = "/pub";
                for (unsigned k = 0, depth = 1 + rng() % 3; k < depth; ++k) p += string("/") + parts[rng() % 3];
            } else {
                p = home(doms[rng() % doms.size()]) + (rng() % 2 ? "/data/x" : "/control/shutdown");
            }
            ASSERT_EQ(st.write(kBuilder, p, "v"), "OK");
            m.write(p);
            check_events("write", step);
        } else {
            // The builder removes a public subtree that exists.
            if (m.pub.size() < 2) continue;
            auto it = m.pub.begin();
            std::advance(it, 1 + rng() % (m.pub.size() - 1));
            string p = *it;
            if (p == "/pub") continue;
            ASSERT_EQ(st.rm(kBuilder, p), "OK");
            m.rm(p);
            check_events("rm", step);
        }
        if (step % 500 == 0) ASSERT_EQ(st.e->check_invariants(), nullptr);
    }
    EXPECT_EQ(st.e->check_invariants(), nullptr);
}

// ---------------------------------------------------------------------------
// Cost per request, with 10, 100 and 1,000 domains in the store.

struct Cost {
    uint64_t tree_probes, watch_probes;
};

// N domains set up as the census's idle guests are (a home, data/up, a
// watch on control/shutdown); then domain 7 writes and reads a node of its
// own and the builder writes its control/shutdown. What that costs.
Cost request_cost(uint32_t n) {
    Store st;
    st.e = std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, roomy(1000));
    st.check = false;
    for (xs::DomId d = 1; d <= n; ++d) {
        st.introduce(d);
        EXPECT_EQ(st.write(kBuilder, home(d) + "/name", "g" + std::to_string(d)), "OK");
        EXPECT_EQ(st.write(d, "data/up", "1"), "OK");
        EXPECT_EQ(st.watch(d, "control/shutdown", "shutdown"), "OK");
        st.events(d);
    }
    uint64_t t0 = st.e->tree().probes(), w0 = st.e->watches().probes();
    EXPECT_EQ(st.write(7, "data/k", "value"), "OK");
    EXPECT_EQ(st.read(7, "data/k"), "value");
    EXPECT_EQ(st.write(kBuilder, home(7) + "/control/shutdown", "poweroff"), "OK");
    EXPECT_EQ(st.events(7), std::vector<string>{"control/shutdown|shutdown"});
    return Cost{st.e->tree().probes() - t0, st.e->watches().probes() - w0};
}

TEST(ScaleCost, OneRequestCostsTheSameWith10Or1000Domains) {
    Cost c10 = request_cost(10), c100 = request_cost(100), c1000 = request_cost(1000);
    printf("records compared: %lu %lu %lu; watches compared: %lu %lu %lu (N = 10, 100, 1000)\n",
           (unsigned long)c10.tree_probes, (unsigned long)c100.tree_probes, (unsigned long)c1000.tree_probes,
           (unsigned long)c10.watch_probes, (unsigned long)c100.watch_probes, (unsigned long)c1000.watch_probes);
    // A scan would compare every record (over 4,000 with N = 1000) and every
    // watch (1,000); the indices compare what shares a bucket. Allow for a
    // few hash collisions, nothing that grows with N.
    EXPECT_LE(c1000.tree_probes, c10.tree_probes + 8);
    EXPECT_LE(c100.tree_probes, c10.tree_probes + 8);
    EXPECT_LE(c1000.watch_probes, c10.watch_probes + 4);
    EXPECT_LE(c100.watch_probes, c10.watch_probes + 4);
    EXPECT_LT(c1000.tree_probes, 40u);
}

// ---------------------------------------------------------------------------
// The ring server: port index, ready list, fairness.

// A server with n guests attached (domains 1..n, port 1000 + d) and the builder (port 1).
struct Many {
    std::unique_ptr<xs::HostedEngine> engine;
    std::vector<xs::Connection> pool;
    std::unique_ptr<xs::RingServer> server;
    std::map<xs::DomId, std::unique_ptr<FakeClient>> clients;

    explicit Many(uint32_t n) : engine(std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, roomy(n))), pool(n + 1) {
        server = std::make_unique<xs::RingServer>(*engine, pool.data(), pool.size());
        clients[kBuilder] = std::make_unique<FakeClient>();
        EXPECT_NE(server->attach(kBuilder, clients[kBuilder]->ring.get(), 1), nullptr);
        for (xs::DomId d = 1; d <= n; ++d) {
            EXPECT_TRUE(engine->introduce(d).ok());
            clients[d] = std::make_unique<FakeClient>();
            EXPECT_NE(server->attach(d, clients[d]->ring.get(), 1000u + d), nullptr);
        }
        server->serve_ready(nullptr, nullptr, nullptr);  // the new connections' first pass
    }
    // d sends one request; its port fires.
    void send(xs::DomId d, XsType t, const string& payload, uint32_t id = 1) {
        clients[d]->queue(request(t, payload, id));
        clients[d]->push();
        server->port_fired(d == kBuilder ? 1 : 1000u + d);
    }
    std::vector<Msg> take(xs::DomId d) {
        clients[d]->take();
        return clients[d]->messages();
    }
};

uint64_t passes_for_one_request_and_one_event(uint32_t n) {
    Many w(n);
    // Domain 5 watches a node of its own; the builder writes it.
    w.send(5, XsType::watch, z(home(5) + "/control") + z("tok"));
    w.server->serve_ready(nullptr, nullptr, nullptr);
    EXPECT_EQ(w.take(5).size(), 2u);  // the reply and the registration event
    uint64_t before = w.server->passes();
    w.send(kBuilder, XsType::write, z(home(5) + "/control") + "go");
    EXPECT_EQ(w.server->ready(), 1u);
    w.server->serve_ready(nullptr, nullptr, nullptr);
    auto got = w.take(5);
    EXPECT_EQ(got.size(), 1u);
    EXPECT_TRUE(!got.empty() && got[0].is_event());
    EXPECT_EQ(w.take(kBuilder).size(), 1u);
    return w.server->passes() - before;
}

TEST(ReadyList, AWakeupServesOnlyWhoHasWork) {
    // The builder's request, then domain 5's event: two passes, however many
    // connections are attached.
    EXPECT_EQ(passes_for_one_request_and_one_event(10), 2u);
    EXPECT_EQ(passes_for_one_request_and_one_event(100), 2u);
    EXPECT_EQ(passes_for_one_request_and_one_event(1000), 2u);
}

TEST(ReadyList, PortAndDomainIndices) {
    Many w(20);
    xs::Connection* c = w.server->find(7);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(w.server->by_port(1007), c);
    EXPECT_EQ(w.server->by_port(2000), nullptr);
    w.server->set_port(*c, 3000);
    EXPECT_EQ(w.server->by_port(1007), nullptr);
    EXPECT_EQ(w.server->by_port(3000), c);
    // A port outside the index is none (and attach refuses one).
    w.server->set_port(*c, uint32_t(xs::kMaxPorts));
    EXPECT_EQ(c->port(), 0u);
    Ring extra{};
    EXPECT_EQ(w.server->attach(40, &extra, uint32_t(xs::kMaxPorts)), nullptr);
    EXPECT_EQ(w.server->attach(xs::DomId(xs::kDomIdLimit), &extra, 5), nullptr);
    // Ready, then detached: off the list.
    w.server->set_port(*c, 1007);
    w.send(7, XsType::read, z(home(7)));
    w.send(8, XsType::read, z(home(8)));
    EXPECT_EQ(w.server->ready(), 2u);
    w.server->detach(7);
    EXPECT_EQ(w.server->ready(), 1u);
    EXPECT_EQ(w.server->find(7), nullptr);
    EXPECT_EQ(w.server->by_port(1007), nullptr);
    w.server->serve_ready(nullptr, nullptr, nullptr);
    EXPECT_EQ(w.take(8).size(), 1u);
    // The pool is full (20 guests and the builder); 7's slot is free again.
    EXPECT_EQ(w.server->connections(), 20u);
    Ring r{};
    EXPECT_NE(w.server->attach(7, &r, 1007), nullptr);
    EXPECT_EQ(w.server->attach(99, &extra, 1099), nullptr);
}

// Domains attached and detached in random order, ports firing at random:
// the indices always agree with a model, and the ready list holds each
// attached connection at most once, never a detached one.
TEST(ReadyList, ChurnKeepsTheIndicesRight) {
    std::mt19937 rng(7);
    constexpr size_t kPool = 300;
    auto engine = std::make_unique<xs::HostedEngine>(kBuilder, xs::Hooks{}, roomy(kPool));
    std::vector<xs::Connection> pool(kPool);
    xs::RingServer server(*engine, pool.data(), pool.size());
    std::map<xs::DomId, uint32_t> model;  // dom -> port
    std::vector<std::unique_ptr<Ring>> rings(kPool);
    for (auto& r : rings) {
        r = std::make_unique<Ring>();
        memset(r.get(), 0, sizeof(Ring));
    }
    std::set<uint32_t> ports;
    for (int step = 0; step < 20000; ++step) {
        unsigned op = rng() % 10;
        if (op < 4 && model.size() < kPool) {
            xs::DomId d = xs::DomId(1 + rng() % (xs::kDomIdLimit - 1));
            uint32_t p;
            do p = 1 + rng() % (xs::kMaxPorts - 1);
            while (ports.count(p));
            if (model.count(d)) continue;
            xs::Connection* c = server.attach(d, rings[server.connections()].get(), p);
            ASSERT_NE(c, nullptr);
            model[d] = p;
            ports.insert(p);
        } else if (op < 7 && !model.empty()) {
            auto it = model.begin();
            std::advance(it, rng() % model.size());
            server.detach(it->first);
            ports.erase(it->second);
            model.erase(it);
        } else if (op < 9) {
            server.port_fired(1 + rng() % (xs::kMaxPorts - 1));
        } else {
            server.serve_round(nullptr, nullptr, nullptr);
        }
        ASSERT_EQ(server.connections(), model.size());
        ASSERT_LE(server.ready(), model.size());
        if (step % 97 == 0) {
            for (auto& [d, p] : model) {
                ASSERT_NE(server.find(d), nullptr);
                ASSERT_EQ(server.by_port(p), server.find(d));
                ASSERT_EQ(server.find(d)->dom(), d);
            }
        }
    }
}

// One domain floods the store with requests; another sends one. In the
// first round the flooder gets at most its quota of turns and the other
// its reply; the flood is served in full over the following rounds.
TEST(Fairness, AFloodGetsOneTurnPerRound) {
    Many w(4);
    constexpr uint32_t kFlood = 30;  // small reads: all fit on the ring at once
    for (uint32_t i = 0; i < kFlood; ++i) w.clients[1]->queue(request(XsType::read, z(home(1)), i));
    w.clients[1]->push();
    ASSERT_TRUE(w.clients[1]->pending.empty());  // all on the ring
    w.server->port_fired(1001);
    w.send(2, XsType::read, z(home(2)));
    w.server->serve_round(nullptr, nullptr, nullptr);
    auto two = w.take(2);
    ASSERT_EQ(two.size(), 1u);
    auto first = w.take(1);
    EXPECT_GE(first.size(), 1u);
    EXPECT_LE(first.size(), size_t(xs::kPassTurns));
    EXPECT_EQ(w.server->ready(), 1u);  // the flooder, back at the end
    w.server->serve_ready(nullptr, nullptr, nullptr);
    EXPECT_EQ(first.size() + w.take(1).size(), size_t(kFlood));
}

}  // namespace
