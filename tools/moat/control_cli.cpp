#include "control_cli.hpp"
#include "cli_args.hpp"

#include "control_client.hpp"
#include "rundir.hpp"
#include "watch_cli.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace moat::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kDefaultTimeout = 10;

int usage_error(const char* command, const std::string& message) {
  std::fprintf(stderr, "moat %s: %s\nRun 'moat %s --help' for usage.\n", command, message.c_str(), command);
  return kExitUsage;
}

int error(const char* command, const std::string& message) {
  std::fprintf(stderr, "moat %s: %s\n", command, message.c_str());
  return kExitFailed;
}

// A seq no earlier client used, most likely: a late answer to a request that
// timed out then carries another seq and is skipped.
uint32_t fresh_seq() {
  std::random_device rd;
  return uint32_t(rd()) | 1u;
}

bool valid_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  return true;
}

bool valid_xenstore_path(std::string_view path) {
  if (path.empty() || path.size() > 256) return false;
  for (char c : path)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '@' || c == '/'))
      return false;
  return true;
}

// `moat xenstore WORDS...` as a XenstoreRequest; "" or why not.
std::string xenstore_request(const std::vector<std::string>& words, control::XenstoreRequest* x) {
  if (words.empty()) return "which operation? (ls, read, write, rm, watch)";
  const std::string& verb = words[0];
  size_t want = verb == "write" ? 3 : 2;
  if (verb == "ls") x->set_op(control::XenstoreRequest::LS);
  else if (verb == "read") x->set_op(control::XenstoreRequest::READ);
  else if (verb == "write") x->set_op(control::XenstoreRequest::WRITE);
  else if (verb == "rm") x->set_op(control::XenstoreRequest::RM);
  else if (verb == "watch") x->set_op(control::XenstoreRequest::WATCH);
  else return "unknown operation '" + verb + "' (ls, read, write, rm, watch)";
  if (words.size() != want)
    return verb == "write" ? "write takes a PATH and a VALUE (the words after PATH, a space apart)" : verb + " takes one PATH";
  if (!valid_xenstore_path(words[1]))
    return "'" + words[1] + "' is no XenStore path this channel carries (1 to 256 of A-Z a-z 0-9 _ @ / -)";
  x->set_path(words[1]);
  if (want == 3) {
    if (words[2].size() > 512) return "a value of " + std::to_string(words[2].size()) + " bytes: at most 512";
    x->set_value(words[2]);
  }
  return "";
}

}  // namespace

bool is_control_command(const char* command) {
  std::string_view c = command;
  return c == "list" || c == "pause" || c == "unpause" || c == "shutdown" || c == "xenstore" || c == "destroy";
}

void print_control_help(const char* command, FILE* out) {
  std::string_view c = command;
  if (c == "list") {
    std::fputs("usage: moat list [NAME] [--free] [--system S] [--timeout SECONDS] [--rtt N]\n"
               "\n"
               "The domains of the running system, as 'xl list' prints them: Name, ID,\n"
               "Mem (MiB it owns), VCPUs, State (r running, p paused, s shut down, c crashed)\n"
               "and Time(s) (CPU time received): every domain the toolstack controls, and\n"
               "the toolstack itself. With NAME, that domain only. --free adds a line\n"
               "'free memory: N KiB', the machine's (as xl info's free_memory). --rtt N first makes N\n"
               "round trips and prints their median (BENCH control_rtt_ms, for make bench).\n",
               out);
  } else if (c == "pause" || c == "unpause") {
    std::fprintf(out,
                 "usage: moat %s NAME [--system S] [--timeout SECONDS]\n"
                 "\n"
                 "%s the domain NAME: the toolstack domain does it with its Domain\n"
                 "capability's control right (docs/control.md).\n",
                 command, c == "pause" ? "Pauses (stops scheduling)" : "Unpauses (schedules again)");
  } else if (c == "destroy") {
    std::fputs("usage: moat destroy NAME [--system S] [--timeout SECONDS]\n"
               "\n"
               "Destroys the domain NAME at once, as 'xl destroy' does: it is not asked, it\n"
               "is gone, its memory back, and it is not restarted whatever its restart\n"
               "policy. The toolstack asks the builder, which lets its back-ends go first\n"
               "(docs/control.md). Only a domain in the toolstack's controls.\n",
               out);
  } else if (c == "xenstore") {
    std::fputs("usage: moat xenstore ls PATH | read PATH | write PATH VALUE | rm PATH\n"
               "       moat xenstore watch PATH [--count N] [--seconds S] [--keep]\n"
               "                     [--system S] [--timeout SECONDS]\n"
               "\n"
               "XenStore as the toolstack domain's own permissions allow (it is one more\n"
               "XenStore client): PATH absolute (/local/domain/3/name) or relative to the\n"
               "toolstack's home, 1 to 256 of A-Z a-z 0-9 _ @ / -; VALUE at most 512 bytes.\n"
               "ls prints the node's children, one a line (as xenstore-list); read its value\n"
               "(as xenstore-read: '\\' doubled, other bytes than printable ASCII as \\ and\n"
               "three octal digits); write sets it (creating it); rm removes it and all under\n"
               "it. A refusal by XenStore comes back with its name: failed: EACCES: ...\n"
               "watch prints the path of each change at or under PATH, one a line, as it\n"
               "comes (as xenstore-watch; the first is PATH itself, as XenStore fires a new\n"
               "watch once), until Ctrl-C, N paths (--count) or S seconds (--seconds); it\n"
               "is the toolstack's watch, fired for what the toolstack may read. --keep\n"
               "leaves it set when done: a later watch of PATH takes what it queued (at\n"
               "most 16 paths), and unread it lapses after 10 s.\n",
               out);
  } else {
    std::fputs("usage: moat shutdown [NAME] [--system S] [--timeout SECONDS]\n"
               "\n"
               "Asks the domain NAME to power off, as Xen's toolstack does (\"poweroff\" in\n"
               "its XenStore control/shutdown); without NAME every domain the toolstack\n"
               "controls, and the system ends when they are down. Returns once asked.\n",
               out);
  }
  std::fputs("\n"
             "options:\n"
             "  --system S           the running system S (out/run/S; the manifest's file name\n"
             "                       without .textproto, or moat run --name); default: the\n"
             "                       only one running\n"
             "  --timeout SECONDS    give up when the system has not answered in this long\n"
             "                       (default 10)\n"
             "  -h, --help           this help\n"
             "\n"
             "The run directory is $MOAT_RUN_DIR if set, else ../run beside this binary.\n"
             "exit status: 0 done; 1 error (no system, unknown domain, refused, no answer);\n"
             "2 usage error.\n",
             out);
}

