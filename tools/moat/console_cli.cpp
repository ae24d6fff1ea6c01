// `moat console NAME`: one domain's console, from another terminal
// (console_cli.hpp, docs/control.md).

#include "console_cli.hpp"
#include "cli_args.hpp"
#include "control_client.hpp"

#include "manifest.hpp"
#include "rundir.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

namespace moat::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr unsigned char kCtrlRightBracket = 0x1d;   // Ctrl-]: detach, as `xl console`
constexpr unsigned char kCtrlC = 0x03;              // raw mode: Ctrl-C arrives as a key
constexpr size_t kMaxBacklog = 10000;               // --lines at most

int usage(const std::string& message) {
  std::fprintf(stderr, "moat console: %s\nRun 'moat console --help' for usage.\n", message.c_str());
  return kExitUsage;
}

bool process_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// The terminal as it was, put back on every way out of console_command.
struct RawKeys {
  termios saved{};
  bool raw = false;

  // Keys one at a time, unechoed, Ctrl-C and Ctrl-] as bytes (not signals),
  // no flow control; output processing kept, so "\n" still starts a line.
  void enter(int fd) {
    if (!::isatty(fd) || ::tcgetattr(fd, &saved) != 0) return;
    termios t = saved;
    t.c_lflag &= tcflag_t(~(ICANON | ECHO | ISIG | IEXTEN));
    t.c_iflag &= tcflag_t(~(IXON | ICRNL | INLCR));
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    raw = ::tcsetattr(fd, TCSANOW, &t) == 0;
  }
  void leave(int fd) {
    if (raw) ::tcsetattr(fd, TCSANOW, &saved);
    raw = false;
  }
};

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

// A seq no earlier client used, most likely: a late answer to a request that
// timed out then carries another seq and is skipped.
uint32_t fresh_seq() {
  std::random_device rd;
  return uint32_t(rd()) | 1u;
}

// Typed bytes as console_input requests to the system's toolstack, each
// through a new connection to its control socket, as every moat command's.
class ToolstackInput final : public InputSink {
 public:
  ToolstackInput(std::string socket, std::string domain, std::string system, double timeout)
      : socket_(std::move(socket)), domain_(std::move(domain)), system_(std::move(system)), timeout_(timeout) {}

  bool send(std::string_view bytes, std::string* why) override {
    namespace mc = moat::control;
    mc::Request q = mc::make_request(fresh_seq());
    q.mutable_console_input()->set_name(domain_);
    q.mutable_console_input()->set_data(std::string(bytes));
    auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_));
    mc::Exchange x = mc::exchange(socket_, q, std::chrono::steady_clock::now() + span);
    closed_ = x.outcome == mc::Outcome::unreachable && x.closed;
    if (*why = mc::unanswered(x, system_, socket_, timeout_); !why->empty()) return false;
    const mc::Response& r = x.response;
    switch (r.status()) {
      case mc::OK: return true;
      case mc::REFUSED: *why = "refused: " + r.error(); break;
      case mc::NO_SUCH_DOMAIN: *why = "no domain '" + domain_ + "' running: " + r.error(); break;
      case mc::FAILED: *why = "failed: " + r.error(); break;
      case mc::BAD_REQUEST: *why = "the toolstack found the request malformed: " + r.error(); break;
      case mc::BAD_VERSION:
        *why = "the toolstack speaks protocol version " + std::to_string(int(r.version())) + ": " + r.error();
        break;
      default: *why = "status " + std::to_string(int(r.status())); break;   // check_response() rules it out
    }
    return false;
  }
  bool closed_unanswered() const override { return closed_; }

 private:
  std::string socket_, domain_, system_;
  double timeout_;
  bool closed_ = false;   // the last send's connection closed unanswered
};

}  // namespace

bool parse_send_text(std::string_view text, std::string* out, std::string* why) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      *out += text[i];
      continue;
    }
    if (++i == text.size()) {
      *why = "a \\ at the end of the text (\\\\ for a backslash)";
      return false;
    }
    switch (text[i]) {
      case 'r': *out += '\r'; break;
      case 'n': *out += '\n'; break;
      case 't': *out += '\t'; break;
      case 'e': *out += '\x1b'; break;
      case '\\': *out += '\\'; break;
      case 'x': {
        int hi = i + 1 < text.size() ? hex(text[i + 1]) : -1, lo = i + 2 < text.size() ? hex(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          *why = "\\x needs two hex digits";
          return false;
        }
        *out += char(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        *why = std::string("unknown escape \\") + sanitise_console(text.substr(i, 1)) +
               " (\\r \\n \\t \\e \\\\ \\xHH)";
        return false;
    }
  }
  if (out->empty()) {
    *why = "nothing to send";
    return false;
  }
  return true;
}

