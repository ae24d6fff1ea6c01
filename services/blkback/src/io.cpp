// blkback's ring side (frontends.hpp): requests taken from the front-ends'
// rings, judged by libs/blk, carried out on the device, answered.
//
// The data path never maps a data page: a write is grant-copied from the
// front-end's pages into bounce pages, then written by the device; a read
// goes device -> bounce pages -> grant copy to the front-end. An indirect
// request's segment list is grant-copied once into blkback's own memory and
// judged from that copy.
//
// What a request holds while it is on the device: a slot (its header and
// status byte) and one bounce page per segment. Limits, so that one
// front-end cannot take everything or starve the others:
//   kBatch                  requests taken from a front-end per pass;
//   kMaxInflightPerFrontend requests of one front-end on the device;
//   kMaxPagesPerFrontend    bounce pages one front-end's requests hold;
// and a front-end whose request waits for bounce pages (they are all held)
// reserves them: nobody else takes pages that would leave it short, so a
// large request is not starved by a stream of small ones (blk::Fairness).

#include "device.hpp"
#include "frontend.hpp"
#include "virtio_blk.hpp"

#include <rt/trace.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>

#include <blk/blk.hpp>
#include <blk/fairness.hpp>
#include <blk/pool.hpp>

namespace blkback {

namespace {

constexpr unsigned kBatch = 8;
constexpr unsigned kMaxInflightPerFrontend = kSlots / 2;
constexpr unsigned kMaxPagesPerFrontend = kBouncePages / 2;
static_assert(kMaxPagesPerFrontend >= blk::kMaxSegments, "the largest request fits a front-end's share");

unsigned g_next;  // where the next serving pass starts

enum class Stage : uint8_t { data, flush_after, flush, discard };
struct Slot {
    bool used;
    bool orphan;  // its front-end is gone: nothing to answer
    uint8_t fe;
    Stage stage;
    uint8_t op;  // the response's
    uint64_t id;
    unsigned npages;  // bounce pages held: page[0..npages)
    blk::Checked c;
    uint16_t page[blk::kMaxSegments];
};
Slot g_slots[kSlots];
bool g_kick;

constinit blk::PagePool<kBouncePages> g_pool;
constinit blk::Fairness g_fairness{kMaxInflightPerFrontend, kMaxPagesPerFrontend};

// An indirect request's segments, copied here from the front-end's pages.
alignas(4096) abi::BlkifSegment g_segs[blk::kMaxIndirectPages * abi::kBlkifSegmentsPerIndirectPage];
// Grant copy operations, one per segment (or indirect page).
abi::GnttabCopy g_ops[blk::kMaxSegments];

// ---- Responses ------------------------------------------------------------

void respond(Frontend& f, uint64_t id, uint8_t op, int16_t status) {
    abi::BlkifResponse r{id, op, status};
    if (f.ring.push_response(r)) f.dirty = true;
}

// ---- Grant copies ---------------------------------------------------------

bool run_copies(unsigned n) {
    if (rt::gnttab_op(abi::GnttabOp::copy, g_ops, n) != 0) return false;
    for (unsigned i = 0; i < n; ++i)
        if (g_ops[i].status != 0) return false;
    return true;
}

abi::GnttabCopyPtr ours(const void* page, uint16_t offset) {
    abi::GnttabCopyPtr p{};
    p.u.gmfn = rt::maddr_of(page) >> 12;
    p.domid = abi::kDomidSelf;
    p.offset = offset;
    return p;
}

abi::GnttabCopyPtr theirs(const Frontend& f, abi::GrantRef ref, uint16_t offset) {
    abi::GnttabCopyPtr p{};
    p.u.ref = ref;
    p.domid = f.domid;
    p.offset = offset;
    return p;
}

// Between the slot's bounce pages and the front-end's segments; true if
// every copy succeeded.
bool copy(const Frontend& f, const Slot& s, bool to_frontend) {
    for (unsigned i = 0; i < s.c.nr_segments; ++i) {
        uint16_t off = uint16_t(s.c.first[i] * blk::kSectorBytes);
        abi::GnttabCopyPtr mine = ours(bounce(s.page[i]), off), yours = theirs(f, s.c.gref[i], off);
        g_ops[i] = abi::GnttabCopy{};
        g_ops[i].source = to_frontend ? mine : yours;
        g_ops[i].dest = to_frontend ? yours : mine;
        g_ops[i].len = uint16_t(s.c.count[i] * blk::kSectorBytes);
        g_ops[i].flags = to_frontend ? abi::kGntcopyDestGref : abi::kGntcopySourceGref;
    }
    return run_copies(s.c.nr_segments);
}

// The segment list of an indirect request, from the pages it names into
// g_segs: read once, so what the front-end writes there afterwards changes
// nothing. False if a copy failed (a page never granted, say).
bool fetch_segments(const Frontend& f, const blk::IndirectFetch& fetch) {
    unsigned left = fetch.nr_segments;
    for (unsigned p = 0; p < fetch.nr_pages; ++p) {
        unsigned n = left < abi::kBlkifSegmentsPerIndirectPage ? left : abi::kBlkifSegmentsPerIndirectPage;
        g_ops[p] = abi::GnttabCopy{};
        g_ops[p].source = theirs(f, fetch.gref[p], 0);
        g_ops[p].dest = ours(&g_segs[p * abi::kBlkifSegmentsPerIndirectPage], 0);
        g_ops[p].len = uint16_t(n * sizeof(abi::BlkifSegment));
        g_ops[p].flags = abi::kGntcopySourceGref;
        left -= n;
    }
    return run_copies(fetch.nr_pages);
}

// ---- Judging and starting -------------------------------------------------

// Judges the request just taken (f.request): kBlkifRspOkay with f.checked
// filled in, or the status to answer with.
int16_t judge(Frontend& f) {
    const blk::Features features = features_of(f);
    if (f.request.operation != abi::kBlkifOpIndirect)
        return blk::check_request(f.request, f.disk, features, &f.checked);
    blk::IndirectFetch fetch;
    int16_t st = blk::check_indirect(f.request, f.disk, features, &fetch);
    if (st != abi::kBlkifRspOkay) return st;
    if (!fetch_segments(f, fetch)) return abi::kBlkifRspError;
    st = blk::check_indirect_segments(f.request, g_segs, fetch.nr_segments, f.disk, features, &f.checked);
    if (st == abi::kBlkifRspOkay) ++f.indirect;
    return st;
}

int free_slot() {
    for (unsigned i = 0; i < kSlots; ++i)
        if (!g_slots[i].used) return int(i);
    return -1;
}

void give_back(Slot& s) {
    g_pool.give(s.npages, s.page);
    s.npages = 0;
    s.used = false;
}

// Starts f.request (judged: f.checked) on a free slot with its bounce
// pages; false if it must wait (the device's next completion wakes us).
bool start(Frontend& f) {
    const blk::Checked& c = f.checked;
    uint8_t op = blk::response_operation(f.request);
    if (c.action == blk::Action::none) {
        respond(f, f.request.id, op, abi::kBlkifRspOkay);
        ++f.served;
        return true;
    }
    unsigned me = index_of(f);
    bool data = c.action == blk::Action::read || c.action == blk::Action::write;
    unsigned need = data ? c.nr_segments : 0;
    if (!g_fairness.admit(me, {f.inflight, f.pages}, need, g_pool.available())) return false;
    int si = free_slot();
    if (si < 0) return false;
    unsigned slot = unsigned(si);
    Slot& s = g_slots[slot];
    s = Slot{};
    s.used = true;
    s.fe = uint8_t(me);
    s.stage = Stage::data;
    s.op = op;
    s.id = f.request.id;
    s.c = c;
    if (need) {
        if (!g_pool.take(need, s.page)) {  // cannot happen: available() was checked
            s.used = false;
            return false;
        }
        s.npages = need;
    }
    g_fairness.started(me);
    bool ok = true;
    switch (c.action) {
    case blk::Action::read:
        ok = device_submit_rw(slot, false, c.device_sector, c, s.page);
        break;
    case blk::Action::write:
        // A grant the front-end never gave (or gave read-only to someone
        // else) fails here, before the device is asked anything.
        ok = copy(f, s, false) && device_submit_rw(slot, true, c.device_sector, c, s.page);
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
        give_back(s);
        ++f.refused;
        respond(f, s.id, op, abi::kBlkifRspError);
        return true;
    }
    ++f.inflight;
    f.pages += s.npages;
    if (c.drain) f.blocked = true;
    g_kick = true;
    return true;
}

rt::TraceMarker g_marks;   // each batch served, in the kernel's trace while somebody traces

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
            --budget;
            int16_t st = judge(f);
            if (st != abi::kBlkifRspOkay) {
                ++f.refused;
                respond(f, f.request.id, blk::response_operation(f.request), st);
                continue;
            }
            f.held = true;
        }
        if (f.checked.drain && f.inflight) break;  // the flush waits for what came before
        if (!start(f)) break;                      // no slot or pages: the device's next completion wakes us
        f.held = false;
    }
    if (f.ring.broken()) {
        drop(f, "garbage request producer index on its ring");
        return false;
    }
    if (!more && !f.held && !f.blocked) more = f.ring.final_check_for_requests();
    if (budget < kBatch) g_marks.mark(abi::kMarkBlk, kBatch - budget);
    return more && !f.ring.broken();
}

}  // namespace

