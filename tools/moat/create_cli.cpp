// `moat create FILE` (docs/control.md, "moat create"): adds the GUEST
// domains of a manifest fragment to the running system. The fragment is
// checked together with the running system's manifest (`moat check`'s
// rules, errors at FILE:LINE:COL), and what a live create cannot do yet is
// refused naming the field; then each domain's image is uploaded to the
// toolstack in pieces and one CreateRequest creates it.

#include "create_cli.hpp"
#include "cli_args.hpp"

#include "bzimage.hpp"
#include "control_client.hpp"
#include "manifest.hpp"
#include "rundir.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <manifest/manifest.hpp>

namespace moat::cli {

namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;
constexpr double kDefaultTimeout = 60;   // a build waits for the back-ends (guest time)
constexpr size_t kUploadLen = 768;       // control::kUploadLen
constexpr size_t kStageBytes = 4u << 20; // control::kStageBytes
constexpr size_t kCmdlineLen = 255;      // control::kCmdlineLen

int error(const std::string& message) {
  std::fprintf(stderr, "moat create: %s\n", message.c_str());
  return kExitFailed;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "moat create: %s\nRun 'moat create --help' for usage.\n", message.c_str());
  return kExitUsage;
}

uint32_t fresh_seq() {
  std::random_device rd;
  return uint32_t(rd()) | 1u;
}

bool read_file(const std::filesystem::path& p, std::string* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return bool(f) || f.eof();
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : (base / path).lexically_normal();
}

// Where `field` of a message (its parse tree `t`) is in the file: its first
// occurrence, or {0, 0} when unknown.
moat::manifest::Pos pos(const moat::manifest::ParseInfoTree* t, const google::protobuf::Descriptor* type,
                        const char* field) {
  moat::manifest::Pos p;
  const auto* fd = type->FindFieldByName(field);
  if (t && fd) {
    auto loc = t->GetLocation(fd, fd->is_repeated() ? 0 : -1);
    if (loc.line >= 0) p = {loc.line + 1, loc.column + 1};
  }
  return p;
}

}  // namespace

