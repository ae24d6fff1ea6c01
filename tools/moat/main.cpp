// moat: the Moat host command-line tool.
//
//   moat boot [--kernel K] [--module "PATH [ARGS]"]... [options]  boot modules as domains in QEMU
//   moat run FILE [options]                                       a manifest's system in QEMU
//   moat check FILE                                               validate a manifest
//   moat compile FILE -o OUT                                      binary manifest
//   moat graph FILE|--system S -o OUT                             who may talk to whom, drawn (graph.cpp)
//   moat list|pause|unpause|shutdown|destroy [NAME] [--system S]  the running system (control_cli.cpp)
//   moat xenstore ls|read|write|rm PATH [VALUE] [--system S]     its XenStore, as the toolstack may
//
// Later commands (whole-system runs, the control channel) go next to these.
#include "console_cli.hpp"
#include "control_cli.hpp"
#include "create_cli.hpp"
#include "top_cli.hpp"
#include "trace_cli.hpp"
#include "graph.hpp"
#include "manifest.hpp"
#include "process.hpp"
#include "rundir.hpp"
#include "machine.hpp"
#include "qemu.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <termios.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;

void print_main_help(FILE* out) {
  std::fputs(
      "usage: moat <command> [options]\n"
      "\n"
      "Host tool for the Moat hypervisor.\n"
      "\n"
      "commands:\n"
      "  boot     boot a kernel and its domains in QEMU, console on this terminal\n"
      "  run      run the system of a manifest in QEMU (the builder builds it)\n"
      "  check    validate a system manifest (protobuf text format)\n"
      "  compile  check a manifest and write the binary manifest the builder reads\n"
      "  graph    draw who may talk to whom in a manifest (Graphviz: SVG or DOT)\n"
      "  list     the running system's domains, as 'xl list' prints them\n"
      "  pause    pause a domain of the running system (unpause: resume it)\n"
      "  shutdown ask a domain, or the whole running system, to power off\n"
      "  destroy  destroy a domain of the running system at once (not restarted)\n"
      "  xenstore ls, read, write or rm a XenStore node of the running system\n"
      "  help     show help for a command (moat help boot)\n"
      "\n"
      "Run 'moat <command> --help' for a command's options.\n",
      out);
}

// The options `moat boot` and `moat run` share: how QEMU runs.
constexpr const char* kQemuOptionsHelp =
    "  --kernel K           kernel image (multiboot); default: the build's, ../kernel/moat.bin\n"
    "                       beside this moat binary\n"
    "  --append ARGS        more of the kernel command line\n"
    "  --icount             -icount shift=0: guest time counts instructions\n"
    "  --timeout SECONDS    kill QEMU after this long (exit 124)\n"
    "  --log FILE           also write the console output to FILE\n"
    "  --gdb                start paused with a gdbstub on tcp::1234\n"
    "  --qemu-arg ARG       one more QEMU argument, appended as it is; repeatable\n"
    "  --dry-run            print the QEMU command line and exit\n"
    "  -h, --help           this help\n"
    "\n"
    "The QEMU binary is $MOAT_QEMU if set, else qemu-system-x86_64.\n"
    "\n"
    "exit status: 0 the system ended cleanly (kernel wrote 0x10 to isa-debug-exit,\n"
    "QEMU status 33); 1 anything else (kernel panic = QEMU 35, triple fault = QEMU 0,\n"
    "QEMU error); 2 usage error; 124 timeout.\n";

void print_boot_help(FILE* out) {
  std::fputs(
      "usage: moat boot [--kernel K] [--module \"PATH [ARGS]\"]... [options]\n"
      "\n"
      "Boots the multiboot kernel K in QEMU (TCG, never KVM) with each --module as a\n"
      "boot module (its command line is the whole string), COM1 and the QEMU monitor\n"
      "multiplexed on this terminal: Ctrl-A X quits, Ctrl-A C toggles the monitor.\n"
      "The kernel command line starts with boot=all: the kernel builds every module\n"
      "as a domain itself (the core's own tests; 'moat run' boots a manifest instead).\n"
      "\n"
      "options:\n"
      "  --module \"P [ARGS]\"  boot module P with command line \"P ARGS\"; repeatable, in order\n"
      "  --memory SIZE        guest RAM (default 256M)\n",
      out);
  std::fputs(kQemuOptionsHelp, out);
}

