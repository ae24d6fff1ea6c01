#include "graph.hpp"
#include "cli_args.hpp"

#include "process.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <set>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <google/protobuf/descriptor.h>  // enum value names

namespace moat::graph {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// How long `dot` may take: a manifest's graph is tens of nodes, drawn in well
// under a second; this only keeps a wedged dot from hanging `moat graph`.
constexpr double kDotTimeoutS = 60;   // unless --timeout says otherwise

// How a role looks. Every domain is a box; the fill tells the role, a double
// border the two domains that hold other domains' lives (builder, toolstack),
// a 3-D box the driver domains that hold hardware.
struct RoleStyle {
  const char* name;
  const char* shape;
  const char* style;
  const char* fill;
  int peripheries;
};

RoleStyle role_style(int role) {
  switch (role) {
    case Domain::BUILDER: return {"BUILDER", "box", "filled,bold", "#f4cccc", 2};
    case Domain::XENSTORE: return {"XENSTORE", "box", "filled", "#d9d2e9", 1};
    case Domain::CONSOLE: return {"CONSOLE", "box", "filled", "#fff2cc", 1};
    case Domain::NETBACK: return {"NETBACK (driver)", "box3d", "filled", "#cfe2f3", 1};
    case Domain::BLKBACK: return {"BLKBACK (driver)", "box3d", "filled", "#cfe2f3", 1};
    case Domain::GUEST: return {"GUEST", "box", "filled,rounded", "#d9ead3", 1};
    case Domain::TOOLSTACK: return {"TOOLSTACK", "box", "filled,rounded,bold", "#fce5cd", 2};
    default: return {nullptr, "box", "filled,dashed", "#ffffff", 1};
  }
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// An enum value's name in lower case, or its number if this build's proto
// does not know it.
std::string enum_name(const google::protobuf::EnumDescriptor* e, int value) {
  const auto* v = e->FindValueByNumber(value);
  return v ? lower(v->name()) : std::to_string(value);
}

// The node ID of a PCI function: "pci BB:DD.F", normalised so that the
// machine's device and the domain's claim meet whatever case they are
// written in. A space never occurs in a domain's name, so the two kinds of
// node cannot collide.
std::string pci_key(const std::string& text) {
  uint32_t bdf = 0;
  if (!moat::manifest::parse_pci(text, &bdf)) return "pci " + text;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x:%02x.%x", bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7);
  return std::string("pci ") + buf;
}

// A multi-line label: every line escaped, joined by DOT's centred line break.
std::string label(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\\n";
    out += escape(lines[i]);
  }
  return out + "\"";
}

// At most `max` bytes of `text`, "..." marking a cut.
std::string clip(const std::string& text, size_t max) {
  return text.size() <= max ? text : text.substr(0, max - 3) + "...";
}

struct Edge {
  std::string from, to;  // node IDs, unquoted
  std::string label;
  std::string attrs;     // DOT attributes after the label, already quoted
  std::string tooltip;   // what the edge stands for, in full
  auto key() const { return std::tie(from, to, label, attrs, tooltip); }
};

std::string rights_text(const Grant& g, const char* sep) {
  std::string out;
  for (int r : g.rights()) {
    if (!out.empty()) out += sep;
    out += enum_name(Grant::Right_descriptor(), r);
  }
  return out;
}

// What a connection implies (proto/manifest.proto, Connection).
std::string implied(const Connection& c) {
  const std::string& f = c.frontend();
  const std::string& b = c.backend();
  bool data = c.kind() == Connection::VIF || c.kind() == Connection::VBD;
  return f + " grants a ring, " + b + " maps it: " + b + " holds Grant(" + f + ", map_rw" + (data ? ", copy" : "") +
         ") and Event(" + f + "), " + f + " holds Event(" + b + ")";
}

std::string connection_label(const Connection& c) {
  std::string kind = enum_name(Connection::Kind_descriptor(), c.kind());
  if (c.kind() == Connection::VIF && !c.mac().empty()) return kind + " " + c.mac();
  if (c.kind() == Connection::VBD && c.has_disk()) {
    const auto& disk = c.disk();
    std::string range = std::to_string(disk.first_sector()) + "+" +
                        (disk.sectors() ? std::to_string(disk.sectors()) : std::string("rest"));
    return kind + " " + range + (disk.read_only() ? " ro" : " rw");
  }
  return kind;
}

void domain_node(std::string* out, const Domain& d) {
  RoleStyle s = role_style(d.role());
  std::vector<std::string> lines{d.name()};
  std::string head = s.name ? s.name : "role " + std::to_string(d.role());  // as the manifest spells it
  if (!d.memory().empty()) head += ", " + d.memory();
  uint32_t vcpus = d.vcpus() ? d.vcpus() : 1;
  head += ", " + std::to_string(vcpus) + (vcpus == 1 ? " vCPU" : " vCPUs");
  lines.push_back(head);
  std::string sched;
  if (d.weight()) sched = "weight " + std::to_string(d.weight());
  if (d.cpu_cap()) sched += (sched.empty() ? "" : ", ") + std::string("cap ") + std::to_string(d.cpu_cap()) + "%";
  if (!sched.empty()) lines.push_back(sched);
  if (d.has_restart() && d.restart().policy() != Restart::NEVER) {
    std::string r = "restart " + enum_name(Restart::Policy_descriptor(), d.restart().policy());
    if (d.restart().max_restarts()) r += ", at most " + std::to_string(d.restart().max_restarts());
    lines.push_back(r);
  }
  for (const auto& io : d.ioports())
    lines.push_back("ioports " + hex(io.first()) + "-" + hex(uint64_t{io.first()} + io.count() - 1));
  if (!d.irqs().empty()) {
    std::string irqs = "irqs";
    for (uint32_t irq : d.irqs()) irqs += " " + std::to_string(irq);
    lines.push_back(irqs);
  }
  for (const auto& m : d.mmio()) lines.push_back("mmio " + hex(m.base()) + "+" + hex(m.size()));
  if (d.debug_console()) lines.push_back("debug console");
  if (!d.cmdline().empty()) lines.push_back("cmdline: " + clip(d.cmdline(), 40));

  *out += "  " + quote(d.name()) + " [label=" + label(lines) + ", shape=" + s.shape + ", style=\"" + s.style +
          "\", fillcolor=\"" + s.fill + "\"";
  if (s.peripheries > 1) *out += ", peripheries=" + std::to_string(s.peripheries);
  std::string tip = d.name() + ": image " + d.image();
  if (!d.ramdisk().empty()) tip += ", ramdisk " + d.ramdisk();
  if (!d.cmdline().empty()) tip += ", cmdline " + d.cmdline();
  *out += ", tooltip=" + quote(tip) + "];\n";
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      // "\\x1b" in DOT: a backslash Graphviz shows as one, then x1b.
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string quote(std::string_view text) { return "\"" + escape(text) + "\""; }

std::string to_dot(const System& system, std::string_view title) {
  std::string out;
  out += "// moat graph: who may talk to whom. Boxes are domains (fill: role), 3-D boxes driver\n"
         "// domains, components PCI functions. Solid edges: connections, front-end -> back-end;\n"
         "// dashed: grant and event capabilities, holder -> peer; red: control, toolstack -> domain.\n";
  out += "digraph moat {\n";
  out += "  graph [label=" + quote(std::string(title) + ": who may talk to whom") +
         ", labelloc=t, rankdir=BT, fontname=\"Helvetica\", nodesep=0.4, ranksep=0.7];\n";
  out += "  node [fontname=\"Helvetica\", fontsize=10];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";

  // Domains, sorted by name.
  std::vector<const Domain*> domains;
  for (const auto& d : system.domains()) domains.push_back(&d);
  std::stable_sort(domains.begin(), domains.end(),
                   [](const Domain* a, const Domain* b) { return a->name() < b->name(); });
  out += "\n  // Domains\n";
  for (const Domain* d : domains) domain_node(&out, *d);

  // PCI functions: the machine's devices and those domains claim.
  struct Device {
    std::vector<std::string> lines;
    bool claimed = false;
  };
  std::map<std::string, Device> devices;
  for (const auto& nic : system.machine().nics()) {
    auto& dev = devices[pci_key(nic.pci())];
    dev.lines = {"PCI " + nic.pci(), "virtio-net"};
    for (const auto& fwd : nic.udp_forward()) dev.lines.push_back("udp " + fwd);
  }
  for (const auto& disk : system.machine().disks()) {
    auto& dev = devices[pci_key(disk.pci())];
    dev.lines = {"PCI " + disk.pci(), "virtio-blk", "image " + clip(disk.image(), 40)};
  }
  std::vector<Edge> edges;
  for (const Domain* d : domains) {
    for (const auto& pci : d->pci()) {
      auto& dev = devices[pci_key(pci)];
      if (dev.lines.empty()) dev.lines = {"PCI " + pci};
      dev.claimed = true;
      edges.push_back({d->name(), pci_key(pci), "pci", "color=\"#666666\", arrowhead=none",
                       d->name() + " drives PCI function " + pci + " (its BARs and interrupt line)"});
    }
  }
  if (!devices.empty()) out += "\n  // PCI functions\n";
  for (const auto& [key, dev] : devices) {
    auto lines = dev.lines;
    if (!dev.claimed) lines.push_back("(no driver domain)");
    out += "  " + quote(key) + " [label=" + label(lines) + ", shape=component, style=\"" +
           (dev.claimed ? "filled" : "filled,dashed") + "\", fillcolor=\"#eeeeee\"];\n";
  }

  // Connections, front-end -> back-end: the service rings (console,
  // XenStore) grey, the data paths black.
  for (const auto& c : system.connections()) {
    bool service = c.kind() == Connection::CONSOLE || c.kind() == Connection::XENSTORE;
    edges.push_back({c.frontend(), c.backend(), connection_label(c),
                     service ? "color=\"#999999\", fontcolor=\"#777777\"" : "color=\"black\", penwidth=1.6",
                     implied(c)});
  }
  // Capabilities written out, holder -> peer. They do not place the nodes
  // (constraint=false): the connections give the picture its layers.
  for (const Domain* d : domains) {
    for (const auto& g : d->grants())
      edges.push_back({d->name(), g.peer(), "grant " + rights_text(g, "+"),
                       "style=dashed, color=\"#1f5fbf\", fontcolor=\"#1f5fbf\", constraint=false",
                       d->name() + " may use the grant references " + g.peer() + " grants it: " +
                           rights_text(g, ", ")});
    for (const auto& e : d->events())
      edges.push_back({d->name(), e.peer(), "event",
                       "style=dashed, color=\"#38761d\", fontcolor=\"#38761d\", constraint=false",
                       d->name() + " may bind interdomain event channels to " + e.peer()});
    for (const auto& peer : d->controls())
      edges.push_back({d->name(), peer, "controls",
                       "color=\"#cc0000\", fontcolor=\"#cc0000\", penwidth=1.6, constraint=false",
                       d->name() + " holds a Domain capability (control) on " + peer +
                           ": pause, unpause, and shutdown through its XenStore control/shutdown"});
  }
  std::stable_sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) { return a.key() < b.key(); });
  out += "\n  // Connections and capabilities\n";
  for (const Edge& e : edges)
    out += "  " + quote(e.from) + " -> " + quote(e.to) + " [label=" + quote(e.label) + ", " + e.attrs +
           ", tooltip=" + quote(e.tooltip) + "];\n";
  out += "}\n";
  return out;
}

