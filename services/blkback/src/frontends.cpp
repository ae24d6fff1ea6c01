// blkback's front-ends (frontends.hpp).
//
// Per vbd the builder wrote (backend/vbd/<fe>/<devid>), a small state
// machine driven by XenStore:
//   fresh      -> place the virtual disk on the device; refuse (Closed) if
//                 it does not fit, else write sectors/info/features and
//                 InitWait                                     -> init_wait
//   init_wait  -> front-end Initialised/Connected: map its ring, bind its
//                 port, Connected                              -> connected
//   connected  -> front-end Closing/Closed/re-initialising or gone, or its
//                 ring broken: drop it (in-flight requests are abandoned:
//                 their slots come back when the device is done with
//                 them, nothing is answered), Closed            -> closed
//   closed     -> front-end Initialising/InitWait again (a restart) -> fresh
//   any        -> the front-end's home is gone (its domain destroyed): drop
//                 it if connected                              -> gone
//   gone       -> its home is back, Initialising (same id)     -> fresh;
//                 the entry is reused for another vbd if all are taken
//
// The data path never maps a data page: a write is grant-copied from the
// front-end's pages into the slot's bounce pages, then written by the
// device; a read goes device -> bounce pages -> grant copy to the front-end.

#include "frontends.hpp"

#include "device.hpp"
#include "virtio_blk.hpp"

#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/xenbus.hpp>

#include <abi/memory.hpp>
#include <base/format.hpp>
#include <blk/blk.hpp>