// What a live create cannot do (yet): every domain of the fragment a GUEST
// with an image, memory, at most one vCPU and a short printable command
// line, no capabilities, devices, ramdisk or restart policy; connections
// CONSOLE, XENSTORE, one VIF (no mac) and one VBD (with its size) from one
// of them. One message per field, at its position in the fragment.
std::vector<moat::manifest::Diagnostic> live_limits(const moat::manifest::Loaded& f) {
  using moat::Domain;
  std::vector<moat::manifest::Diagnostic> out;
  const auto* dtype = Domain::descriptor();
  const auto* ctype = moat::Connection::descriptor();
  const auto* sys = moat::System::descriptor();
  if (f.system.has_machine())
    out.push_back({pos(&f.tree, sys, "machine"), "machine: a live create adds domains to the running machine; it cannot change it"});
  if (f.system.domains_size() == 0) out.push_back({{1, 1}, "no domains to create"});
  std::vector<std::string> names;
  for (int i = 0; i < f.system.domains_size(); ++i) {
    const Domain& d = f.system.domains(i);
    const auto* t = f.tree.GetTreeForNested(sys->FindFieldByName("domains"), i);
    names.push_back(d.name());
    auto refuse = [&](const char* field, const std::string& what) {
      out.push_back({pos(t, dtype, field), "domain \"" + d.name() + "\": " + what + ": a live create cannot do that yet"});
    };
    if (d.role() != Domain::GUEST && d.role() != Domain::ROLE_UNSPECIFIED)
      refuse("role", "role " + Domain::Role_Name(d.role()) + " (moat create adds GUEST domains only)");
    if (d.grants_size()) refuse("grants", "grants");
    if (d.events_size()) refuse("events", "events");
    if (d.pci_size()) refuse("pci", "pci devices");
    if (d.ioports_size()) refuse("ioports", "ioports");
    if (d.irqs_size()) refuse("irqs", "irqs");
    if (d.mmio_size()) refuse("mmio", "mmio");
    if (d.debug_console()) refuse("debug_console", "debug_console");
    if (!d.ramdisk().empty()) refuse("ramdisk", "a ramdisk");
    if (d.has_restart()) refuse("restart", "a restart policy (created guests are never restarted)");
    if (d.weight()) refuse("weight", "a weight (created guests have the default, 256)");
    if (d.cpu_cap()) refuse("cpu_cap", "a cpu_cap");
    if (d.controls_size()) refuse("controls", "controls");
    if (d.has_may_create()) refuse("may_create", "may_create");
    if (d.cmdline().size() > kCmdlineLen)
      refuse("cmdline", "a cmdline of " + std::to_string(d.cmdline().size()) + " bytes (at most 255)");
    for (unsigned char c : d.cmdline())
      if (c < 0x20 || c > 0x7e) {
        refuse("cmdline", "a cmdline with a byte that is not printable ASCII");
        break;
      }
  }
  for (int i = 0; i < f.system.connections_size(); ++i) {
    const moat::Connection& c = f.system.connections(i);
    const auto* t = f.tree.GetTreeForNested(sys->FindFieldByName("connections"), i);
    if (c.kind() != moat::Connection::CONSOLE && c.kind() != moat::Connection::XENSTORE &&
        c.kind() != moat::Connection::VIF && c.kind() != moat::Connection::VBD)
      out.push_back({pos(t, ctype, "kind"), "connection " + moat::Connection::Kind_Name(c.kind()) +
                                                ": a live create makes CONSOLE, XENSTORE, VIF and VBD connections only"});
    if (c.kind() == moat::Connection::VBD) {
      // The builder gives a created guest's disk exactly the sectors asked
      // for (within the quota's): "to the end of the device" is not a size.
      if (c.has_disk() && c.disk().sectors() == 0)
        out.push_back({pos(t, ctype, "disk"), "connection VBD from \"" + c.frontend() +
                                                  "\": a disk without sectors: a live create needs its size"});
    }
    if (c.kind() == moat::Connection::VIF) {
      // The builder gives a created guest's vif handle 0 and its own MAC
      // (00:16:3e:01:<slot>:00): it takes no other.
      if (!c.mac().empty())
        out.push_back({pos(t, ctype, "mac"), "connection VIF from \"" + c.frontend() +
                                                 "\": a mac: a live create cannot do that yet (the builder "
                                                 "gives created guests 00:16:3e:01:<entry>:00)"});
    }
    // One VIF and one VBD per guest: the builder's table has room for one
    // of each (and the guest's device nodes are handle 0 and xvda).
    if (c.kind() == moat::Connection::VIF || c.kind() == moat::Connection::VBD) {
      int before = 0;
      for (int j = 0; j < i; ++j)
        before += f.system.connections(j).kind() == c.kind() && f.system.connections(j).frontend() == c.frontend();
      const std::string kind = moat::Connection::Kind_Name(c.kind());
      if (before)
        out.push_back({pos(t, ctype, "kind"), "connection " + kind + " from \"" + c.frontend() + "\": a second " +
                                                  kind + ": a live create makes one per guest"});
    }
    if (std::find(names.begin(), names.end(), c.frontend()) == names.end())
      out.push_back({pos(t, ctype, "frontend"), "connection from \"" + c.frontend() +
                                                    "\": its front-end must be a domain this file creates"});
  }
  return out;
}

