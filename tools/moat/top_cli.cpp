// `moat top`: xentop for Moat (docs/control.md). Each refresh is one list
// request over the control channel (control_client.hpp: the same exchange
// and checks as `moat list`); rates are the counters' growth between two
// answers over the host's time between them.

#include "top_cli.hpp"
#include "cli_args.hpp"

#include "control_client.hpp"
#include "rundir.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <random>
#include <string_view>
#include <termios.h>
#include <unistd.h>
#include <vector>

namespace moat::cli {

namespace mc = moat::control;
using Clock = std::chrono::steady_clock;

namespace top {

uint64_t grew(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

std::optional<Rates> rates(const mc::DomainInfo& now, const mc::DomainInfo* before, double seconds) {
  // Not `seconds <= 0`: a NaN must not pass either.
  if (!before || !(seconds > 0)) return std::nullopt;
  Rates r;
  r.cpu_pct = double(grew(now.cpu_time_ns(), before->cpu_time_ns())) / (seconds * 1e9) * 100.0;
  r.events_per_s = double(grew(now.events_sent(), before->events_sent())) / seconds;
  r.grants_per_s = double(grew(now.grant_ops(), before->grant_ops())) / seconds;
  r.copy_kib_per_s = double(grew(now.grant_copy_bytes(), before->grant_copy_bytes())) / 1024.0 / seconds;
  return r;
}

const mc::DomainInfo* previous(const mc::Response& before, const mc::DomainInfo& now) {
  for (const mc::DomainInfo& d : before.domains())
    if (d.id() == now.id() && d.name() == now.name()) return &d;
  return nullptr;
}

std::string format_table(const mc::Response& now, const mc::Response* before, double seconds,
                         const std::string& time, const std::string& system) {
  std::vector<const mc::DomainInfo*> rows;
  size_t name_width = 4;   // "NAME"
  for (const mc::DomainInfo& d : now.domains()) {
    rows.push_back(&d);
    name_width = std::max(name_width, d.name().size());
  }
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->id() < b->id(); });

  std::string out = "moat top - " + time + "  system " + system + "  " + std::to_string(rows.size()) +
                    (rows.size() == 1 ? " domain" : " domains") + "  free memory ";
  out += now.free_memory_kib() ? std::to_string(now.free_memory_kib()) + " KiB" : "-";
  out += "\n";
  if (!now.error().empty()) out += "note: " + now.error() + "\n";   // some domains left out of the answer
  char line[512];
  std::snprintf(line, sizeof line,
                "%*s %5s %6s %9s %6s %9s %9s %5s %10s %9s %10s %9s %9s %10s\n", int(name_width), "NAME", "ID",
                "STATE", "CPU(sec)", "CPU(%)", "MEM(k)", "MAXMEM(k)", "VCPUS", "EVENTS", "EVENTS/s", "GRANTS",
                "GRANTS/s", "COPY(KB)", "COPY(KB/s)");
  out += line;
  auto rate = [](std::optional<double> v, int width) {
    char b[64];
    if (v) std::snprintf(b, sizeof b, "%*.1f", width, *v);
    else std::snprintf(b, sizeof b, "%*s", width, "-");
    return std::string(b);
  };
  for (const mc::DomainInfo* d : rows) {
    std::optional<Rates> r = before ? rates(*d, previous(*before, *d), seconds) : std::nullopt;
    auto field = [&](double Rates::*f) { return r ? std::optional<double>((*r).*f) : std::nullopt; };
    std::snprintf(line, sizeof line, "%*s %5u %6s %9llu %s %9llu %9llu %5u %10llu %s %10llu %s %9llu %s\n",
                  int(name_width), d->name().c_str(), d->id(), mc::state_flags(d->state()).c_str(),
                  static_cast<unsigned long long>(d->cpu_time_ns() / 1'000'000'000),
                  rate(field(&Rates::cpu_pct), 6).c_str(), static_cast<unsigned long long>(d->memory_kib()),
                  static_cast<unsigned long long>(d->max_memory_kib()), d->vcpus(),
                  static_cast<unsigned long long>(d->events_sent()), rate(field(&Rates::events_per_s), 9).c_str(),
                  static_cast<unsigned long long>(d->grant_ops()), rate(field(&Rates::grants_per_s), 9).c_str(),
                  static_cast<unsigned long long>(d->grant_copy_bytes() / 1024),
                  rate(field(&Rates::copy_kib_per_s), 10).c_str());
    out += line;
  }
  return out;
}

}  // namespace top

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kDefaultTimeout = 10;
constexpr double kDefaultDelay = 1;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "moat top: %s\nRun 'moat top --help' for usage.\n", message.c_str());
  return kExitUsage;
}

