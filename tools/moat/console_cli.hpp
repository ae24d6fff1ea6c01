// `moat console NAME` (docs/control.md): one domain's console lines, from the
// running system's console log (out/run/S/console.log, rundir.hpp), as
// `xl console` shows a domain's console from another terminal.
//
// The log is COM1's output as the console service writes it: each domain's
// lines as "NAME: text", the kernel's and the services' as they are. The
// command prints the domain's recent lines, then follows the log; Ctrl-]
// detaches. Keys typed meanwhile go to the domain's console as
// console_input requests to the system's toolstack (docs/control.md), which
// takes them only for a domain it controls; a system without a toolstack
// takes input on its own terminal alone.
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

// --send TEXT: TEXT with its escapes \r \n \t \e (ESC) \\ and \xHH (two hex
// digits) made bytes; false with *why for another escape, a \ at the end,
// or an empty result.
[[nodiscard]] bool parse_send_text(std::string_view text, std::string* out, std::string* why);

// Bytes in console_input requests: pieces of at most kInputBatch (the
// protocol's 1 to 256 bytes), in order, none empty.
inline constexpr size_t kInputBatch = 256;
[[nodiscard]] std::vector<std::string> input_batches(std::string_view bytes);

// What the keys read at once mean: those before the first Ctrl-] are sent
// (Ctrl-C too: in raw mode it is a key for the guest, as in `xl console`),
// and Ctrl-] detaches (what follows it is dropped).
struct TypedKeys {
  std::string send;
  bool detach = false;
};
[[nodiscard]] TypedKeys take_keys(std::string_view typed);

// Where typed bytes go: the toolstack (console_cli.cpp), or a test's fake.
class InputSink {
 public:
  virtual ~InputSink() = default;
  // Hands 1 to kInputBatch bytes to the domain's console; false with *why
  // (one line for a person: a refusal, no answer, ...).
  [[nodiscard]] virtual bool send(std::string_view bytes, std::string* why) = 0;
  // After a failed send: whether the system closed the connection without
  // an answer (it may have ended, the bytes delivered: what they made the
  // domain print tells).
  [[nodiscard]] virtual bool closed_unanswered() const { return false; }
};

struct FollowOptions {
  std::string domain;
  size_t lines = 20;          // backlog: the last N of the domain's lines
  bool follow = true;         // false: the backlog (and a partial last line), then exit
  std::string until;          // non-empty: exit 0 once a printed line contains it
  double timeout = 0;         // > 0: stop following after this many seconds (1 with `until`)
  std::string system;         // for messages
  std::string send;           // non-empty: sent after the backlog (`until` then counts later lines only)
};

// How the backlog is found: at most the log's last kBacklogScan bytes are
// read, so that a long-running system's log costs a bounded read.
inline constexpr size_t kBacklogScan = 16u << 20;

// Prints `options.domain`'s lines of the log at `log` to `out` and follows it
// while process `qemu` lives. `keys`: a file descriptor of the user's keys
// (already in raw mode), or -1: Ctrl-] (0x1d) detaches; the other keys go to
// `input` in batches of what arrives together; the first failure is said
// once on `err` and no more keys are sent (the lines still are shown).
// Without `input` (no toolstack) Ctrl-C detaches too and other keys get a
// note once. `options.send` goes to `input` after the backlog (a failure:
// exit 1). `stop` (may be null) is polled: a signal handler sets it.
// Returns the exit status (0 detached, ended, or `until` seen; 1 `until` not
// seen, the log unreadable, --send not taken), having said why on `err`.
[[nodiscard]] int follow_console(const std::filesystem::path& log, pid_t qemu, const FollowOptions& options,
                                 FILE* out, FILE* err, int keys, const volatile std::sig_atomic_t* stop,
                                 InputSink* input = nullptr);

}  // namespace moat::cli
