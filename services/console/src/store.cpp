#include "store.hpp"

#include <rt/xenbus.hpp>

#include <base/format.hpp>
#include <base/number.hpp>

namespace console::store {

namespace {
bool g_connected, g_watching;
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
    return g_watching;
}

long self() { return g_self; }

bool take_events(void (*touched)(void* ctx, uint16_t dom), void* ctx) {
    if (!g_connected) return false;
    bool all = false;
    rt::XsWatchEvent ev;
    while (rt::xs_next_watch_event(ev)) {
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

}  // namespace console::store