std::optional<std::filesystem::path> find_dot() {
  std::string name = "dot";
  if (const char* env = std::getenv("MOAT_DOT"); env && *env) name = env;
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? std::optional<std::filesystem::path>(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : std::string(dir)) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

bool render(const std::string& dot_text, std::string_view format, const std::filesystem::path& out,
            double timeout_s, std::string* why) {
  auto dot = find_dot();
  if (!dot) {
    *why = "Graphviz's dot not found (apt-get install graphviz); use -o FILE.dot";
    return false;
  }
  // dot reads the graph from a file rather than a pipe: it may stop reading
  // early on an error, and a pipe would then cost us a SIGPIPE.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/moat-graph-XXXXXX.dot";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemps(name.data(), 4);
  if (fd < 0) {
    *why = "cannot create a temporary file in " + tmpl + ": " + std::strerror(errno);
    return false;
  }
  ::close(fd);
  std::string input = name.data();
  {
    std::ofstream f(input, std::ios::binary | std::ios::trunc);
    if (!f.write(dot_text.data(), std::streamsize(dot_text.size())) || !f.flush()) {
      *why = "cannot write " + input + ": " + std::strerror(errno);
      ::unlink(input.c_str());
      return false;
    }
  }
  std::vector<std::string> argv{dot->string(), "-T" + std::string(format), "-o", out.string(), input};
  moat::proc::SpawnOptions options;
  options.die_with_parent = true;
  std::string error;
  pid_t pid = moat::proc::spawn(argv, options, &error);
  if (pid < 0) {
    ::unlink(input.c_str());
    *why = "cannot start " + dot->string() + ": " + error;
    return false;
  }
  auto deadline = moat::proc::Clock::now() + std::chrono::duration_cast<moat::proc::Clock::duration>(
                                                 std::chrono::duration<double>(timeout_s));
  auto status = moat::proc::wait_until(pid, deadline);
  ::unlink(input.c_str());
  if (!status) {
    moat::proc::kill_and_reap(pid, false);
    ::unlink(out.c_str());
    *why = dot->string() + " took more than " + std::to_string(int(timeout_s)) + " s: killed";
    return false;
  }
  if (!status->exited || status->code != 0) {
    ::unlink(out.c_str());
    *why = dot->string() + (status->exited ? " exited with " + std::to_string(status->code)
                                           : " was killed by signal " + std::to_string(status->signal));
    return false;
  }
  return true;
}

void print_help(FILE* out) {
  std::fputs(
      "usage: moat graph FILE -o OUT [--timeout SECONDS]\n"
      "       moat graph [--system NAME] -o OUT [--timeout SECONDS]\n"
      "\n"
      "Checks the system manifest FILE as 'moat check' does and draws who may talk\n"
      "to whom: domains as boxes (fill and border by role: builder, xenstore,\n"
      "console, driver domains with the PCI functions they hold, guests,\n"
      "toolstack), connections as edges from front-end to back-end labelled with\n"
      "their kind, the grant, event and control capabilities the manifest gives as\n"
      "edges from holder to peer, and what a domain holds alone (I/O ports, IRQs,\n"
      "MMIO, the debug console) in its box (docs/capabilities.md, \"Seeing the\n"
      "policy\"). The same manifest always gives the same drawing.\n"
      "\n"
      "OUT's extension says what is written: .dot or .gv the Graphviz DOT text,\n"
      ".svg, .png or .pdf a drawing made by Graphviz's dot ($MOAT_DOT if set);\n"
      "'-' the DOT text on standard output. --timeout: how long dot may take\n"
      "(default 60 s), as the commands that talk to a running system take it.\n"
      "\n"
      "Without FILE it draws the manifest a running system was started from\n"
      "(out/run/NAME/manifest): NAME's, or with no --system the only system\n"
      "running, as 'moat list' chooses.\n"
      "\n"
      "exit status: 0 written; 1 the manifest has problems (printed as moat check\n"
      "does, nothing written), no such system is running, dot is missing or\n"
      "fails, or OUT cannot be written; 2 usage error.\n",
      out);
}

int command(int argc, char** argv, const LoadAndCheck& load_and_check, const RunningManifest& running) {
  auto usage_error = [](const std::string& message) {
    std::fprintf(stderr, "moat graph: %s\nRun 'moat graph --help' for usage.\n", message.c_str());
    return kExitUsage;
  };
  const char* file = nullptr;
  const char* out = nullptr;
  const char* system = nullptr;
  double timeout_s = kDotTimeoutS;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_help(stdout);
      return kExitOk;
    } else if (arg == "-o") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("-o needs a file (or - for stdout)");
      out = argv[++i];
    } else if (arg == "--system") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("--system needs a system's name");
      system = argv[++i];
    } else if (arg == "--timeout") {
      if (i + 1 >= argc || !moat::cli::parse_timeout(argv[i + 1], &timeout_s))
        return usage_error("--timeout needs a positive number of seconds");
      ++i;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage_error("unknown option '" + std::string(arg) + "'");
    } else {
      if (file) return usage_error("one manifest at a time");
      file = argv[i];
    }
  }
  if (file && system) return usage_error("a manifest or a running system (--system), not both");
  if (!file && !running) return usage_error("which manifest? (moat graph FILE -o OUT)");
  if (!out) return usage_error("-o OUT is required (system.svg, system.dot, or - for the DOT on stdout)");

  // The format before the manifest: a typo in OUT is a usage error whatever
  // the manifest holds.
  std::string_view o = out;
  std::string format;
  if (o != "-") {
    std::string ext = lower(std::filesystem::path(out).extension().string());
    if (ext == ".dot" || ext == ".gv") {
      format = "dot";
    } else if (ext == ".svg" || ext == ".png" || ext == ".pdf") {
      format = ext.substr(1);
    } else {
      return usage_error("cannot tell what to write from '" + std::string(out) +
                         "': name it .svg, .png, .pdf, .dot or .gv");
    }
  }

  // A running system's manifest is read as it is now: the file the run
  // directory names, checked again like any other.
  std::string path = file ? file : "";
  if (!file) {
    std::string why;
    if (!running(system ? system : "", &path, &why)) {
      std::fprintf(stderr, "moat graph: %s\n", why.c_str());
      return kExitFailed;
    }
  }
  moat::manifest::Loaded m;
  if (!load_and_check(path, &m)) return kExitFailed;
  std::string title = std::filesystem::path(path).filename().string();
  std::string dot_text = to_dot(m.system, title);

  if (o == "-") {
    if (std::fwrite(dot_text.data(), 1, dot_text.size(), stdout) != dot_text.size() || std::fflush(stdout) != 0) {
      std::fprintf(stderr, "moat graph: cannot write to stdout: %s\n", std::strerror(errno));
      return kExitFailed;
    }
    return kExitOk;
  }
  if (format == "dot") {
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    if (!f.write(dot_text.data(), std::streamsize(dot_text.size())) || !f.flush()) {
      std::fprintf(stderr, "moat graph: cannot write %s: %s\n", out, std::strerror(errno));
      return kExitFailed;
    }
    return kExitOk;
  }
  std::string why;
  if (!render(dot_text, format, out, timeout_s, &why)) {
    std::fprintf(stderr, "moat graph: %s\n", why.c_str());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace moat::graph
