// Parsing the text manifest, compiling it, and the small string syntaxes it uses.
#include "manifest.hpp"
#include "bzimage.hpp"

#include <manifest/manifest.hpp>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <google/protobuf/io/tokenizer.h>

namespace moat::manifest {
namespace {

// Keeps every message of the parser with its position (0-based from protobuf).
class Collector final : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::vector<Diagnostic>* out) : out_(out) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    out_->push_back({Pos{line + 1, column + 1}, tidy(message)});
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    out_->push_back({Pos{line + 1, column + 1}, "warning: " + tidy(message)});
  }

 private:
  // At the end of the input the parser names the token it found as "".
  static std::string tidy(std::string m) {
    if (m.size() >= 5 && m.compare(m.size() - 5, 5, "got: ") == 0) m += "end of file";
    while (!m.empty() && m.back() == ' ') m.pop_back();
    return m;
  }

  std::vector<Diagnostic>* out_;
};

}  // namespace

bool load(const std::filesystem::path& path, Loaded* out, std::vector<Diagnostic>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back({Pos{}, std::string("cannot read the manifest: ") + std::strerror(errno)});
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();

  std::vector<Diagnostic> messages;
  Collector collector(&messages);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&out->tree);
  bool ok = parser.ParseFromString(text.str(), &out->system);
  // Warnings alone do not fail a parse; they are shown with the errors.
  errors->insert(errors->end(), messages.begin(), messages.end());
  if (!ok && messages.empty()) errors->push_back({Pos{}, "cannot parse the manifest"});
  return ok;
}

namespace {

std::filesystem::path resolve(const std::string& name, const std::filesystem::path& base_dir) {
  std::filesystem::path p = name;
  if (p.is_relative()) p = base_dir / p;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
  if (ec) abs = std::filesystem::absolute(p).lexically_normal();
  return abs;
}

}  // namespace

ModulePlan plan_modules(const System& system, const std::filesystem::path& base_dir) {
  ModulePlan plan;
  std::map<std::filesystem::path, uint32_t> index;
  // One module per distinct file (`moat check` refuses a file that is both
  // an image and a ramdisk).
  auto module_of = [&](const std::string& name, bool ramdisk) {
    std::filesystem::path abs = resolve(name, base_dir);
    auto [it, fresh] = index.emplace(abs, uint32_t(plan.files.size() + 2));
    if (fresh) plan.files.push_back({abs, ramdisk});
    return it->second;
  };
  for (const Domain& d : system.domains()) {
    if (d.role() == Domain::BUILDER) {
      if (plan.builder.empty()) plan.builder = resolve(d.image(), base_dir);
      plan.module.push_back(0);
      plan.ramdisk_module.push_back(0);
      continue;
    }
    plan.module.push_back(module_of(d.image(), false));
    plan.ramdisk_module.push_back(d.ramdisk().empty() ? 0 : module_of(d.ramdisk(), true));
  }
  return plan;
}

bool boot_modules(const System& system, const std::filesystem::path& base_dir,
                  const std::filesystem::path& manifest_file, const std::filesystem::path& cache_dir,
                  std::vector<std::string>* modules, std::string* why) {
  ModulePlan plan = plan_modules(system, base_dir);
  modules->push_back(plan.builder.string() + " builder");
  modules->push_back(std::filesystem::absolute(manifest_file).lexically_normal().string() + " manifest");
  for (const auto& f : plan.files) {
    std::filesystem::path path = f.path;
    if (!f.ramdisk && bzimage::file_looks_like(f.path) && !bzimage::unpack_cached(f.path, cache_dir, &path, why)) {
      *why = "cannot boot the bzImage " + f.path.string() + ": " + *why;
      return false;
    }
    modules->push_back(path.string());
  }
  return true;
}

std::filesystem::path default_cache_dir() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && self.parent_path().filename() == "bin") return self.parent_path().parent_path() / "cache";
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/') return std::filesystem::path(xdg) / "moat";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/tmp") / ".cache" / "moat";
}

std::string compile(const System& system, const std::filesystem::path& base_dir) {
  ModulePlan plan = plan_modules(system, base_dir);
  System out = system;
  for (int i = 0; i < out.domains_size(); ++i) {
    Domain& d = *out.mutable_domains(i);
    uint64_t kib = 0;
    std::string why;
    if (parse_memory(d.memory(), &kib, &why)) d.set_memory_kib(kib);
    if (d.has_may_create() && parse_memory(d.may_create().memory(), &kib, &why))
      d.mutable_may_create()->set_memory_kib(kib);
    d.set_module(plan.module[size_t(i)]);
    d.set_ramdisk_module(plan.ramdisk_module[size_t(i)]);
  }
  std::string payload;
  out.SerializeToString(&payload);
  auto le32 = [](std::string* s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s->push_back(char((v >> (8 * i)) & 0xff));
  };
  std::string bytes(::manifest::kMagic, sizeof ::manifest::kMagic);
  le32(&bytes, uint32_t(payload.size()));
  le32(&bytes, ::manifest::crc32(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  return bytes + payload;
}

bool parse_memory(std::string_view text, uint64_t* kib, std::string* why) {
  const std::string example = "a number and a unit K, M or G, e.g. \"16M\"";
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits + 1 != text.size()) {
    *why = "malformed memory \"" + std::string(text) + "\": expected " + example;
    return false;
  }
  uint64_t shift = 0;
  switch (text.back()) {
  case 'K': shift = 0; break;
  case 'M': shift = 10; break;
  case 'G': shift = 20; break;
  default:
    *why = "malformed memory \"" + std::string(text) + "\": unknown unit '" + text.back() + "', expected K, M or G";
    return false;
  }
  // At most 1 TiB: far beyond any machine this runs on, and no overflow below.
  constexpr uint64_t kMaxKib = uint64_t{1} << 30;
  uint64_t n = 0;
  for (size_t i = 0; i < digits; ++i) {
    n = n * 10 + uint64_t(text[i] - '0');
    if (n > kMaxKib) {
      *why = "memory \"" + std::string(text) + "\" is too large (more than 1024G)";
      return false;
    }
  }
  n <<= shift;
  if (n > kMaxKib) {
    *why = "memory \"" + std::string(text) + "\" is too large (more than 1024G)";
    return false;
  }
  if (n == 0) {
    *why = "memory \"" + std::string(text) + "\" is zero";
    return false;
  }
  if (n % 4 != 0) {
    *why = "memory \"" + std::string(text) + "\" is not a whole number of 4K pages";
    return false;
  }
  *kib = n;
  return true;
}

bool parse_pci(std::string_view text, uint32_t* bdf) {
  // BB:DD.F
  if (text.size() != 7 || text[2] != ':' || text[5] != '.') return false;
  auto hex = [&](size_t at, size_t n, uint32_t* v) {
    *v = 0;
    for (size_t i = at; i < at + n; ++i) {
      char c = text[i];
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      *v = *v * 16 + uint32_t(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    return true;
  };
  uint32_t bus = 0, dev = 0, fn = 0;
  if (!hex(0, 2, &bus) || !hex(3, 2, &dev) || !hex(6, 1, &fn)) return false;
  if (dev > 0x1f || fn > 7) return false;
  *bdf = bus << 8 | dev << 3 | fn;
  return true;
}

std::string format(const std::string& file, const Diagnostic& d) {
  return file + ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " + d.message;
}

}  // namespace moat::manifest