void print_run_help(FILE* out) {
  std::fputs(
      "usage: moat run FILE [options]\n"
      "\n"
      "Checks and compiles the system manifest FILE as 'moat compile' does and boots\n"
      "it in QEMU like 'moat boot' (machine.memory_mib of RAM), with the boot modules\n"
      "docs/system.md lists: 0 the BUILDER's image (command line \"builder\"), 1 the\n"
      "binary manifest (\"manifest\"), 2.. every other domain's distinct image and\n"
      "ramdisk, in the order the domains first name them. An image that is a Linux\n"
      "bzImage is passed as the ELF kernel unpacked from it (into the cache). The\n"
      "kernel builds the builder only; the builder builds the rest.\n"
      "\n"
      "options:\n"
      "  -o OUT               keep the binary manifest in OUT (default: a temporary file,\n"
      "                       removed when QEMU ends; kept with --dry-run)\n"
      "  --cache DIR          where bzImages are unpacked (default: ../cache beside this\n"
      "                       moat binary, out/cache; each kernel once, by its CRC-64)\n"
      "  --iommu on|off       the machine, whatever machine.iommu says: on, QEMU's q35\n"
      "                       with intel-iommu (driver domains' DMA confined); off, the\n"
      "                       PC (i440fx) without an IOMMU\n"
      "  --name NAME          the system's name for 'moat list --system' and its run\n"
      "                       directory (default: FILE's name without .textproto)\n"
      "\n"
      "The run directory out/run/NAME (../run beside this binary, or $MOAT_RUN_DIR)\n"
      "holds manifest (FILE's path) and pid (QEMU's) while the system runs, and\n"
      "console.log, the console's output, which 'moat console NAME' follows from\n"
      "another terminal (with --log FILE, a symlink to FILE; a new run of the same\n"
      "name starts it afresh). When the manifest has a TOOLSTACK domain, QEMU's COM2\n"
      "is the unix socket out/run/NAME/control.sock, through which 'moat list',\n"
      "'moat pause', 'moat unpause' and 'moat shutdown' ask it (docs/control.md).\n",
      out);
  std::fputs(kQemuOptionsHelp, out);
}

void print_check_help(FILE* out) {
  std::fputs(
      "usage: moat check FILE\n"
      "\n"
      "Parses the system manifest FILE (protobuf text format, proto/manifest.proto)\n"
      "and checks it: unique domain names, exactly one builder, capabilities and\n"
      "connections naming existing domains, memory syntax and total, images and\n"
      "ramdisks (relative to FILE's directory) that exist, bzImages that unpack (in\n"
      "memory), scheduler parameters in range, well-formed and unshared devices.\n"
      "Every problem is printed as FILE:LINE:COL: message.\n"
      "\n"
      "exit status: 0 the manifest is valid (prints \"FILE: ok\"); 1 it is not;\n"
      "2 usage error.\n",
      out);
}

void print_compile_help(FILE* out) {
  std::fputs(
      "usage: moat compile FILE -o OUT\n"
      "\n"
      "Checks FILE as 'moat check' does and, if it is valid, writes the binary\n"
      "manifest to OUT, the boot module the builder decodes: \"MOATMAN1\", the\n"
      "payload's length and CRC-32 (little-endian uint32 each), then the payload, a\n"
      "serialized moat.System with memory resolved into memory_kib and each domain's\n"
      "boot modules into module and ramdisk_module (0 the builder's image, 1 the\n"
      "manifest, 2.. the other domains' distinct images and ramdisks in order of\n"
      "first use, as 'moat run' passes them).\n"
      "Nothing is written if FILE has problems.\n"
      "\n"
      "exit status: 0 written; 1 the manifest has problems or OUT cannot be written;\n"
      "2 usage error.\n",
      out);
}

int usage_error(const char* command, const std::string& message) {
  std::fprintf(stderr, "moat%s%s: %s\n", command ? " " : "", command ? command : "", message.c_str());
  std::fprintf(stderr, "Run 'moat%s%s --help' for usage.\n", command ? " " : "", command ? command : "");
  return kExitUsage;
}

bool parse_seconds(const char* text, double* out) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v > 0) || v > 1e7) return false;
  *out = v;
  return true;
}

// The build's kernel: ../kernel/moat.bin beside this binary (out/bin/moat).
std::string default_kernel() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "out/kernel/moat.bin";
  return (self.parent_path().parent_path() / "kernel" / "moat.bin").string();
}

// How QEMU is run, for `moat boot` and `moat run` alike.
struct QemuRun {
  moat::qemu::BootSpec spec;
  double timeout = 0;
  bool dry_run = false;
  std::function<void(pid_t)> started;   // called with QEMU's pid once it runs
};

