// The XenStore filler (tests/system/xenstore_quota.cmake, issue 10 finding
// 4): one of several domains that try to exhaust every pool of the store
// beside the victim (guests/victim) and a guest the builder restarts
// meanwhile (restart.cpp). In turn it takes
//   nodes         data/n<i>, until refused;
//   transactions  until refused, and in each, records (reads of nodes that
//                 do not exist) until refused;
//   events        watches on data with long tokens, then writes below data
//                 much faster than it takes the events (it never asks for
//                 them: they pile up in the store, up to what it may hold);
//   watches       with long paths and long tokens, until refused;
//   bytes         values on its nodes, 2,040 bytes, then 480, then 60,
//                 until refused.
// Every refusal must be EQUOTA (never ENOMEM, never anything else) and must
// change nothing. Then it says it is full (data/xsfill-state: "full"), holds
// everything for hold_ms of guest time while the others run, gives it all
// back and checks that the store serves it again.
//
// Command line: hold_ms=N (default 4000).
// PASS lines: xsfill.nodes_equota, xsfill.transactions_equota,
// xsfill.tx_records_equota, xsfill.event_flood_served, xsfill.watches_equota,
// xsfill.bytes_equota, xsfill.refusals_changed_nothing, xsfill.full,
// xsfill.served_after_release.

#include "common.hpp"

using namespace xsattack;
using rt::check;
using rt::XsError;

namespace {

constexpr unsigned kNodeQuota = 1000;   // Xen's, services/xenstore/include/xenstore/config.hpp
constexpr unsigned kMaxTx = 12;         // more than the quota of 10

char g_value[2100];
char g_long_path[1100];
char g_token[1600];

unsigned g_refusals_checked, g_refusals_wrong;

// A refused request must have changed nothing: `still` says whether what it
// would have changed is as before.
void refusal_left(bool still, const char* what) {
    ++g_refusals_checked;
    if (!still) {
        ++g_refusals_wrong;
        rt::printf("a refused %s changed the store\n", what);
    }
}

const char* value_of(unsigned len, char c) {
    for (unsigned i = 0; i < len; ++i) g_value[i] = c;
    g_value[len] = '\0';
    return g_value;
}

// Nodes data/n<i> (empty values) until refused; how many it made.
unsigned fill_nodes() {
    char path[32];
    unsigned made = 0;
    rt::XsStatus last;
    for (; made < kNodeQuota + 10; ++made) {
        base::snformat(path, sizeof path, "data/n%u", made);
        last = rt::xs_write(path, "");
        if (!last) break;
    }
    bool equota = !last && last.error() == XsError::quota;
    char buf[4];
    auto back = rt::xs_read(path, buf, sizeof buf);
    refusal_left(!back && back.error() == XsError::noent, "node");
    rt::printf("nodes: %u made, then %s%s\n", made, name_of(last),
               made + 3 < kNodeQuota ? " (short of its quota: the shared remainder was gone)" : "");
    check(equota && made > 0, "xsfill.nodes_equota", "%u nodes, then %s", made, name_of(last));
    return made;
}

// Transactions until refused, and records in each until refused. They stay open.
unsigned fill_transactions(uint32_t* tx, unsigned& records) {
    unsigned open = 0;
    XsError refused = XsError::inval;
    for (; open < kMaxTx; ++open) {
        auto t = rt::xs_transaction_start();
        if (!t) {
            refused = t.error();
            break;
        }
        tx[open] = *t;
    }
    check(open > 0 && open < kMaxTx && refused == XsError::quota, "xsfill.transactions_equota",
          "%u open, then %s", open, rt::xs_error_name(refused));
    records = 0;
    unsigned ended_by_equota = 0;
    char path[32], buf[4];
    for (unsigned k = 0; k < open; ++k) {
        for (unsigned i = 0; i < 600; ++i) {
            base::snformat(path, sizeof path, "data/q%u", i);
            auto r = rt::xs_read(path, buf, sizeof buf, tx[k]);
            if (!r && r.error() == XsError::quota) {
                ++ended_by_equota;
                break;
            }
            if (r || r.error() != XsError::noent) {
                rt::printf("transaction read %s: %s\n", path, name_of(r));
                break;
            }
            ++records;
        }
    }
    rt::printf("transactions: %u open, %u records in them\n", open, records);
    check(open > 0 && ended_by_equota == open, "xsfill.tx_records_equota", "%u of %u ended by EQUOTA",
          ended_by_equota, open);
    return open;
}

// Watches on data with long tokens, then writes below data: each fires every
// one of them, and the events (1.5 KiB each) come in far faster than the
// ring takes them; it never asks for them. Its own requests go on being
// served all the while.
void flood_events() {
    unsigned watches = 0;
    for (unsigned i = 0; i < 8; ++i) {
        base::snformat(g_token, sizeof g_token, "e%u-%s", i, value_of(1500, 'e'));
        if (rt::xs_watch("data", g_token)) ++watches;
    }
    unsigned served = 0;
    for (unsigned i = 0; i < 64; ++i) served += bool(rt::xs_write("data/n0", ""));
    rt::printf("events: %u watches fired 64 times; the client dropped %lu events it had no room for\n", watches,
               (unsigned long)rt::xs_client().dropped_watch_events());
    check(watches > 0 && served == 64, "xsfill.event_flood_served", "%u watches, %u of 64 writes served", watches,
          served);
}

// Watches with long paths and tokens until refused.
void fill_watches() {
    base::snformat(g_long_path, sizeof g_long_path, "data/w/%s", value_of(1000, 'p'));
    unsigned made = 0;
    rt::XsStatus last;
    for (; made < 200; ++made) {
        base::snformat(g_token, sizeof g_token, "w%u-%s", made, value_of(1000, 't'));
        last = rt::xs_watch(g_long_path, g_token);
        if (!last) break;
    }
    refusal_left(!rt::xs_unwatch(g_long_path, g_token), "watch");  // was never registered
    rt::printf("watches: %u with 1 KiB paths and tokens, then %s\n", made, name_of(last));
    check(!last && last.error() == XsError::quota, "xsfill.watches_equota", "%u watches, then %s", made,
          name_of(last));
}

// Values on its nodes, big then smaller, until refused at the smallest.
void fill_bytes(unsigned nodes) {
    static const unsigned kSizes[] = {2040, 480, 60};
    char path[32], buf[4];
    unsigned next = 1, written = 0;   // n0 is the event flood's
    rt::XsStatus last;
    for (unsigned size : kSizes) {
        for (; next < nodes; ++next) {
            base::snformat(path, sizeof path, "data/n%u", next);
            last = rt::xs_write(path, value_of(size, 'b'));
            if (!last) break;
            written += size;
        }
        if (!last && last.error() != XsError::quota) break;
    }
    auto back = rt::xs_read(path, buf, sizeof buf);
    refusal_left(back && *back == 0, "value");  // still empty
    rt::printf("bytes: %u in values on %u nodes, then %s\n", written, next - 1, name_of(last));
    check(!last && last.error() == XsError::quota, "xsfill.bytes_equota", "%u bytes, then %s", written,
          name_of(last));
}

}  // namespace