int control_command(const char* command, int argc, char** argv) {
  std::string_view op = command;
  std::string system, name;
  std::vector<std::string> words;   // xenstore: ls|read|write|rm PATH [VALUE]
  bool have_name = false;
  double timeout = kDefaultTimeout;
  bool free = false;   // list --free: the machine's free memory after the table
  long rtt = 0;   // list --rtt N: N round trips first, their median printed as a BENCH line
  WatchOptions watch;   // xenstore watch: --count, --seconds, --keep
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    // write's VALUE is taken as it is, even one that starts with '-'; the
    // words after it join it, a space apart (a value with spaces from a
    // caller that cannot quote, as moat-systest's CONTROL steps).
    if (op == "xenstore" && words.size() >= 2 && words[0] == "write" &&
        (words.size() == 2 || std::string_view(argv[i]).substr(0, 2) != "--")) {
      if (words.size() == 2) words.push_back(argv[i]);
      else words[2] += std::string(" ") + argv[i];
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      print_control_help(command, stdout);
      return kExitOk;
    } else if (arg == "--system") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error(command, "--system needs a system's name");
      system = argv[++i];
    } else if (arg == "--timeout") {
      if (i + 1 >= argc || !parse_timeout(argv[i + 1], &timeout))
        return usage_error(command, "--timeout needs a positive number of seconds");
      ++i;
    } else if (arg == "--free" && op == "list") {
      free = true;
    } else if (arg == "--rtt" && op == "list") {
      char* end = nullptr;
      long v = i + 1 < argc ? std::strtol(argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || end == argv[i + 1] || *end != '\0' || v < 1 || v > 10000)
        return usage_error(command, "--rtt needs a number of round trips (1 to 10000)");
      rtt = v;
      ++i;
    } else if ((arg == "--count" || arg == "--seconds") && op == "xenstore" && !words.empty() &&
               words[0] == "watch") {
      double v;
      if (i + 1 >= argc || !parse_number(argv[i + 1], 0, 1e6, &v) || !(v > 0) ||
          (arg == "--count" && v != double(long(v))))
        return usage_error(command, std::string(arg) + " needs a positive " +
                                        (arg == "--count" ? "number of paths" : "number of seconds"));
      if (arg == "--count") watch.count = long(v);
      else watch.seconds = v;
      ++i;
    } else if (arg == "--keep" && op == "xenstore" && !words.empty() && words[0] == "watch") {
      watch.keep = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error(command, "unknown option '" + std::string(arg) + "'");
    } else if (op == "xenstore") {
      words.push_back(argv[i]);
    } else {
      if (have_name) return usage_error(command, "one domain at a time");
      name = argv[i];
      have_name = true;
    }
  }
  control::Request request = control::make_request(fresh_seq());
  if (op == "xenstore") {
    std::string why = xenstore_request(words, request.mutable_xenstore());
    if (!why.empty()) return usage_error(command, why);
  }
  bool needs_name = op == "pause" || op == "unpause" || op == "destroy";
  if (needs_name && !have_name) return usage_error(command, "which domain? (moat " + std::string(op) + " NAME)");
  if (have_name && !valid_domain_name(name))
    return usage_error(command, "'" + name + "' is no domain name (1 to 32 of A-Z a-z 0-9 _ . -)");

  auto root = rundir::root();
  std::string chosen, why;
  if (!rundir::choose(root, system, &chosen, &why)) return error(command, why);
  const std::string socket = (root / chosen / rundir::kSocket).string();
  if (op == "xenstore" && request.xenstore().op() == control::XenstoreRequest::WATCH) {
    watch.socket = socket;
    watch.system = chosen;
    watch.path = request.xenstore().path();
    watch.timeout = timeout;
    return xenstore_watch(watch);
  }

  if (op == "list") request.mutable_list();
  else if (op == "pause") request.mutable_pause()->set_name(name);
  else if (op == "unpause") request.mutable_unpause()->set_name(name);
  else if (op == "shutdown") request.mutable_shutdown()->set_name(name);
  else if (op == "destroy") request.mutable_destroy()->set_name(name);

  auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout));
  if (rtt > 0) {
    // control_rtt_ms (make bench): the median of `rtt` whole round trips, each
    // a fresh connection and request as a user's `moat list` makes, in
    // milliseconds of the host's clock.
    std::vector<double> ms;
    for (long k = 0; k < rtt; ++k) {
      control::Request q = control::make_request(fresh_seq());
      q.mutable_list();
      auto t0 = std::chrono::steady_clock::now();
      control::Exchange e = control::exchange(socket, q, t0 + span);
      if (e.outcome != control::Outcome::answered || e.response.status() != control::OK)
        return error(command, "round trip " + std::to_string(k + 1) + " of " + std::to_string(rtt) + " failed" +
                                  (e.why.empty() ? "" : ": " + e.why));
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
    std::printf("BENCH control_rtt_ms %.3f\n", median);
  }
  auto deadline = std::chrono::steady_clock::now() + span;
  // A list is every page of it (exchange_list); the rest one exchange.
  control::Exchange x =
      op == "list" ? control::exchange_list(socket, deadline) : control::exchange(socket, request, deadline);
  // A whole system told to shut down may end before the toolstack's answer
  // leaves it (its last guest powers off at once and the builder takes the
  // toolstack down with the rest): the connection closes unanswered. That
  // is the request done if the system then ends within the timeout.
  if (op == "shutdown" && !have_name && x.outcome == control::Outcome::unreachable && x.closed) {
    while (rundir::alive(root, chosen) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!rundir::alive(root, chosen)) {
      std::printf("every controlled domain asked to power off: system %s has ended\n", chosen.c_str());
      return kExitOk;
    }
  }
  if (std::string why = control::unanswered(x, chosen, socket, timeout); !why.empty()) return error(command, why);
  const control::Response& r = x.response;
  if (op == "list" && r.status() != control::OK && !x.why.empty())
    return error(command, x.why);   // a later page failed: which one
  switch (r.status()) {
    case control::OK:
      // A list or ls that left some out says so (check_response allows a note there only).
      if (!r.error().empty()) std::fprintf(stderr, "moat %s: note: %s\n", command, r.error().c_str());
      break;
    case control::BAD_VERSION:
      return error(command, "the toolstack speaks protocol version " + std::to_string(int(r.version())) +
                                ", this moat version 1: " + r.error());
    case control::BAD_REQUEST:
      return error(command, "the toolstack found the request malformed: " + r.error());
    case control::NO_SUCH_DOMAIN:
      return error(command, "no domain '" + name + "' in system " + chosen + ": " + r.error());
    case control::REFUSED:
      return error(command, "refused: " + r.error());
    case control::FAILED:
      return error(command, "failed: " + r.error());
    default:
      return error(command, "status " + std::to_string(int(r.status())));   // check_response() rules it out
  }
  if (op == "list") {
    control::Response shown = r;
    if (have_name) {
      shown.clear_domains();
      for (const auto& d : r.domains())
        if (d.name() == name) *shown.add_domains() = d;
      if (shown.domains_size() == 0)
        return error(command, "no domain '" + name + "' in system " + chosen + " (that the toolstack controls)");
    }
    std::fputs(control::format_list(shown).c_str(), stdout);
    // As xl info's free_memory (KiB here: a frame's difference shows).
    if (free) std::printf("free memory: %llu KiB\n", static_cast<unsigned long long>(r.free_memory_kib()));
  } else if (op == "shutdown") {
    std::printf("%s asked to power off\n", have_name ? name.c_str() : "every controlled domain");
  } else if (op == "destroy") {
    std::printf("%s destroyed\n", name.c_str());
  } else if (op == "xenstore") {
    // As xenstore-list / xenstore-read print; write and rm print nothing.
    if (request.xenstore().op() == control::XenstoreRequest::LS)
      for (const std::string& c : r.children()) std::printf("%s\n", c.c_str());
    else if (request.xenstore().op() == control::XenstoreRequest::READ)
      std::printf("%s\n", control::sanitise_value(r.value()).c_str());
  }
  return kExitOk;
}

}  // namespace moat::cli
