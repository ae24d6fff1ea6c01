#pragma once
// blkback's front-ends: the xenbus side (frontends.cpp: one entry per
// backend/vbd/<fe>/<devid> the builder wrote, its state machine) and the
// ring side (io.cpp: requests taken, checked by libs/blk, carried out on
// the device through bounce pages and grant copy, answered).

#include <cstdint>

namespace blkback {

inline constexpr unsigned kMaxFrontends = 8;

// Looks at XenStore again: new vbds, front-ends that changed state, went
// away or came back. Called at start and on every watch event.
void frontends_scan();
// Takes what the device finished and answers it.
void frontends_complete();
// Takes new requests from every connected front-end (a bounded batch
// each), pushes the responses, tells the device. Returns true if some
// front-end has more right away (do not sleep).
bool frontends_serve();
// The event channels to sleep on (connected front-ends'); returns how many
// were written to ports (at most kMaxFrontends).
unsigned frontends_ports(uint32_t* ports);

}  // namespace blkback
