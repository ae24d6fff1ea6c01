// `moat create`: not written yet (issue 14).

#include "create_cli.hpp"

namespace moat::cli {

int create_command(int, char**, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  std::fprintf(stderr, "moat create: not implemented yet\n");
  return 1;
}

void print_create_help(FILE* out) { std::fprintf(out, "usage: moat create ... (not implemented yet)\n"); }

}  // namespace moat::cli