void rt::main() {
    const uint64_t hold_ns = rt::cmdline_number("hold_ms", 4000) * kMs;
    const uint64_t start = rt::now_ns();
    check(bool(rt::xs_init()), "xsfill.connected");
    auto self = rt::xs_read_number("domid");
    // Its state node, readable by every domain, before it fills anything.
    rt::XsPerm everyone[] = {{uint16_t(self ? *self : 0), 'r'}};
    bool flag = self && rt::xs_write(kStateNode, "fill") && rt::xs_set_perms(kStateNode, everyone, 1);
    check(flag, "xsfill.state_node");

    unsigned nodes = fill_nodes();
    uint32_t tx[kMaxTx];
    unsigned records = 0;
    unsigned open = fill_transactions(tx, records);
    flood_events();
    fill_watches();
    fill_bytes(nodes);
    check(g_refusals_checked == 3 && g_refusals_wrong == 0, "xsfill.refusals_changed_nothing",
          "%u of %u refusals changed something", g_refusals_wrong, g_refusals_checked);

    // Full: rewriting the flag at its size needs nothing from the store.
    auto full = rt::xs_write(kStateNode, "full");
    check(bool(full), "xsfill.full", "the state node: %s", name_of(full));
    rt::printf("full after %lu ms: %u nodes, %u transaction records; holding it for %lu ms\n",
               (unsigned long)((rt::now_ns() - start) / kMs), nodes, records, (unsigned long)(hold_ns / kMs));
    sleep_ns(hold_ns);

    // Everything back, and the store serves it again.
    for (unsigned k = 0; k < open; ++k) (void)rt::xs_transaction_end(tx[k], false);
    auto reset = rt::xs_client().reset_watches();
    auto rm = rt::xs_rm("data");
    auto big = rt::xs_write("data/after", value_of(2048, 'a'));
    char back[2100];
    auto r = rt::xs_read("data/after", back, sizeof back);
    check(reset && rm && big && r && *r == 2048, "xsfill.served_after_release", "reset %s, rm %s, write %s, read %s",
          name_of(reset), name_of(rm), name_of(big), name_of(r));
    rt::printf("released everything after %lu ms\n", (unsigned long)((rt::now_ns() - start) / kMs));
    done();
}
