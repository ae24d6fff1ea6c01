#pragma once
// blkfront: a guest's side of Xen's block-device protocol (io/blkif.h) to a
// back-end (blkback) over xenbus.
//
// connect() finds device/vbd/<devid> (the builder wrote it from the
// manifest's VBD connection), grants the back-end one ring page and
// kDataPages data pages (fixed grant references from `first_ref`, granted
// once for the connection's life), offers an event channel, publishes
// ring-ref, event-channel and protocol with state Initialised in one
// transaction, and waits for the back-end to say Connected; then reads
// sectors, info, sector-size and the feature-* nodes.
//
// I/O is synchronous: one request on the ring at a time, through the data
// pages (the caller's buffer may be anything). Every call returns a status:
// kBlkifRspOkay (0), the back-end's kBlkifRspError/kBlkifRspEopnotsupp, or
// one of the front-end's own below (never hidden, never retried).
//
// A Blkfront holds its pages: give it static storage. Single-threaded, as
// domains are; not for use from event handlers.

#include <cstddef>
#include <cstdint>

#include <abi/blkif.hpp>
#include <ring/ring.hpp>
#include <rt/events.hpp>

namespace rt {



class Blkfront {
public:
    using Ring = ring::FrontRing<abi::BlkifRequest, abi::BlkifResponse>;

    static constexpr unsigned kDataPages = abi::kBlkifMaxSegmentsPerRequest;
    static constexpr uint32_t kMaxSectorsPerRequest = kDataPages * abi::kBlkifSectorsPerPage;
    // Grant references used: first_ref (ring) .. first_ref + kDataPages.
    static constexpr uint32_t kDefaultFirstRef = 448;

    // The front-end's own statuses (besides the back-end's 0, -1, -2).
    static constexpr int kTimedOut = -110;  // no response before the deadline
    static constexpr int kBroken = -71;     // the back-end broke the ring, or answered nonsense
    static constexpr int kInvalid = -22;    // not connected, or arguments out of range

    struct Info {
        uint64_t sectors = 0;  // 512-byte sectors
        uint32_t sector_size = 0;
        uint32_t vdisk_info = 0;  // kVdisk* bits
        bool flush = false;       // feature-flush-cache
        bool barrier = false;     // feature-barrier
        bool discard = false;     // feature-discard
        uint32_t discard_granularity = 0;
        uint32_t discard_alignment = 0;
    };

    // Connects to the `index`-th device under device/vbd (0: the first). On
    // failure returns false and error() says why.
    bool connect(unsigned index, uint64_t deadline, uint32_t first_ref = kDefaultFirstRef);
    bool connected() const { return connected_; }
    const Info& info() const { return info_; }
    bool read_only() const { return (info_.vdisk_info & abi::kVdiskReadonly) != 0; }
    const char* error() const { return error_; }
    uint32_t devid() const { return devid_; }
    uint16_t backend_id() const { return backend_id_; }
    // The back-end's directory (its state node is "<dir>/state").
    const char* backend_path() const { return backend_; }
    // Relative time allowed for each response (guest ns; default 60 s).
    void set_timeout(uint64_t ns) { timeout_ns_ = ns; }

    // n sectors (512 bytes each) from `sector` of the virtual disk.
    int read(uint64_t sector, uint32_t n, void* buf);
    int write(uint64_t sector, uint32_t n, const void* buf);
    int flush();    // BLKIF_OP_FLUSH_DISKCACHE, no data
    int barrier();  // BLKIF_OP_WRITE_BARRIER, no data
    int discard(uint64_t sector, uint64_t n);

    // Lower level, for tests that speak the protocol by hand: pushes `r` as
    // it is (and notifies the back-end if it asked); false if the ring is
    // full or broken.
    bool push(const abi::BlkifRequest& r);
    // The next response, waiting until `deadline` (0: the default timeout).
    int wait_response(abi::BlkifResponse* out, uint64_t deadline = 0);
    // One request, pushed, and its response waited for; the response's
    // status, or kBroken if the response was not this request's.
    int round_trip(const abi::BlkifRequest& r, uint64_t deadline = 0);
    uint32_t data_ref(unsigned page) const { return first_ref_ + 1 + page; }
    uint8_t* data_page(unsigned page);
    // The shared ring page (a hostile test writes garbage into it).
    void* shared_ring();
    uint32_t port() const { return port_; }
    Ring& ring() { return ring_; }

    // Says Closing, waits (until `deadline`) for the back-end to let go,
    // says Closed and ends the grants. False if a grant could not be
    // ended (the back-end still holds it) or the back-end did not answer.
    bool close(uint64_t deadline);

private:
    bool fail(const char* why);
    int io(uint8_t op, uint64_t sector, uint32_t n, uint8_t* buf, bool to_disk);
    bool publish();
    bool read_backend_info();

    Ring ring_;
    Info info_;
    bool connected_ = false;
    const char* error_ = "";
    uint32_t devid_ = 0;
    uint16_t backend_id_ = 0;
    uint32_t first_ref_ = kDefaultFirstRef;
    uint32_t port_ = 0;
    uint64_t next_id_ = 1;
    uint64_t timeout_ns_ = 60'000'000'000;
    char dir_[48] = {};        // device/vbd/<devid>
    char backend_[96] = {};    // the back-end's directory
    // The ring (page 0) and the data pages, granted to the back-end. A
    // Blkfront lives in static storage (the pages must be in the image).
    alignas(4096) uint8_t pages_[1 + kDataPages][4096] = {};
};

}  // namespace rt
