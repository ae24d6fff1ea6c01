// blkback's front-ends, the xenbus side (frontends.hpp; the ring side is
// io.cpp).
//
// Per vbd the builder wrote (backend/vbd/<fe>/<devid>), a small state
// machine driven by XenStore:
//   fresh      -> place the virtual disk on the device; refuse (Closed) if
//                 it does not fit, else write sectors/info/features and
//                 InitWait                                     -> init_wait
//   init_wait  -> front-end Initialised/Connected: map its ring (one page,
//                 or the 2^ring-page-order it asks for, up to what we
//                 offered), bind its port, Connected           -> connected
//   connected  -> front-end Closing/Closed/re-initialising or gone, or its
//                 ring broken: drop it (in-flight requests are abandoned:
//                 their slots come back when the device is done with
//                 them, nothing is answered), Closed            -> closed
//   closed     -> front-end Initialising/InitWait again (a restart) -> fresh
//   any        -> the front-end's home is gone (its domain destroyed): drop
//                 it if connected                              -> gone
//   gone       -> its home is back, Initialising (same id)     -> fresh;
//                 the entry is reused for another vbd if all are taken

#include "frontends.hpp"

#include "device.hpp"
#include "frontend.hpp"
#include "ring_map.hpp"

#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/xenbus.hpp>

#include <abi/memory.hpp>
#include <base/format.hpp>
#include <blk/blk.hpp>

