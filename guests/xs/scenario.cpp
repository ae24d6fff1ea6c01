// XenStore scenarios, run against the real store domain (tests/system):
//   role=flood    exceeds each per-domain quota and gets Xen's error, while
//                 the other domains of the system go on being served;
//   role=tx       a transaction that conflicts with a change made meanwhile
//                 ends with EAGAIN and changes nothing, and succeeds retried;
//   role=watcher  watches a directory of the writer's and must see events
//                 only for the nodes it may read;
//   role=writer   the other half: writes a private and a readable node.
// The watcher is the front-end of a RING connection to the writer, which is
// how each learns the other's domain id (docs/system.md).

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <base/format.hpp>
#include <base/number.hpp>

using rt::check;

namespace {

constexpr uint64_t kWaitNs = 60'000'000'000;   // guest time, generous

long read_number(const char* path) {
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

// The peer's domain id from our side of the RING connection's nodes.
long peer_id(bool frontend) {   // frontend only
    char list[64], path[96];
    const char* dir = frontend ? "device/ring" : "backend/ring";
    auto l = rt::xs_directory(dir, list, sizeof list);
    const char* first = l && *l ? rt::xs_next_name(list, *l, nullptr) : nullptr;
    if (!first) return -1;
    base::snformat(path, sizeof path, "%s/%s/backend-id", dir, first);
    return read_number(path);
}

const char* name_of(const rt::XsStatus& s) { return s ? "OK" : rt::xs_error_name(s.error()); }

void flood() {
    // Nodes: 1000 per domain (its home and what the builder wrote count).
    char path[64];
    unsigned made = 0;
    rt::XsError first_error = rt::XsError::inval;
    bool refused = false;
    for (unsigned i = 0; i < 1100 && !refused; ++i) {
        base::snformat(path, sizeof path, "data/n%u", i);
        auto w = rt::xs_write(path, "x");
        if (w) ++made;
        else refused = true, first_error = w.error();
    }
    check(refused && first_error == rt::XsError::quota && made >= 990 && made <= 1000, "xs.flood_nodes_quota",
          "%u nodes made, then %s", made, refused ? rt::xs_error_name(first_error) : "nothing refused");
    // Room again after removing them (one rm takes the subtree).
    check(bool(rt::xs_rm("data")) && bool(rt::xs_write("data/again", "1")), "xs.flood_nodes_freed");

    // Watches: 128.
    unsigned watches = 0;
    rt::XsStatus last = {};
    for (unsigned i = 0; i < 140; ++i) {
        base::snformat(path, sizeof path, "data/w%u", i);
        last = rt::xs_watch(path, "t");
        if (!last) break;
        ++watches;
    }
    check(watches == 128 && !last && last.error() == rt::XsError::quota, "xs.flood_watches_quota",
          "%u watches, then %s", watches, name_of(last));
    check(bool(rt::xs_client().reset_watches()), "xs.flood_reset_watches");

    // Transactions: 10 open at once.
    uint32_t tx[12];
    unsigned open = 0;
    rt::XsError tx_error = rt::XsError::inval;
    for (unsigned i = 0; i < 12; ++i) {
        auto t = rt::xs_transaction_start();
        if (!t) {
            tx_error = t.error();
            break;
        }
        tx[open++] = *t;
    }
    check(open == 10 && tx_error == rt::XsError::quota, "xs.flood_transactions_quota", "%u open, then %s", open,
          rt::xs_error_name(tx_error));
    for (unsigned i = 0; i < open; ++i) (void)rt::xs_transaction_end(tx[i], false);

    // A node of more than 2048 bytes.
    static char big[3000];
    for (auto& c : big) c = 'b';
    auto w = rt::xs_write_bytes("data/big", big, sizeof big);
    auto ok = rt::xs_write_bytes("data/fits", big, 2048);
    check(!w && bool(ok), "xs.flood_node_size_quota", "3000 bytes: %s", name_of(w));
    // Still served afterwards.
    char buf[8];
    auto r = rt::xs_read("data/again", buf, sizeof buf);
    check(r && *r == 1 && buf[0] == '1', "xs.flood_still_served");
}

void tx_conflict() {
    check(bool(rt::xs_write("data/x", "1")), "xs.tx_setup");
    auto t = rt::xs_transaction_start();
    check(bool(t), "xs.tx_started");
    if (!t) return;
    char buf[8];
    auto r = rt::xs_read("data/x", buf, sizeof buf, *t);
    check(r && buf[0] == '1', "xs.tx_reads_in_transaction");
    check(bool(rt::xs_write("data/x", "2")), "xs.tx_outside_change");   // meanwhile, outside it
    check(bool(rt::xs_write("data/x", "3", *t)), "xs.tx_writes_in_transaction");
    auto end = rt::xs_transaction_end(*t, true);
    check(!end && end.error() == rt::XsError::again, "xs.tx_conflict_eagain", "end: %s", name_of(end));
    auto r2 = rt::xs_read("data/x", buf, sizeof buf);
    check(r2 && buf[0] == '2', "xs.tx_conflict_changed_nothing");
    // Retried, as xenbus drivers do, it commits.
    bool done = false;
    for (unsigned attempt = 0; attempt < 5 && !done; ++attempt) {
        auto u = rt::xs_transaction_start();
        if (!u) break;
        bool wrote = bool(rt::xs_read("data/x", buf, sizeof buf, *u)) && bool(rt::xs_write("data/x", "4", *u));
        auto e = rt::xs_transaction_end(*u, wrote);
        done = wrote && e;
    }
    auto r3 = rt::xs_read("data/x", buf, sizeof buf);
    check(done && r3 && buf[0] == '4', "xs.tx_retry_commits");
}

void watcher() {
    long writer = peer_id(true), self = read_number("domid");
    check(writer >= 0 && self >= 0, "xs.watcher_knows_writer", "writer %ld", writer);
    char dir[64], done[80], pub[80], secret[80];
    base::snformat(dir, sizeof dir, "/local/domain/%ld/data", writer);
    base::snformat(done, sizeof done, "%s/done", dir);
    base::snformat(pub, sizeof pub, "%s/public", dir);
    base::snformat(secret, sizeof secret, "%s/secret", dir);
    check(bool(rt::xs_watch(dir, "w")), "xs.watcher_watching");
    // Tell the writer: our ready node, readable by it.
    rt::XsPerm perms[] = {{uint16_t(self), 'n'}, {uint16_t(writer), 'r'}};
    check(bool(rt::xs_write("data/ready", "1")) && bool(rt::xs_set_perms("data/ready", perms, 2)), "xs.watcher_ready");
    bool saw_public = false, saw_secret = false, saw_done = false;
    uint64_t deadline = rt::now_ns() + kWaitNs;
    while (!saw_done) {
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev, deadline)) break;
        saw_public |= __builtin_strcmp(ev.path, pub) == 0;
        saw_secret |= __builtin_strcmp(ev.path, secret) == 0;
        saw_done |= __builtin_strcmp(ev.path, done) == 0;
    }
    check(saw_done, "xs.watcher_saw_done");
    check(saw_public, "xs.watch_event_for_readable_node");
    check(!saw_secret, "xs.no_watch_event_for_unreadable_node");
    // Reading it directly is refused too.
    char buf[16];
    auto r = rt::xs_read(secret, buf, sizeof buf);
    check(!r && r.error() == rt::XsError::acces, "xs.unreadable_node_read_refused");
}

