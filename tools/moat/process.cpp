#include "process.hpp"

#include "qemu.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace moat::proc {

pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options, std::string* error) {
  if (argv.empty()) {
    if (error) *error = "empty command";
    return -1;
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    if (error) *error = std::string("pipe: ") + std::strerror(errno);
    return -1;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    if (error) *error = std::string("fork: ") + std::strerror(errno);
    ::close(report[0]);
    ::close(report[1]);
    return -1;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    if (options.own_group) ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    // Signals the parent ignores stay ignored across exec: restore defaults.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGQUIT, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (options.stdin_fd >= 0) ::dup2(options.stdin_fd, 0);
    if (options.stdout_fd >= 0) ::dup2(options.stdout_fd, 1);
    if (options.stderr_fd >= 0) ::dup2(options.stderr_fd, 2);
    ::execvp(cargv[0], cargv.data());
    int err = errno;
    (void)!::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(pid, nullptr, 0);
    if (error) *error = argv[0] + ": " + std::strerror(err);
    return -1;
  }
  return pid;
}

namespace {
Status decode(int raw) {
  Status s;
  if (WIFEXITED(raw)) {
    s.exited = true;
    s.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    s.signal = WTERMSIG(raw);
  }
  return s;
}
}  // namespace

std::optional<Status> wait_until(pid_t pid, std::optional<Clock::time_point> deadline) {
  for (;;) {
    int raw = 0;
    pid_t r = ::waitpid(pid, &raw, deadline ? WNOHANG : 0);
    if (r == pid) return decode(raw);
    if (r < 0 && errno != EINTR) return Status{};  // not our child any more: treat as killed
    if (deadline && Clock::now() >= *deadline) return std::nullopt;
    if (deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status kill_and_reap(pid_t pid, bool group) {
  if (group) ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  return *wait_until(pid, std::nullopt);
}

std::string describe_qemu_status(const Status& s) {
  if (!s.exited) {
    if (s.signal == 0) return "QEMU vanished (status unknown)";
    return "QEMU killed by signal " + std::to_string(s.signal) + " (" + ::strsignal(s.signal) + ")";
  }
  if (s.code == qemu::kExitClean) return "system ended cleanly";
  if (s.code == qemu::kExitPanic) return "kernel panic (QEMU exit 35)";
  if (s.code == 0) return "QEMU exited with 0 (triple fault or reset under -no-reboot: not a clean end)";
  return "QEMU exited with " + std::to_string(s.code);
}

}  // namespace moat::proc
