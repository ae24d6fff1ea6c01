// `moat list`, `moat pause`, `moat unpause`, `moat shutdown`, `moat destroy`, `moat xenstore
// ls|read|write|rm PATH [VALUE]`: the running system's toolstack domain asked
// through the control socket (rundir.hpp).
#pragma once

#include <cstdio>

namespace moat::cli {

// `command` is one of list, pause, unpause, shutdown, xenstore, destroy; argv its arguments.
// Exit status: 0 done, 1 error (printed), 2 usage.
[[nodiscard]] int control_command(const char* command, int argc, char** argv);

// True for the commands control_command() runs.
[[nodiscard]] bool is_control_command(const char* command);

void print_control_help(const char* command, FILE* out);

}  // namespace moat::cli
