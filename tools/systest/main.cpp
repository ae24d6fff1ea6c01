// moat-systest: boots a Moat system in QEMU, reads its serial console and
// decides whether the system test passed. See --help.
#include "console.hpp"
#include "json.hpp"
#include "process.hpp"
#include "machine.hpp"
#include "manifest.hpp"
#include "udp_echo.hpp"
#include "qemu.hpp"
#include "rundir.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <poll.h>
#include <sys/wait.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace {

using moat::proc::Clock;

constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;

void print_help(FILE* out) {
  std::fputs(
      "usage: moat-systest --kernel K [--module \"PATH ARGS\"]... [options]\n"
      "       moat-systest --kernel K --manifest FILE --log LOG [options]   (boots it as moat run does;\n"
      "       --manifest-damage truncate:N or flip:N spoils the binary manifest first)\n"
      "       --input TEXT --input-after LINE   types TEXT (\\xNN, \\r, \\n escapes) on the serial console\n"
      "                                         once a console line contains LINE\n"
      "       --qemu-arg ARG                    one more QEMU argument (a device, say); repeatable\n"
      "       --udp-echo N --udp-echo-after LINE  once a console line contains LINE, a host UDP client\n"
      "                                         sends N datagrams to the manifest's first UDP forward (on a\n"
      "                                         free host port) and wants each back byte for byte\n"
      "       --fresh-disks BYTE                recreate the manifest's disk images, every byte BYTE\n"
      "       --before-run CMD                  run CMD (sh -c) before QEMU starts (a fresh filesystem, say);\n"
      "                                         the test fails at once unless it exits 0\n"
      "       --after-exit CMD                  run CMD (sh -c) after QEMU ends; the test fails unless it\n"
      "                                         exits 0 (its output goes to the log)\n"
      "       --iommu on|off                    the machine: q35 with intel-iommu (on) or the PC (off);\n"
      "                                         default: the manifest's machine.iommu, or off\n"
      "       --control-after LINE --control CMD  once a console line contains LINE (and the\n"
      "                                         previous --control has ended), run `moat CMD --system\n"
      "                                         NAME` (moat beside this binary) against the running\n"
      "                                         system; repeatable, in order, each after the last\n"
      "                                         --control-after given; its output goes to the log as\n"
      "                                         lines \"control: ...\" between \"control: [K] moat CMD\"\n"
      "                                         and \"control: [K] exit STATUS\" (K counts from 1).\n"
      "                                         Needs --manifest with a TOOLSTACK domain: COM2 is then\n"
      "                                         the control socket in the run directory NAME (--name)"
      "\n"
      "Boots kernel K with the modules in QEMU (TCG), console to a pipe; copies each\n"
      "console line to stdout (and --log), then checks the run. It fails on: a line\n"
      "containing PANIC (unless --expect-exit panic); a domain line \"dN: FAIL...\";\n"
      "the timeout; a QEMU exit status other than expected; a missing --expect-pass\n"
      "or --expect-line; a present --forbid-line; fewer than --min-pass PASS lines.\n"
      "\n"
      "options:\n"
      "  --kernel K              kernel image (multiboot), required\n"
      "  --module \"PATH ARGS\"    boot module, repeatable, in order\n"
      "  --timeout S             kill QEMU (and its process group) after S seconds (default 120)\n"
      "  --expect-exit clean|panic  expected end: clean = QEMU 33 (default), panic = QEMU 35\n"
      "  --expect-pass NAME      a domain must print \"PASS NAME\"; repeatable\n"
      "  --expect-line SUBSTR    some line must contain SUBSTR; repeatable\n"
      "  --forbid-line SUBSTR    no line may contain SUBSTR; repeatable\n"
      "  --expect-shares G:PCT   \"SHARE G <weight> <amount>\" lines: amounts proportional to\n"
      "                          weights, each share within PCT percent (relative)\n"
      "  --expect-between S|E|I  a line containing I between the first line containing S\n"
      "                          and the next line containing E; repeatable\n"
      "  --min-pass N            at least N \"PASS <name>\" domain lines\n"
      "  --max-hypercall-us N    the kernel's \"longest hypercall invocation\" at most N us (use with --icount)\n"
      "  --append ARGS           the kernel command line\n"
      "  --icount                -icount shift=0 (guest time counts instructions)\n"
      "  --bench-json FILE       merge each \"BENCH <metric> <number>\" into the flat JSON\n"
      "                          object in FILE (when the test passes; at least one needed)\n"
      "  --bench-only METRIC     ... only this metric (repeatable; others the run's\n"
      "                          domains print are not this run's figures)\n"
      "  --bench-suffix S        ... each metric's name followed by S (the same run on\n"
      "                          another machine: net_guest_to_guest_pps_iommu)\n"
      "  --log FILE              also write the console (and the verdict) to FILE\n"
      "  --memory SIZE           guest RAM (default 256M)\n"
      "  --name NAME             test name shown in the verdict\n"
      "  -h, --help              this help\n"
      "\n"
      "The QEMU binary is $MOAT_QEMU if set, else qemu-system-x86_64.\n"
      "exit status: 0 pass, 1 fail, 2 usage error.\n",
      out);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "moat-systest: %s\nRun 'moat-systest --help' for usage.\n", message.c_str());
  return kExitUsage;
}