enum class Parsed { mine, not_mine, error };

// One of the options both commands take (kQemuOptionsHelp), at argv[*i].
Parsed parse_qemu_option(const char* command, int argc, char** argv, int* i, QemuRun* run, int* rc) {
  std::string_view arg = argv[*i];
  auto value = [&](const char** out) {
    if (*i + 1 >= argc) return false;
    *out = argv[++*i];
    return true;
  };
  auto bad = [&](const std::string& message) {
    *rc = usage_error(command, message);
    return Parsed::error;
  };
  const char* v = nullptr;
  moat::qemu::BootSpec& spec = run->spec;
  if (arg == "--kernel") {
    if (!value(&v)) return bad("--kernel needs a path");
    spec.kernel = v;
  } else if (arg == "--append") {
    if (!value(&v)) return bad("--append needs the kernel command line");
    spec.kernel_args = v;
  } else if (arg == "--icount") {
    spec.icount = true;
  } else if (arg == "--timeout") {
    if (!value(&v) || !parse_seconds(v, &run->timeout)) return bad("--timeout needs a positive number of seconds");
  } else if (arg == "--log") {
    if (!value(&v)) return bad("--log needs a file");
    spec.serial_log = v;
  } else if (arg == "--gdb") {
    spec.gdb = true;
  } else if (arg == "--qemu-arg") {
    if (!value(&v)) return bad("--qemu-arg needs an argument");
    spec.extra.emplace_back(v);
  } else if (arg == "--dry-run") {
    run->dry_run = true;
  } else {
    return Parsed::not_mine;
  }
  return Parsed::mine;
}

// Runs QEMU on this terminal until it ends (or the timeout) and reports how.
int run_qemu(const char* command, QemuRun& run) {
  moat::qemu::BootSpec& spec = run.spec;
  if (spec.kernel.empty()) spec.kernel = default_kernel();
  auto argv_q = moat::qemu::build_argv(spec);
  if (run.dry_run) {
    std::printf("%s\n", moat::qemu::shell_quote(argv_q).c_str());
    return kExitOk;
  }
  auto errors = moat::qemu::validate(spec);
  if (!errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "moat %s: %s\n", command, e.c_str());
    return kExitUsage;
  }
  if (spec.gdb)
    std::fprintf(stderr, "moat: QEMU waits for gdb on localhost:1234 (gdb -ex 'target remote :1234')\n");

  // QEMU puts the terminal in raw mode; put it back even if it is killed.
  termios saved{};
  bool have_tty = ::isatty(0) && ::tcgetattr(0, &saved) == 0;

  // Like system(): QEMU (same process group, foreground) gets the terminal's
  // signals; we only wait for it.
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old_int);
  ::sigaction(SIGQUIT, &ignore, &old_quit);

  std::string error;
  moat::proc::SpawnOptions options;
  options.die_with_parent = true;
  pid_t pid = moat::proc::spawn(argv_q, options, &error);
  if (pid < 0) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGQUIT, &old_quit, nullptr);
    std::fprintf(stderr, "moat: cannot start QEMU: %s\n", error.c_str());
    return kExitFailed;
  }
  if (run.started) run.started(pid);
  std::optional<moat::proc::Clock::time_point> deadline;
  if (run.timeout > 0)
    deadline = moat::proc::Clock::now() +
               std::chrono::duration_cast<moat::proc::Clock::duration>(std::chrono::duration<double>(run.timeout));
  auto status = moat::proc::wait_until(pid, deadline);
  bool timed_out = !status.has_value();
  if (timed_out) status = moat::proc::kill_and_reap(pid, false);

  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGQUIT, &old_quit, nullptr);
  if (have_tty) ::tcsetattr(0, TCSANOW, &saved);

  if (timed_out) {
    std::fprintf(stderr, "\nmoat: TIMEOUT after %g s: QEMU killed\n", run.timeout);
    return kExitTimeout;
  }
  std::fprintf(stderr, "moat: %s\n", moat::proc::describe_qemu_status(*status).c_str());
  return status->exited && status->code == moat::qemu::kExitClean ? kExitOk : kExitFailed;
}

// What `moat boot` puts first on the kernel command line: build every module
// as a domain (docs/system.md), not just the builder.
constexpr const char* kBootAll = "boot=all";