int create_command(int argc, char** argv, const moat::graph::LoadAndCheck&,
                   const moat::graph::RunningManifest& running_manifest) {
  std::string file, system;
  double timeout = kDefaultTimeout;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_create_help(stdout);
      return kExitOk;
    } else if (arg == "--system") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("--system needs a system's name");
      system = argv[++i];
    } else if (arg == "--timeout") {
      if (i + 1 >= argc || !parse_timeout(argv[i + 1], &timeout))
        return usage_error("--timeout needs a positive number of seconds");
      ++i;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option '" + std::string(arg) + "'");
    } else {
      if (!file.empty()) return usage_error("one FILE at a time");
      file = argv[i];
    }
  }
  if (file.empty()) return usage_error("which file? (moat create FILE.textproto)");

  // The fragment alone: its syntax, and what a live create cannot do.
  moat::manifest::Loaded fragment;
  std::vector<moat::manifest::Diagnostic> diags;
  if (!moat::manifest::load(file, &fragment, &diags)) {
    for (const auto& d : diags) std::fprintf(stderr, "%s\n", moat::manifest::format(file, d).c_str());
    return kExitFailed;
  }
  diags = live_limits(fragment);
  if (!diags.empty()) {
    for (const auto& d : diags) std::fprintf(stderr, "%s\n", moat::manifest::format(file, d).c_str());
    return kExitFailed;
  }

  // With the running system's manifest: `moat check`'s rules (names unique,
  // back-ends of the right roles, the machine's memory...). Its image paths
  // are made absolute, it is printed first, the fragment after it: a
  // problem past its last line is the fragment's, at the fragment's line.
  std::string running, why;
  if (!running_manifest(system, &running, &why)) return error(why);
  moat::manifest::Loaded base;
  if (!moat::manifest::load(running, &base, &diags))
    return error("the running system's manifest " + running + " does not load any more");
  // A created guest's disk lies within the sectors the toolstack's quota
  // sets aside (the builder checks it too, and that live created guests'
  // disks do not clash). Those sectors are then left out of the merged
  // manifest: `moat check` would see the fragment's disk overlap them.
  {
    const moat::CreateDisks* area = nullptr;
    for (auto& d : *base.system.mutable_domains())
      if (d.role() == moat::Domain::TOOLSTACK && d.may_create().has_disks()) {
        area = &d.may_create().disks();
        break;
      }
    const auto* sys = moat::System::descriptor();
    const auto* ctype = moat::Connection::descriptor();
    bool bad = false;
    for (int i = 0; i < fragment.system.connections_size(); ++i) {
      const moat::Connection& c = fragment.system.connections(i);
      if (c.kind() != moat::Connection::VBD || !c.has_disk()) continue;   // no disk: `moat check` says so
      const moat::manifest::Pos p =
          pos(fragment.tree.GetTreeForNested(sys->FindFieldByName("connections"), i), ctype, "disk");
      const uint64_t first = c.disk().first_sector(), end = first + c.disk().sectors();
      std::string what;
      if (!area)
        what = "the running system's create quota sets no sectors aside for created guests' disks (may_create.disks)";
      else if (c.backend() != area->backend())
        what = "its back-end \"" + c.backend() + "\": the create quota's disks are on \"" + area->backend() + "\"";
      else if (end < first || first < area->first_sector() || end > area->first_sector() + area->sectors())
        what = "sectors " + std::to_string(first) + "+" + std::to_string(c.disk().sectors()) +
               " are not within the create quota's " + std::to_string(area->first_sector()) + "+" +
               std::to_string(area->sectors());
      if (what.empty()) continue;
      std::fprintf(stderr, "%s\n",
                   moat::manifest::format(file, {p, "connection VBD from \"" + c.frontend() + "\": " + what}).c_str());
      bad = true;
    }
    if (bad) return kExitFailed;
    for (auto& d : *base.system.mutable_domains())
      if (d.has_may_create()) d.mutable_may_create()->clear_disks();
  }
  const auto running_dir = std::filesystem::path(running).parent_path();
  for (auto& d : *base.system.mutable_domains()) {
    if (!d.image().empty()) d.set_image(resolve(running_dir, d.image()).string());
    if (!d.ramdisk().empty()) d.set_ramdisk(resolve(running_dir, d.ramdisk()).string());
  }
  for (auto& k : *base.system.mutable_machine()->mutable_disks())
    if (!k.image().empty()) k.set_image(resolve(running_dir, k.image()).string());
  std::string head;
  google::protobuf::TextFormat::PrintToString(base.system, &head);
  const int head_lines = int(std::count(head.begin(), head.end(), '\n'));
  std::string text;
  if (!read_file(file, &text)) return error("cannot read " + file);
  char tmpl[] = "/tmp/moat-create-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return error(std::string("cannot create a temporary file: ") + std::strerror(errno));
  {
    std::string all = head + text;
    bool ok = write(fd, all.data(), all.size()) == ssize_t(all.size());
    close(fd);
    if (!ok) {
      std::remove(tmpl);
      return error("cannot write a temporary file");
    }
  }
  moat::manifest::Loaded merged;
  bool loaded = moat::manifest::load(tmpl, &merged, &diags);
  std::remove(tmpl);
  if (!loaded) return error("the fragment and the running manifest do not parse together");
  const auto frag_dir = std::filesystem::path(file).parent_path();
  // Warnings do not stop a create (as `moat check`); those of the running
  // manifest's own lines (a driver domain without an IOMMU...) were said
  // when it was started and are not repeated.
  diags = moat::manifest::check(merged, frag_dir.empty() ? "." : frag_dir);
  bool failed = false;
  for (auto d : diags) {
    const bool warning = d.message.rfind("warning: ", 0) == 0;
    failed |= !warning;
    if (d.pos.line > head_lines) {
      d.pos.line -= head_lines;
      std::fprintf(stderr, "%s\n", moat::manifest::format(file, d).c_str());
    } else if (!warning) {
      std::fprintf(stderr, "%s: with the running system's manifest (%s): %s\n", file.c_str(), running.c_str(),
                   d.message.c_str());
    }
  }
  if (failed) return kExitFailed;

  auto root = rundir::root();
  std::string chosen;
  if (!rundir::choose(root, system, &chosen, &why)) return error(why);
  const std::string socket = (root / chosen / rundir::kSocket).string();
  auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout));

  // One exchange; "" if answered OK, else why not (for a person).
  auto ask = [&](const control::Request& q, control::Response* r) -> std::string {
    control::Exchange x = control::exchange(socket, q, std::chrono::steady_clock::now() + span);
    if (std::string why = control::unanswered(x, chosen, socket, timeout); !why.empty()) return why;
    *r = x.response;
    switch (r->status()) {
      case control::OK: return "";
      case control::REFUSED: return "refused: " + r->error();
      case control::FAILED: return "failed: " + r->error();
      case control::BAD_REQUEST: return "the toolstack found the request malformed: " + r->error();
      case control::NO_SUCH_DOMAIN: return "no such domain: " + r->error();
      default: return "status " + std::to_string(int(r->status())) + ": " + r->error();
    }
  };

  for (const moat::Domain& d : fragment.system.domains()) {
    const auto image = resolve(frag_dir.empty() ? "." : frag_dir, d.image());
    if (bzimage::file_looks_like(image))
      return error(d.name() + ": " + image.string() + " is a bzImage: a live create takes an ELF image (not yet a bzImage)");
    std::string bytes;
    if (!read_file(image, &bytes)) return error(d.name() + ": cannot read its image " + image.string());
    if (bytes.empty() || bytes.size() > kStageBytes)
      return error(d.name() + ": its image is " + std::to_string(bytes.size()) + " bytes; a live create takes 1 to " +
                   std::to_string(kStageBytes));
    for (size_t at = 0; at < bytes.size(); at += kUploadLen) {
      control::Request q = control::make_request(fresh_seq());
      auto* u = q.mutable_upload();
      u->set_offset(uint32_t(at));
      u->set_data(bytes.substr(at, kUploadLen));
      control::Response r;
      if (std::string e = ask(q, &r); !e.empty())
        return error(d.name() + ": uploading its image (at byte " + std::to_string(at) + "): " + e);
    }
    uint64_t kib = 0;
    (void)moat::manifest::parse_memory(d.memory(), &kib, &why);   // checked above
    control::Request q = control::make_request(fresh_seq());
    auto* c = q.mutable_create();
    c->set_name(d.name());
    c->set_memory_kib(kib);
    c->set_vcpus(d.vcpus() ? d.vcpus() : 1);
    c->set_cmdline(d.cmdline());
    for (const auto& k : fragment.system.connections()) {
      if (k.frontend() != d.name()) continue;
      if (k.kind() == moat::Connection::CONSOLE) c->set_console(k.backend());
      if (k.kind() == moat::Connection::XENSTORE) c->set_xenstore(k.backend());
      if (k.kind() == moat::Connection::VIF) c->set_net(k.backend());
      if (k.kind() == moat::Connection::VBD) {
        c->set_blk(k.backend());
        c->set_disk_first_sector(k.disk().first_sector());
        c->set_disk_sectors(k.disk().sectors());
        c->set_disk_read_only(k.disk().read_only());
      }
    }
    c->set_image_size(uint32_t(bytes.size()));
    c->set_image_crc32(::manifest::crc32(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    control::Response r;
    if (std::string e = ask(q, &r); !e.empty()) return error(d.name() + ": " + e);
    std::printf("%s created as domain %u\n", d.name().c_str(), r.domains(0).id());
  }
  return kExitOk;
}

void print_create_help(FILE* out) {
  std::fputs("usage: moat create FILE [--system S] [--timeout SECONDS]\n"
             "\n"
             "Adds the domains of FILE, a manifest fragment (domains and their\n"
             "connections, in the manifest's text format), to the running system, as\n"
             "'xl create' does. The fragment is checked with the running system's manifest\n"
             "('moat check' rules; errors as FILE:LINE:COL). A live create adds GUEST\n"
             "domains with CONSOLE, XENSTORE and one VIF connection only, within the create\n"
             "quota the manifest gives the toolstack (may_create); created guests are never\n"
             "restarted. Each image (an ELF, at most 4 MiB) is uploaded to the toolstack,\n"
             "which asks the builder to build it (docs/control.md).\n"
             "\n"
             "options:\n"
             "  --system S           the running system S (default: the only one running)\n"
             "  --timeout SECONDS    per request (default 60)\n"
             "  -h, --help           this help\n"
             "\n"
             "exit status: 0 created; 1 error (does not check, refused, no answer); 2 usage.\n",
             out);
}

}  // namespace moat::cli
