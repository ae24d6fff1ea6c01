// The console front-end: Xen's PV console ring (io/console.h) on the page
// start_info names, or console_io when there is none.

#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>

#include <abi/console_io.hpp>
#include <base/format.hpp>

namespace rt {

namespace {

enum class Mode : uint8_t { unknown, ring, hypervisor };
Mode g_mode = Mode::unknown;
uint32_t g_port;
// The ring frame is mapped over this page of the image.
alignas(4096) uint8_t g_ring_page[4096];
// Our own indices: what we produced into out[] and consumed from in[]
// (the page's copies are for the back-end; ours are not taken back from it).
abi::XenconsRingIdx g_out_prod, g_in_cons;

constexpr uint64_t kWaitNs = 10'000'000;   // a full ring is looked at again after 10 ms at most

abi::XenconsInterface& ring() { return *reinterpret_cast<abi::XenconsInterface*>(g_ring_page); }

uint32_t load(const abi::XenconsRingIdx* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store(abi::XenconsRingIdx* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

bool map_ring() {
    const abi::StartInfo& si = start_info();
    if (si.console.domU.mfn == 0 || si.console.domU.evtchn == 0 || si.console.domU.evtchn >= abi::kEvtchnWords * 64)
        return false;
    uint64_t flags = kPteP | kPteRw | kPteA | kPteD;
    if (update_va_mapping(ptr(g_ring_page), (si.console.domU.mfn << 12) | flags) != 0) {
        // Not a frame of ours by that number: the builder's pfn nr_pages - 2.
        if (si.nr_pages < 2 || update_va_mapping(ptr(g_ring_page), (mfn_of_pfn(si.nr_pages - 2) << 12) | flags) != 0)
            return false;
    }
    g_port = si.console.domU.evtchn;
    // Go on from where the page is (zero on a fresh one).
    g_out_prod = load(&ring().out_prod);
    g_in_cons = load(&ring().in_cons);
    return true;
}

Mode mode() {
    if (g_mode == Mode::unknown) g_mode = map_ring() ? Mode::ring : Mode::hypervisor;
    return g_mode;
}

// The ring is full: tell the back-end, then sleep until it signals the port
// (it does after taking bytes) or a short timeout, whichever is first.
void wait_for_room() {
    notify(g_port);
    // A notification left pending from before must not make the poll return
    // at once: clear it, then look at the ring once more.
    __atomic_fetch_and(&shared_info().evtchn_pending[g_port / 64], ~(1ull << (g_port % 64)), __ATOMIC_SEQ_CST);
    if (g_out_prod - load(&ring().out_cons) < abi::kXenconsOutSize) return;
    uint32_t port = g_port;
    abi::SchedPoll p{ptr(&port), 1, now_ns() + kWaitNs};
    long r = sched_op(abi::SchedOp::poll, &p);
    // Still full (a timeout, or a clock that is not running yet): let others
    // run before the next look, so this never spins.
    if (r != 0 || g_out_prod - load(&ring().out_cons) >= abi::kXenconsOutSize) sched_op(abi::SchedOp::yield);
}

void ring_out(const char* s, size_t n) {
    abi::XenconsInterface& r = ring();
    while (n) {
        // A back-end that moved out_cons past what we produced gets nothing
        // more until it puts that right: treated as a full ring.
        uint32_t used = g_out_prod - load(&r.out_cons);
        if (used >= abi::kXenconsOutSize) {
            wait_for_room();
            continue;
        }
        size_t k = abi::kXenconsOutSize - used;
        if (k > n) k = n;
        for (size_t i = 0; i < k; ++i) r.out[abi::xencons_out_slot(g_out_prod + uint32_t(i))] = s[i];
        g_out_prod += uint32_t(k);
        store(&r.out_prod, g_out_prod);
        s += k;
        n -= k;
        notify(g_port);
    }
}

}  // namespace

void console_use_hypervisor() { g_mode = Mode::hypervisor; }

unsigned console_port() { return mode() == Mode::ring ? g_port : 0; }

void console_out(const char* s, size_t n) {
    if (mode() == Mode::ring) {
        ring_out(s, n);
        return;
    }
    console_write(s, n);   // the hypervisor takes it all (continuing long writes itself)
}

size_t console_read(char* buf, size_t n) {
    if (mode() != Mode::ring) return 0;
    abi::XenconsInterface& r = ring();
    uint32_t avail = load(&r.in_prod) - g_in_cons;
    if (avail > abi::kXenconsInSize) {
        // The back-end's index makes no sense: skip to it, take nothing.
        g_in_cons = load(&r.in_prod);
        store(&r.in_cons, g_in_cons);
        return 0;
    }
    size_t k = avail < n ? avail : n;
    for (size_t i = 0; i < k; ++i) buf[i] = r.in[abi::xencons_in_slot(g_in_cons + uint32_t(i))];
    if (k) {
        g_in_cons += uint32_t(k);
        store(&r.in_cons, g_in_cons);
        notify(g_port);
    }
    return k;
}

void printf(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = base::vsnformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    console_out(buf, n < sizeof buf ? n : sizeof buf - 1);
}

}  // namespace rt