// Set by SIGINT / SIGTERM: the loop ends at its next wait, the terminal restored.
volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

// The terminal as we found it, while keys are read one at a time.
struct RawKeys {
  bool active = false;
  termios saved{};
  void enter() {
    if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved) != 0) return;
    termios t = saved;
    t.c_lflag &= ~tcflag_t(ICANON | ECHO);   // keys at once, not shown; ISIG kept: Ctrl-C is SIGINT
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    active = ::tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
  }
  ~RawKeys() {
    if (active) (void)::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
};

// Waits until `until`; true when the user asked to quit (q, Q, Ctrl-C) or a
// signal came. Keys are read only in interactive mode.
bool wait_or_quit(Clock::time_point until, bool keys) {
  for (;;) {
    if (g_stop) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int n = ::poll(&p, keys ? 1 : 0, int(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) return false;
    if (n > 0 && keys) {
      char c[16];
      ssize_t got = ::read(STDIN_FILENO, c, sizeof c);
      if (got == 0) keys = false;   // stdin at its end: only the time and signals from now on
      for (ssize_t i = 0; i < got; ++i)
        if (c[i] == 'q' || c[i] == 'Q' || c[i] == 3) return true;
    }
  }
}

std::string wall_time() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  char b[16] = "--:--:--";
  if (::localtime_r(&t, &tm)) std::strftime(b, sizeof b, "%H:%M:%S", &tm);
  return b;
}

}  // namespace

void print_top_help(FILE* out) {
  std::fputs("usage: moat top [-b] [-i N] [-d SECONDS] [--system S] [--timeout SECONDS]\n"
             "\n"
             "The running system's domains as xentop shows Xen's, refreshed every -d seconds:\n"
             "NAME, ID, STATE (xl's flags: r running, p paused, s shut down, c crashed),\n"
             "CPU(sec) and CPU(%) (CPU time received, and its share of one CPU since the\n"
             "last refresh), MEM(k) and MAXMEM(k), VCPUS, then the kernel's counters for\n"
             "the domain since it was created, each as a total and a rate since the last\n"
             "refresh: EVENTS (event-channel notifications it sent), GRANTS (grant map,\n"
             "unmap and copy operations it asked for), COPY(KB) (what it copied with grant\n"
             "copy: a back-end's ring traffic). A rate is '-' until there are two answers to\n"
             "compare. The header has the time, the number of domains and the machine's\n"
             "free memory ('-' when the toolstack does not report it). The domains are those\n"
             "the toolstack controls, and the toolstack itself (its counters read 0: it\n"
             "holds no capability to look at itself).\n"
             "\n"
             "On a terminal the screen is redrawn in place; q or Ctrl-C quits.\n"
             "\n"
             "options:\n"
             "  -b, --batch          plain lines, one table per refresh, no terminal control\n"
             "                       (also when the output is not a terminal)\n"
             "  -i, --iterations N   stop after N refreshes (1 to 1000000; default: until quit)\n"
             "  -d, --delay SECONDS  between refreshes (0.1 to 3600; default 1)\n"
             "  --system S           the running system S (out/run/S); default: the only one\n"
             "                       running\n"
             "  --timeout SECONDS    give up when the system has not answered a refresh in\n"
             "                       this long (default 10)\n"
             "  -h, --help           this help\n"
             "\n"
             "exit status: 0 done (N refreshes, or quit); 1 error (no system, no answer,\n"
             "an answer that does not check); 2 usage error.\n",
             out);
}

