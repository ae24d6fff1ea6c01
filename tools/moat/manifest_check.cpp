// The semantic checks of a manifest (what the parser cannot see), each
// reported at the field that is wrong. The rules are stated next to the fields
// in proto/manifest.proto; keep the two in step.
#include "manifest.hpp"
#include "bzimage.hpp"
#include "machine.hpp"

#include <abi/start_info.hpp>
#include <manifest/manifest.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace moat::manifest {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

constexpr uint32_t kDefaultMachineMib = 256;
constexpr uint32_t kMaxVcpus = 1;     // kernel/core: Domain::vcpu[1]
constexpr uint32_t kMaxWeight = 65535;  // kernel/core: Credit::kMaxWeight
constexpr uint32_t kMaxCpuCap = 100;
constexpr uint32_t kIrqLines = 24;    // GSIs of QEMU's one IOAPIC
constexpr uint32_t kIoPorts = 0x10000;
constexpr uint64_t kPage = 4096;
constexpr uint32_t kCom2 = 0x2f8;        // the toolstack's control channel (docs/control.md)
constexpr size_t kMaxName = 32;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string at_line(Pos p) { return "line " + std::to_string(p.line); }

std::string kib_text(uint64_t kib) {
  return kib % 1024 == 0 ? std::to_string(kib / 1024) + "M" : std::to_string(kib) + "K";
}

// Where the fields of one message were written: its ParseInfoTree (null when
// the message did not appear in the text) and the position of the message
// itself, which stands in for fields that were not written.
class Where {
 public:
  Where(const ParseInfoTree* tree, const Descriptor* type, Pos self) : tree_(tree), type_(type), self_(self) {}

  Pos self() const { return self_; }

  // The field's name where its index-th value was written. The values of a
  // list (`irqs: [4, 5]`) share one location, recorded for the first.
  Pos field(const char* name, int index = -1) const {
    const FieldDescriptor* f = type_->FindFieldByName(name);
    if (!tree_ || !f) return self_;
    for (int i = index; i >= -1; --i) {
      auto loc = tree_->GetLocation(f, i);
      if (loc.line >= 0) return Pos{loc.line + 1, loc.column + 1};
      if (i == -1 || i == 0) break;
    }
    return self_;
  }

  Where nested(const char* name, int index = -1) const {
    const FieldDescriptor* f = type_->FindFieldByName(name);
    return Where(tree_ && f ? tree_->GetTreeForNested(f, index) : nullptr, f->message_type(), field(name, index));
  }

 private:
  const ParseInfoTree* tree_;
  const Descriptor* type_;
  Pos self_;
};

// A resource that belongs to one domain only: [first, last] of some kind.
struct Owned {
  uint64_t first, last;
  std::string domain;
  Pos pos;
};

class Checker {
 public:
  Checker(const Loaded& m, const std::filesystem::path& base, const std::filesystem::path& cache)
      : sys_(m.system), root_(&m.tree, System::descriptor(), Pos{}), base_(base), cache_(cache) {}

