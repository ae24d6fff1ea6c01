#include "rundir.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <algorithm>

namespace moat::rundir {

namespace fs = std::filesystem;

fs::path root() {
  const char* env = std::getenv("MOAT_RUN_DIR");
  if (env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.parent_path().filename() == "bin") return self.parent_path().parent_path() / "run";
  return "run";
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

std::string name_of(const fs::path& manifest) {
  std::string file = manifest.filename().string();
  constexpr std::string_view kExt = ".textproto";
  if (file.size() > kExt.size() && file.ends_with(kExt)) file.resize(file.size() - kExt.size());
  return file;
}

namespace {

bool write_file(const fs::path& path, const std::string& text, std::string* why) {
  std::ofstream o(path, std::ios::trunc);
  if (!(o << text) || !o.flush()) {
    *why = "cannot write " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace

pid_t pid_of(const fs::path& root, const std::string& name) {
  std::ifstream in(root / name / "pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0 || pid > (1L << 22)) return 0;
  return pid_t(pid);
}

bool alive(const fs::path& root, const std::string& name) {
  pid_t pid = pid_of(root, name);
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

bool prepare(const fs::path& root, const std::string& name, const fs::path& manifest, std::string* why) {
  if (!valid_name(name)) {
    *why = "'" + name + "' cannot name a system (1 to 64 of A-Z a-z 0-9 _ . -)";
    return false;
  }
  fs::path dir = root / name;
  if (alive(root, name)) {
    *why = "a system named " + name + " is already running (" + (dir / "pid").string() +
           "); stop it or choose another --name";
    return false;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    *why = "cannot create " + dir.string() + ": " + ec.message();
    return false;
  }
  // QEMU cannot bind over a leftover socket of an earlier run.
  fs::remove(dir / kSocket, ec);
  fs::remove(dir / "pid", ec);
  fs::remove(dir / kConsoleLog, ec);
  fs::path absolute = fs::absolute(manifest, ec);
  return write_file(dir / "manifest", (ec ? manifest : absolute).string() + "\n", why);
}

bool write_pid(const fs::path& root, const std::string& name, pid_t pid, std::string* why) {
  return write_file(root / name / "pid", std::to_string(pid) + "\n", why);
}

void finish(const fs::path& root, const std::string& name) {
  std::error_code ec;
  fs::remove(root / name / "pid", ec);
  fs::remove(root / name / kSocket, ec);
}

std::vector<std::string> running(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (valid_name(name) && entry.is_directory(ec) && alive(root, name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool choose(const fs::path& root, const std::string& wanted, std::string* chosen, std::string* why) {
  if (!wanted.empty()) {
    if (!valid_name(wanted)) {
      *why = "'" + wanted + "' cannot name a system";
      return false;
    }
    if (!alive(root, wanted)) {
      *why = "no system named " + wanted + " is running under " + root.string();
      return false;
    }
    *chosen = wanted;
    return true;
  }
  auto names = running(root);
  if (names.empty()) {
    *why = "no system is running under " + root.string() + " (start one with 'moat run FILE')";
    return false;
  }
  if (names.size() > 1) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    *why = std::to_string(names.size()) + " systems are running under " + root.string() + " (" + list +
           "): choose one with --system NAME";
    return false;
  }
  *chosen = names.front();
  return true;
}

}  // namespace moat::rundir