void push_responses() {
    for (Frontend& f : g_fe) {
        if (f.phase != Phase::connected || !f.dirty) continue;
        f.dirty = false;
        if (f.ring.push_responses_and_check_notify()) rt::notify(f.port);
    }
}

void io_forget(Frontend& f) {
    unsigned me = index_of(f);
    for (Slot& s : g_slots)
        if (s.used && s.fe == me) s.orphan = true;
    g_fairness.forget(me);
    f.inflight = 0;
    f.pages = 0;
    f.held = false;
    f.blocked = false;
    f.dirty = false;
}

void frontends_complete() {
    unsigned slot;
    uint8_t status;
    while (device_take(&slot, &status)) {
        if (slot >= kSlots || !g_slots[slot].used) continue;
        Slot& s = g_slots[slot];
        if (s.orphan) {
            give_back(s);
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
        if (st == abi::kBlkifRspOkay && s.stage == Stage::data && s.c.action == blk::Action::read && !copy(f, s, true))
            st = abi::kBlkifRspError;
        respond(f, s.id, s.op, st);
        if (st == abi::kBlkifRspOkay) ++f.served;
        else ++f.refused;
        --f.inflight;
        f.pages -= s.npages;
        if (s.c.drain) f.blocked = false;
        give_back(s);
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

}  // namespace blkback
