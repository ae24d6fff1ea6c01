#include "backends.hpp"

#include "safe_copy.hpp"

#include <console/lines.hpp>

#include <abi/console.hpp>
#include <abi/console_io.hpp>
#include <abi/event_channel.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>

namespace console::backends {

namespace {

constexpr uint32_t kConsoleRef = 0;                     // Xen's reserved grant for the console page
constexpr uint64_t kPartialFlushNs = 1'000'000'000;    // a prompt shows after a second
constexpr char kCtrlRightBracket = 0x1d;
constexpr char kQuitKey = 'q';   // right after Ctrl-]: the system is asked to end

struct Backend {
    bool used = false;
    bool faulted = false;          // its page went away (the domain was destroyed)
    bool said_broken = false, said_input_full = false;
    uint64_t input_dropped = 0;    // bytes for in[] that found it full
    uint16_t dom = 0;
    uint32_t remote_port = 0, port = 0;
    abi::XenconsInterface* ring = nullptr;
    char name[abi::kConsoleNameMax + 1] = {};
    // Our indices; the page's copies are for the domain, never read back.
    abi::XenconsRingIdx out_cons = 0, in_prod = 0;
    uint64_t partial_since = 0;    // a line without its end waits since then
    LineAssembler lines;
};

Backend g_backends[kMax];
// Domain id to its backend's index + 1 (0: not served), and the unused
// backends: connecting, finding and letting go of a domain cost the same
// whatever the number served.
constexpr unsigned kDomIds = 0x8000;
uint16_t g_by_dom[kDomIds];
uint16_t g_free[kMax];
unsigned g_n_free;
// The backends in use, densely (serve and reap visit these, not all kMax),
// and where each is in that list.
uint16_t g_used[kMax], g_used_at[kMax];
unsigned g_n_used;
bool g_free_ready;
Sink g_sink;
int g_focus = -1;                  // the backend typed input goes to
char g_want_focus[abi::kConsoleNameMax + 1];   // focus=NAME: it takes the focus once served
bool g_said_no_focus;
bool g_escaped;   // the last key typed on COM1 was Ctrl-]: the next one may be kQuitKey
uint64_t g_said[0x8000 / 64];      // domains whose failure to connect was said

void emit(void* ctx, const char* text, size_t n) {
    auto* b = static_cast<Backend*>(ctx);
    char line[kMaxLineOut];
    g_sink(line, format_line(b->name, text, n, line));
}

bool load(Backend& b, abi::XenconsRingIdx* p, uint32_t* v) {
    if (!b.faulted && safe_load32(p, v) != 0) b.faulted = true;
    return !b.faulted;
}
bool store(Backend& b, abi::XenconsRingIdx* p, uint32_t v) {
    if (!b.faulted && safe_store32(p, v) != 0) b.faulted = true;
    return !b.faulted;
}

void say_once(uint16_t dom, const char* what, long err) {
    uint64_t bit = 1ull << (dom % 64);
    if (g_said[dom / 64 % (sizeof g_said / 8)] & bit) return;
    g_said[dom / 64 % (sizeof g_said / 8)] |= bit;
    rt::printf("domain %u: %s (error %ld)\n", dom, what, err);
}

// What the domain wrote since last time, to the sink; true if there was some.
bool pump(Backend& b) {
    uint32_t prod;
    if (!load(b, &b.ring->out_prod, &prod)) return false;
    uint32_t avail = prod - b.out_cons;
    if (avail == 0) return false;
    if (avail > abi::kXenconsOutSize) {
        // An index that makes no sense: go on from where it says it is.
        if (!b.said_broken) rt::printf("%s (domain %u): console ring index out of range, skipped\n", b.name, b.dom);
        b.said_broken = true;
        b.out_cons = prod;
        store(b, &b.ring->out_cons, prod);
        return false;
    }
    char buf[abi::kXenconsOutSize];
    size_t off = abi::xencons_out_slot(b.out_cons);
    size_t first = avail < abi::kXenconsOutSize - off ? avail : abi::kXenconsOutSize - off;
    if (b.faulted || safe_copy(buf, b.ring->out + off, first) != 0 ||
        safe_copy(buf + first, b.ring->out, avail - first) != 0) {
        b.faulted = true;
        return false;
    }
    b.out_cons = prod;
    if (!store(b, &b.ring->out_cons, prod)) return false;
    rt::notify(b.port);   // room again, if it was waiting for some
    b.lines.feed(buf, avail, emit, &b);
    return true;
}

void move_focus(int from) {
    g_focus = -1;
    unsigned start = from < 0 ? kMax - 1 : unsigned(from);
    for (unsigned k = 1; k <= kMax; ++k) {
        unsigned i = (start + k) % kMax;
        if (g_backends[i].used) {
            g_focus = int(i);
            break;
        }
    }
}

void say_focus() {
    if (g_focus < 0) rt::printf("input goes nowhere: no domain console is served\n");
    else rt::printf("input goes to %s (domain %u); Ctrl-] moves it on, Ctrl-] q ends the system\n",
                    g_backends[g_focus].name, g_backends[g_focus].dom);
}

void disconnect(Backend& b) {
    // What it wrote before it stopped (it writes no more: a few rounds).
    for (unsigned round = 0; round < 4 && pump(b); ++round) {
    }
    b.lines.flush(emit, &b);
    abi::EvtchnClose c{b.port};
    rt::evtchn_op(abi::EvtchnOp::close, &c);
    long r = rt::unmap_grant(b.ring);
    if (r != 0)
        rt::printf("%s (domain %u): console ring unmap failed (error %ld)%s\n", b.name, b.dom, r,
                   b.faulted ? ": the domain was destroyed first" : "");
    int idx = int(&b - g_backends);
    uint16_t dom = b.dom;
    b = Backend{};
    g_by_dom[dom % kDomIds] = 0;
    g_free[g_n_free++] = uint16_t(idx);
    const uint16_t moved = g_used[--g_n_used];   // the last one takes its place
    g_used[g_used_at[idx]] = moved;
    g_used_at[moved] = g_used_at[idx];
    g_said[dom / 64 % (sizeof g_said / 8)] &= ~(1ull << (dom % 64));
    if (g_focus == idx) {
        move_focus(idx);
        say_focus();
    }
}

}  // namespace

void init(Sink sink, const char* focus, size_t focus_len) {
    g_sink = sink;
    // Lowest first, as before: the first served is g_backends[0].
    for (unsigned i = 0; i < kMax; ++i) g_free[i] = uint16_t(kMax - 1 - i);
    g_n_free = kMax;
    g_free_ready = true;
    if (!focus || focus_len >= sizeof g_want_focus) return;
    __builtin_memcpy(g_want_focus, focus, focus_len);
    g_want_focus[focus_len] = '\0';
}

bool serving(uint16_t dom) { return dom < kDomIds && g_by_dom[dom] != 0; }

bool connect(uint16_t dom, uint32_t remote_port, const char* name) {
    if (serving(dom)) return true;
    if (dom >= kDomIds || !g_free_ready) return false;
    Backend* b = g_n_free ? &g_backends[g_free[g_n_free - 1]] : nullptr;
    if (!b) {
        say_once(dom, "no room to serve its console", -12);
        return false;
    }
    long err = 0;
    void* page = rt::map_grant(dom, kConsoleRef, false, &err);
    if (!page) {
        say_once(dom, "cannot map its console ring (grant 0)", err);
        return false;
    }
    long port = rt::bind_interdomain(dom, remote_port);
    if (port < 0) {
        rt::unmap_grant(page);
        say_once(dom, "cannot bind its console port", port);
        return false;
    }
    *b = Backend{};
    b->used = true;
    b->dom = dom;
    --g_n_free;
    g_by_dom[dom] = uint16_t(b - g_backends + 1);
    g_used_at[b - g_backends] = uint16_t(g_n_used);
    g_used[g_n_used++] = uint16_t(b - g_backends);
    b->remote_port = remote_port;
    b->port = uint32_t(port);
    b->ring = static_cast<abi::XenconsInterface*>(page);
    abi::console_name(name, 64, dom, b->name);
    // Take the domain's output from where the page says it is (what it
    // wrote before we came is in there still).
    load(*b, &b->ring->out_cons, &b->out_cons);
    load(*b, &b->ring->in_prod, &b->in_prod);
    rt::notify(b->port);   // it may be waiting for room already
    if (g_focus < 0 || (g_want_focus[0] && __builtin_strcmp(b->name, g_want_focus) == 0)) {
        g_focus = int(b - g_backends);
        say_focus();
    }
    return true;
}

bool serve(uint64_t now) {
    bool any = false;
    for (unsigned k = 0; k < g_n_used; ++k) {
        Backend& b = g_backends[g_used[k]];
        if (b.faulted) continue;
        any |= pump(b);
        if (!b.lines.pending()) b.partial_since = 0;
        else if (!b.partial_since) b.partial_since = now;
        else if (now - b.partial_since >= kPartialFlushNs) {
            b.lines.flush(emit, &b);
            b.partial_since = 0;
        }
    }
    return any;
}

namespace {
// Whether the domain b serves left: our channel to it is no longer bound to
// its port (it was destroyed), or `offers` (null: not asked) says so.
bool gone(Backend& b, bool (*offers)(uint16_t dom, uint32_t port)) {
    if (b.faulted) return true;
    abi::EvtchnStatus st{};
    st.dom = abi::kDomidSelf;
    st.port = b.port;
    if (rt::evtchn_op(abi::EvtchnOp::status, &st) != 0 || st.status != uint32_t(abi::EvtchnStat::interdomain) ||
        st.u.interdomain.dom != b.dom || st.u.interdomain.port != b.remote_port)
        return true;
    return offers && !offers(b.dom, b.remote_port);
}
}  // namespace

void reap(bool (*offers)(uint16_t dom, uint32_t port)) {
    // disconnect() moves the last in use into the place it frees.
    for (unsigned k = 0; k < g_n_used;) {
        Backend& b = g_backends[g_used[k]];
        if (gone(b, offers)) disconnect(b);
        else ++k;
    }
}

void reap_one(uint16_t dom, bool (*offers)(uint16_t dom, uint32_t port)) {
    if (!serving(dom)) return;
    Backend& b = g_backends[g_by_dom[dom] - 1];
    if (gone(b, offers)) disconnect(b);
}

namespace {
// Bytes for b's in[] ring, as many as it has room for; the rest are dropped
// (said once until it takes input again) and counted. The ring's index is
// read once and never trusted: a consumer index that makes no sense leaves
// no room.
void put_input(Backend& b, const char* s, size_t n) {
    uint32_t cons;
    if (!load(b, &b.ring->in_cons, &cons)) return;
    uint32_t used = b.in_prod - cons;
    size_t room = used >= abi::kXenconsInSize ? 0 : abi::kXenconsInSize - used;
    size_t take = n < room ? n : room;
    if (take < n) {
        b.input_dropped += n - take;
        if (!b.said_input_full)
            rt::printf("%s (domain %u) reads no input: typed bytes are dropped\n", b.name, b.dom);
        b.said_input_full = true;
    } else if (b.said_input_full) {
        b.said_input_full = false;
        rt::printf("%s (domain %u) reads input again: %lu typed bytes were dropped in all\n", b.name, b.dom,
                   static_cast<unsigned long>(b.input_dropped));
    }
    if (take == 0) return;
    // In at most two pieces: up to the ring's end, then from its start.
    size_t off = abi::xencons_in_slot(b.in_prod);
    size_t first = take < abi::kXenconsInSize - off ? take : abi::kXenconsInSize - off;
    if (safe_copy(&b.ring->in[off], s, first) != 0 || safe_copy(&b.ring->in[0], s + first, take - first) != 0) {
        b.faulted = true;
        return;
    }
    b.in_prod += uint32_t(take);
    if (store(b, &b.ring->in_prod, b.in_prod)) rt::notify(b.port);
}
}  // namespace

bool input(char c) {
    // Only the key right after a Ctrl-] is looked at: q anywhere else is
    // typed as it is.
    bool escaped = g_escaped;
    g_escaped = false;
    if (c == kCtrlRightBracket) {
        move_focus(g_focus);
        say_focus();
        g_escaped = true;
        return false;
    }
    if (escaped && c == kQuitKey) return true;   // not delivered: it asks the system to end
    if (g_focus < 0) {
        if (!g_said_no_focus) say_focus();
        g_said_no_focus = true;
        return false;
    }
    g_said_no_focus = false;
    put_input(g_backends[g_focus], &c, 1);
    return false;
}

bool input_to(uint16_t dom, const char* s, size_t n) {
    if (!serving(dom)) return false;
    Backend& b = g_backends[g_by_dom[dom] - 1];
    if (!b.faulted) put_input(b, s, n);
    return true;
}

}  // namespace console::backends