int cmd_boot(int argc, char** argv) {
  QemuRun run;
  run.spec.console = moat::qemu::Console::Interactive;
  for (int i = 0; i < argc; ++i) {
    int rc = 0;
    switch (parse_qemu_option("boot", argc, argv, &i, &run, &rc)) {
      case Parsed::mine: continue;
      case Parsed::error: return rc;
      case Parsed::not_mine: break;
    }
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_boot_help(stdout);
      return kExitOk;
    } else if (arg == "--module") {
      if (i + 1 >= argc) return usage_error("boot", "--module needs \"PATH [ARGS]\"");
      run.spec.modules.emplace_back(argv[++i]);
    } else if (arg == "--memory") {
      if (i + 1 >= argc) return usage_error("boot", "--memory needs a size");
      run.spec.memory = argv[++i];
    } else {
      return usage_error("boot", "unknown argument '" + std::string(arg) + "'");
    }
  }
  run.spec.kernel_args = run.spec.kernel_args.empty() ? kBootAll : std::string(kBootAll) + " " + run.spec.kernel_args;
  return run_qemu("boot", run);
}

// Parses and checks `file`; prints every problem (and parser warning), in
// order of position. True if there were no problems.
// `iommu`, if set, replaces the manifest's machine.iommu before the check.
bool load_and_check(const std::string& file, moat::manifest::Loaded* m, const std::filesystem::path& cache = {},
                    std::optional<bool> iommu = {}) {
  std::vector<moat::manifest::Diagnostic> found;
  if (moat::manifest::load(file, m, &found)) {
    if (iommu) m->system.mutable_machine()->set_iommu(*iommu);
    auto problems = moat::manifest::check(*m, std::filesystem::path(file).parent_path(), cache);
    found.insert(found.end(), problems.begin(), problems.end());
  }
  bool ok = true;
  for (const auto& d : found) {
    ok &= d.message.rfind("warning: ", 0) == 0;
    std::fprintf(stderr, "%s\n", moat::manifest::format(file, d).c_str());
  }
  return ok;
}

// `moat graph --system NAME`: the manifest the system was started from, as
// its run directory names it (rundir.hpp: one line, the path).
bool running_manifest(const std::string& wanted, std::string* file, std::string* why) {
  const auto root = moat::rundir::root();
  std::string chosen;
  if (!moat::rundir::choose(root, wanted, &chosen, why)) return false;
  std::ifstream f(root / chosen / "manifest");
  if (!std::getline(f, *file) || file->empty()) {
    *why = "system " + chosen + " is running but " + (root / chosen / "manifest").string() + " names no manifest";
    return false;
  }
  return true;
}

// Compiles a checked manifest (`file`, loaded into m) into `out`.
bool write_manifest(const char* command, const moat::manifest::Loaded& m, const char* file, const char* out) {
  std::string bytes = moat::manifest::compile(m.system, std::filesystem::path(file).parent_path());
  std::ofstream o(out, std::ios::binary | std::ios::trunc);
  if (!o.write(bytes.data(), std::streamsize(bytes.size())) || !o.flush()) {
    std::fprintf(stderr, "moat %s: cannot write %s: %s\n", command, out, std::strerror(errno));
    return false;
  }
  return true;
}

int cmd_check(int argc, char** argv) {
  const char* file = nullptr;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_check_help(stdout);
      return kExitOk;
    }
    if (!arg.empty() && arg[0] == '-') return usage_error("check", "unknown option '" + std::string(arg) + "'");
    if (file) return usage_error("check", "one manifest at a time");
    file = argv[i];
  }
  if (!file) return usage_error("check", "which manifest? (moat check FILE)");
  moat::manifest::Loaded m;
  if (!load_and_check(file, &m)) return kExitFailed;
  std::printf("%s: ok\n", file);
  return kExitOk;
}

int cmd_compile(int argc, char** argv) {
  const char* file = nullptr;
  const char* out = nullptr;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_compile_help(stdout);
      return kExitOk;
    } else if (arg == "-o") {
      if (i + 1 >= argc) return usage_error("compile", "-o needs a file");
      out = argv[++i];
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("compile", "unknown option '" + std::string(arg) + "'");
    } else {
      if (file) return usage_error("compile", "one manifest at a time");
      file = argv[i];
    }
  }
  if (!file) return usage_error("compile", "which manifest? (moat compile FILE -o OUT)");
  if (!out) return usage_error("compile", "-o OUT is required");
  moat::manifest::Loaded m;
  if (!load_and_check(file, &m)) return kExitFailed;
  if (!write_manifest("compile", m, file, out)) return kExitFailed;
  return kExitOk;
}

