// blkfront (include/rt/blkfront.hpp).

#include <rt/blkfront.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <base/format.hpp>

namespace rt {

namespace {

enum XenbusState : long { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

long read_number(const char* path) {
    auto r = xs_read_number(path);
    return r ? long(*r) : -1;
}

// Watches the back-end's state node until it says `want` (or, if
// stop_on_close, Closing or Closed) or the deadline passes; the last state
// read.
long wait_backend(const char* path, long want, uint64_t deadline, bool stop_on_close) {
    if (!xs_watch(path, "blkfront")) return -1;
    long state = -1;
    for (;;) {
        state = read_number(path);
        if (state == want || (stop_on_close && (state == kClosing || state == kClosed))) break;
        XsWatchEvent ev;
        if (!xs_wait_watch_event(ev, deadline)) break;
    }
    (void)xs_unwatch(path, "blkfront");
    return state;
}

}  // namespace

bool Blkfront::fail(const char* why) {
    error_ = why;
    return false;
}

uint8_t* Blkfront::data_page(unsigned page) { return page < kDataPages ? pages_[1 + page] : nullptr; }
void* Blkfront::shared_ring() { return pages_[0]; }

bool Blkfront::connect(unsigned index, uint64_t deadline, uint32_t first_ref) {
    if (connected_) return fail("already connected");
    char list[256], path[160];
    auto devs = xs_directory("device/vbd", list, sizeof list);
    if (!devs) return fail("no device/vbd in XenStore");
    const char* name = nullptr;
    for (unsigned i = 0; i <= index; ++i) {
        name = xs_next_name(list, *devs, name);
        if (!name) return fail("no such vbd");
    }
    devid_ = 0;
    for (const char* p = name; *p >= '0' && *p <= '9'; ++p) devid_ = devid_ * 10 + uint32_t(*p - '0');
    base::snformat(dir_, sizeof dir_, "device/vbd/%s", name);
    base::snformat(path, sizeof path, "%s/backend-id", dir_);
    long be = read_number(path);
    base::snformat(path, sizeof path, "%s/backend", dir_);
    if (be < 0 || be >= 0x7FF0 || !xs_read(path, backend_, sizeof backend_)) return fail("no backend nodes");
    backend_id_ = uint16_t(be);

    grant::Table& gt = grant_table();
    if (gt.size() == 0 || first_ref + 1 + kDataPages > gt.size()) return fail("no grant table room");
    first_ref_ = first_ref;
    port_ = 0;
    for (unsigned i = 0; i < 1 + kDataPages; ++i) {
        uint64_t mfn = mfn_of_pfn((ptr(pages_[i]) - kVirtBase) >> 12);
        if (!gt.grant_access(first_ref_ + i, backend_id_, uint32_t(mfn), false)) {
            for (unsigned k = 0; k < i; ++k) (void)gt.end_access(first_ref_ + k);
            return fail("grant refused (reference in use)");
        }
    }
    // From here on a failure takes the grants and the port back, so that
    // connect may be tried again.
    auto give_up = [&](const char* why) {
        if (port_) {
            abi::EvtchnClose c{port_};
            (void)evtchn_op(abi::EvtchnOp::close, &c);
            port_ = 0;
        }
        for (unsigned i = 0; i < 1 + kDataPages; ++i) (void)gt.end_access(first_ref_ + i);
        return fail(why);
    };
    if (!ring_.init(pages_[0], 4096)) return give_up("ring init");

    // Initialising, then the back-end's InitWait (it has placed the disk
    // and written its nodes). A front-end connecting again after a close
    // starts here too: the back-end sees Initialising and starts over (so a
    // Closed from before is not an answer; a disk the back-end refused
    // shows as Closed until the deadline).
    base::snformat(path, sizeof path, "%s/state", dir_);
    if (!xs_write(path, "1")) return give_up("could not write state");
    base::snformat(path, sizeof path, "%s/state", backend_);
    long state = wait_backend(path, kInitWait, deadline, false);
    if (state != kInitWait) return give_up(state == kClosed ? "back-end refused the disk" : "back-end not ready");

    long port = alloc_unbound(backend_id_);
    if (port <= 0) return give_up("event channel refused");
    port_ = uint32_t(port);
    if (!publish()) return give_up("could not publish ring-ref/event-channel");

    // The back-end maps the ring and says Connected, or refuses (Closed).
    state = wait_backend(path, kConnected, deadline, true);
    if (state != kConnected) return give_up(state == kClosed || state == kClosing ? "back-end refused" : "back-end did not connect");
    if (!read_backend_info()) return give_up("back-end nodes incomplete");
    base::snformat(path, sizeof path, "%s/state", dir_);
    if (!xs_write(path, "4")) return give_up("could not write state");
    connected_ = true;
    return true;
}

// ring-ref, event-channel, protocol and the state change in one transaction,
// retried on EAGAIN.
bool Blkfront::publish() {
    for (unsigned attempt = 0; attempt < 10; ++attempt) {
        auto tx = xs_transaction_start();
        if (!tx) return false;
        char path[96], value[24];
        bool ok = true;
        base::snformat(path, sizeof path, "%s/ring-ref", dir_);
        base::snformat(value, sizeof value, "%u", first_ref_);
        ok &= bool(xs_write(path, value, *tx));
        base::snformat(path, sizeof path, "%s/event-channel", dir_);
        base::snformat(value, sizeof value, "%u", port_);
        ok &= bool(xs_write(path, value, *tx));
        base::snformat(path, sizeof path, "%s/protocol", dir_);
        ok &= bool(xs_write(path, "x86_64-abi", *tx));
        base::snformat(path, sizeof path, "%s/state", dir_);
        ok &= bool(xs_write(path, "3", *tx));
        auto end = xs_transaction_end(*tx, ok);
        if (ok && end) return true;
        if (!ok || end.error() != XsError::again) return false;
    }
    return false;
}

bool Blkfront::read_backend_info() {
    char path[160];
    auto num = [&](const char* key, long def) {
        base::snformat(path, sizeof path, "%s/%s", backend_, key);
        long v = read_number(path);
        return v < 0 ? def : v;
    };
    long sectors = num("sectors", -1), info = num("info", -1), ss = num("sector-size", -1);
    if (sectors < 0 || info < 0 || ss <= 0) return false;
    info_.sectors = uint64_t(sectors);
    info_.vdisk_info = uint32_t(info);
    info_.sector_size = uint32_t(ss);
    info_.flush = num("feature-flush-cache", 0) == 1;
    info_.barrier = num("feature-barrier", 0) == 1;
    info_.discard = num("feature-discard", 0) == 1;
    info_.discard_granularity = uint32_t(num("discard-granularity", 0));
    info_.discard_alignment = uint32_t(num("discard-alignment", 0));
    return true;
}

bool Blkfront::push(const abi::BlkifRequest& r) {
    if (!ring_.push_request(r)) return false;
    if (ring_.push_requests_and_check_notify()) notify(port_);
    return true;
}

int Blkfront::wait_response(abi::BlkifResponse* out, uint64_t deadline) {
    if (!deadline) deadline = now_ns() + timeout_ns_;
    for (;;) {
        if (ring_.take_response(*out)) return out->status;
        if (ring_.broken()) return kBroken;
        if (ring_.final_check_for_responses()) continue;
        if (ring_.broken()) return kBroken;
        if (!wait_ports(&port_, 1, deadline) && now_ns() >= deadline) return kTimedOut;
    }
}

int Blkfront::round_trip(const abi::BlkifRequest& r, uint64_t deadline) {
    if (!push(r)) return ring_.broken() ? kBroken : kInvalid;
    abi::BlkifResponse rsp;
    int st = wait_response(&rsp, deadline);
    if (st != kTimedOut && st != kBroken && (rsp.id != r.id || rsp.operation != r.operation)) st = kBroken;
    // The request may still be the back-end's (it may yet write into our
    // data pages): nothing more goes through this connection; close and
    // connect again.
    if (st == kTimedOut || st == kBroken) connected_ = false;
    return st;
}

// One request per up-to-kMaxSectorsPerRequest sectors, through the data
// pages: segment i covers page i from sector 0.
int Blkfront::io(uint8_t op, uint64_t sector, uint32_t n, uint8_t* buf, bool to_disk) {
    // Sectors beyond the disk are asked of the back-end all the same:
    // refusing them is its job, and the tests see that it does.
    if (!connected_) return kInvalid;
    while (n > 0) {
        uint32_t chunk = n < kMaxSectorsPerRequest ? n : kMaxSectorsPerRequest;
        abi::BlkifRequest r{};
        r.operation = op;
        r.handle = uint16_t(devid_);
        r.id = next_id_++;
        r.sector_number = sector;
        unsigned segs = (chunk + abi::kBlkifSectorsPerPage - 1) / abi::kBlkifSectorsPerPage;
        r.nr_segments = uint8_t(segs);
        for (unsigned i = 0; i < segs; ++i) {
            uint32_t left = chunk - i * abi::kBlkifSectorsPerPage;
            r.seg[i].gref = data_ref(i);
            r.seg[i].first_sect = 0;
            r.seg[i].last_sect = uint8_t((left < abi::kBlkifSectorsPerPage ? left : abi::kBlkifSectorsPerPage) - 1);
        }
        size_t bytes = size_t(chunk) * abi::kBlkifSectorSize;
        if (to_disk)
            for (size_t off = 0; off < bytes; off += 4096)
                __builtin_memcpy(pages_[1 + off / 4096], buf + off, bytes - off < 4096 ? bytes - off : 4096);
        int st = round_trip(r);
        if (st != abi::kBlkifRspOkay) return st;
        if (!to_disk)
            for (size_t off = 0; off < bytes; off += 4096)
                __builtin_memcpy(buf + off, pages_[1 + off / 4096], bytes - off < 4096 ? bytes - off : 4096);
        buf += bytes;
        sector += chunk;
        n -= chunk;
    }
    return abi::kBlkifRspOkay;
}

int Blkfront::read(uint64_t sector, uint32_t n, void* buf) {
    return io(abi::kBlkifOpRead, sector, n, static_cast<uint8_t*>(buf), false);
}

int Blkfront::write(uint64_t sector, uint32_t n, const void* buf) {
    return io(abi::kBlkifOpWrite, sector, n, const_cast<uint8_t*>(static_cast<const uint8_t*>(buf)), true);
}

int Blkfront::flush() {
    if (!connected_) return kInvalid;
    abi::BlkifRequest r{};
    r.operation = abi::kBlkifOpFlushDiskcache;
    r.handle = uint16_t(devid_);
    r.id = next_id_++;
    return round_trip(r);
}

int Blkfront::barrier() {
    if (!connected_) return kInvalid;
    abi::BlkifRequest r{};
    r.operation = abi::kBlkifOpWriteBarrier;
    r.handle = uint16_t(devid_);
    r.id = next_id_++;
    return round_trip(r);
}

int Blkfront::discard(uint64_t sector, uint64_t n) {
    if (!connected_) return kInvalid;
    abi::BlkifDiscard d{};
    d.operation = abi::kBlkifOpDiscard;
    d.handle = uint16_t(devid_);
    d.id = next_id_++;
    d.sector_number = sector;
    d.nr_sectors = n;
    abi::BlkifRequest r;
    __builtin_memcpy(&r, &d, sizeof r);
    return round_trip(r);
}

bool Blkfront::close(uint64_t deadline) {
    char path[160];
    base::snformat(path, sizeof path, "%s/state", dir_);
    (void)xs_write(path, "5");
    base::snformat(path, sizeof path, "%s/state", backend_);
    bool answered = false;
    if (xs_watch(path, "blkfront")) {
        for (;;) {
            long s = read_number(path);
            if (s == kClosing || s == kClosed || s < 0) {
                answered = true;
                break;
            }
            XsWatchEvent ev;
            if (!xs_wait_watch_event(ev, deadline)) break;
        }
        (void)xs_unwatch(path, "blkfront");
    }
    base::snformat(path, sizeof path, "%s/state", dir_);
    (void)xs_write(path, "6");
    abi::EvtchnClose c{port_};
    (void)evtchn_op(abi::EvtchnOp::close, &c);
    bool ended = true;
    grant::Table& gt = grant_table();
    for (unsigned i = 0; i < 1 + kDataPages; ++i) ended &= gt.end_access(first_ref_ + i);
    connected_ = false;
    return answered && ended;
}

}  // namespace rt
