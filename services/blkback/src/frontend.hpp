#pragma once
// One vbd entry: what the xenbus side (frontends.cpp) and the ring side
// (io.cpp) share about a front-end. Internal to blkback.

#include "frontends.hpp"

#include <cstdint>

#include <abi/blkif.hpp>
#include <blk/blk.hpp>

namespace blkback {

enum class Phase : uint8_t { unused, fresh, init_wait, connected, closed, refused, gone };

struct Frontend {
    Phase phase;
    uint16_t domid;
    uint32_t devid;
    bool seen;      // in the latest listing of backend/vbd
    bool watching;  // its directory is watched
    char be[48];    // backend/vbd/<fe>/<devid> (ours)
    char fe[96];    // the front-end's directory
    blk::Disk disk;
    // The ring: ring_pages pages mapped at ring_map's entry for us.
    blk::BackRing ring;
    void* ring_va;
    unsigned ring_pages;
    uint32_t ring_handle[blk::kMaxRingPages];
    uint32_t port;
    // The ring side's (io.cpp).
    unsigned inflight;        // requests on the device
    unsigned pages;           // bounce pages they hold
    bool held;                // `request` taken from the ring and judged (`checked`), not started yet
    abi::BlkifRequest request;
    blk::Checked checked;
    bool blocked;  // a flush or barrier in flight: nothing after it starts
    bool dirty;    // responses to push
    bool closing;  // closed, our state Closing: Closed follows the front-end's
    uint64_t served, refused, indirect;
};

extern Frontend g_fe[kMaxFrontends];

inline unsigned index_of(const Frontend& f) { return unsigned(&f - g_fe); }

// The features a front-end's requests are judged against.
blk::Features features_of(const Frontend& f);

// frontends.cpp: disconnects a front-end whose ring is broken, says Closed.
void drop(Frontend& f, const char* why);

// io.cpp: pushes the responses written since the last push, and notifies
// each front-end whose ring asked for it.
void push_responses();

// io.cpp: the ring side lets go of a front-end that is disconnected: its
// requests on the device become orphans (their bounce pages and slots come
// back when the device is done with them, nothing is answered), what it had
// taken and not started is dropped.
void io_forget(Frontend& f);

}  // namespace blkback