// QEMU's process group, for the signal handler: an interrupted runner must not
// leave QEMU behind.
volatile sig_atomic_t g_child_group = 0;

void on_fatal_signal(int sig) {
  if (g_child_group > 0) ::kill(-g_child_group, SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

class Output {
 public:
  bool open_log(const std::string& path) {
    if (path.empty()) return true;
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    log_ = std::fopen(path.c_str(), "w");
    return log_ != nullptr;
  }
  ~Output() {
    if (log_) std::fclose(log_);
  }
  void out(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    log(text);
  }
  void err(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    log(text);
  }
  void log(std::string_view text) {
    if (!log_) return;
    std::fwrite(text.data(), 1, text.size(), log_);
    std::fflush(log_);
  }

 private:
  FILE* log_ = nullptr;
};

// Runs `command` with sh -c, its output (stdout and stderr) indented into
// `output`; its exit status (-1 if it could not run or did not exit).
// One --control: a moat command run once `after` has shown on the console.
struct ControlStep {
  std::string after;
  std::string command;
  bool triggered = false;   // a console line contained `after`
  bool ran = false;
};

// `moat WORDS... --system NAME [--timeout 30]`: the command's words split at blanks.
std::vector<std::string> control_argv(const std::string& command, const std::string& system) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> argv{ec ? std::string("moat") : (self.parent_path() / "moat").string()};
  size_t at = 0;
  bool has_timeout = false;
  while ((at = command.find_first_not_of(" \t", at)) != std::string::npos) {
    size_t end = command.find_first_of(" \t", at);
    argv.push_back(command.substr(at, end == std::string::npos ? end : end - at));
    has_timeout |= argv.back() == "--timeout";
    at = end;
  }
  argv.insert(argv.end(), {"--system", system});
  // TCG on a loaded host: more patience than a person needs (still never a hang).
  if (!has_timeout) argv.insert(argv.end(), {"--timeout", "30"});
  return argv;
}

int run_host_command(const std::string& command, Output& output) {
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char line[4096];
  while (std::fgets(line, sizeof line, p)) output.out(std::string("  ") + line);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  moat::qemu::BootSpec spec;
  spec.console = moat::qemu::Console::Plain;
  moat::systest::Expectations expect;
  double timeout = 120;
  std::string bench_json, bench_suffix, log_path, name, manifest_file;
  std::vector<std::string> bench_only;   // --bench-only: merge these metrics alone
  char damage_kind = 0;
  std::string input, input_after;   // typed once a console line contains input_after
  int udp_count = 0;                 // host UDP echo client: datagrams, and the line that starts it
  std::string udp_after;
  int fresh_fill = -1;               // --fresh-disks
  std::string before_run;            // --before-run
  std::string after_exit;            // --after-exit
  bool memory_given = false;
  std::optional<bool> iommu;         // --iommu: instead of the manifest's machine.iommu
  std::vector<ControlStep> control;  // --control, in order
  std::string control_after;         // the last --control-after
  std::string run_name;              // the run directory's name, when COM2 is the control socket
  unsigned long damage_at = 0;

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    const char* v = nullptr;
    auto value = [&]() {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    if (arg == "-h" || arg == "--help") {
      print_help(stdout);
      return kExitPass;
    } else if (arg == "--kernel") {
      if (!value()) return usage_error("--kernel needs a path");
      spec.kernel = v;
    } else if (arg == "--module") {
      if (!value()) return usage_error("--module needs \"PATH ARGS\"");
      spec.modules.emplace_back(v);
    } else if (arg == "--timeout") {
      char* end = nullptr;
      if (!value()) return usage_error("--timeout needs seconds");
      timeout = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(timeout > 0) || timeout > 1e6)
        return usage_error("--timeout needs a positive number of seconds, not '" + std::string(v) + "'");
    } else if (arg == "--expect-exit") {
      if (!value()) return usage_error("--expect-exit needs clean or panic");
      std::string_view e = v;
      if (e == "clean") expect.exit = moat::systest::ExpectExit::Clean;
      else if (e == "panic") expect.exit = moat::systest::ExpectExit::Panic;
      else return usage_error("--expect-exit takes clean or panic, not '" + std::string(e) + "'");
    } else if (arg == "--expect-pass") {
      if (!value() || *v == '\0' || std::strchr(v, ' ')) return usage_error("--expect-pass needs a NAME without spaces");
      expect.passes.emplace_back(v);
    } else if (arg == "--expect-line") {
      if (!value() || *v == '\0') return usage_error("--expect-line needs a non-empty substring");
      expect.lines.emplace_back(v);
    } else if (arg == "--expect-between") {
      // START|END|INSIDE in one argument.
      if (!value()) return usage_error("--expect-between needs START|END|INSIDE");
      std::string_view spec_text = v;
      size_t a = spec_text.find('|'), b = a == std::string_view::npos ? a : spec_text.find('|', a + 1);
      if (b == std::string_view::npos || a == 0 || b == a + 1 || b + 1 == spec_text.size())
        return usage_error("--expect-between needs START|END|INSIDE, three non-empty parts");
      expect.between.push_back({std::string(spec_text.substr(0, a)), std::string(spec_text.substr(a + 1, b - a - 1)),
                                std::string(spec_text.substr(b + 1))});
    } else if (arg == "--expect-shares") {
      if (!value()) return usage_error("--expect-shares needs GROUP:PERCENT");
      std::string_view t = v;
      size_t colon = t.rfind(':');
      double pct = colon == std::string_view::npos ? -1 : std::strtod(std::string(t.substr(colon + 1)).c_str(), nullptr);
      if (colon == 0 || colon == std::string_view::npos || !(pct > 0))
        return usage_error("--expect-shares needs GROUP:PERCENT with a positive percentage");
      expect.shares.push_back({std::string(t.substr(0, colon)), pct});
    } else if (arg == "--forbid-line") {
      if (!value() || *v == '\0') return usage_error("--forbid-line needs a non-empty substring");
      expect.forbidden.emplace_back(v);
    } else if (arg == "--min-pass") {
      char* end = nullptr;
      if (!value()) return usage_error("--min-pass needs a number");
      long n = std::strtol(v, &end, 10);
      if (end == v || *end != '\0' || n < 0 || n > 1000000) return usage_error("--min-pass needs a number >= 0");
      expect.min_pass = static_cast<int>(n);
    } else if (arg == "--max-hypercall-us") {
      char* end = nullptr;
      if (!value()) return usage_error("--max-hypercall-us needs a number");
      long n = std::strtol(v, &end, 10);
      if (end == v || *end != '\0' || n <= 0) return usage_error("--max-hypercall-us needs a number > 0");
      expect.max_hypercall_us = n;
    } else if (arg == "--append") {
      if (!value()) return usage_error("--append needs the kernel command line");
      spec.kernel_args = v;
    } else if (arg == "--icount") {
      spec.icount = true;
    } else if (arg == "--bench-json") {
      if (!value() || *v == '\0') return usage_error("--bench-json needs a file");
      bench_json = v;
      expect.want_bench = true;
    } else if (arg == "--log") {
      if (!value() || *v == '\0') return usage_error("--log needs a file");
      log_path = v;
    } else if (arg == "--memory") {
      if (!value()) return usage_error("--memory needs a size");
      spec.memory = v;
      memory_given = true;
    } else if (arg == "--qemu-arg") {
      if (!value()) return usage_error("--qemu-arg needs an argument");
      spec.extra.emplace_back(v);
    } else if (arg == "--input-after") {
      if (!value() || *v == '\0') return usage_error("--input-after needs a non-empty substring");
      input_after = v;
    } else if (arg == "--input") {
      // Typed on the serial console: \xNN stands for a byte (\x1d: Ctrl-]), \r and \n for CR and LF.
      if (!value()) return usage_error("--input needs text");
      for (const char* p = v; *p; ++p) {
        if (p[0] == '\\' && p[1] == 'x' && std::isxdigit(static_cast<unsigned char>(p[2])) &&
            std::isxdigit(static_cast<unsigned char>(p[3]))) {
          input += char(std::stoi(std::string(p + 2, 2), nullptr, 16));
          p += 3;
        } else if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n' || p[1] == '\\')) {
          input += p[1] == 'r' ? '\r' : p[1] == 'n' ? '\n' : '\\';
          ++p;
        } else {
          input += *p;
        }
      }
    } else if (arg == "--manifest") {
      if (!value() || *v == '\0') return usage_error("--manifest needs a manifest file");
      manifest_file = v;
    } else if (arg == "--manifest-damage") {
      if (!value()) return usage_error("--manifest-damage needs truncate:N or flip:N");
      std::string_view t = v;
      char* end = nullptr;
      if (t.starts_with("truncate:")) damage_kind = 't';
      else if (t.starts_with("flip:")) damage_kind = 'f';
      else return usage_error("--manifest-damage needs truncate:N or flip:N");
      std::string num(t.substr(t.find(':') + 1));
      damage_at = std::strtoul(num.c_str(), &end, 10);
      if (num.empty() || *end != '\0') return usage_error("--manifest-damage needs a byte offset");
    } else if (arg == "--udp-echo") {
      char* end = nullptr;
      if (!value()) return usage_error("--udp-echo needs a count");
      long n = std::strtol(v, &end, 10);
      if (end == v || *end != '\0' || n < 1 || n > 100000) return usage_error("--udp-echo needs a count of 1 or more");
      udp_count = int(n);
    } else if (arg == "--udp-echo-after") {
      if (!value() || *v == '\0') return usage_error("--udp-echo-after needs a non-empty substring");
      udp_after = v;
    } else if (arg == "--fresh-disks") {
      char* end = nullptr;
      if (!value()) return usage_error("--fresh-disks needs a byte");
      long b = std::strtol(v, &end, 0);
      if (end == v || *end != '\0' || b < 0 || b > 255) return usage_error("--fresh-disks needs a byte (0-255)");
      fresh_fill = int(b);
    } else if (arg == "--before-run") {
      if (!value() || *v == '\0') return usage_error("--before-run needs a command");
      before_run = v;
    } else if (arg == "--after-exit") {
      if (!value() || *v == '\0') return usage_error("--after-exit needs a command");
      after_exit = v;
    } else if (arg == "--control-after") {
      if (!value() || *v == '\0') return usage_error("--control-after needs a non-empty substring");
      control_after = v;
    } else if (arg == "--control") {
      if (!value() || *v == '\0') return usage_error("--control needs a moat command (list, pause NAME, ...)");
      if (control_after.empty()) return usage_error("--control needs a --control-after before it");
      control.push_back({control_after, v});
    } else if (arg == "--name") {
      if (!value()) return usage_error("--name needs a name");
      name = v;
    } else if (arg == "--bench-only") {
      if (!value() || *v == '\0') return usage_error("--bench-only needs a metric");
      bench_only.emplace_back(v);
    } else if (arg == "--bench-suffix") {
      if (!value() || *v == '\0') return usage_error("--bench-suffix needs a suffix");
      bench_suffix = v;
    } else if (arg == "--iommu") {
      if (!value() || (std::strcmp(v, "on") != 0 && std::strcmp(v, "off") != 0))
        return usage_error("--iommu takes on or off");
      iommu = std::strcmp(v, "on") == 0;
    } else {
      return usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (spec.kernel.empty()) return usage_error("--kernel is required");
  spec.iommu = iommu.value_or(false);   // with --manifest: the manifest's unless given
  if ((udp_count != 0) != !udp_after.empty()) return usage_error("--udp-echo and --udp-echo-after go together");
  if (udp_count && manifest_file.empty()) return usage_error("--udp-echo needs --manifest (its NIC's UDP forward)");
  if (fresh_fill >= 0 && manifest_file.empty()) return usage_error("--fresh-disks needs --manifest");
  int udp_port = 0;
  moat::systest::UdpEchoClient udp;
  // The run directory's console.log (with a run directory: a TOOLSTACK), or -1.
  int console_log_fd = -1;
  if (!manifest_file.empty()) {
    // As `moat run` boots it: the builder, the binary manifest, the images.
    if (!spec.modules.empty()) return usage_error("--manifest and --module exclude each other");
    if (log_path.empty()) return usage_error("--manifest needs --log (the binary manifest is written beside it)");
    moat::manifest::Loaded m;
    std::vector<moat::manifest::Diagnostic> found;
    auto base = std::filesystem::path(manifest_file).parent_path();
    if (moat::manifest::load(manifest_file, &m, &found)) {
      // The variant's machine replaces the manifest's before the check, so
      // that its warnings are about the machine that runs.
      if (iommu) m.system.mutable_machine()->set_iommu(*iommu);
      auto more = moat::manifest::check(m, base, moat::manifest::default_cache_dir());
      found.insert(found.end(), more.begin(), more.end());
    }
    bool bad = false;
    for (const auto& d : found) {
      bad |= d.message.rfind("warning: ", 0) != 0;
      std::fprintf(stderr, "%s\n", moat::manifest::format(manifest_file, d).c_str());
    }
    if (bad) return kExitFail;
    std::string bytes = moat::manifest::compile(m.system, base);
    if (damage_kind == 't' && damage_at < bytes.size()) bytes.resize(damage_at);
    if (damage_kind == 'f' && damage_at < bytes.size()) bytes[damage_at] = char(bytes[damage_at] ^ 0x20);
    std::string out_path = log_path + ".manifest";
    std::ofstream o(out_path, std::ios::binary | std::ios::trunc);
    if (!o.write(bytes.data(), std::streamsize(bytes.size())) || !o.flush()) {
      std::fprintf(stderr, "moat-systest: cannot write %s\n", out_path.c_str());
      return kExitFail;
    }
    // (bzImages unpacked as `moat run` does, into the same cache; ramdisks.)
    std::string unpack_error;
    if (!moat::manifest::boot_modules(m.system, base, out_path, moat::manifest::default_cache_dir(), &spec.modules,
                                      &unpack_error)) {
      std::fprintf(stderr, "moat-systest: %s\n", unpack_error.c_str());
      return kExitFail;
    }
    // The machine's NICs and disks (a free host port for the tests' UDP forward).
    // (Every forward on a free host port: tests run side by side.)
    moat::machine::Options mo;
    mo.fresh_disk_fill = fresh_fill;
    mo.pick_host_port = moat::systest::free_udp_port;
    std::vector<std::string> devices;
    std::string why;
    if (!moat::machine::qemu_args(m.system.machine(), base, mo, &devices, &why, &udp_port)) {
      std::fprintf(stderr, "moat-systest: %s\n", why.c_str());
      return kExitFail;
    }
    if (udp_count && !udp_port) return usage_error("--udp-echo needs a NIC with a udp_forward in the manifest");
    spec.extra.insert(spec.extra.begin(), devices.begin(), devices.end());
    spec.iommu = m.system.machine().iommu();
    if (!memory_given) {   // the machine the manifest describes
      uint32_t mib = m.system.machine().memory_mib() ? m.system.machine().memory_mib() : 256;
      spec.memory = std::to_string(mib) + "M";
    }
    // As `moat run`: with a toolstack, COM2 is the control socket in the run
    // directory, named after the test, so that `moat list --system NAME` finds it.
    bool toolstack = false;
    for (const auto& d : m.system.domains()) toolstack |= d.role() == moat::Domain::TOOLSTACK;
    if (toolstack) {
      run_name = name.empty() ? moat::rundir::name_of(manifest_file) : name;
      std::string why;
      if (!moat::rundir::prepare(moat::rundir::root(), run_name, manifest_file, &why)) {
        std::fprintf(stderr, "moat-systest: %s\n", why.c_str());
        return kExitFail;
      }
      spec.control_socket = (moat::rundir::root() / run_name / moat::rundir::kSocket).string();
      // COM1's bytes as they come, as `moat run` keeps them, for `moat console`.
      auto log = moat::rundir::root() / run_name / moat::rundir::kConsoleLog;
      console_log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (console_log_fd < 0) {
        std::fprintf(stderr, "moat-systest: cannot write %s: %s\n", log.c_str(), std::strerror(errno));
        return kExitFail;
      }
    }
  }
  if (!control.empty() && run_name.empty())
    return usage_error("--control needs --manifest with a TOOLSTACK domain (the control socket)");

  ::signal(SIGPIPE, SIG_IGN);
  Output output;
  if (!output.open_log(log_path)) {
    std::fprintf(stderr, "moat-systest: cannot write log %s: %s\n", log_path.c_str(), std::strerror(errno));
    return kExitFail;
  }

  // What the run needs made afresh on the host (every run, so repeated runs
  // never start from an earlier one's leftovers).
  if (!before_run.empty()) {
    output.out("moat-systest: before run: " + before_run + "\n");
    int rc = run_host_command(before_run, output);
    if (rc != 0) {
      output.out("moat-systest: FAIL " + name + ": before-run command failed (status " + std::to_string(rc) +
                 "): " + before_run + "\n");
      return kExitFail;
    }
  }

  moat::systest::Checker checker(expect);
  moat::systest::RunEnd end;
  end.timeout_s = timeout;
  auto argv_q = moat::qemu::build_argv(spec);
  output.out("moat-systest: " + moat::qemu::shell_quote(argv_q) + "\n");

  auto finish = [&](const moat::systest::RunEnd& run_end) {
    auto verdict = checker.finish(run_end);
    if (udp_count) {
      udp.cancel();
      udp.join();
      if (!udp.started()) {
        verdict.ok = false;
        verdict.reasons.push_back("the UDP echo client never started: no line contained \"" + udp_after + "\"");
      } else {
        output.out("moat-systest: " + udp.summary() + "\n");
        if (!udp.ok()) {
          verdict.ok = false;
          verdict.reasons.push_back(udp.summary());
        }
      }
    }
    for (size_t k = 0; k < control.size(); ++k) {
      if (control[k].ran) continue;
      verdict.ok = false;
      verdict.reasons.push_back("control command [" + std::to_string(k + 1) + "] '" + control[k].command +
                                "' never ran: " +
                                (control[k].triggered ? "the one before it had not ended"
                                                      : "no line contained \"" + control[k].after + "\""));
      break;   // the rest wait for this one
    }
    if (!run_name.empty()) moat::rundir::finish(moat::rundir::root(), run_name);
    if (!after_exit.empty() && run_end.started) {
      output.out("moat-systest: after exit: " + after_exit + "\n");
      int rc = run_host_command(after_exit, output);
      if (rc != 0) {
        verdict.ok = false;
        verdict.reasons.push_back("after-exit command failed (status " + std::to_string(rc) + "): " + after_exit);
      }
    }
    if (verdict.ok && !bench_json.empty()) {
      std::string error;
      moat::json::Flat figures;
      for (const auto& [metric, number] : verdict.bench) {
        bool wanted = bench_only.empty() || std::find(bench_only.begin(), bench_only.end(), metric) != bench_only.end();
        if (wanted) figures[metric + bench_suffix] = number;
      }
      if (!moat::json::merge_into_file(bench_json, figures, &error)) {
        verdict.ok = false;
        verdict.reasons.push_back("cannot merge benchmark results: " + error);
      }
    }
    output.out(moat::systest::format_verdict(verdict, name));
    if (!verdict.ok && !bench_json.empty() && !verdict.bench.empty())
      output.out("moat-systest: benchmark figures not merged into " + bench_json + " (test failed)\n");
    return verdict.ok ? kExitPass : kExitFail;
  };

  auto problems = moat::qemu::validate(spec);
  if (!problems.empty()) {
    end.started = false;
    for (size_t i = 0; i < problems.size(); ++i) end.start_error += (i ? "; " : "") + problems[i];
    return finish(end);
  }

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    std::perror("moat-systest: pipe");
    return kExitFail;
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int in_pipe[2] = {-1, -1};
  if (!input.empty() && ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    std::perror("moat-systest: pipe");
    return kExitFail;
  }

  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);

  moat::proc::SpawnOptions options;
  options.stdin_fd = in_pipe[0] >= 0 ? in_pipe[0] : devnull;
  options.stdout_fd = out_pipe[1];
  options.stderr_fd = err_pipe[1];
  options.own_group = true;
  options.die_with_parent = true;
  std::string error;
  pid_t pid = moat::proc::spawn(argv_q, options, &error);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (devnull >= 0) ::close(devnull);
  if (in_pipe[0] >= 0) ::close(in_pipe[0]);
  if (pid < 0) {
    end.started = false;
    end.start_error = error;
    return finish(end);
  }
  g_child_group = pid;
  if (!run_name.empty()) {
    std::string why;
    if (!moat::rundir::write_pid(moat::rundir::root(), run_name, pid, &why)) output.err("moat-systest: " + why + "\n");
  }

  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  moat::systest::LineSplitter console, qemu_err;
  std::vector<std::string> lines;
  bool typed = false;
  std::function<void()> control_poke;   // set below, once the control state exists
  auto emit_console = [&](std::string& l) {
    checker.line(l);
    for (auto& step : control)
      if (!step.triggered && l.find(step.after) != std::string::npos) step.triggered = true;
    if (udp_count && !udp.started() && l.find(udp_after) != std::string::npos) {
      output.out("moat-systest: sending " + std::to_string(udp_count) + " UDP datagrams to 127.0.0.1:" +
                 std::to_string(udp_port) + "\n");
      udp.start(udp_port, udp_count);
    }
    if (!typed && in_pipe[1] >= 0 && l.find(input_after) != std::string::npos) {
      typed = true;
      if (::write(in_pipe[1], input.data(), input.size()) != ssize_t(input.size()))
        output.err("moat-systest: could not type the input\n");
      else
        output.out("moat-systest: typed " + std::to_string(input.size()) + " byte(s)\n");
    }
    l += '\n';
    output.out(l);
    if (control_poke) control_poke();
  };
  auto emit_err = [&](const std::string& l) { output.err("qemu stderr: " + l + "\n"); };
  // Before the lines are handled, so that a control command started by a
  // line finds that line in the log. A log that cannot be written is given
  // up (said once): the run itself goes on.
  auto log_console = [&](const char* bytes, size_t n) {
    if (console_log_fd < 0) return;
    for (size_t done = 0; done < n;) {
      ssize_t w = ::write(console_log_fd, bytes + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        output.err(std::string("moat-systest: console.log: ") + (w < 0 ? std::strerror(errno) : "short write") +
                   ": no longer written\n");
        ::close(console_log_fd);
        console_log_fd = -1;
        return;
      }
      done += size_t(w);
    }
  };

  char buf[8192];
  // The --control commands: one at a time, its output (stdout and stderr) on
  // a pipe read with the console's, so that the log keeps their order.
  size_t next_control = 0;          // the step to run next
  pid_t control_pid = -1;           // the step running (control[next_control - 1]), or -1
  moat::systest::LineSplitter control_out;
  pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {-1, POLLIN, 0}};
  auto emit_control = [&](const std::string& l) {
    std::string line = "control: " + l;
    checker.line(line);
    output.out(line + "\n");
  };
  auto start_control = [&]() {
    if (control_pid >= 0 || next_control >= control.size() || !control[next_control].triggered) return;
    ControlStep& step = control[next_control++];
    step.ran = true;
    auto argv_c = control_argv(step.command, run_name);
    emit_control("[" + std::to_string(next_control) + "] " + moat::qemu::shell_quote(argv_c));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      emit_control("[" + std::to_string(next_control) + "] exit -1 (pipe: " + std::strerror(errno) + ")");
      return;
    }
    moat::proc::SpawnOptions o;
    o.stdout_fd = p[1];
    o.stderr_fd = p[1];
    o.die_with_parent = true;
    std::string why;
    control_pid = moat::proc::spawn(argv_c, o, &why);
    ::close(p[1]);
    if (control_pid < 0) {
      ::close(p[0]);
      emit_control("[" + std::to_string(next_control) + "] exit -1 (" + why + ")");
      return;
    }
    fds[2].fd = p[0];
  };
  // The running command's output has ended (or the system has): reap it,
  // keep the rest of its output and say how it ended; then the next one, if
  // the system still runs. A command that does not end in 5 s more is killed
  // (it has its own --timeout; this is the backstop).
  auto end_control = [&](bool then_next) {
    if (control_pid < 0) return;
    auto s = moat::proc::wait_until(control_pid, Clock::now() + std::chrono::seconds(5));
    if (!s) s = moat::proc::kill_and_reap(control_pid, false);
    control_pid = -1;
    if (fds[2].fd >= 0) {
      ::fcntl(fds[2].fd, F_SETFL, O_NONBLOCK);
      ssize_t n;
      while ((n = ::read(fds[2].fd, buf, sizeof buf)) > 0) {
        lines.clear();
        control_out.feed(std::string_view(buf, size_t(n)), &lines);
        for (auto& l : lines) emit_control(l);
      }
      ::close(fds[2].fd);
      fds[2].fd = -1;
    }
    if (auto rest = control_out.finish()) emit_control(*rest);
    std::string how = s->exited ? std::to_string(s->code) : "signal " + std::to_string(s->signal);
    emit_control("[" + std::to_string(next_control) + "] exit " + how);
    if (then_next) start_control();
  };
  control_poke = start_control;
  int open_fds = 2;
  while (open_fds > 0 && !end.timed_out) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      end.timed_out = true;
      break;
    }
    int r = ::poll(fds, 3, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) {
      std::perror("moat-systest: poll");
      break;
    }
    if (r > 0 && fds[2].fd >= 0 && fds[2].revents) {
      ssize_t n = ::read(fds[2].fd, buf, sizeof buf);
      if (n > 0) {
        lines.clear();
        control_out.feed(std::string_view(buf, size_t(n)), &lines);
        for (auto& l : lines) emit_control(l);
      } else if (n == 0 || errno != EINTR) {
        end_control(true);
      }
    }
    for (int k = 0; k < 2 && r > 0; ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
        continue;
      }
      lines.clear();
      if (k == 0) log_console(buf, size_t(n));
      (k == 0 ? console : qemu_err).feed(std::string_view(buf, static_cast<size_t>(n)), &lines);
      for (auto& l : lines) {
        if (k == 0) emit_console(l);
        else emit_err(l);
      }
    }
  }

  moat::proc::Status status;
  if (!end.timed_out) {
    auto s = moat::proc::wait_until(pid, deadline);
    if (s) status = *s;
    else end.timed_out = true;
  }
  if (end.timed_out) status = moat::proc::kill_and_reap(pid, true);
  g_child_group = 0;
  // The system is gone: a command still talking to it cannot get an answer.
  control_poke = nullptr;
  end_control(false);

  // Whatever is still buffered (after a kill the pipes hold the last output).
  for (int k = 0; k < 2; ++k) {
    if (fds[k].fd < 0) continue;
    ::fcntl(fds[k].fd, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(fds[k].fd, buf, sizeof buf)) > 0) {
      lines.clear();
      if (k == 0) log_console(buf, size_t(n));
      (k == 0 ? console : qemu_err).feed(std::string_view(buf, static_cast<size_t>(n)), &lines);
      for (auto& l : lines) {
        if (k == 0) emit_console(l);
        else emit_err(l);
      }
    }
    ::close(fds[k].fd);
  }
  if (auto rest = console.finish()) emit_console(*rest);
  if (auto rest = qemu_err.finish()) emit_err(*rest);

  end.exited = status.exited;
  end.code = status.code;
  end.signal = status.signal;
  if (!end.timed_out) output.out("moat-systest: " + moat::proc::describe_qemu_status(status) + "\n");
  return finish(end);
}
