// `moat trace`: not written yet (issue 14).

#include "trace_cli.hpp"

namespace moat::cli {

int trace_command(int, char**, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  std::fprintf(stderr, "moat trace: not implemented yet\n");
  return 1;
}

void print_trace_help(FILE* out) { std::fprintf(out, "usage: moat trace ... (not implemented yet)\n"); }

}  // namespace moat::cli
