// `moat top` (docs/control.md): see top_cli.cpp.
#pragma once

#include "graph.hpp"   // LoadAndCheck, RunningManifest

#include <cstdio>

namespace moat::cli {

// Exit status: 0 done, 1 error (printed), 2 usage. load_and_check and
// running_manifest are moat's own (main.cpp), as `moat graph` gets them.
[[nodiscard]] int top_command(int argc, char** argv, const moat::graph::LoadAndCheck& load_and_check,
                               const moat::graph::RunningManifest& running_manifest);

void print_top_help(FILE* out);

}  // namespace moat::cli