std::vector<std::string> input_batches(std::string_view bytes) {
  std::vector<std::string> out;
  for (size_t at = 0; at < bytes.size(); at += kInputBatch) out.emplace_back(bytes.substr(at, kInputBatch));
  return out;
}

TypedKeys take_keys(std::string_view typed) {
  TypedKeys k;
  size_t end = typed.find(char(kCtrlRightBracket));
  k.detach = end != std::string_view::npos;
  k.send = typed.substr(0, end);
  return k;
}

std::string sanitise_console(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= ' ' && c <= '~') || c == '\t') {
      out += char(c);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\%03o", c);
      out += esc;
    }
  }
  return out;
}

void ConsoleFilter::feed(std::string_view bytes, std::vector<std::string>* lines) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view part = bytes.substr(0, nl);
    // Up to the line's end, or until the line reaches kMaxLine.
    size_t take = std::min(part.size(), kMaxLine - pending_.size());
    pending_.append(part.substr(0, take));
    bytes.remove_prefix(take);
    if (pending_.size() == kMaxLine) {
      end_piece(false, lines);
    } else if (!bytes.empty()) {   // at the '\n'
      bytes.remove_prefix(1);
      end_piece(true, lines);
    }
  }
}

void ConsoleFilter::end_piece(bool line_ends, std::vector<std::string>* lines) {
  std::string_view text = pending_;
  if (!continued_) {
    mine_ = text.starts_with(prefix_);
    text.remove_prefix(mine_ ? prefix_.size() : 0);
  }
  // A long line's last piece may be empty (its length a multiple of kMaxLine): no line of its own.
  if (mine_ && !(continued_ && text.empty())) lines->push_back(sanitise_console(text));
  continued_ = !line_ends;
  pending_.clear();
}

std::optional<std::string> ConsoleFilter::partial() const {
  std::string_view text = pending_;
  if (continued_) {
    if (!mine_ || text.empty()) return std::nullopt;
  } else {
    if (!text.starts_with(prefix_)) return std::nullopt;
    text.remove_prefix(prefix_.size());
  }
  return sanitise_console(text);
}

void ConsoleFilter::reset() {
  pending_.clear();
  continued_ = mine_ = false;
}

