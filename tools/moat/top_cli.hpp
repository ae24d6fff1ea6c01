// `moat top` (docs/control.md): the running system's domains as xentop shows
// Xen's, refreshed each second, from the toolstack's list answers: CPU time
// and its share, memory, and the kernel's per-domain counters (event sends,
// grant operations, grant-copied bytes) as totals and as rates.
#pragma once

#include "control.pb.h"
#include "graph.hpp"   // LoadAndCheck, RunningManifest

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace moat::cli {

// Exit status: 0 done, 1 error (printed), 2 usage. load_and_check and
// running_manifest are moat's own (main.cpp), as `moat graph` gets them.
[[nodiscard]] int top_command(int argc, char** argv, const moat::graph::LoadAndCheck& load_and_check,
                               const moat::graph::RunningManifest& running_manifest);

void print_top_help(FILE* out);

namespace top {

// How much a counter grew from `before` to `now`; 0 when it went back (the
// domain was re-created under the same name and id: its counters restarted),
// never an unsigned wrap into a huge rate.
[[nodiscard]] uint64_t grew(uint64_t now, uint64_t before);

// The rates of one domain between two list answers `seconds` apart (the
// host's time between them). Absent (nullopt) when there is nothing to
// compare with: the first answer, a domain that was not in the earlier one,
// or no time between them.
struct Rates {
  double cpu_pct;          // CPU time received, % of one CPU
  double events_per_s;     // events_sent
  double grants_per_s;     // grant_ops
  double copy_kib_per_s;   // grant_copy_bytes, KiB
};
[[nodiscard]] std::optional<Rates> rates(const moat::control::DomainInfo& now,
                                         const moat::control::DomainInfo* before, double seconds);

// The same domain in an earlier answer: the one with its name and id (a
// domain re-created gets a new id, most often: then it is a new domain), or
// nullptr.
[[nodiscard]] const moat::control::DomainInfo* previous(const moat::control::Response& before,
                                                        const moat::control::DomainInfo& now);

// One screen (or one batch iteration): a header line ("moat top - TIME
// system SYSTEM  N domains  free memory K KiB" or "-" when the answer gave
// none), the list answer's note if it has one, the column titles, a row per
// domain of `now` sorted by id. `before` (may be null) is the earlier
// answer, `seconds` before. Plain text, every field checked by
// check_response before: nothing in it drives a terminal.
[[nodiscard]] std::string format_table(const moat::control::Response& now, const moat::control::Response* before,
                                       double seconds, const std::string& time, const std::string& system);

}  // namespace top

}  // namespace moat::cli
