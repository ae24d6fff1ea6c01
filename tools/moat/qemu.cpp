#include "qemu.hpp"

#include <cstdlib>
#include <sys/stat.h>

namespace moat::qemu {

std::string default_binary() {
  const char* env = std::getenv("MOAT_QEMU");
  if (env != nullptr && *env != '\0') return env;
  return "qemu-system-x86_64";
}

std::string escape_module(std::string_view module) {
  std::string out;
  out.reserve(module.size());
  for (char c : module) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::string join_modules(const std::vector<std::string>& modules) {
  std::string out;
  for (const auto& m : modules) {
    if (!out.empty()) out += ',';
    out += escape_module(m);
  }
  return out;
}

std::vector<std::string> build_argv(const BootSpec& spec) {
  std::vector<std::string> a;
  a.push_back(spec.qemu.empty() ? default_binary() : spec.qemu);
  a.insert(a.end(), {"-accel", "tcg", "-cpu", "max", "-m", spec.memory,
                     "-smp", std::to_string(spec.cpus), "-nodefaults", "-no-reboot",
                     "-display", "none"});
  // No kernel-irqchip setting: TCG's interrupt controllers are QEMU's own,
  // which is what intremap=on needs (KVM would want kernel-irqchip=split).
  if (spec.iommu) a.insert(a.end(), {"-machine", "q35"});
  switch (spec.console) {
    case Console::Interactive: {
      // What -serial mon:stdio does, spelled out so the console can be logged.
      std::string chardev = "stdio,id=console,mux=on";
      if (!spec.serial_log.empty()) chardev += ",logfile=" + escape_module(spec.serial_log);
      a.insert(a.end(), {"-chardev", chardev, "-serial", "chardev:console",
                         "-mon", "chardev=console,mode=readline"});
      break;
    }
    case Console::Plain:
      a.insert(a.end(), {"-serial", "stdio", "-monitor", "none"});
      break;
  }
  // wait=off: the system runs whether or not a host command is connected.
  if (!spec.control_socket.empty())
    a.insert(a.end(), {"-chardev", "socket,id=control,path=" + escape_module(spec.control_socket) + ",server=on,wait=off",
                       "-serial", "chardev:control"});
  if (spec.iommu) a.insert(a.end(), {"-device", "intel-iommu,intremap=on"});
  a.insert(a.end(), {"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"});
  if (!spec.kernel_args.empty()) a.insert(a.end(), {"-append", spec.kernel_args});
  if (spec.icount) a.insert(a.end(), {"-icount", "shift=0"});
  if (spec.gdb) a.insert(a.end(), {"-s", "-S"});
  a.insert(a.end(), {"-kernel", spec.kernel});
  if (!spec.modules.empty()) a.insert(a.end(), {"-initrd", join_modules(spec.modules)});
  a.insert(a.end(), spec.extra.begin(), spec.extra.end());
  return a;
}

bool valid_memory(std::string_view m) {
  size_t digits = 0;
  while (digits < m.size() && m[digits] >= '0' && m[digits] <= '9') ++digits;
  if (digits == 0) return false;
  if (digits == m.size()) return true;
  if (digits + 1 != m.size()) return false;
  switch (m[digits]) {
    case 'K': case 'M': case 'G': case 'T': case 'k': case 'm': case 'g': case 't':
      return true;
    default:
      return false;
  }
}

namespace {
bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string module_path(std::string_view module) {
  size_t start = module.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  size_t end = module.find_first_of(" \t", start);
  return std::string(module.substr(start, end == std::string_view::npos ? end : end - start));
}
}  // namespace

std::vector<std::string> validate(const BootSpec& spec) {
  std::vector<std::string> errors;
  if (spec.kernel.empty()) {
    errors.push_back("no kernel given (--kernel)");
  } else if (!is_regular_file(spec.kernel)) {
    errors.push_back("kernel image not found: " + spec.kernel);
  }
  for (const auto& m : spec.modules) {
    std::string path = module_path(m);
    if (path.empty()) {
      errors.push_back("module without a path: \"" + m + "\"");
    } else if (m.front() == ' ' || m.front() == '\t') {
      errors.push_back("module string starts with blanks (QEMU takes the path up to the first space): \"" + m + "\"");
    } else if (!is_regular_file(path)) {
      errors.push_back("module image not found: " + path);
    }
  }
  if (!valid_memory(spec.memory)) errors.push_back("bad memory size: " + spec.memory + " (e.g. 256M, 1G)");
  if (spec.cpus < 1) errors.push_back("need at least one CPU");
  if (spec.control_socket.size() >= 108)   // sizeof sockaddr_un::sun_path
    errors.push_back("control socket path too long for a unix socket: " + spec.control_socket);
  if (spec.console == Console::Plain && !spec.serial_log.empty())
    errors.push_back("serial_log is only for the interactive console");
  return errors;
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty();
    for (char c : arg) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '/' || c == ',' || c == '=' || c == ':' || c == '+';
      if (!ok) { plain = false; break; }
    }
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace moat::qemu
