// `moat console`: not written yet (issue 14).

#include "console_cli.hpp"

namespace moat::cli {

int console_command(int, char**, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  std::fprintf(stderr, "moat console: not implemented yet\n");
  return 1;
}

void print_console_help(FILE* out) { std::fprintf(out, "usage: moat console ... (not implemented yet)\n"); }

}  // namespace moat::cli
