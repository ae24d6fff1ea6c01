// Rings of several pages (role=hostile, after the other attacks): a
// front-end of its own that speaks the multi-page ring handshake
// (ring-page-order, ring-ref0..N-1) which rt::Blkfront does not. blkback
// must refuse an order above the max-ring-page-order it offered, a ring
// page missing or never granted (mapping none of the others), and serve
// a ring of the largest order it offered, every slot of every page; a
// garbage index on it disconnects it, after which blkback holds none of
// its pages. Then rt::Blkfront connects again with one page, as before.

#include "common.hpp"

#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/xenbus.hpp>

#include <base/format.hpp>
#include <ring/ring.hpp>

namespace blkguest {

namespace {

enum XenbusState : long { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

constexpr unsigned kPages = blk::kMaxRingPages;
constexpr uint32_t kFirstRef = 400;  // kPages ring pages, then the data page (clear of rt::Blkfront's 448..)
constexpr uint32_t kDataRef = kFirstRef + kPages;
constexpr uint32_t kNeverGranted = 300;
constexpr uint64_t kWaitNs = 20'000'000'000;

alignas(4096) uint8_t g_ring[kPages][4096];
alignas(4096) uint8_t g_data[4096];
blk::FrontRing g_front;
uint32_t g_port;
char g_dir[48], g_backend[96];

long read_number(const char* path) {
    auto v = rt::xs_read_number(path);
    return v ? long(*v) : -1;
}

bool write_mine(const char* key, const char* value, uint32_t tx = 0) {
    char path[128];
    base::snformat(path, sizeof path, "%s/%s", g_dir, key);
    return bool(rt::xs_write(path, value, tx));
}

// The back-end's state once it is one of want1/want2 (or the deadline
// passed: the last read).
long wait_backend(long want1, long want2, uint64_t deadline) {
    char path[128];
    base::snformat(path, sizeof path, "%s/state", g_backend);
    if (!rt::xs_watch(path, "multipage")) return -1;
    long state = -1;
    for (;;) {
        state = read_number(path);
        if (state == want1 || state == want2) break;
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev, deadline)) break;
    }
    (void)rt::xs_unwatch(path, "multipage");
    return state;
}

uint32_t frame_of(const void* page) { return uint32_t(rt::maddr_of(page) >> 12); }

bool grant_all() {
    grant::Table& gt = rt::grant_table();
    bool ok = true;
    for (unsigned i = 0; i < kPages; ++i) ok &= gt.grant_access(kFirstRef + i, disk().backend_id(), frame_of(g_ring[i]), false);
    return ok && gt.grant_access(kDataRef, disk().backend_id(), frame_of(g_data), false);
}

// Ends the grants: false if the back-end still maps (or copies from) one.
bool end_all() {
    grant::Table& gt = rt::grant_table();
    bool ok = true;
    for (unsigned i = 0; i <= kPages; ++i) ok &= gt.end_access(kFirstRef + i);
    return ok;
}

void remove_ring_nodes() {
    char path[128];
    base::snformat(path, sizeof path, "%s/ring-page-order", g_dir);
    (void)rt::xs_rm(path);
    for (unsigned i = 0; i < 8; ++i) {
        base::snformat(path, sizeof path, "%s/ring-ref%u", g_dir, i);
        (void)rt::xs_rm(path);
    }
}

// One handshake: Initialising (blkback starts over and says InitWait),
// then ring-page-order `order`, `refs` ring-ref<i> nodes (page i's
// reference, or kNeverGranted at `bad`), the port and Initialised in one
// transaction. The back-end's answer: Connected, or Closed.
long handshake(unsigned order, unsigned refs, int bad = -1) {
    uint64_t deadline = rt::now_ns() + kConnectNs;
    remove_ring_nodes();
    if (!write_mine("state", "1")) return -1;
    if (wait_backend(kInitWait, -1, deadline) != kInitWait) return -1;
    // A fresh port each time (the back-end closes its end when it lets go).
    if (g_port) {
        abi::EvtchnClose c{g_port};
        (void)rt::evtchn_op(abi::EvtchnOp::close, &c);
    }
    long port = rt::alloc_unbound(disk().backend_id());
    g_port = port > 0 ? uint32_t(port) : 0;
    // The ring over 2^order pages (all we have, for an order too big).
    __builtin_memset(g_ring, 0, sizeof g_ring);
    size_t bytes = order <= blk::kMaxRingPageOrder ? size_t(4096) << order : sizeof g_ring;
    if (!g_port || !g_front.init(g_ring, bytes)) return -1;
    for (unsigned attempt = 0; attempt < 10; ++attempt) {
        auto tx = rt::xs_transaction_start();
        if (!tx) return -1;
        char key[24], value[24];
        base::snformat(value, sizeof value, "%u", order);
        bool ok = write_mine("ring-page-order", value, *tx);
        for (unsigned i = 0; i < refs; ++i) {
            base::snformat(key, sizeof key, "ring-ref%u", i);
            base::snformat(value, sizeof value, "%u", int(i) == bad ? kNeverGranted : kFirstRef + i % kPages);
            ok &= write_mine(key, value, *tx);
        }
        base::snformat(value, sizeof value, "%u", g_port);
        ok &= write_mine("event-channel", value, *tx) && write_mine("protocol", "x86_64-abi", *tx) &&
              write_mine("state", "3", *tx);
        auto end = rt::xs_transaction_end(*tx, ok);
        if (ok && end) break;
        if (!ok || end.error() != rt::XsError::again) return -1;
    }
    return wait_backend(kConnected, kClosed, deadline);
}

// Closed on our side, after the back-end let go.
void close_mine() { (void)write_mine("state", "6"); }

// Rounds of a full ring (every slot of every page), good reads and bad
// requests mixed; each answered, and right.
void flood_ring(unsigned rounds) {
    unsigned sent = 0, answered = 0, right = 0;
    uint64_t id = 9'000'000;
    for (unsigned round = 0; round < rounds; ++round) {
        uint64_t first = id;
        unsigned n = 0;
        for (; n < g_front.size(); ++n) {
            abi::BlkifRequest r{};
            r.operation = abi::kBlkifOpRead;
            r.nr_segments = n % 4 == 3 ? 0 : 1;  // refused: no segment
            r.id = id++;
            r.sector_number = (n * 8) % (disk().info().sectors - 8);
            r.seg[0] = abi::BlkifSegment{kDataRef, 0, 7};
            if (!g_front.push_request(r)) break;
        }
        if (g_front.push_requests_and_check_notify()) rt::notify(g_port);
        sent += n;
        uint64_t deadline = rt::now_ns() + kWaitNs;
        for (unsigned k = 0; k < n;) {
            abi::BlkifResponse rsp;
            if (g_front.take_response(rsp)) {
                ++k;
                ++answered;
                uint64_t i = rsp.id - first;
                right += i < n && rsp.operation == abi::kBlkifOpRead &&
                         rsp.status == (i % 4 == 3 ? abi::kBlkifRspError : abi::kBlkifRspOkay);
                continue;
            }
            if (g_front.broken()) break;
            if (g_front.final_check_for_responses()) continue;
            if (!rt::wait_ports(&g_port, 1, deadline) && rt::now_ns() >= deadline) break;
        }
    }
    check(sent == rounds * g_front.size() && answered == sent && right == sent, "blk.hostile.multi_page_ring_served",
          "%u sent, %u answered, %u right (ring of %u)", sent, answered, right, g_front.size());
}

}  // namespace

