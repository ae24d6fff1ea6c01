#pragma once
// The demo guests (examples/demo.textproto): a front-end and a back-end that
// find each other through XenStore, the way Xen's split drivers do, and share
// a ring (a granted page and an event channel) that the manifest's RING
// connection allows; and a loner that the manifest connects to nobody.
//
// The builder writes the connection's xenbus nodes:
//   /local/domain/<fe>/device/ring/<n>/{backend,backend-id,state}
//   /local/domain/<be>/backend/ring/<fe>/<n>/{frontend,frontend-id,state}
// The front-end grants its ring page and allocates a port, writes ring-ref,
// event-channel and state 3 (Initialised) in one transaction; the back-end
// maps and binds, and writes state 4 (Connected).

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/xenbus.hpp>

#include <abi/errno.hpp>
#include <base/format.hpp>
#include <ring/ring.hpp>

#include "../echo_ring.hpp"

namespace demo {

using rt::check;

enum XenbusState : unsigned { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

using echo_ring::Back;
using echo_ring::Front;
using echo_ring::kQuit;
using echo_ring::Request;
using echo_ring::Response;
constexpr uint32_t kRingRef = 8;   // the first reference after Xen's reserved ones

// A whole number from a node, or -1.
inline long read_number(const char* path) {
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

// Waits (watching it) until `path` holds a number >= want; false if the
// store fails or the deadline (guest ns) passes.
inline bool wait_for_state(const char* path, long want, uint64_t deadline) {
    if (!rt::xs_watch(path, "state")) return false;
    bool ok = false;
    for (;;) {
        long v = read_number(path);
        if (v >= want) {
            ok = true;
            break;
        }
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev, deadline)) break;
    }
    (void)rt::xs_unwatch(path, "state");
    return ok;
}

// "key=N" from the command line, or `def`.
inline unsigned arg(const char* key, unsigned def) { return unsigned(rt::cmdline_number(key, def)); }

// `stay` on the command line (examples/demo.textproto, the live `make demo`):
// once its work is done the guest stays up, as a Xen guest does, until its
// toolstack writes "poweroff" to its control/shutdown node (`moat
// shutdown`). Without it (the CI's copy of the demo) it ends by itself.
inline bool stay() { return rt::has_arg("stay"); }

// True if control/shutdown holds "poweroff" (Xen's request to power off).
inline bool poweroff_asked() {
    char buf[16];
    auto r = rt::xs_read("control/shutdown", buf, sizeof buf);
    return r && *r == 8 && __builtin_memcmp(buf, "poweroff", 8) == 0;
}

// Watches control/shutdown, so that a request wakes whoever waits on
// XenStore (and queues an event for whoever polls it); false if the store
// refuses.
inline bool watch_shutdown() { return bool(rt::xs_watch("control/shutdown", "shutdown")); }

// A queued watch event (without waiting), then whether it asks to power
// off: cheap enough to call between other waits.
inline bool poweroff_pending() {
    rt::XsWatchEvent ev;
    bool any = false;
    while (rt::xs_next_watch_event(ev)) any = true;
    return any && poweroff_asked();
}

// Sleeps on XenStore until asked to power off. The node is read after the
// watch is set, so a request written before it is not missed.
inline void stay_until_poweroff() {
    bool watching = watch_shutdown();
    check(watching, "demo.stay_watching_shutdown");
    if (!watching) return;
    while (!poweroff_asked()) {
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev)) return;   // the store is gone: nobody can ask any more
    }
    rt::printf("asked to power off (control/shutdown)\n");
}

// The network and the disk (netdisk.cpp), each only if the manifest gives
// the guest a vif or a vbd.
// Connects vif 0 with the address `ip=` of the command line; false if none.
bool net_up();
// `ping=B count=N`: N echo requests to B through netback, all answered.
void net_ping_peer();
// Answers pings and, with `udp-echo=P`, UDP echo on P until `answer=N`
// pings were answered and the datagram "moat-udp-done" came, or `serve-s=S`
// seconds (default 60) passed; with `stay`, until asked to power off.
void net_serve();
void net_down();
// vbd 0's first sector counts the system's starts: read, incremented,
// written and flushed.
void disk_counter();

}  // namespace demo
