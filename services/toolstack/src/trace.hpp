#pragma once
// `moat trace` in the toolstack (docs/control.md, "moat trace"): start, read
// and stop the kernel's per-CPU trace buffers with the Trace capability the
// builder gave us (domctl trace, abi/trace.hpp). The kernel checks every
// argument again; a read copies at most control::kRecordsLen bytes of whole
// records into the answer.

#include <control/messages.hpp>

namespace toolstack {

// Request.trace: sets r.status (and r.error), r.cpus, and for a read
// r.records, r.records_len, r.next and r.lost.
void trace(const control::Request& q, control::Response& r);

}  // namespace toolstack
