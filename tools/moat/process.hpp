// Starting QEMU and waiting for it, shared by `moat boot` and moat-systest.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace moat::proc {

struct SpawnOptions {
  int stdin_fd = -1;   // -1: inherit
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool own_group = false;        // setpgid(0, 0): kill() the whole group on timeout
  bool die_with_parent = false;  // PR_SET_PDEATHSIG SIGKILL: no QEMU outlives us
};

// fork + execvp. Returns the pid, or -1 with *error set (including exec failures,
// reported back from the child, e.g. "qemu-system-x86_64: No such file or directory").
pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options, std::string* error);

struct Status {
  bool exited = false;  // else killed by `signal`
  int code = 0;
  int signal = 0;
};

using Clock = std::chrono::steady_clock;

// Waits for pid until the deadline (none: forever). nullopt when the deadline passed.
std::optional<Status> wait_until(pid_t pid, std::optional<Clock::time_point> deadline);

// SIGKILL the child (and its process group if it has one of its own) and reap it.
Status kill_and_reap(pid_t pid, bool group);

// "system ended cleanly", "kernel panic (QEMU exit 35)", "QEMU exited with N", ...
std::string describe_qemu_status(const Status& status);

}  // namespace moat::proc