namespace blkback {

namespace {

enum class Phase : uint8_t { unused, fresh, init_wait, connected, closed, refused, gone };
enum XenbusState : long { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

// Requests taken from one front-end per pass, and in flight at once: one
// front-end's flood cannot take every slot or starve the others.
constexpr unsigned kBatch = 8;
constexpr unsigned kMaxInflightPerFrontend = kSlots / 2;

struct Frontend {
    Phase phase;
    uint16_t domid;
    uint32_t devid;
    bool seen;      // in the latest listing of backend/vbd
    bool watching;  // its directory is watched
    char be[48];    // backend/vbd/<fe>/<devid> (ours)
    char fe[96];    // the front-end's directory
    blk::Disk disk;
    blk::BackRing ring;
    void* page;
    uint32_t port;
    unsigned inflight;
    bool held;  // `request` taken from the ring, not started yet
    abi::BlkifRequest request;
    bool blocked;  // a flush or barrier in flight: nothing after it starts
    bool dirty;    // responses to push
    bool closing;  // closed, our state Closing: Closed follows the front-end's
    uint64_t served, refused;
};
Frontend g_fe[kMaxFrontends];
unsigned g_next;  // where the next serving pass starts

enum class Stage : uint8_t { data, flush_after, flush, discard };
struct Slot {
    bool used;
    bool orphan;  // its front-end is gone: nothing to answer
    uint8_t fe;
    Stage stage;
    uint8_t op;
    uint64_t id;
    blk::Checked c;
    abi::GrantRef gref[abi::kBlkifMaxSegmentsPerRequest];
};
Slot g_slots[kSlots];
bool g_kick;

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

blk::Features features_of(const Frontend& f) {
    const DeviceInfo& d = device();
    return blk::Features{d.flush, d.discard, d.max_discard_sectors};
}

// ---- Responses ------------------------------------------------------------

void respond(Frontend& f, uint64_t id, uint8_t op, int16_t status) {
    abi::BlkifResponse r{id, op, status};
    if (f.ring.push_response(r)) f.dirty = true;
}

void push_responses() {
    for (Frontend& f : g_fe) {
        if (f.phase != Phase::connected || !f.dirty) continue;
        f.dirty = false;
        if (f.ring.push_responses_and_check_notify()) rt::notify(f.port);
    }
}

// ---- Tearing down ---------------------------------------------------------

// Forgets the connection: in-flight requests become orphans (their bounce
// pages stay the device's until it returns them), the ring is unmapped and
// the port closed. Says `state` in our directory unless it is 0.
void disconnect(Frontend& f, long state, const char* why) {
    unsigned index = unsigned(&f - g_fe);
    for (Slot& s : g_slots)
        if (s.used && s.fe == index) s.orphan = true;
    if (f.page) (void)rt::unmap_grant(f.page);
    if (f.port) {
        abi::EvtchnClose c{f.port};
        (void)rt::evtchn_op(abi::EvtchnOp::close, &c);
    }
    if (f.phase == Phase::connected)
        rt::printf("domain %u vbd %u: disconnected (%s; %lu requests served, %lu refused, %u abandoned)\n",
                   f.domid, f.devid, why, f.served, f.refused, f.inflight);
    f.page = nullptr;
    f.port = 0;
    f.inflight = 0;
    f.held = false;
    f.blocked = false;
    f.dirty = false;
    if (state) set_state(f, state);
    f.closing = state == kClosing;
    f.phase = Phase::closed;
}

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
              write_number(f, "feature-barrier", d.flush);
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

// init_wait, front-end Initialised: its ring and port.
void connect(Frontend& f) {
    char path[160], proto[24] = {};
    base::snformat(path, sizeof path, "%s/ring-ref", f.fe);
    long ref = number(path);
    base::snformat(path, sizeof path, "%s/event-channel", f.fe);
    long remote = number(path);
    base::snformat(path, sizeof path, "%s/protocol", f.fe);
    auto p = rt::xs_read(path, proto, sizeof proto);
    const char* why = nullptr;
    if (ref < 0 || remote <= 0) why = "no ring-ref/event-channel";
    else if (p && __builtin_strcmp(proto, "x86_64-abi") != 0) why = "protocol not x86_64-abi";
    long err = 0;
    if (!why) {
        f.page = rt::map_grant(f.domid, uint32_t(ref), false, &err);
        if (!f.page) why = "ring page not mapped";
    }
    if (!why) {
        long port = rt::bind_interdomain(f.domid, uint32_t(remote));
        if (port > 0) f.port = uint32_t(port);
        else why = "event channel not bound";
    }
    if (!why && !f.ring.init(f.page, 4096)) why = "ring";
    if (why) {
        rt::printf("domain %u vbd %u: %s (%ld)\n", f.domid, f.devid, why, err);
        disconnect(f, kClosed, why);
        return;
    }
    f.served = f.refused = 0;
    f.phase = Phase::connected;
    set_state(f, kConnected);
    rt::printf("domain %u vbd %u connected: sectors %lu+%lu%s\n", f.domid, f.devid, f.disk.first_sector,
               f.disk.sectors, f.disk.read_only ? " read-only" : "");
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

// ---- Requests -------------------------------------------------------------

// Grant copies between the slot's bounce pages and the front-end's
// segments; true if every one succeeded.
bool copy(const Frontend& f, unsigned slot, bool to_frontend) {
    const Slot& s = g_slots[slot];
    abi::GnttabCopy ops[abi::kBlkifMaxSegmentsPerRequest] = {};
    for (unsigned i = 0; i < s.c.nr_segments; ++i) {
        uint16_t off = uint16_t(s.c.first[i] * blk::kSectorBytes);
        abi::GnttabCopyPtr mine{}, theirs{};
        mine.u.gmfn = rt::maddr_of(bounce(slot, i)) >> 12;
        mine.domid = abi::kDomidSelf;
        mine.offset = off;
        theirs.u.ref = s.gref[i];
        theirs.domid = f.domid;
        theirs.offset = off;
        ops[i].source = to_frontend ? mine : theirs;
        ops[i].dest = to_frontend ? theirs : mine;
        ops[i].len = uint16_t(s.c.count[i] * blk::kSectorBytes);
        ops[i].flags = to_frontend ? abi::kGntcopyDestGref : abi::kGntcopySourceGref;
    }
    if (rt::gnttab_op(abi::GnttabOp::copy, ops, s.c.nr_segments) != 0) return false;
    for (unsigned i = 0; i < s.c.nr_segments; ++i)
        if (ops[i].status != 0) return false;
    return true;
}

int free_slot() {
    for (unsigned i = 0; i < kSlots; ++i)
        if (!g_slots[i].used) return int(i);
    return -1;
}

// Starts f.request (checked as c) on a free slot; false if it must wait.
bool start(Frontend& f, const blk::Checked& c) {
    if (c.action == blk::Action::none) {
        respond(f, f.request.id, f.request.operation, abi::kBlkifRspOkay);
        ++f.served;
        return true;
    }
    if (f.inflight >= kMaxInflightPerFrontend) return false;
    int si = free_slot();
    if (si < 0) return false;
    unsigned slot = unsigned(si);
    Slot& s = g_slots[slot];
    s = Slot{true, false, uint8_t(&f - g_fe), Stage::data, f.request.operation, f.request.id, c, {}};
    for (unsigned i = 0; i < c.nr_segments; ++i) s.gref[i] = f.request.seg[i].gref;
    bool ok = true;
    switch (c.action) {
    case blk::Action::read:
        ok = device_submit_rw(slot, false, c.device_sector, c);
        break;
    case blk::Action::write:
        // A grant the front-end never gave (or gave read-only to someone
        // else) fails here, before the device is asked anything.
        ok = copy(f, slot, false) && device_submit_rw(slot, true, c.device_sector, c);
        break;
    case blk::Action::flush:
        s.stage = Stage::flush;
        ok = device_submit_flush(slot);
        break;
    case blk::Action::discard:
        s.stage = Stage::discard;
        ok = device_submit_discard(slot, c.device_sector, c.nr_sectors);
        break;
    case blk::Action::none:
        break;
    }
    if (!ok) {
        s.used = false;
        ++f.refused;
        respond(f, f.request.id, f.request.operation, abi::kBlkifRspError);
        return true;
    }
    ++f.inflight;
    if (c.drain) f.blocked = true;
    g_kick = true;
    return true;
}

// One pass over one front-end's ring; true if it has more right away.
bool serve(Frontend& f) {
    unsigned budget = kBatch;
    bool more = false;
    while (!f.blocked) {
        if (!f.held) {
            if (budget == 0) {
                more = f.ring.unconsumed() != 0;
                break;
            }
            if (!f.ring.take_request(f.request)) break;
            f.held = true;
            --budget;
        }
        blk::Checked c;
        int16_t st = blk::check_request(f.request, f.disk, features_of(f), &c);
        if (st != abi::kBlkifRspOkay) {
            ++f.refused;
            respond(f, f.request.id, f.request.operation, st);
            f.held = false;
            continue;
        }
        if (c.drain && f.inflight) break;   // the flush waits for what came before
        if (!start(f, c)) break;            // no slot: the device's next completion wakes us
        f.held = false;
    }
    if (f.ring.broken()) {
        disconnect(f, kClosed, "garbage request producer index on its ring");
        return false;
    }
    if (!more && !f.held && !f.blocked) more = f.ring.final_check_for_requests();
    return more && !f.ring.broken();
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

void frontends_complete() {
    unsigned slot;
    uint8_t status;
    while (device_take(&slot, &status)) {
        if (slot >= kSlots || !g_slots[slot].used) continue;
        Slot& s = g_slots[slot];
        if (s.orphan) {
            s.used = false;
            continue;
        }
        Frontend& f = g_fe[s.fe];
        int16_t st = status == vblk::kSOk       ? abi::kBlkifRspOkay
                     : status == vblk::kSUnsupp ? abi::kBlkifRspEopnotsupp
                                                : abi::kBlkifRspError;
        if (st == abi::kBlkifRspOkay && s.stage == Stage::data && s.c.flush_after) {
            // A barrier's (or flush's) data is written: now the flush.
            s.stage = Stage::flush_after;
            if (device_submit_flush(slot)) {
                g_kick = true;
                continue;
            }
            st = abi::kBlkifRspError;
        }
        if (st == abi::kBlkifRspOkay && s.stage == Stage::data && s.c.action == blk::Action::read &&
            !copy(f, slot, true))
            st = abi::kBlkifRspError;
        respond(f, s.id, s.op, st);
        if (st == abi::kBlkifRspOkay) ++f.served;
        else ++f.refused;
        --f.inflight;
        if (s.c.drain) f.blocked = false;
        s.used = false;
    }
    if (g_kick) {
        g_kick = false;
        device_kick();
    }
    push_responses();
}

bool frontends_serve() {
    bool more = false;
    for (unsigned k = 0; k < kMaxFrontends; ++k) {
        Frontend& f = g_fe[(g_next + k) % kMaxFrontends];
        if (f.phase == Phase::connected) more |= serve(f);
    }
    g_next = (g_next + 1) % kMaxFrontends;
    if (g_kick) {
        g_kick = false;
        device_kick();
    }
    push_responses();
    return more;
}

unsigned frontends_ports(uint32_t* ports) {
    unsigned n = 0;
    for (const Frontend& f : g_fe)
        if (f.phase == Phase::connected && f.port) ports[n++] = f.port;
    return n;
}

}  // namespace blkback