int cmd_run(int argc, char** argv) {
  QemuRun run;
  run.spec.console = moat::qemu::Console::Interactive;
  const char* file = nullptr;
  const char* out = nullptr;
  std::filesystem::path cache = moat::manifest::default_cache_dir();
  std::optional<bool> iommu;   // --iommu: instead of machine.iommu
  std::string name;            // --name: the run directory's name
  for (int i = 0; i < argc; ++i) {
    int rc = 0;
    switch (parse_qemu_option("run", argc, argv, &i, &run, &rc)) {
      case Parsed::mine: continue;
      case Parsed::error: return rc;
      case Parsed::not_mine: break;
    }
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_run_help(stdout);
      return kExitOk;
    } else if (arg == "-o") {
      if (i + 1 >= argc) return usage_error("run", "-o needs a file");
      out = argv[++i];
    } else if (arg == "--cache") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("run", "--cache needs a directory");
      cache = argv[++i];
    } else if (arg == "--iommu") {
      std::string_view v = i + 1 < argc ? argv[i + 1] : "";
      if (v != "on" && v != "off") return usage_error("run", "--iommu takes on or off");
      iommu = v == "on";
      ++i;
    } else if (arg == "--name") {
      if (i + 1 >= argc || !moat::rundir::valid_name(argv[i + 1]))
        return usage_error("run", "--name needs a name: 1 to 64 of A-Z a-z 0-9 _ . -");
      name = argv[++i];
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("run", "unknown option '" + std::string(arg) + "'");
    } else {
      if (file) return usage_error("run", "one manifest at a time");
      file = argv[i];
    }
  }
  if (!file) return usage_error("run", "which manifest? (moat run FILE)");

  moat::manifest::Loaded m;
  // The override goes into the manifest before the check, so that its
  // warnings (driver domains without an IOMMU) are about the machine that runs.
  if (!load_and_check(file, &m, cache, iommu)) return kExitFailed;

  // The binary manifest: OUT, or a temporary file removed when QEMU is done.
  std::string manifest_path;
  bool temporary = false;
  if (out) {
    manifest_path = out;
  } else {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/moat-run-XXXXXX.manifest";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    int fd = ::mkstemps(name.data(), int(std::strlen(".manifest")));
    if (fd < 0) {
      std::fprintf(stderr, "moat run: cannot create a temporary file in %s: %s\n", tmpl.c_str(), std::strerror(errno));
      return kExitFailed;
    }
    ::close(fd);
    manifest_path = name.data();
    temporary = !run.dry_run;
  }
  if (!write_manifest("run", m, file, manifest_path.c_str())) {
    if (!out) ::unlink(manifest_path.c_str());
    return kExitFailed;
  }

  // Modules in the order of docs/system.md; module strings are "PATH [ARGS]".
  std::string why;
  if (!moat::manifest::boot_modules(m.system, std::filesystem::path(file).parent_path(), manifest_path, cache,
                                    &run.spec.modules, &why)) {
    std::fprintf(stderr, "moat run: %s\n", why.c_str());
    if (temporary) ::unlink(manifest_path.c_str());
    return kExitFailed;
  }
  uint32_t mib = m.system.machine().memory_mib() ? m.system.machine().memory_mib() : 256;
  run.spec.memory = std::to_string(mib) + "M";
  std::vector<std::string> devices;
  if (!moat::machine::qemu_args(m.system.machine(), std::filesystem::path(file).parent_path(), {}, &devices, &why)) {
    std::fprintf(stderr, "moat run: %s\n", why.c_str());
    if (temporary) ::unlink(manifest_path.c_str());
    return kExitFailed;
  }
  run.spec.extra.insert(run.spec.extra.begin(), devices.begin(), devices.end());
  run.spec.iommu = m.system.machine().iommu();

  // The run directory; COM2 as the control socket when a toolstack domain
  // drives it (the check has made sure a TOOLSTACK holds COM2's ports).
  if (name.empty()) name = moat::rundir::name_of(file);
  const auto root = moat::rundir::root();
  bool toolstack = false;
  for (const auto& d : m.system.domains()) toolstack |= d.role() == moat::Domain::TOOLSTACK;
  if (toolstack) run.spec.control_socket = (root / name / moat::rundir::kSocket).string();
  if (!run.dry_run) {
    if (!moat::rundir::prepare(root, name, file, &why)) {
      std::fprintf(stderr, "moat run: %s\n", why.c_str());
      if (temporary) ::unlink(manifest_path.c_str());
      return kExitFailed;
    }
    run.started = [&](pid_t pid) {
      std::string error;
      if (!moat::rundir::write_pid(root, name, pid, &error)) std::fprintf(stderr, "moat run: %s\n", error.c_str());
    };
  }
  // COM1's output in the run directory, for `moat console` (docs/control.md):
  // QEMU's chardev logs it there, or into --log FILE (one logfile per
  // chardev) with console.log a symlink to FILE.
  const auto console_log = root / name / moat::rundir::kConsoleLog;
  if (run.spec.serial_log.empty()) {
    run.spec.serial_log = console_log.string();
    // Made now, empty, so that a `moat console` started as soon as the pid is
    // written finds it; QEMU opens it with O_TRUNC, the same file.
    if (!run.dry_run) std::ofstream(console_log, std::ios::trunc);
  } else if (!run.dry_run) {
    std::error_code ec;
    auto target = std::filesystem::absolute(run.spec.serial_log, ec);
    // --log naming console.log itself: already where it belongs (a link would loop).
    if (!ec && std::filesystem::weakly_canonical(target, ec) != std::filesystem::weakly_canonical(console_log, ec))
      std::filesystem::create_symlink(target, console_log, ec);
    if (ec)
      std::fprintf(stderr, "moat run: cannot link %s to the log %s (moat console will not find it): %s\n",
                   console_log.c_str(), run.spec.serial_log.c_str(), ec.message().c_str());
  }

  int rc = run_qemu("run", run);
  if (!run.dry_run) moat::rundir::finish(root, name);
  if (temporary) ::unlink(manifest_path.c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_main_help(stderr);
    return kExitUsage;
  }
  std::string_view command = argv[1];
  if (command == "-h" || command == "--help") {
    print_main_help(stdout);
    return kExitOk;
  }
  if (command == "help") {
    if (argc < 3) {
      print_main_help(stdout);
      return kExitOk;
    }
    std::string_view topic = argv[2];
    if (topic == "boot") {
      print_boot_help(stdout);
      return kExitOk;
    }
    if (topic == "run") {
      print_run_help(stdout);
      return kExitOk;
    }
    if (topic == "check") {
      print_check_help(stdout);
      return kExitOk;
    }
    if (topic == "compile") {
      print_compile_help(stdout);
      return kExitOk;
    }
    if (topic == "graph") {
      moat::graph::print_help(stdout);
      return kExitOk;
    }
    if (topic == "create" || topic == "console" || topic == "top" || topic == "trace") {
      if (topic == "create") moat::cli::print_create_help(stdout);
      if (topic == "console") moat::cli::print_console_help(stdout);
      if (topic == "top") moat::cli::print_top_help(stdout);
      if (topic == "trace") moat::cli::print_trace_help(stdout);
      return kExitOk;
    }
    if (moat::cli::is_control_command(argv[2])) {
      moat::cli::print_control_help(argv[2], stdout);
      return kExitOk;
    }
    return usage_error(nullptr, "no help for unknown command '" + std::string(topic) + "'");
  }
  if (command == "boot") return cmd_boot(argc - 2, argv + 2);
  if (command == "run") return cmd_run(argc - 2, argv + 2);
  if (command == "check") return cmd_check(argc - 2, argv + 2);
  if (command == "compile") return cmd_compile(argc - 2, argv + 2);
  if (command == "graph")
    return moat::graph::command(
        argc - 2, argv + 2, [](const std::string& file, moat::manifest::Loaded* m) { return load_and_check(file, m); },
        running_manifest);
  {
    auto load = [](const std::string& file, moat::manifest::Loaded* m) { return load_and_check(file, m); };
    if (command == "create") return moat::cli::create_command(argc - 2, argv + 2, load, running_manifest);
    if (command == "console") return moat::cli::console_command(argc - 2, argv + 2, load, running_manifest);
    if (command == "top") return moat::cli::top_command(argc - 2, argv + 2, load, running_manifest);
    if (command == "trace") return moat::cli::trace_command(argc - 2, argv + 2, load, running_manifest);
  }
  if (moat::cli::is_control_command(argv[1])) return moat::cli::control_command(argv[1], argc - 2, argv + 2);
  if (!command.empty() && command[0] == '-')
    return usage_error(nullptr, "unknown option '" + std::string(command) + "' (options go after the command)");
  return usage_error(nullptr, "unknown command '" + std::string(command) + "'");
}