int top_command(int argc, char** argv, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  std::string system;
  bool batch = false;
  long iterations = 0;   // 0: until quit
  double delay = kDefaultDelay, timeout = kDefaultTimeout;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "-h" || arg == "--help") {
      print_top_help(stdout);
      return kExitOk;
    } else if (arg == "-b" || arg == "--batch") {
      batch = true;
    } else if (arg == "-i" || arg == "--iterations") {
      double v = 0;
      if (!value || !parse_number(value, 1, 1e6, &v) || v != double(long(v)))
        return usage_error(std::string(arg) + " needs a number of refreshes (1 to 1000000)");
      iterations = long(v);
      ++i;
    } else if (arg == "-d" || arg == "--delay") {
      if (!value || !parse_number(value, 0.1, 3600, &delay))
        return usage_error(std::string(arg) + " needs a number of seconds (0.1 to 3600)");
      ++i;
    } else if (arg == "--system") {
      if (!value || !*value) return usage_error("--system needs a system's name");
      system = value;
      ++i;
    } else if (arg == "--timeout") {
      if (!value || !parse_number(value, 0.001, 86400, &timeout))
        return usage_error("--timeout needs a positive number of seconds");
      ++i;
    } else {
      return usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  // Escapes only for a person at a terminal; a pipe or a file gets plain lines.
  const bool interactive = !batch && ::isatty(STDOUT_FILENO);

  auto root = rundir::root();
  std::string chosen, why;
  if (!rundir::choose(root, system, &chosen, &why)) {
    std::fprintf(stderr, "moat top: %s\n", why.c_str());
    return kExitFailed;
  }
  const std::string socket = (root / chosen / rundir::kSocket).string();

  struct sigaction sa{};
  sa.sa_handler = on_stop;   // no SA_RESTART: a wait ends at once
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  RawKeys keys;
  if (interactive) keys.enter();

  const auto span =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(delay));
  std::optional<mc::Response> before;
  Clock::time_point before_at{};
  Clock::time_point next = Clock::now();
  for (long k = 0; iterations == 0 || k < iterations; ++k) {
    if (k > 0 && wait_or_quit(next, keys.active)) break;
    if (g_stop) break;
    next += period;
    mc::Exchange x = mc::exchange_list(socket, Clock::now() + span);   // every page
    const Clock::time_point at = Clock::now();
    std::string failure = mc::unanswered(x, chosen, socket, timeout);
    if (failure.empty() && x.response.status() != mc::OK) {
      failure = "the toolstack refused the list (" + mc::Status_Name(x.response.status()) + "): " + x.response.error();
    }
    if (!failure.empty()) {
      if (interactive) std::fputs("\n", stdout);
      std::fflush(stdout);
      std::fprintf(stderr, "moat top: %s\n", failure.c_str());
      return kExitFailed;
    }
    const double seconds = before ? std::chrono::duration<double>(at - before_at).count() : 0;
    std::string table = top::format_table(x.response, before ? &*before : nullptr, seconds, wall_time(), chosen);
    if (interactive) std::fputs("\x1b[H\x1b[2J", stdout);
    std::fputs(table.c_str(), stdout);
    if (!interactive) std::fputs("\n", stdout);   // iterations a blank line apart
    std::fflush(stdout);
    before = std::move(x.response);
    before_at = at;
    // Behind (a slow answer): the next refresh at once, not a burst to catch up.
    if (next < Clock::now()) next = Clock::now();
  }
  return kExitOk;
}

}  // namespace moat::cli