namespace blkback {

Frontend g_fe[kMaxFrontends];

blk::Features features_of(const Frontend&) {
    const DeviceInfo& d = device();
    return blk::Features{d.flush, d.discard, d.max_discard_sectors, blk::kMaxIndirectSegments};
}

namespace {

enum XenbusState : long { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

long number(const char* path) {
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

long node_number(const Frontend& f, const char* key) {
    char path[128];
    base::snformat(path, sizeof path, "%s/%s", f.be, key);
    return number(path);
}

bool write_node(const Frontend& f, const char* key, const char* value) {
    char path[128];
    base::snformat(path, sizeof path, "%s/%s", f.be, key);
    return bool(rt::xs_write(path, value));
}

bool write_number(const Frontend& f, const char* key, uint64_t v) {
    char value[24];
    base::snformat(value, sizeof value, "%lu", v);
    return write_node(f, key, value);
}

void set_state(const Frontend& f, long s) { (void)write_number(f, "state", uint64_t(s)); }

// ---- Tearing down ---------------------------------------------------------

// Forgets the connection: the ring side lets go of it (in-flight requests
// become orphans), the ring is unmapped and the port closed. Says `state`
// in our directory unless it is 0.
void disconnect(Frontend& f, long state, const char* why) {
    if (f.phase == Phase::connected)
        rt::printf("domain %u vbd %u: disconnected (%s; %lu requests served (%lu indirect), %lu refused, %u "
                   "abandoned)\n",
                   f.domid, f.devid, why, f.served, f.indirect, f.refused, f.inflight);
    io_forget(f);
    if (f.ring_va) ring_unmap(index_of(f), f.ring_handle, f.ring_pages);
    if (f.port) {
        abi::EvtchnClose c{f.port};
        (void)rt::evtchn_op(abi::EvtchnOp::close, &c);
    }
    f.ring_va = nullptr;
    f.ring_pages = 0;
    f.port = 0;
    if (state) set_state(f, state);
    f.closing = state == kClosing;
    f.phase = Phase::closed;
}

}  // namespace

void drop(Frontend& f, const char* why) { disconnect(f, kClosed, why); }

namespace {

// ---- XenStore -------------------------------------------------------------

// fresh: where the front-end's directory is (our `frontend` node, the
// builder's), watched from now on.
bool find_frontend(Frontend& f) {
    char path[128];
    base::snformat(path, sizeof path, "%s/frontend", f.be);
    // Not written yet (the builder is writing our directory): the next
    // scan, which its writes wake, looks again.
    if (!rt::xs_read(path, f.fe, sizeof f.fe)) return false;
    if (!f.watching) {
        f.watching = bool(rt::xs_watch(f.fe, "fe"));
        if (!f.watching) rt::printf("domain %u vbd %u: cannot watch %s\n", f.domid, f.devid, f.fe);
    }
    return true;
}

// fresh: the virtual disk the manifest gave the front-end, on this device.
void advertise(Frontend& f) {
    const DeviceInfo& d = device();
    char path[128], mode[8] = {};
    base::snformat(path, sizeof path, "%s/mode", f.be);
    (void)rt::xs_read(path, mode, sizeof mode);
    long first = node_number(f, "moat-first-sector"), sectors = node_number(f, "moat-sectors");
    bool read_only = mode[0] != 'w' || d.read_only;
    if (first < 0 || sectors < 0 || !blk::place_disk(d.capacity, uint64_t(first), uint64_t(sectors), read_only, &f.disk)) {
        rt::printf("domain %u vbd %u: refused: sectors %ld+%ld do not fit the device (%lu sectors)\n", f.domid,
                   f.devid, first, sectors, d.capacity);
        set_state(f, kClosed);
        f.phase = Phase::refused;
        return;
    }
    bool ok = write_number(f, "sectors", f.disk.sectors) &&
              write_number(f, "info", f.disk.read_only ? abi::kVdiskReadonly : 0) &&
              write_number(f, "sector-size", blk::kSectorBytes) && write_number(f, "feature-flush-cache", d.flush) &&
              write_number(f, "feature-barrier", d.flush) &&
              // Segments listed in granted pages (BLKIF_OP_INDIRECT), rings
              // of more than one page (ring-page-order). Persistent grants
              // are not offered: blkback copies, it maps no data page
              // (docs/drivers.md).
              write_number(f, "feature-max-indirect-segments", blk::kMaxIndirectSegments) &&
              write_number(f, "max-ring-page-order", blk::kMaxRingPageOrder) &&
              write_number(f, "feature-persistent", 0);
    if (ok && d.discard && !f.disk.read_only) {
        // Xen's discard-alignment: bytes from the start of the virtual disk
        // to the first whole discard granule of the device.
        uint64_t granule = uint64_t(d.discard_alignment) * blk::kSectorBytes;
        uint64_t into = granule ? (f.disk.first_sector * blk::kSectorBytes) % granule : 0;
        ok = write_number(f, "feature-discard", 1) && write_number(f, "discard-granularity", granule) &&
             write_number(f, "discard-alignment", into ? granule - into : 0);
    }
    ok = ok && write_number(f, "state", kInitWait);
    if (!ok) {
        rt::printf("domain %u vbd %u: cannot write our nodes\n", f.domid, f.devid);
        f.phase = Phase::refused;
        return;
    }
    f.phase = Phase::init_wait;
}

// The grant references of the front-end's ring pages (its ring-page-order,
// ring-ref or ring-ref0..N-1) into refs[]; the number of pages, or 0 with
// *why set.
unsigned ring_refs(const Frontend& f, uint32_t* refs, const char** why) {
    char path[160];
    base::snformat(path, sizeof path, "%s/ring-page-order", f.fe);
    auto order = rt::xs_read_number(path);
    // A node that is there but not a number is refused like an order too big.
    bool present = order || order.error() != rt::XsError::noent;
    blk::RingLayout layout;
    if (!blk::ring_layout(present, order ? *order : ~0ull, blk::kMaxRingPageOrder, &layout)) {
        *why = "ring-page-order above the max-ring-page-order offered";
        return 0;
    }
    for (unsigned i = 0; i < layout.pages(); ++i) {
        if (layout.numbered) base::snformat(path, sizeof path, "%s/ring-ref%u", f.fe, i);
        else base::snformat(path, sizeof path, "%s/ring-ref", f.fe);
        auto ref = rt::xs_read_number(path);
        if (!ref || *ref > 0xFFFFFFFFull) {
            *why = layout.numbered ? "no ring-ref<i> for every ring page" : "no ring-ref";
            return 0;
        }
        refs[i] = uint32_t(*ref);
    }
    return layout.pages();
}

// init_wait, front-end Initialised: its ring and port.
void connect(Frontend& f) {
    char path[160], proto[24] = {};
    base::snformat(path, sizeof path, "%s/event-channel", f.fe);
    long remote = number(path);
    base::snformat(path, sizeof path, "%s/protocol", f.fe);
    auto p = rt::xs_read(path, proto, sizeof proto);
    const char* why = nullptr;
    uint32_t refs[blk::kMaxRingPages];
    unsigned pages = ring_refs(f, refs, &why);
    if (!why && remote <= 0) why = "no event-channel";
    else if (!why && p && __builtin_strcmp(proto, "x86_64-abi") != 0) why = "protocol not x86_64-abi";
    long err = 0;
    if (!why) {
        f.ring_va = ring_map(index_of(f), f.domid, refs, pages, f.ring_handle, &err);
        if (f.ring_va) f.ring_pages = pages;
        else why = "ring pages not mapped";
    }
    if (!why) {
        long port = rt::bind_interdomain(f.domid, uint32_t(remote));
        if (port > 0) f.port = uint32_t(port);
        else why = "event channel not bound";
    }
    if (!why && !f.ring.init(f.ring_va, size_t(pages) * 4096)) why = "ring";
    if (why) {
        rt::printf("domain %u vbd %u: %s (%ld)\n", f.domid, f.devid, why, err);
        disconnect(f, kClosed, why);
        return;
    }
    f.served = f.refused = f.indirect = 0;
    f.phase = Phase::connected;
    set_state(f, kConnected);
    rt::printf("domain %u vbd %u connected: sectors %lu+%lu%s, ring of %u page%s (%u entries)\n", f.domid, f.devid,
               f.disk.first_sector, f.disk.sectors, f.disk.read_only ? " read-only" : "", pages, pages == 1 ? "" : "s",
               f.ring.size());
}

void update(Frontend& f) {
    for (unsigned step = 0; step < 4; ++step) {
        Phase before = f.phase;
        if (f.phase == Phase::refused || (f.phase == Phase::fresh && !find_frontend(f))) return;
        char path[128];
        base::snformat(path, sizeof path, "%s/state", f.fe);
        long fstate = number(path);
        if (fstate < 0) {
            // Its home is gone (the domain was destroyed): nothing more is
            // written for it. Our directory stays (the builder's); the
            // entry may be reused for another vbd.
            if (f.phase == Phase::connected || f.phase == Phase::init_wait) disconnect(f, kClosed, "front-end gone");
            f.phase = Phase::gone;
            return;
        }
        switch (f.phase) {
        case Phase::fresh:
            advertise(f);
            break;
        case Phase::init_wait:
            if (fstate == kInitialised || fstate == kConnected) connect(f);
            else if (fstate == kClosing || fstate == kClosed) disconnect(f, fstate, "front-end closed");
            break;
        case Phase::connected:
            // Closing answers Closing, as Xen's back-ends do: a Linux
            // front-end shutting down waits for exactly that.
            if (fstate != kInitialised && fstate != kConnected)
                disconnect(f, fstate == kClosing ? kClosing : kClosed, "front-end closed");
            break;
        case Phase::closed:
            if (f.closing && fstate != kClosing) {
                set_state(f, kClosed);
                f.closing = false;
            }
            // A restart: the front-end starts over.
            if (fstate == kInitialising || fstate == kInitWait) f.phase = Phase::fresh;
            break;
        case Phase::gone:
            // A restart: the front-end starts over.
            if (fstate == kInitialising || fstate == kInitWait) f.phase = Phase::fresh;
            break;
        default:
            break;
        }
        if (f.phase == before) return;
    }
}

void forget(Frontend& f) {
    if (f.watching) (void)rt::xs_unwatch(f.fe, "fe");
    f.phase = Phase::unused;
}

// The entry for a vbd, a new one (fresh) if there is none, or nullptr if
// every entry is in use.
Frontend* find(uint16_t domid, uint32_t devid) {
    Frontend* free = nullptr;
    for (Frontend& f : g_fe) {
        if (f.phase != Phase::unused && f.domid == domid && f.devid == devid) return &f;
        if (f.phase == Phase::unused && !free) free = &f;
    }
    // All in use: one whose domain is gone makes room.
    for (Frontend& f : g_fe)
        if (f.phase == Phase::gone && !free) {
            forget(f);
            free = &f;
        }
    if (!free) return nullptr;
    *free = Frontend{};
    free->phase = Phase::fresh;
    free->domid = domid;
    free->devid = devid;
    base::snformat(free->be, sizeof free->be, "backend/vbd/%u/%u", domid, devid);
    return free;
}

uint32_t parse(const char* s) {
    uint32_t v = 0;
    for (; *s >= '0' && *s <= '9'; ++s) v = v * 10 + uint32_t(*s - '0');
    return v;
}

}  // namespace

void frontends_scan() {
    for (Frontend& f : g_fe) f.seen = false;
    char fes[256], devs[256], path[64];
    auto nf = rt::xs_directory("backend/vbd", fes, sizeof fes);
    for (const char* fe = nf ? rt::xs_next_name(fes, *nf, nullptr) : nullptr; fe; fe = rt::xs_next_name(fes, *nf, fe)) {
        base::snformat(path, sizeof path, "backend/vbd/%s", fe);
        auto nd = rt::xs_directory(path, devs, sizeof devs);
        for (const char* d = nd ? rt::xs_next_name(devs, *nd, nullptr) : nullptr; d; d = rt::xs_next_name(devs, *nd, d)) {
            Frontend* f = find(uint16_t(parse(fe)), parse(d));
            if (!f) {
                static bool said;
                if (!said) rt::printf("more than %u vbds: %s/%s (and maybe others) ignored\n", kMaxFrontends, fe, d);
                said = true;
                continue;
            }
            f->seen = true;
        }
    }
    for (Frontend& f : g_fe) {
        if (f.phase == Phase::unused) continue;
        if (f.seen) {
            update(f);
            continue;
        }
        // Our directory for it is gone: forget it altogether.
        disconnect(f, 0, "removed");
        forget(f);
    }
    push_responses();
}

unsigned frontends_ports(uint32_t* ports) {
    unsigned n = 0;
    for (const Frontend& f : g_fe)
        if (f.phase == Phase::connected && f.port) ports[n++] = f.port;
    return n;
}

}  // namespace blkback