void writer() {
    char list[64];
    auto l = rt::xs_directory("backend/ring", list, sizeof list);
    const char* fe = l && *l ? rt::xs_next_name(list, *l, nullptr) : nullptr;
    check(fe != nullptr, "xs.writer_knows_watcher");
    if (!fe) return;
    long self = read_number("domid");
    char ready[64];
    base::snformat(ready, sizeof ready, "/local/domain/%s/data/ready", fe);
    uint32_t watcher_id = 0;
    check(base::parse_u32(fe, __builtin_strlen(fe), watcher_id), "xs.writer_watcher_id");
    // Wait for the watcher (polling its node: we may read it once it exists).
    uint64_t deadline = rt::now_ns() + kWaitNs;
    while (read_number(ready) != 1 && rt::now_ns() < deadline) rt::sched_op(abi::SchedOp::yield);
    rt::XsPerm priv[] = {{uint16_t(self), 'n'}};
    rt::XsPerm shared[] = {{uint16_t(self), 'n'}, {uint16_t(watcher_id), 'r'}};
    check(bool(rt::xs_mkdir("data")) && bool(rt::xs_set_perms("data", shared, 2)), "xs.writer_dir");
    // Each node is created with its permissions in one transaction, so no
    // event can fire while the private one is still readable.
    bool ok = true;
    auto write_with = [&](const char* path, const rt::XsPerm* p, size_t n) {
        auto t = rt::xs_transaction_start();
        if (!t) return false;
        bool w = bool(rt::xs_write(path, "v", *t)) && bool(rt::xs_set_perms(path, p, n, *t));
        return w && bool(rt::xs_transaction_end(*t, true));
    };
    ok &= write_with("data/secret", priv, 1);
    ok &= write_with("data/public", shared, 2);
    ok &= write_with("data/secret", priv, 1);   // changed again: still no event for the watcher
    ok &= write_with("data/done", shared, 2);
    check(ok, "xs.writer_wrote");
}

}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "xs.connected");
    if (rt::has_arg("role=flood")) flood();
    else if (rt::has_arg("role=tx")) tx_conflict();
    else if (rt::has_arg("role=watcher")) watcher();
    else if (rt::has_arg("role=writer")) writer();
    else rt::printf("no role= on the command line\n");
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
