// `moat top`: not written yet (issue 14).

#include "top_cli.hpp"

namespace moat::cli {

int top_command(int, char**, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  std::fprintf(stderr, "moat top: not implemented yet\n");
  return 1;
}

void print_top_help(FILE* out) { std::fprintf(out, "usage: moat top ... (not implemented yet)\n"); }

}  // namespace moat::cli