int follow_console(const std::filesystem::path& log, pid_t qemu, const FollowOptions& o, FILE* out, FILE* err,
                   int keys, const volatile std::sig_atomic_t* stop, InputSink* input) {
  const char* system = o.system.c_str();
  int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::fprintf(err, "moat console: cannot read system %s's console log %s: %s (a system started by this moat keeps one)\n",
                 system, log.c_str(), std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return kExitFailed;
  }
  ConsoleFilter filter(o.domain);
  std::vector<std::string> lines;
  bool seen = false;   // a printed line contained o.until
  // Prints the lines; true once `until` is seen (the lines after it are not printed).
  // With --send, `until` counts the lines after the send only.
  bool match = o.send.empty();
  auto print = [&](const std::vector<std::string>& batch) {
    for (const auto& l : batch) {
      std::fputs(l.c_str(), out);
      std::fputc('\n', out);
      if (match && !o.until.empty() && l.find(o.until) != std::string::npos) {
        seen = true;
        break;
      }
    }
    std::fflush(out);
    return seen;
  };
  auto finish = [&](int rc) {
    ::close(fd);
    return rc;
  };
  auto not_seen = [&](const char* why) {
    std::fprintf(err, "moat console: '%s' not seen in %s's lines %s\n", sanitise_console(o.until).c_str(),
                 o.domain.c_str(), why);
    return finish(kExitFailed);
  };

  // The backlog: the last o.lines of the domain's lines in (the end of) the log.
  char buf[64 * 1024];
  off_t start = st.st_size > off_t(kBacklogScan) ? st.st_size - off_t(kBacklogScan) : 0;
  // A scan that starts inside the log starts inside a line: skipped up to its end.
  bool cut = start > 0 && ::lseek(fd, start, SEEK_SET) == start;
  std::deque<std::string> backlog;
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(err, "moat console: cannot read %s: %s\n", log.c_str(), std::strerror(errno));
      return finish(kExitFailed);
    }
    std::string_view bytes(buf, size_t(n));
    if (cut) {
      size_t nl = bytes.find('\n');
      cut = nl == std::string_view::npos;
      bytes.remove_prefix(cut ? bytes.size() : nl + 1);
    }
    lines.clear();
    filter.feed(bytes, &lines);
    for (auto& l : lines) {
      if (o.lines == 0) break;
      if (backlog.size() == o.lines) backlog.pop_front();
      backlog.push_back(std::move(l));
    }
  }
  if (print(std::vector<std::string>(backlog.begin(), backlog.end()))) return finish(kExitOk);
  if (!o.send.empty()) {
    if (!input) {
      std::fprintf(err, "moat console: --send: system %s has no toolstack domain to take input\n", system);
      return finish(kExitFailed);
    }
    std::string why;
    const std::vector<std::string> batches = input_batches(o.send);
    for (size_t i = 0; i < batches.size(); ++i) {
      if (input->send(batches[i], &why)) continue;
      // The last bytes may end the system (a guest told to quit powers off,
      // the system ends with it) before the toolstack's answer leaves: with
      // --until, what the domain printed decides, as for any send.
      if (i + 1 == batches.size() && input->closed_unanswered() && !o.until.empty() && o.follow) {
        std::fprintf(err, "moat console: --send to %s: no answer (the system closed the connection); looking for '%s'\n",
                     o.domain.c_str(), sanitise_console(o.until).c_str());
        break;
      }
      std::fprintf(err, "moat console: --send to %s: %s\n", o.domain.c_str(), sanitise_console(why).c_str());
      return finish(kExitFailed);
    }
    match = true;
  }
  if (!o.follow) {
    if (auto rest = filter.partial()) print({*rest});   // what there is of the last line
    if (seen) return finish(kExitOk);
    if (!o.until.empty()) return not_seen("(--no-follow)");
    return finish(kExitOk);
  }

  using Clock = std::chrono::steady_clock;
  const auto deadline = o.timeout > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                           std::chrono::duration<double>(o.timeout))
                                      : Clock::time_point::max();
  bool noted = false;   // the note on typed input, said once
  bool input_failed = false;   // said once; no more keys are sent
  for (;;) {
    if (stop && *stop) {
      std::fprintf(err, "\nmoat console: stopped by a signal\n");
      return finish(o.until.empty() ? kExitOk : kExitFailed);
    }
    // Whether QEMU is gone is asked before reading: what it wrote before it
    // went is then read in full.
    bool gone = !process_alive(qemu);
    bool got = false;
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(err, "moat console: cannot read %s: %s\n", log.c_str(), std::strerror(errno));
        return finish(kExitFailed);
      }
      got = true;
      lines.clear();
      filter.feed(std::string_view(buf, size_t(n)), &lines);
      if (print(lines)) return finish(kExitOk);
    }
    if (std::ferror(out)) {
      std::fprintf(err, "moat console: cannot write the lines: %s\n", std::strerror(errno));
      return finish(kExitFailed);
    }
    if (!got) {
      // A log started afresh under us (truncated, or another file now): from
      // its start (and read before an end is believed).
      struct stat now {}, path {};
      off_t at = ::lseek(fd, 0, SEEK_CUR);
      if (::stat(log.c_str(), &path) == 0 && (path.st_ino != st.st_ino || path.st_dev != st.st_dev)) {
        int again = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
        if (again >= 0) {
          ::close(fd);
          fd = again;
          st = path;
          filter.reset();
          continue;
        }
      } else if (::fstat(fd, &now) == 0 && now.st_size < at) {
        ::lseek(fd, 0, SEEK_SET);
        filter.reset();
        continue;
      }
    }
    if (gone) {
      if (auto rest = filter.partial(); rest && print({*rest})) return finish(kExitOk);
      std::fprintf(err, "moat console: system %s has ended (its QEMU, pid %d, is gone)\n", system, int(qemu));
      if (!o.until.empty()) return not_seen("before the system ended");
      return finish(kExitOk);
    }
    auto now = Clock::now();
    if (now >= deadline) {
      if (!o.until.empty()) {
        char why[64];
        std::snprintf(why, sizeof why, "in %g s (--timeout)", o.timeout);
        return not_seen(why);
      }
      return finish(kExitOk);
    }
    // New lines are looked for every 50 ms (a file gives poll nothing to wait on).
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int wait_ms = got ? 0 : int(std::min<long long>(left, 50));
    pollfd p{keys, POLLIN, 0};
    int r = ::poll(&p, keys >= 0 ? 1 : 0, wait_ms);
    if (r <= 0 || !(p.revents & (POLLIN | POLLHUP))) continue;
    unsigned char typed[kInputBatch];
    ssize_t n = ::read(keys, typed, sizeof typed);
    if (n <= 0) {
      if (n == 0 || errno != EINTR) keys = -1;   // no more keys: follow on
      continue;
    }
    auto detached = [&] {
      std::fprintf(err, "\nmoat console: detached from %s (system %s)\n", o.domain.c_str(), system);
      return finish(o.until.empty() ? kExitOk : kExitFailed);
    };
    if (!input) {
      for (ssize_t i = 0; i < n; ++i) {
        if (typed[i] == kCtrlRightBracket || typed[i] == kCtrlC) return detached();
        if (!noted) {
          noted = true;
          std::fprintf(err,
                       "moat console: input: system %s has no toolstack: type in the system's own terminal, where "
                       "Ctrl-] moves the focus (keys typed here are not sent; Ctrl-] here detaches)\n",
                       system);
        }
      }
      continue;
    }
    // What arrived together goes in one request (the read takes at most
    // kInputBatch bytes); a failure stops the input, not the output.
    TypedKeys k = take_keys(std::string_view(reinterpret_cast<const char*>(typed), size_t(n)));
    std::string why;
    if (!k.send.empty() && !input_failed && !input->send(k.send, &why)) {
      input_failed = true;
      std::fprintf(err, "\nmoat console: input to %s not sent: %s; keys typed here are no longer sent "
                   "(Ctrl-] detaches)\n", o.domain.c_str(), sanitise_console(why).c_str());
    }
    if (k.detach) return detached();
  }
}

