#include "store.hpp"

#include <abi/xs_wire.hpp>
#include <rt/console.hpp>
#include <rt/xenbus.hpp>

#include <base/format.hpp>
#include <base/number.hpp>

namespace console::store {

namespace {
bool g_connected, g_watching, g_input_watching, g_input_pending;
constexpr char kInputToken[] = "input";
long g_self = -1;
// Relative: below our home. Events name it relative too.
constexpr char kDir[] = "backend/console";
constexpr char kToken[] = "console";
// A store that does not answer (not started yet: the builder starts the
// console first) must not stop the console for long.
constexpr uint64_t kReplyTimeoutNs = 100'000'000;

bool parse_u32(const char* s, uint32_t* out) { return base::parse_u32(s, __builtin_strlen(s), *out); }

bool read_u32(const char* path, uint32_t* out) {
    auto r = rt::xs_read_number(path);
    if (!r || *r > 0xFFFFFFFFu) return false;
    *out = uint32_t(*r);
    return true;
}

bool watch(const char* path, const char* token) {
    auto r = rt::xs_watch(path, token);
    return r.ok() || r.error() == rt::XsError::exist;
}
}  // namespace

bool init() {
    g_connected = rt::xs_init().ok();
    if (g_connected) rt::xs_set_timeout(kReplyTimeoutNs);
    return g_connected;
}

bool up() {
    if (!g_connected) return false;
    if (g_watching) return true;
    if (g_self < 0) {
        uint32_t id;
        if (read_u32("domid", &id)) g_self = id;   // relative: our own home
    }
    // A new watch fires once at once (the directory's own path): the first
    // scan comes from that. The directory need not exist yet.
    g_watching = watch(kDir, kToken);
    // The same for typed input (fires once at once: what is there already
    // is taken). A failure is not fatal: the output is served without it.
    if (g_watching && !g_input_watching) {
        g_input_watching = watch(kInputDir, kInputToken);
        if (!g_input_watching) rt::printf("cannot watch %s: moat console input is not served\n", kInputDir);
    }
    return g_watching;
}

long self() { return g_self; }

bool take_events(void (*touched)(void* ctx, uint16_t dom), void* ctx) {
    if (!g_connected) return false;
    bool all = false;
    rt::XsWatchEvent ev;
    while (rt::xs_next_watch_event(ev)) {
        if (__builtin_strcmp(ev.token, kInputToken) == 0) {
            g_input_pending = true;
            continue;
        }
        if (__builtin_strcmp(ev.token, kToken) != 0) continue;
        // "backend/console" itself (the watch was set, or the directory
        // made or removed) or "backend/console/<id>[/...]".
        const char* p = ev.path;
        if (__builtin_strncmp(p, kDir, sizeof kDir - 1) != 0) continue;
        p += sizeof kDir - 1;
        if (*p == '\0') {
            all = true;
            continue;
        }
        if (*p++ != '/') continue;
        size_t n = 0;
        while (p[n] && p[n] != '/') ++n;
        uint32_t dom;
        if (base::parse_u32(p, n, dom) && dom < 0x7FF0) touched(ctx, uint16_t(dom));
    }
    // Events the client had to drop: look at everything again.
    static uint64_t dropped;
    if (rt::xs_client().dropped_watch_events() != dropped) {
        dropped = rt::xs_client().dropped_watch_events();
        all = true;
        g_input_pending = true;
    }
    return all;
}

void for_each_domain(void (*found)(void* ctx, uint16_t dom), void* ctx) {
    if (!g_connected) return;
    // A reply holds at most 4 KiB (Xen's XENSTORE_PAYLOAD_MAX): about 800
    // domains' ids. With more, only those events name are served after the
    // client dropped some (see docs/system.md, known limits).
    static char list[4096];
    auto r = rt::xs_directory(kDir, list, sizeof list);
    if (r.ok()) {
        for (const char* n = rt::xs_next_name(list, r.value(), nullptr); n; n = rt::xs_next_name(list, r.value(), n)) {
            uint32_t dom;
            if (parse_u32(n, &dom) && dom < 0x7FF0) found(ctx, uint16_t(dom));
        }
    }
}

bool console_of(uint16_t dom, uint32_t* port, char* name, size_t name_cap) {
    char path[64];
    base::snformat(path, sizeof path, "/local/domain/%u/console/port", dom);
    if (!read_u32(path, port)) return false;
    base::snformat(path, sizeof path, "/local/domain/%u/name", dom);
    if (!rt::xs_read(path, name, name_cap).ok()) name[0] = '\0';
    return true;
}

bool still_offers(uint16_t dom, uint32_t port) {
    char path[64], buf[16];
    base::snformat(path, sizeof path, "/local/domain/%u/console/port", dom);
    auto r = rt::xs_read(path, buf, sizeof buf);
    if (!r.ok()) {
        // Only an answer about the node says it is gone; a store that did
        // not answer says nothing.
        rt::XsError e = r.error();
        return !(e == rt::XsError::noent || e == rt::XsError::acces || e == rt::XsError::perm);
    }
    uint32_t now;
    return parse_u32(buf, &now) && now == port;
}

bool input_pending() { return g_input_pending; }

namespace {
// Ignored input nodes: the first kSayIgnored are said, then only their
// count, at each power of two (a log that grows as log2 of a flood).
constexpr uint64_t kSayIgnored = 16;
uint64_t g_ignored;

void ignore(const char* name, const char* why) {
    ++g_ignored;
    if (g_ignored <= kSayIgnored)
        rt::printf("console input %s/%s ignored: %s\n", kInputDir, name, why);
    if (g_ignored == kSayIgnored)
        rt::printf("console input: further ignored nodes are counted, not said\n");
    else if (g_ignored > kSayIgnored && (g_ignored & (g_ignored - 1)) == 0)
        rt::printf("console input: %lu nodes ignored so far\n", static_cast<unsigned long>(g_ignored));
}

// A node's name is its seq: digits, at most 20 of them (base::parse_u64).
constexpr size_t kNameMax = 20;
}  // namespace

void take_input(bool (*deliver)(void* ctx, uint16_t dom, const char* bytes, size_t n), void* ctx) {
    if (!g_connected || !g_input_watching || !g_input_pending) return;
    // A reply holds at most a payload (4 KiB): some 200 to 4000 names.
    static char list[abi::kXenstorePayloadMax + 1];
    auto d = rt::xs_directory(kInputDir, list, sizeof list);
    if (!d) {
        // Gone (no toolstack, or being made again): nothing waits. A store
        // that did not answer: asked again next tick.
        if (d.error() != rt::XsError::timedout) g_input_pending = false;
        return;
    }
    // The kInputPerTick lowest seqs (ascending), and malformed names (to
    // remove), within the same budget: a pass costs O(names listed) and at
    // most kInputPerTick reads and removals.
    struct Pick {
        uint64_t seq;
        const char* name;
    };
    Pick pick[kInputPerTick];
    unsigned n_pick = 0, listed = 0;
    const char* bad[kInputPerTick];
    unsigned n_bad = 0;
    for (const char* c = rt::xs_next_name(list, *d, nullptr); c; c = rt::xs_next_name(list, *d, c)) {
        ++listed;
        uint64_t seq;
        if (!base::parse_u64(c, __builtin_strlen(c), seq)) {
            if (n_bad < kInputPerTick) bad[n_bad++] = c;
            continue;
        }
        if (n_pick == kInputPerTick && seq >= pick[n_pick - 1].seq) continue;
        unsigned at = n_pick < kInputPerTick ? n_pick++ : n_pick - 1;   // the largest drops out
        while (at > 0 && pick[at - 1].seq > seq) {
            pick[at] = pick[at - 1];
            --at;
        }
        pick[at] = {seq, c};
    }
    unsigned budget = kInputPerTick, removed = 0;
    // A malformed name may be as long as the store allows a path to be.
    static char path[abi::kXenstorePayloadMax + 32];
    for (unsigned k = 0; k < n_bad && budget; ++k, --budget) {
        base::snformat(path, sizeof path, "%s/%s", kInputDir, bad[k]);
        if (rt::xs_rm(path)) ++removed;
        char shown[kNameMax + 1];   // cut for the log
        base::snformat(shown, sizeof shown, "%s", bad[k]);
        ignore(shown, "its name is not a sequence number");
    }
    // A value: "<domid> " and 1 to kInputMax bytes, and our NUL.
    char value[6 + kInputMax + 1];
    for (unsigned k = 0; k < n_pick && budget; ++k, --budget) {
        base::snformat(path, sizeof path, "%s/%s", kInputDir, pick[k].name);
        auto r = rt::xs_read(path, value, sizeof value);
        if (!r && r.error() != rt::XsError::range) continue;   // unreadable (or the store is slow): skipped
        // Removed before it is delivered: a node we cannot remove is never
        // delivered twice.
        if (!rt::xs_rm(path)) continue;
        ++removed;
        if (!r) {
            ignore(pick[k].name, "its value is longer than a domain id and 256 bytes");
            continue;
        }
        size_t len = *r, sp = 0;
        while (sp < len && sp < 6 && value[sp] != ' ') ++sp;
        uint32_t dom;
        if (sp == len || value[sp] != ' ' || !base::parse_u32(value, sp, dom) || dom >= 0x7FF0) {
            ignore(pick[k].name, "its value is not \"<domid> <bytes>\"");
            continue;
        }
        size_t n = len - sp - 1;
        if (n == 0 || n > kInputMax) {
            ignore(pick[k].name, "expected 1 to 256 bytes of input after the domain id");
            continue;
        }
        if (!deliver(ctx, uint16_t(dom), value + sp + 1, n)) {
            char why[64];
            base::snformat(why, sizeof why, "we serve no console of domain %u", dom);
            ignore(pick[k].name, why);
        }
    }
    // More than we took waits; a pass that removed nothing waits for the
    // next change (nodes we cannot remove are not retried every tick).
    g_input_pending = removed > 0 && listed > removed;
}

void ask_shutdown() {
    rt::printf("Ctrl-] q: asking the toolstack to shut the system down\n");
    if (!g_connected) {
        rt::printf("Ctrl-] q: no XenStore, so no toolstack to ask: nothing else happens\n");
        return;
    }
    auto w = rt::xs_write(kRequestNode, kShutdownRequest);
    if (w) return;
    rt::XsError e = w.error();
    if (e == rt::XsError::acces || e == rt::XsError::noent || e == rt::XsError::perm)
        rt::printf("Ctrl-] q: no toolstack takes requests (xenstore write %s: %s): nothing else happens\n",
                   kRequestNode, rt::xs_error_name(e));
    else
        rt::printf("Ctrl-] q: the request was not written (xenstore write %s: %s): press it again\n", kRequestNode,
                   rt::xs_error_name(e));
}

}  // namespace console::store
