// `moat trace --seconds N -o FILE` (docs/control.md, "moat trace"): the
// kernel's per-CPU trace buffers, read through the toolstack, written as a
// Perfetto trace (one track per pCPU, one per domain).
#pragma once

#include "graph.hpp"   // LoadAndCheck, RunningManifest

#include <abi/trace.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace moat::cli {

// Exit status: 0 done, 1 error (printed), 2 usage. load_and_check and
// running_manifest are moat's own (main.cpp), as `moat graph` gets them.
[[nodiscard]] int trace_command(int argc, char** argv, const moat::graph::LoadAndCheck& load_and_check,
                               const moat::graph::RunningManifest& running_manifest);

void print_trace_help(FILE* out);

namespace trace {

// What perfetto() made, for the report.
struct Counts {
  size_t tracks = 0, sched_slices = 0, hypercall_slices = 0, instants = 0;
};

// The records (each CPU's in the order its buffer held them) as a Perfetto
// trace: the bytes of a `Trace` message. `cpus` CPU tracks ("CPU n": a slice
// per run of a domain, named after it); a track per domain seen ("NAME
// (domain N)": a slice per hypercall, named after it, and instants for
// event deliveries, grant operations and marks). Every slice is closed and
// properly nested on its track. `names`: domain id -> name, where known.
[[nodiscard]] std::string perfetto(const std::vector<abi::TraceRecord>& records, unsigned cpus,
                                   const std::map<uint16_t, std::string>& names, Counts* counts);

// Xen's name of hypercall `nr` ("grant_table_op"), or "hypercall_N".
[[nodiscard]] std::string hypercall_name(uint64_t nr);

}  // namespace trace

}  // namespace moat::cli