int console_command(int argc, char** argv, const moat::graph::LoadAndCheck& load_and_check,
                    const moat::graph::RunningManifest& running_manifest) {
  FollowOptions o;
  std::string wanted;   // --system
  bool have_name = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "-h" || arg == "--help") {
      print_console_help(stdout);
      return kExitOk;
    } else if (arg == "--system") {
      const char* v = value();
      if (!v || !*v) return usage("--system needs a system's name");
      wanted = v;
    } else if (arg == "--lines") {
      const char* v = value();
      char* end = nullptr;
      unsigned long n = v ? std::strtoul(v, &end, 10) : 0;
      if (!v || !*v || *end || *v == '-' || n > kMaxBacklog)
        return usage("--lines needs a number of lines, 0 to " + std::to_string(kMaxBacklog));
      o.lines = n;
    } else if (arg == "--no-follow") {
      o.follow = false;
    } else if (arg == "--until") {
      const char* v = value();
      if (!v || !*v) return usage("--until needs a text to wait for");
      o.until = v;
    } else if (arg == "--timeout") {
      if (!parse_timeout(value(), &o.timeout)) return usage("--timeout needs a positive number of seconds");
    } else if (arg == "--send") {
      const char* v = value();
      std::string why;
      if (!v) return usage("--send needs a text to send");
      if (!parse_send_text(v, &o.send, &why)) return usage("--send: " + why);
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option '" + sanitise_console(arg) + "'");
    } else {
      if (have_name) return usage("one domain at a time");
      o.domain = arg;
      have_name = true;
    }
  }
  if (!have_name) return usage("which domain? (moat console NAME)");
  if (!o.send.empty() && !o.follow && !o.until.empty())
    return usage("--until with --send waits for lines after the send: drop --no-follow");

  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "moat console: %s\n", message.c_str());
    return kExitFailed;
  };
  const auto root = moat::rundir::root();
  std::string system, file, why;
  if (!moat::rundir::choose(root, wanted, &system, &why) || !running_manifest(system, &file, &why)) return fail(why);
  o.system = system;
  moat::manifest::Loaded m;
  if (!load_and_check(file, &m)) return fail("system " + system + "'s manifest " + file + " does not load (above)");
  std::string names;
  bool found = false;
  for (const auto& d : m.system.domains()) {
    found |= d.name() == o.domain;
    names += (names.empty() ? "" : ", ") + d.name();
  }
  if (!found)
    return fail("no domain '" + sanitise_console(o.domain) + "' in system " + system + " (its domains: " + names + ")");
  pid_t qemu = moat::rundir::pid_of(root, system);
  // Input goes through the toolstack, when the system has one.
  bool toolstack = false;
  for (const auto& d : m.system.domains()) toolstack |= d.role() == moat::Domain::TOOLSTACK;
  // As other moat commands, patient with a loaded host; never a hang.
  constexpr double kInputTimeout = 10;
  ToolstackInput input((root / system / moat::rundir::kSocket).string(), o.domain, system,
                       o.timeout > 0 && o.timeout < kInputTimeout ? o.timeout : kInputTimeout);

  // The keys in raw mode while following, so that Ctrl-] detaches at once;
  // the terminal put back on every way out (detach, Ctrl-C, SIGTERM, the end).
  RawKeys keys;
  int keys_fd = -1;
  if (o.follow && ::isatty(STDIN_FILENO)) {
    keys.enter(STDIN_FILENO);
    keys_fd = STDIN_FILENO;
    std::fprintf(stderr, "moat console: %s of system %s; Ctrl-] detaches\n", o.domain.c_str(), system.c_str());
  }
  struct sigaction stop {}, old_int {}, old_term {}, old_hup {}, ignore {}, old_pipe {};
  stop.sa_handler = on_stop_signal;   // no SA_RESTART: poll and read return
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &stop, &old_int);
  ::sigaction(SIGTERM, &stop, &old_term);
  ::sigaction(SIGHUP, &stop, &old_hup);
  ::sigaction(SIGPIPE, &ignore, &old_pipe);   // a closed stdout is a write error, said once
  int rc = follow_console(root / system / moat::rundir::kConsoleLog, qemu, o, stdout, stderr, keys_fd, &g_stop,
                          toolstack ? &input : nullptr);
  keys.leave(STDIN_FILENO);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  return rc;
}