  std::vector<Diagnostic> run() {
    if (sys_.domains_size() > int(::manifest::kMaxDomains))
      error(domain_where(int(::manifest::kMaxDomains)).self(),
            "more than " + std::to_string(::manifest::kMaxDomains) + " domains (the builder's limit)");
    if (sys_.connections_size() > int(::manifest::kMaxConnections))
      error(root_.nested("connections", int(::manifest::kMaxConnections)).self(),
            "more than " + std::to_string(::manifest::kMaxConnections) + " connections (the builder's limit)");
    index_names();
    for (int i = 0; i < sys_.domains_size(); ++i) check_domain(i);
    check_ramdisks_are_not_images();
    check_roles();
    check_memory_total();
    for (int i = 0; i < sys_.connections_size(); ++i) check_connection(i);
    check_create_disks();
    check_machine_devices();
    check_dma_confinement();
    std::stable_sort(out_.begin(), out_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
    });
    return std::move(out_);
  }

 private:
  void error(Pos p, std::string message) { out_.push_back({p, std::move(message)}); }

  Where domain_where(int i) const { return root_.nested("domains", i); }

  // The first domain of each name; later ones are duplicates.
  void index_names() {
    for (int i = 0; i < sys_.domains_size(); ++i) {
      const std::string& name = sys_.domains(i).name();
      if (!name.empty() && !by_name_.count(name)) by_name_[name] = i;
    }
  }

  std::optional<int> find(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return std::nullopt;
    return it->second;
  }

  // A domain named by a capability or a connection end. Reports an empty or
  // unknown name; returns the domain's index if it exists.
  std::optional<int> peer(const std::string& name, Pos p, const std::string& what) {
    if (name.empty()) {
      error(p, what + " names no domain");
      return std::nullopt;
    }
    auto i = find(name);
    if (!i) error(p, what + " names unknown domain \"" + name + "\"");
    return i;
  }

  void check_name(const Domain& d, const Where& w, int i) {
    if (d.name().empty()) {
      error(w.self(), "domain has no name");
      return;
    }
    Pos p = w.field("name");
    bool chars_ok = std::all_of(d.name().begin(), d.name().end(),
                                [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; });
    if (!chars_ok || d.name().size() > kMaxName)
      error(p, "malformed domain name \"" + d.name() + "\": expected 1 to 32 of A-Z a-z 0-9 _ . -");
    int first = by_name_.at(d.name());
    if (first != i)
      error(p, "duplicate domain name \"" + d.name() + "\" (first defined at " +
                   at_line(domain_where(first).field("name")) + ")");
  }

  void check_domain(int i) {
    const Domain& d = sys_.domains(i);
    Where w = domain_where(i);
    check_name(d, w, i);
    const std::string who = d.name().empty() ? "domain" : "domain \"" + d.name() + "\"";

    if (d.role() == Domain::ROLE_UNSPECIFIED)
      error(w.self(), who + " has no role");
    else if (!Domain::Role_IsValid(d.role()))
      error(w.field("role"), who + " has unknown role " + std::to_string(d.role()));

    check_image(d, w, who);

    if (d.memory_kib() != 0)
      error(w.field("memory_kib"), "memory_kib is set by 'moat compile'; write memory: \"" +
                                       kib_text(d.memory_kib()) + "\" instead");
    if (d.module() != 0)
      error(w.field("module"), "module is set by 'moat compile' (the boot module holding the image); do not write it");
    if (d.ramdisk_module() != 0)
      error(w.field("ramdisk_module"),
            "ramdisk_module is set by 'moat compile' (the boot module holding the ramdisk); do not write it");
    if (d.memory().empty()) {
      error(w.self(), who + " has no memory (e.g. memory: \"16M\")");
    } else {
      uint64_t kib = 0;
      std::string why;
      if (parse_memory(d.memory(), &kib, &why))
        memory_kib_[i] = kib;
      else
        error(w.field("memory"), why);
    }

    check_ramdisk(d, w, who, i);

    if (d.vcpus() > kMaxVcpus)
      error(w.field("vcpus"), "vcpus " + std::to_string(d.vcpus()) + " out of range: the core runs at most " +
                                  std::to_string(kMaxVcpus) + " per domain");
    if (d.weight() > kMaxWeight)
      error(w.field("weight"), "weight " + std::to_string(d.weight()) + " out of range 1-65535 (0 or unset: 256)");
    if (d.cpu_cap() > kMaxCpuCap)
      error(w.field("cpu_cap"), "cpu_cap " + std::to_string(d.cpu_cap()) + " out of range 1-100 (0 or unset: uncapped)");
    if (d.cmdline().size() >= abi::kMaxGuestCmdline)
      error(w.field("cmdline"), "cmdline is " + std::to_string(d.cmdline().size()) + " bytes, more than " +
                                    std::to_string(abi::kMaxGuestCmdline - 1));
    check_restart(d, w);
    check_limit(w, "grants", d.grants_size(), "grants");
    check_limit(w, "events", d.events_size(), "event capabilities");
    check_limit(w, "pci", d.pci_size(), "PCI functions");
    check_limit(w, "ioports", d.ioports_size(), "I/O port ranges");
    check_limit(w, "irqs", d.irqs_size(), "irqs");
    check_limit(w, "mmio", d.mmio_size(), "MMIO ranges");
    check_total(w, "grants", d.grants_size(), ::manifest::kMaxGrants, "grants", &totals_[0]);
    check_total(w, "events", d.events_size(), ::manifest::kMaxGrants, "event capabilities", &totals_[1]);
    check_total(w, "pci", d.pci_size(), ::manifest::kMaxDevices, "PCI functions", &totals_[2]);
    check_total(w, "ioports", d.ioports_size(), ::manifest::kMaxDevices, "I/O port ranges", &totals_[3]);
    check_total(w, "irqs", d.irqs_size(), ::manifest::kMaxDevices, "irqs", &totals_[4]);
    check_total(w, "mmio", d.mmio_size(), ::manifest::kMaxDevices, "MMIO ranges", &totals_[5]);
    if (!d.cmdline().empty()) {
      // Each kept with its NUL.
      uint64_t& t = totals_[6];
      if (t <= ::manifest::kCmdlineBytes && t + d.cmdline().size() + 1 > ::manifest::kCmdlineBytes)
        error(w.field("cmdline"), "the command lines of all domains together are more than " +
                                      std::to_string(::manifest::kCmdlineBytes) + " bytes (the builder's limit)");
      t += d.cmdline().size() + 1;
    }
    check_grants(d, w, who);
    check_events(d, w, who);
    check_devices(d, w);
    check_toolstack(d, w, who);
  }

  // The toolstack's create quota (`moat create`, docs/control.md): how many
  // guests, how much memory in all, which back-ends, which sectors for disks.
  void check_create_quota(const CreateQuota& q, const Where& w) {
    if (q.domains() == 0 || q.domains() > ::manifest::kMaxCreated)
      error(w.field("domains"), "may_create.domains " + std::to_string(q.domains()) + " out of range 1-" +
                                    std::to_string(::manifest::kMaxCreated) + " (how many created guests at once)");
    if (q.memory_kib() != 0)
      error(w.field("memory_kib"), "may_create.memory_kib is set by 'moat compile'; write memory: \"" +
                                       kib_text(q.memory_kib()) + "\" instead");
    if (q.memory().empty()) {
      error(w.self(), "may_create has no memory (the created guests' memory together, e.g. memory: \"64M\")");
    } else {
      uint64_t kib = 0;
      std::string why;
      uint64_t machine_kib = uint64_t(sys_.machine().memory_mib() ? sys_.machine().memory_mib() : kDefaultMachineMib) * 1024;
      if (!parse_memory(q.memory(), &kib, &why))
        error(w.field("memory"), "may_create: " + why);
      else if (kib > machine_kib)
        error(w.field("memory"), "may_create.memory " + q.memory() + " is more than the machine's " + kib_text(machine_kib));
    }
    if (q.backends_size() > int(::manifest::kMaxPerDomain))
      error(w.field("backends", int(::manifest::kMaxPerDomain)),
            "more than " + std::to_string(::manifest::kMaxPerDomain) + " back-ends in may_create (the builder's limit)");
    std::map<std::string, Pos> seen;
    for (int k = 0; k < q.backends_size(); ++k) {
      const std::string& name = q.backends(k);
      Pos p = w.field("backends", k);
      if (auto i = peer(name, p, "may_create.backends")) {
        Domain::Role r = sys_.domains(*i).role();
        if (r != Domain::CONSOLE && r != Domain::XENSTORE && r != Domain::NETBACK && r != Domain::BLKBACK)
          error(p, "may_create.backends names \"" + name + "\", a " + Domain::Role_Name(r) +
                       ": only CONSOLE, XENSTORE, NETBACK and BLKBACK domains serve created guests");
        auto [it, fresh] = seen.emplace(name, p);
        if (!fresh) error(p, "\"" + name + "\" named twice in may_create.backends (first at " + at_line(it->second) + ")");
      }
    }
    if (!q.has_disks()) return;
    const CreateDisks& a = q.disks();
    const Where dw = w.nested("disks");
    if (auto i = peer(a.backend(), dw.field("backend"), "may_create.disks.backend")) {
      if (sys_.domains(*i).role() != Domain::BLKBACK)
        error(dw.field("backend"), "may_create.disks.backend \"" + a.backend() + "\" is a " +
                                       Domain::Role_Name(sys_.domains(*i).role()) + ", not a BLKBACK");
      else if (!seen.count(a.backend()))
        error(dw.field("backend"), "may_create.disks.backend \"" + a.backend() + "\" is not in may_create.backends");
    }
    if (a.sectors() == 0) {
      error(dw.self(), "may_create.disks has no sectors (how many, from first_sector, created guests' disks may use)");
    } else if (a.first_sector() + a.sectors() < a.first_sector()) {
      error(dw.field("sectors"), "may_create.disks: the sectors overflow");
    } else {
      create_disks_ = VirtualDiskUse{a.backend(), a.first_sector(), a.first_sector() + a.sectors(), false, dw.self()};
    }
  }

  // The sectors set aside for created guests overlap no VBD of the manifest
  // (read-only or not): a created guest reaches those only. After every
  // connection's check (disks_ holds their VBDs).
  void check_create_disks() {
    if (!create_disks_) return;
    const VirtualDiskUse& a = *create_disks_;
    for (const auto& o : disks_)
      if (o.backend == a.backend && a.first < o.end && o.first < a.end)
        error(a.where, "may_create.disks (sectors " + std::to_string(a.first) + "-" + std::to_string(a.end - 1) +
                           " of \"" + a.backend + "\") overlap the VBD at " + at_line(o.where) +
                           ": created guests' disks must be apart from the manifest's");
  }

  // A TOOLSTACK drives COM2 (the host's control channel, docs/control.md)
  // and controls the domains it names; nobody else names any.
  void check_toolstack(const Domain& d, const Where& w, const std::string& who) {
    if (d.role() != Domain::TOOLSTACK) {
      if (d.controls_size() > 0)
        error(w.field("controls", 0), "controls is for the TOOLSTACK only, not " + Domain::Role_Name(d.role()));
      if (d.has_may_create())
        error(w.field("may_create"), "may_create is for the TOOLSTACK only, not " + Domain::Role_Name(d.role()));
      return;
    }
    if (d.has_may_create()) check_create_quota(d.may_create(), w.nested("may_create"));
    bool com2 = false;
    for (const IoPortRange& r : d.ioports()) com2 |= r.first() <= kCom2 && uint64_t(r.first()) + r.count() >= kCom2 + 8;
    if (!com2)
      error(w.self(), who + " is the TOOLSTACK but cannot drive COM2, its control channel: add ioports { first: 0x2f8 count: 8 }");
    if (d.controls_size() > int(::manifest::kMaxControls))
      error(w.field("controls", int(::manifest::kMaxControls)),
            "more than " + std::to_string(::manifest::kMaxControls) + " controlled domains (the builder's limit)");
    std::map<std::string, Pos> seen;
    for (int k = 0; k < d.controls_size(); ++k) {
      const std::string& name = d.controls(k);
      Pos p = w.field("controls", k);
      if (!name.empty() && name == d.name()) {
        error(p, who + " names itself in controls");
      } else if (auto i = peer(name, p, "controls")) {
        if (sys_.domains(*i).role() == Domain::BUILDER)
          error(p, "controls names the builder \"" + name + "\": nobody controls the builder");
        auto [it, fresh] = seen.emplace(name, p);
        if (!fresh) error(p, "\"" + name + "\" named twice in controls (first at " + at_line(it->second) + ")");
      }
    }
  }

  // The builder's fixed tables (libs/manifest) hold at most so many of each.
  void check_limit(const Where& w, const char* field, int n, const char* what) {
    if (n > int(::manifest::kMaxPerDomain))
      error(w.field(field, int(::manifest::kMaxPerDomain)),
            "more than " + std::to_string(::manifest::kMaxPerDomain) + " " + what + " (the builder's limit)");
  }

  // ... and all domains together (the builder's pools): said once, at the
  // entry that goes past the limit.
  void check_total(const Where& w, const char* field, int n, unsigned limit, const char* what, uint64_t* total) {
    if (*total <= limit && *total + uint64_t(n) > limit)
      error(w.field(field, int(limit - *total)),
            "more than " + std::to_string(limit) + " " + what + " in all domains together (the builder's limit)");
    *total += uint64_t(n);
  }

  void check_image(const Domain& d, const Where& w, const std::string& who) {
    if (d.image().empty()) {
      error(w.self(), who + " has no image");
      return;
    }
    std::filesystem::path p = d.image();
    if (p.is_relative()) p = base_ / p;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      error(w.field("image"), "image \"" + d.image() + "\" not found (no file " + p.lexically_normal().string() + ")");
      return;
    }
    // A bzImage must unpack to an ELF image (`moat run` boots that); each
    // distinct file is unpacked once.
    if (!bzimage::file_looks_like(p)) return;
    if (d.role() == Domain::BUILDER) {
      error(w.field("image"), "image \"" + d.image() + "\" is a bzImage: the kernel builds the builder from an ELF image only");
      return;
    }
    // By its real path (as plan_modules names it): a link such as
    // /var/lib/moat/linux/vmlinuz and its target are one file, one cache entry.
    std::filesystem::path key = std::filesystem::weakly_canonical(std::filesystem::absolute(p), ec);
    if (ec) key = p;
    auto [it, fresh] = bzimages_.emplace(key, std::string());
    if (fresh) {
      std::string why;
      bool ok = false;
      if (cache_.empty()) {
        std::string bytes, elf;
        ok = bzimage::read_file(key, &bytes, &why) && bzimage::unpack(bytes, &elf, &why);
      } else {
        std::filesystem::path unpacked;
        ok = bzimage::unpack_cached(key, cache_, &unpacked, &why);
      }
      it->second = ok ? "" : why.empty() ? "cannot unpack it" : why;
    }
    if (!it->second.empty()) error(w.field("image"), "image \"" + d.image() + "\" is a bzImage that cannot be booted: " + it->second);
  }

  // An optional ramdisk: an existing file, not too large, not for the builder.
  void check_ramdisk(const Domain& d, const Where& w, const std::string& who, int i) {
    if (d.ramdisk().empty()) return;
    Pos p = w.field("ramdisk");
    if (d.role() == Domain::BUILDER) {
      error(p, "the builder takes no ramdisk (the kernel builds it from its image alone)");
      return;
    }
    std::filesystem::path path = d.ramdisk();
    if (path.is_relative()) path = base_ / path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      error(p, "ramdisk \"" + d.ramdisk() + "\" " +
                   (std::filesystem::exists(path, ec) ? "is not a regular file (" : "not found (no file ") +
                   path.lexically_normal().string() + ")");
      return;
    }
    uint64_t bytes = std::filesystem::file_size(path, ec);
    if (ec) {
      error(p, "ramdisk \"" + d.ramdisk() + "\" cannot be read: " + ec.message());
      return;
    }
    if (bytes == 0) {
      error(p, "ramdisk \"" + d.ramdisk() + "\" is empty");
    } else if (bytes > kMaxRamdiskBytes) {
      error(p, "ramdisk \"" + d.ramdisk() + "\" is " + std::to_string(bytes) + " bytes, more than " +
                   kib_text(kMaxRamdiskBytes / 1024) + " (the largest moat takes)");
    } else if (auto kib = memory_kib_.find(i); kib != memory_kib_.end() && bytes > kib->second * 1024 / 2) {
      error(p, "ramdisk \"" + d.ramdisk() + "\" is " + std::to_string(bytes) + " bytes, more than half of " + who +
                   "'s " + kib_text(kib->second) + " of memory (its kernel unpacks it beside itself)");
    }
  }

  // A file is one boot module: a kernel or a ramdisk, never both.
  void check_ramdisks_are_not_images() {
    std::map<std::filesystem::path, int> images;
    auto resolve = [&](const std::string& name) {
      std::filesystem::path p = name;
      if (p.is_relative()) p = base_ / p;
      std::error_code ec;
      std::filesystem::path c = std::filesystem::weakly_canonical(std::filesystem::absolute(p), ec);
      return ec ? p.lexically_normal() : c;
    };
    for (int i = 0; i < sys_.domains_size(); ++i)
      if (!sys_.domains(i).image().empty()) images.emplace(resolve(sys_.domains(i).image()), i);
    for (int i = 0; i < sys_.domains_size(); ++i) {
      const Domain& d = sys_.domains(i);
      if (d.ramdisk().empty() || d.role() == Domain::BUILDER) continue;
      auto it = images.find(resolve(d.ramdisk()));
      if (it != images.end())
        error(domain_where(i).field("ramdisk"), "ramdisk \"" + d.ramdisk() + "\" is also the image of domain \"" +
                                                    sys_.domains(it->second).name() +
                                                    "\" (a file is one boot module: a kernel or a ramdisk)");
    }
  }

  void check_restart(const Domain& d, const Where& w) {
    const Restart& r = d.restart();
    Where rw = w.nested("restart");
    if (!Restart::Policy_IsValid(r.policy()))
      error(rw.field("policy"), "unknown restart policy " + std::to_string(r.policy()));
    if (r.policy() == Restart::NEVER && r.max_restarts() != 0)
      error(rw.field("max_restarts"), "max_restarts has no effect with restart policy NEVER");
    if (d.role() == Domain::BUILDER && r.policy() != Restart::NEVER)
      error(rw.field("policy"), "the builder is never restarted (nothing would restart it): use NEVER");
  }

  void check_grants(const Domain& d, const Where& w, const std::string& who) {
    std::map<std::string, Pos> seen;
    for (int g = 0; g < d.grants_size(); ++g) {
      const Grant& grant = d.grants(g);
      Where gw = w.nested("grants", g);
      Pos p = gw.field("peer");
      if (!grant.peer().empty() && grant.peer() == d.name()) {
        error(p, who + " names itself as a grant peer: its own pages need no capability");
      } else if (peer(grant.peer(), p, "grant")) {
        auto [it, fresh] = seen.emplace(grant.peer(), p);
        if (!fresh)
          error(p, "second grant to \"" + grant.peer() + "\" (first at " + at_line(it->second) + "): list its rights once");
      }
      if (grant.rights_size() == 0) error(gw.self(), "grant to \"" + grant.peer() + "\" gives no rights (MAP_RO, MAP_RW, COPY)");
      std::set<int> rights;
      for (int r = 0; r < grant.rights_size(); ++r) {
        int right = grant.rights(r);
        Pos rp = gw.field("rights", r);
        if (right == Grant::RIGHT_UNSPECIFIED || !Grant::Right_IsValid(right))
          error(rp, "invalid grant right " + std::to_string(right) + ": expected MAP_RO, MAP_RW or COPY");
        else if (!rights.insert(right).second)
          error(rp, "grant right " + Grant::Right_Name(Grant::Right(right)) + " listed twice");
      }
    }
  }

  void check_events(const Domain& d, const Where& w, const std::string& who) {
    std::map<std::string, Pos> seen;
    for (int e = 0; e < d.events_size(); ++e) {
      const std::string& name = d.events(e).peer();
      Pos p = w.nested("events", e).field("peer");
      if (!name.empty() && name == d.name()) {
        error(p, who + " names itself as an event peer: binding its own channels needs no capability");
      } else if (peer(name, p, "event")) {
        auto [it, fresh] = seen.emplace(name, p);
        if (!fresh) error(p, "second event capability for \"" + name + "\" (first at " + at_line(it->second) + ")");
      }
    }
  }

  // Reports `r` if it overlaps a range already given out; then records it.
  void claim(std::vector<Owned>* owned, Owned r, const std::string& what, std::string (*show)(const Owned&)) {
    for (const Owned& o : *owned) {
      if (r.first > o.last || o.first > r.last) continue;
      if (r.first == r.last && o.first == o.last)
        error(r.pos, what + " " + show(r) + " already belongs to domain \"" + o.domain + "\" (" + at_line(o.pos) + ")");
      else
        error(r.pos, what + " " + show(r) + " overlaps " + show(o) + " of domain \"" + o.domain + "\" (" + at_line(o.pos) + ")");
      break;
    }
    owned->push_back(std::move(r));
  }

  static std::string show_pci(const Owned& o) {
    char s[16];
    std::snprintf(s, sizeof s, "%02x:%02x.%x", unsigned(o.first >> 8), unsigned((o.first >> 3) & 0x1f),
                  unsigned(o.first & 7));
    return s;
  }
  static std::string show_irq(const Owned& o) { return std::to_string(o.first); }
  static std::string show_range(const Owned& o) { return hex(o.first) + "-" + hex(o.last); }

  void check_devices(const Domain& d, const Where& w) {
    for (int k = 0; k < d.pci_size(); ++k) {
      Pos p = w.field("pci", k);
      uint32_t bdf = 0;
      if (!parse_pci(d.pci(k), &bdf))
        error(p, "malformed PCI function \"" + d.pci(k) + "\": expected BB:DD.F in hex (device 00-1f, function 0-7)");
      else
        claim(&pci_, Owned{bdf, bdf, d.name(), p}, "PCI function", show_pci);
    }
    for (int k = 0; k < d.irqs_size(); ++k) {
      Pos p = w.field("irqs", k);
      uint32_t irq = d.irqs(k);
      if (irq >= kIrqLines)
        error(p, "irq " + std::to_string(irq) + " out of range 0-" + std::to_string(kIrqLines - 1));
      else
        claim(&irqs_, Owned{irq, irq, d.name(), p}, "irq", show_irq);
    }
    for (int k = 0; k < d.ioports_size(); ++k) {
      const IoPortRange& r = d.ioports(k);
      Where rw = w.nested("ioports", k);
      if (r.count() == 0)
        error(rw.self(), "I/O port range at " + hex(r.first()) + " has count 0");
      else if (r.first() >= kIoPorts || r.count() > kIoPorts - r.first())
        error(rw.self(), "I/O port range " + hex(r.first()) + " count " + std::to_string(r.count()) +
                             " goes past port 0xffff");
      else
        claim(&ioports_, Owned{r.first(), uint64_t(r.first()) + r.count() - 1, d.name(), rw.self()}, "I/O port range",
              show_range);
    }
    for (int k = 0; k < d.mmio_size(); ++k) {
      const MmioRange& r = d.mmio(k);
      Where rw = w.nested("mmio", k);
      if (r.size() == 0 || r.base() % kPage != 0 || r.size() % kPage != 0)
        error(rw.self(), "MMIO range " + hex(r.base()) + " size " + hex(r.size()) +
                             ": base and size must be multiples of 4K, size not 0");
      else if (r.size() - 1 > UINT64_MAX - r.base())
        error(rw.self(), "MMIO range " + hex(r.base()) + " size " + hex(r.size()) + " wraps around");
      else
        claim(&mmio_, Owned{r.base(), r.base() + (r.size() - 1), d.name(), rw.self()}, "MMIO range", show_range);
    }
  }

  void check_roles() {
    struct Seen {
      int count = 0;
      int first = -1;
    };
    std::map<int, Seen> roles;
    for (int i = 0; i < sys_.domains_size(); ++i) {
      int role = sys_.domains(i).role();
      Seen& s = roles[role];
      if (++s.count == 1) {
        s.first = i;
        continue;
      }
      if (role != Domain::BUILDER && role != Domain::XENSTORE && role != Domain::CONSOLE && role != Domain::TOOLSTACK)
        continue;
      const std::string& first = sys_.domains(s.first).name();
      error(domain_where(i).field("role"), "more than one " + Domain::Role_Name(Domain::Role(role)) + " domain (\"" +
                                                first + "\" at " + at_line(domain_where(s.first).field("role")) + ")");
    }
    if (roles[Domain::BUILDER].count == 0) error(Pos{}, "no domain has role BUILDER");
  }

  void check_memory_total() {
    uint64_t machine_kib = uint64_t(sys_.machine().memory_mib() ? sys_.machine().memory_mib() : kDefaultMachineMib) * 1024;
    uint64_t total = 0;
    for (int i = 0; i < sys_.domains_size(); ++i) {
      auto it = memory_kib_.find(i);
      if (it == memory_kib_.end()) continue;
      total += it->second;
      if (total > machine_kib) {
        uint64_t all = 0;
        for (auto& [_, kib] : memory_kib_) all += kib;
        error(domain_where(i).field("memory"), "domains need " + kib_text(all) + " of memory in all, more than the machine's " +
                                                   kib_text(machine_kib) + (sys_.machine().memory_mib() ? " (machine.memory_mib)" : " (machine.memory_mib unset: 256)"));
        return;
      }
    }
  }

  void check_connection(int i) {
    const Connection& c = sys_.connections(i);
    Where w = root_.nested("connections", i);
    auto front = peer(c.frontend(), w.field("frontend"), "connection frontend");
    auto back = peer(c.backend(), w.field("backend"), "connection backend");
    if (!Connection::Kind_IsValid(c.kind()) || c.kind() == Connection::KIND_UNSPECIFIED) {
      error(w.field("kind"), "connection has no kind (RING, CONSOLE, XENSTORE, VIF or VBD)");
      return;
    }
    check_connection_details(c, w);
    if (!front || !back) return;
    if (*front == *back) {
      error(w.field("backend"), "connection from \"" + c.frontend() + "\" to itself");
      return;
    }
    const std::string kind = Connection::Kind_Name(c.kind());
    const Domain& b = sys_.domains(*back);
    Domain::Role want = c.kind() == Connection::CONSOLE    ? Domain::CONSOLE
                        : c.kind() == Connection::XENSTORE ? Domain::XENSTORE
                        : c.kind() == Connection::VIF      ? Domain::NETBACK
                                                           : Domain::BLKBACK;
    if (c.kind() != Connection::RING && b.role() != want)
      error(w.field("backend"), kind + " connection's backend \"" + b.name() + "\" has role " +
                                    Domain::Role_Name(b.role()) + ", not " + Domain::Role_Name(want));
    // A front-end may have several VIFs and VBDs, also to one back-end.
    if (c.kind() == Connection::VIF || c.kind() == Connection::VBD) return;
    std::string key = c.frontend() + '\0' + c.backend() + '\0' + kind;
    if (!connections_.emplace(key, w.self()).second) {
      error(w.self(), "duplicate " + kind + " connection from \"" + c.frontend() + "\" to \"" + c.backend() + "\" (first at " +
                          at_line(connections_[key]) + ")");
      return;
    }
    if (c.kind() != Connection::RING) {
      auto [it, fresh] = unique_per_frontend_.emplace(c.frontend() + '\0' + kind, w.self());
      if (!fresh)
        error(w.self(), "\"" + c.frontend() + "\" has a second " + kind + " connection (first at " + at_line(it->second) + ")");
    }
  }

  // The machine's NICs and disks: a well-formed PCI address each, no two at
  // one address, well-formed UDP forwards with distinct host ports, an
  // image for every disk.
  void check_machine_devices() {
    Where m = root_.nested("machine");
    std::map<uint32_t, Pos> at;
    std::map<int, Pos> host_ports;
    std::map<std::string, Pos> images;
    auto place = [&](const std::string& pci, Where w) {
      uint32_t bdf = 0;
      if (!parse_pci(pci, &bdf)) {
        error(w.field("pci"), pci.empty() ? "a machine device needs its pci address (BB:DD.F)"
                                          : "malformed PCI address \"" + pci + "\": expected BB:DD.F in hex");
        return;
      }
      if ((bdf >> 8) != 0) error(w.field("pci"), "machine devices sit on bus 00");
      else if ((bdf >> 3) < 2) error(w.field("pci"), "00:00 and 00:01 are the machine's own (host bridge, ISA bridge)");
      auto [it, fresh] = at.emplace(bdf, w.self());
      if (!fresh) error(w.field("pci"), "PCI address " + pci + " is already taken by the device at " + at_line(it->second));
    };
    for (int i = 0; i < sys_.machine().nics_size(); ++i) {
      const Nic& nic = sys_.machine().nics(i);
      Where w = m.nested("nics", i);
      place(nic.pci(), w);
      for (int k = 0; k < nic.udp_forward_size(); ++k) {
        int host = 0, guest = 0;
        std::string ip;
        if (!moat::machine::parse_udp_forward(nic.udp_forward(k), &host, &ip, &guest)) {
          error(w.field("udp_forward", k),
                "malformed udp_forward \"" + nic.udp_forward(k) + "\": expected HOSTPORT:GUESTIP:GUESTPORT");
          continue;
        }
        auto [it, fresh] = host_ports.emplace(host, w.field("udp_forward", k));
        if (!fresh) error(w.field("udp_forward", k), "host port " + std::to_string(host) + " is already forwarded at " + at_line(it->second));
      }
    }
    for (int i = 0; i < sys_.machine().disks_size(); ++i) {
      const Disk& disk = sys_.machine().disks(i);
      Where w = m.nested("disks", i);
      place(disk.pci(), w);
      if (disk.image().empty()) {
        error(w.self(), "a disk needs its image (a raw file, created if missing)");
        continue;
      }
      auto path = moat::machine::disk_image(disk, base_).string();
      auto [it, fresh] = images.emplace(path, w.field("image"));
      if (!fresh) error(w.field("image"), "image " + disk.image() + " is also the image of the disk at " + at_line(it->second) +
                                     " (QEMU gives an image to one disk only)");
    }
  }

  // VIF's mac, VBD's disk: each only on its kind; no two writable virtual
  // disks of one back-end overlap, no two VIFs share a mac.
  void check_connection_details(const Connection& c, Where w) {
    if (!c.mac().empty()) {
      if (c.kind() != Connection::VIF) error(w.field("mac"), "a mac is for VIF connections only");
      else if (!valid_mac(c.mac()))
        error(w.field("mac"), "mac \"" + c.mac() + "\" is not a unicast xx:xx:xx:xx:xx:xx address");
      else {
        std::string m = c.mac();
        for (auto& ch : m) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        auto [it, fresh] = macs_.emplace(m, w.self());
        if (!fresh) error(w.field("mac"), "mac " + m + " is already the mac of the VIF at " + at_line(it->second));
      }
    }
    if (c.has_disk() != (c.kind() == Connection::VBD)) {
      error(c.has_disk() ? w.field("disk") : w.self(),
            c.has_disk() ? "a disk is for VBD connections only" : "a VBD connection needs its disk { first_sector sectors read_only }");
      return;
    }
    if (!c.has_disk()) return;
    const VirtualDisk& d = c.disk();
    uint64_t end = d.sectors() ? d.first_sector() + d.sectors() : ~0ull;
    if (d.sectors() && end < d.first_sector()) {
      error(w.field("disk"), "disk sectors overflow");
      return;
    }
    for (const auto& o : disks_) {
      if (o.backend != c.backend() || (o.read_only && d.read_only())) continue;
      if (d.first_sector() < o.end && o.first < end)
        error(w.field("disk"), "sectors " + std::to_string(d.first_sector()) + "-" +
                                   (d.sectors() ? std::to_string(end - 1) : std::string("end")) + " of \"" + c.backend() +
                                   "\" overlap the VBD at " + at_line(o.where) + ", and one of them is writable");
    }
    disks_.push_back({c.backend(), d.first_sector(), end, d.read_only(), w.self()});
    // A range past the end of the machine disk the back-end drives (when the
    // manifest describes it) is refused by the back-end at run time: said
    // here already, as a warning (the image may differ from the manifest).
    if (auto size = backend_disk_sectors(c.backend()); size && (d.first_sector() >= *size || (d.sectors() && end > *size)))
      error(w.field("disk"), "warning: sectors " + std::to_string(d.first_sector()) + "-" +
                                 (d.sectors() ? std::to_string(end - 1) : std::string("end")) + " do not fit the " +
                                 std::to_string(*size) + " sectors of the disk \"" + c.backend() +
                                 "\" drives: it will refuse this virtual disk");
  }

  // Driver domains (those with `pci`) on a machine without an IOMMU run, but
  // nothing confines their devices' DMA: said loudly, as a warning (a machine
  // without an IOMMU is a supported one), at the first of them.
  void check_dma_confinement() {
    if (sys_.machine().iommu()) return;
    std::string names;
    int count = 0;
    Pos first{};
    for (int i = 0; i < sys_.domains_size(); ++i) {
      const Domain& d = sys_.domains(i);
      if (d.pci_size() == 0) continue;
      if (count++ == 0) first = domain_where(i).field("pci", 0);
      names += (names.empty() ? "" : ", ") + (d.name().empty() ? "a domain" : d.name());
    }
    if (count == 0) return;
    error(first, "warning: " + names + (count == 1 ? " drives" : " drive") +
                     " PCI devices but the machine has no IOMMU (machine { iommu: true }): " +
                     (count == 1 ? "its" : "their") + " devices can DMA anywhere in memory");
  }

  // The sectors of the machine disk at the PCI function `backend` holds, if
  // the manifest describes one there.
  std::optional<uint64_t> backend_disk_sectors(const std::string& backend) const {
    auto b = find(backend);
    if (!b) return std::nullopt;
    for (const std::string& fn : sys_.domains(*b).pci()) {
      uint32_t bdf = 0, at = 0;
      if (!parse_pci(fn, &bdf)) continue;
      for (const Disk& disk : sys_.machine().disks())
        if (parse_pci(disk.pci(), &at) && at == bdf) return uint64_t(disk.size_mib() ? disk.size_mib() : 64) * 2048;
    }
    return std::nullopt;
  }

  static bool valid_mac(const std::string& m) {
    if (m.size() != 17) return false;
    for (size_t i = 0; i < 17; ++i)
      if (i % 3 == 2 ? m[i] != ':' : !std::isxdigit(static_cast<unsigned char>(m[i]))) return false;
    return !(std::stoi(m.substr(0, 2), nullptr, 16) & 1);
  }

  struct VirtualDiskUse {
    std::string backend;
    uint64_t first, end;
    bool read_only;
    Pos where;
  };

  const System& sys_;
  Where root_;
  std::vector<VirtualDiskUse> disks_;
  std::optional<VirtualDiskUse> create_disks_;   // the toolstack's may_create.disks
  std::map<std::string, Pos> macs_;
  std::filesystem::path base_;
  std::filesystem::path cache_;   // where bzImages are unpacked; empty: in memory only
  std::map<std::filesystem::path, std::string> bzimages_;   // checked once each: "" or why not
  std::vector<Diagnostic> out_;
  std::map<std::string, int> by_name_;
  uint64_t totals_[7] = {};   // grants, events, pci, ioports, irqs, mmio, command-line bytes so far
  std::map<int, uint64_t> memory_kib_;  // of domains whose memory parsed
  std::vector<Owned> pci_, irqs_, ioports_, mmio_;
  std::map<std::string, Pos> connections_, unique_per_frontend_;
};

}  // namespace

std::vector<Diagnostic> check(const Loaded& manifest, const std::filesystem::path& base_dir,
                              const std::filesystem::path& cache_dir) {
  std::vector<Diagnostic> problems = Checker(manifest, base_dir, cache_dir).run();
  if (problems.empty()) {
    // The builder's own decoder must accept what passed: it is stricter only
    // where it has to be (its tables are fixed), and any other disagreement
    // is a bug to see here rather than at boot.
    const std::string bytes = compile(manifest.system, base_dir);
    auto decoded = std::make_unique<::manifest::System>();
    char why[512];
    if (!::manifest::decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), *decoded, why, sizeof why))
      problems.push_back({Pos{}, std::string("the builder would refuse this manifest: ") + why});
  }
  return problems;
}

}  // namespace moat::manifest