void multipage_test() {
    rt::Blkfront& d = disk();
    unsigned max = backend_number("max-ring-page-order", 0);
    check(max == blk::kMaxRingPageOrder, "blk.hostile.max_ring_page_order_offered", "max-ring-page-order %u", max);
    base::snformat(g_dir, sizeof g_dir, "device/vbd/%u", d.devid());
    base::snformat(g_backend, sizeof g_backend, "%s", d.backend_path());
    check(d.close(rt::now_ns() + kWaitNs), "blk.hostile.closed_for_multipage", "%s", d.error());
    if (max != blk::kMaxRingPageOrder || !grant_all()) {
        check(false, "blk.hostile.multipage_grants");
        return;
    }

    // Above what was offered, pages missing or never granted: refused
    // (Closed), and blkback maps none of them.
    long st = handshake(max + 1, 1u << (max + 1));
    check(st == kClosed, "blk.hostile.ring_order_above_max_refused", "back-end state %ld", st);
    close_mine();
    st = handshake(64, 1);
    check(st == kClosed, "blk.hostile.ring_order_64_refused", "back-end state %ld", st);
    close_mine();
    st = handshake(max, (1u << max) - 1);
    check(st == kClosed, "blk.hostile.ring_ref_missing_refused", "back-end state %ld", st);
    close_mine();
    st = handshake(max, 1u << max, int(1u << max) - 1);
    check(st == kClosed, "blk.hostile.ring_ref_ungranted_refused", "back-end state %ld", st);
    close_mine();
    bool ended = end_all();
    check(ended, "blk.hostile.refused_rings_not_mapped");
    if (!ended || !grant_all()) return;

    // The largest ring offered: served, every slot of every page.
    st = handshake(max, 1u << max);
    check(st == kConnected && g_front.size() == 32u << max, "blk.hostile.multi_page_ring_connected",
          "back-end state %ld, ring of %u", st, g_front.size());
    if (st == kConnected) {
        (void)write_mine("state", "4");
        flood_ring(arg("multipage-rounds", 5));
        // A garbage producer index: disconnected (Closed), its pages let go.
        auto* hdr = static_cast<abi::SringHeader*>(static_cast<void*>(g_ring));
        __atomic_store_n(&hdr->req_prod, g_front.req_prod_pvt() + 1000, __ATOMIC_RELEASE);
        rt::notify(g_port);
        st = wait_backend(kClosed, -1, rt::now_ns() + kWaitNs);
        check(st == kClosed, "blk.hostile.multi_page_garbage_index_disconnected", "back-end state %ld", st);
    }
    close_mine();
    check(end_all(), "blk.hostile.multi_page_ring_unmapped");
    if (g_port) {
        abi::EvtchnClose c{g_port};
        (void)rt::evtchn_op(abi::EvtchnOp::close, &c);
        g_port = 0;
    }
    // Back to one page, through rt::Blkfront (it writes ring-ref only).
    remove_ring_nodes();
    bool again = d.connect(0, rt::now_ns() + kConnectNs);
    check(again, "blk.hostile.reconnected_after_multipage", "%s", d.error());
}

}  // namespace blkguest