void print_console_help(FILE* out) {
  std::fputs(
      "usage: moat console NAME [--system S] [--lines N] [--no-follow] [--send TEXT] [--until TEXT]\n"
      "                         [--timeout SECONDS]\n"
      "\n"
      "Shows domain NAME's console, as 'xl console' does, from any terminal: its last\n"
      "lines in the running system's console log (out/run/S/console.log, which 'moat\n"
      "run' and moat-systest keep), then each new one as it comes, without the\n"
      "\"NAME: \" the console service puts before it. Bytes other than printable ASCII\n"
      "and tab are shown as \\ooo. Ctrl-] detaches; it ends by itself when the system\n"
      "does. Keys typed here go to NAME's console (Ctrl-C too) through the system's\n"
      "toolstack, which takes them only for a domain it controls; a refusal is said\n"
      "once and no more keys are sent. A system without a toolstack takes input on\n"
      "its own terminal only (where Ctrl-] moves the console's focus; Ctrl-C here\n"
      "then detaches too).\n"
      "\n"
      "options:\n"
      "  --system S           which system; default: the only one running\n"
      "  --lines N            how many recent lines first (default 20; 0 to 10000)\n"
      "  --no-follow          print them and exit\n"
      "  --send TEXT          send TEXT to the console after the recent lines; escapes\n"
      "                       \\r (Enter) \\n \\t \\e \\\\ \\xHH\n"
      "  --until TEXT         exit 0 once a line containing TEXT is shown (recent ones\n"
      "                       count, except with --send: lines after it only)\n"
      "  --timeout SECONDS    stop following after SECONDS (with --until: exit 1, not seen)\n"
      "\n"
      "exit status: 0 detached, the system ended, or TEXT seen; 1 an error, or TEXT\n"
      "not seen; 2 usage error.\n",
      out);
}

}  // namespace moat::cli
