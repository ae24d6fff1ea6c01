// `moat console NAME` (docs/control.md): one domain's console lines, from the
// running system's console log (out/run/S/console.log, rundir.hpp), as
// `xl console` shows a domain's console from another terminal.
//
// The log is COM1's output as the console service writes it: each domain's
// lines as "NAME: text", the kernel's and the services' as they are. The
// command prints the domain's recent lines, then follows the log; Ctrl-]
// detaches. It reads only: typed input still goes in on the system's own
// terminal, where the console service's Ctrl-] moves the focus.
#pragma once

#include "graph.hpp"   // LoadAndCheck, RunningManifest

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace moat::cli {

// Exit status: 0 done, 1 error (printed), 2 usage. load_and_check and
// running_manifest are moat's own (main.cpp), as `moat graph` gets them.
[[nodiscard]] int console_command(int argc, char** argv, const moat::graph::LoadAndCheck& load_and_check,
                                  const moat::graph::RunningManifest& running_manifest);

void print_console_help(FILE* out);

// A console line's text made safe for a terminal: printable ASCII and tab as
// they are, a CR ending the line dropped (COM1 ends lines with CR LF),
// every other byte as \ and three octal digits, so that bytes from a guest
// (or a damaged log) can never drive the terminal.
[[nodiscard]] std::string sanitise_console(std::string_view text);

// One domain's lines out of the log's byte stream, in whatever pieces it
// is read: a line is the domain's exactly when it starts with "NAME: " (a
// domain "ping" never gets "pingpong: " lines; kernel lines "moat: ..." and
// other domains' are skipped). Each of its lines comes out without the
// prefix, sanitised.
class ConsoleFilter {
 public:
  // A longer line is handed out (if it is the domain's) in pieces of this
  // size, so that a log without newlines cannot grow the filter without bound.
  static constexpr size_t kMaxLine = 16 * 1024;

  explicit ConsoleFilter(std::string_view domain) : prefix_(std::string(domain) + ": ") {}

  // Appends to *lines the text of each of the domain's lines that `bytes` completes.
  void feed(std::string_view bytes, std::vector<std::string>* lines);

  // The domain's unterminated last line so far, if any (the line is kept:
  // more of it may still come).
  [[nodiscard]] std::optional<std::string> partial() const;

  // Forgets the line in progress (the log started afresh).
  void reset();

 private:
  void end_piece(bool line_ends, std::vector<std::string>* lines);

  std::string prefix_;   // "NAME: "
  // The current line so far; invariant: size() < kMaxLine (a line reaching
  // it is decided on and handed out, or dropped, in pieces).
  std::string pending_;
  // The current line is known to be a long one's continuation: its first
  // piece decided whether it is the domain's (mine_).
  bool continued_ = false;
  bool mine_ = false;
};

struct FollowOptions {
  std::string domain;
  size_t lines = 20;          // backlog: the last N of the domain's lines
  bool follow = true;         // false: the backlog (and a partial last line), then exit
  std::string until;          // non-empty: exit 0 once a printed line contains it
  double timeout = 0;         // > 0: stop following after this many seconds (1 with `until`)
  std::string system;         // for messages
};

// How the backlog is found: at most the log's last kBacklogScan bytes are
// read, so that a long-running system's log costs a bounded read.
inline constexpr size_t kBacklogScan = 16u << 20;

// Prints `options.domain`'s lines of the log at `log` to `out` and follows it
// while process `qemu` lives. `keys`: a file descriptor of the user's keys
// (already in raw mode), or -1: Ctrl-] (0x1d) detaches, Ctrl-C (0x03) too,
// anything else gets a note once on `err`. `stop` (may be null) is polled:
// a signal handler sets it. Returns the exit status (0 detached, ended, or
// `until` seen; 1 `until` not seen, the log unreadable), having said why on `err`.
[[nodiscard]] int follow_console(const std::filesystem::path& log, pid_t qemu, const FollowOptions& options,
                                 FILE* out, FILE* err, int keys, const volatile std::sig_atomic_t* stop);

}  // namespace moat::cli
