// XenStore watches for the host (watch.hpp), and the toolstack's own. Every
// watch event the toolstack's XenStore client queues is one of these (the
// destroy and create outcomes are polled): pump() hands each to the watch
// whose token it names. An event for a token we do not hold (a watch removed
// while its event was in flight) is dropped.

#include "watch.hpp"

#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <cstdarg>

namespace toolstack {

namespace {

// One watch. Invariants: `used` slots only are meaningful; among used ones,
// paths are unique (a second WATCH of a path renews the first); `head` and
// `count` describe a ring of at most kQueued valid paths, oldest at head.
struct Watch {
    bool used;
    char path[control::kPathLen + 1];
    char token[24];   // "moat-ctl-<slot>-<generation>": a token of a removed watch is never reused
    uint64_t touched_ns;   // the last WATCH or WATCH_READ: the lease runs from here
    unsigned head, count;
    uint64_t dropped;      // events not queued (queue full, or a path the channel cannot carry) since the last read
    char queue[kQueued][control::kPathLen + 1];
};

Watch g_watches[kMaxWatches];
uint32_t g_generation;
rt::XsWatchEvent g_ev;   // ~4 KiB: not on the stack

__attribute__((format(printf, 3, 4))) void answer(control::Response& rsp, control::Status s, const char* fmt, ...) {
    rsp.status = s;
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(rsp.error, sizeof rsp.error, fmt, ap);
    va_end(ap);
}

Watch* find_path(const char* path) {
    for (Watch& w : g_watches)
        if (w.used && __builtin_strcmp(w.path, path) == 0) return &w;
    return nullptr;
}

Watch* find_token(const char* token) {
    for (Watch& w : g_watches)
        if (w.used && __builtin_strcmp(w.token, token) == 0) return &w;
    return nullptr;
}

void push(Watch& w, const char* path) {
    if (w.count == kQueued || !control::valid_path(path)) {
        ++w.dropped;
        return;
    }
    unsigned tail = (w.head + w.count) % kQueued;
    base::snformat(w.queue[tail], sizeof w.queue[tail], "%s", path);
    ++w.count;
}

// The toolstack's own watches (watch.hpp): their paths are ours, fixed, and
// an event only says "look again", so it keeps no queue.
struct OwnWatch {
    bool used;
    bool fired;   // an event came since own_watch_fired last said so
    char token[24];
};
OwnWatch g_own[kMaxOwnWatches];
constexpr char kOwnPrefix[] = "toolstack-own-";

OwnWatch* find_own(const char* token) {
    if (__builtin_strncmp(token, kOwnPrefix, sizeof kOwnPrefix - 1) != 0) return nullptr;
    for (OwnWatch& w : g_own)
        if (w.used && __builtin_strcmp(w.token, token) == 0) return &w;
    return nullptr;
}

void pump() {
    while (rt::xs_next_watch_event(g_ev)) {
        if (OwnWatch* o = find_own(g_ev.token)) o->fired = true;
        else if (Watch* w = find_token(g_ev.token)) push(*w, g_ev.path);
    }
    // Events the client had to drop may have been our own: look again.
    static uint64_t dropped;
    if (rt::xs_client().dropped_watch_events() != dropped) {
        dropped = rt::xs_client().dropped_watch_events();
        for (OwnWatch& o : g_own) o.fired |= o.used;
    }
}

void remove(Watch& w) {
    (void)rt::xs_unwatch(w.path, w.token);   // gone already is fine: it is gone either way
    w.used = false;
}

}  // namespace

void watch_request(const control::Request& q, control::Response& rsp, bool store) {
    const char* op = control::xs_op_name(q.xs_op);
    if (!store)
        return answer(rsp, control::Status::failed,
                      "ENOTCONN: xenstore %s %s: the toolstack has no XenStore connection", op, q.path);
    pump();
    uint64_t now = rt::now_ns();
    Watch* w = find_path(q.path);
    switch (q.xs_op) {
    case control::XsOp::watch: {
        if (w) {   // already held: renewed (a host that lost an answer may ask again)
            w->touched_ns = now;
            rsp.status = control::Status::ok;
            return;
        }
        for (Watch& s : g_watches)
            if (!s.used) {
                w = &s;
                break;
            }
        if (!w)
            return answer(rsp, control::Status::failed,
                          "ENOSPC: xenstore watch %s: the toolstack holds %u watches already (each lapses %u s "
                          "after its last read)",
                          q.path, kMaxWatches, unsigned(kLeaseNs / 1'000'000'000));
        *w = Watch{};
        base::snformat(w->path, sizeof w->path, "%s", q.path);
        base::snformat(w->token, sizeof w->token, "moat-ctl-%u-%u", unsigned(w - g_watches), ++g_generation);
        if (auto r = rt::xs_watch(w->path, w->token); !r)
            return answer(rsp, control::Status::failed, "%s: xenstore watch %s", rt::xs_error_name(r.error()),
                          q.path);
        w->used = true;
        w->touched_ns = now;
        rsp.status = control::Status::ok;
        return;
    }
    case control::XsOp::watch_read: {
        if (!w)
            return answer(rsp, control::Status::failed,
                          "ENOENT: xenstore watch_read %s: no watch on it (never set, removed, or lapsed after "
                          "%u s unread)",
                          q.path, unsigned(kLeaseNs / 1'000'000'000));
        w->touched_ns = now;
        rsp.n_events = 0;
        while (w->count && rsp.n_events < control::kMaxEvents) {
            base::snformat(rsp.events[rsp.n_events++], control::kPathLen + 1, "%s", w->queue[w->head]);
            w->head = (w->head + 1) % kQueued;
            --w->count;
        }
        rsp.status = control::Status::ok;
        if (w->dropped) {
            rsp.error[0] = '\0';
            base::snformat(rsp.error, sizeof rsp.error, "%lu events dropped: the watch's queue (%u) was full",
                           (unsigned long)w->dropped, kQueued);
            w->dropped = 0;
        }
        return;
    }
    case control::XsOp::unwatch:
        if (!w)
            return answer(rsp, control::Status::failed, "ENOENT: xenstore unwatch %s: no watch on it", q.path);
        remove(*w);
        rsp.status = control::Status::ok;
        return;
    default: return answer(rsp, control::Status::bad_request, "xenstore %s: not a watch operation", op);
    }
}

void watch_tick(uint64_t now) {
    pump();
    for (Watch& w : g_watches)
        if (w.used && now - w.touched_ns > kLeaseNs) {
            rt::printf("toolstack: watch on %s lapsed (not read for %u s)\n", w.path,
                       unsigned(kLeaseNs / 1'000'000'000));
            remove(w);
        }
}

int own_watch(const char* path) {
    for (unsigned k = 0; k < kMaxOwnWatches; ++k) {
        OwnWatch& o = g_own[k];
        if (o.used) continue;
        base::snformat(o.token, sizeof o.token, "%s%u", kOwnPrefix, k);
        if (auto r = rt::xs_watch(path, o.token); !r) {
            rt::printf("cannot watch %s (%s)\n", path, rt::xs_error_name(r.error()));
            return -1;
        }
        // A new watch fires once at once: what is there already is looked at.
        o.used = true;
        return int(k);
    }
    rt::printf("cannot watch %s: %u own watches held already\n", path, kMaxOwnWatches);
    return -1;
}

bool own_watch_fired(int k) {
    if (k < 0 || unsigned(k) >= kMaxOwnWatches || !g_own[k].used) return false;
    pump();
    bool fired = g_own[k].fired;
    g_own[k].fired = false;
    return fired;
}

unsigned watches_held() {
    unsigned n = 0;
    for (const Watch& w : g_watches) n += w.used;
    return n;
}

}  // namespace toolstack
