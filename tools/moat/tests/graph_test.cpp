// `moat graph` (tools/moat/graph.cpp): the DOT of a manifest, read back with a
// small DOT reader rather than compared as text, so that the tests say what
// the drawing holds (nodes, edges, their labels), not how it is spelt.
#include "graph.hpp"

#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

// ---- A reader for the DOT subset to_dot() writes -------------------------
//
// Statements `ID [a=v, ...];` and `ID -> ID [a=v, ...];` inside
// `digraph ID { ... }`, plus the `graph`/`node`/`edge` defaults and //
// comments. Quoted strings are read as Graphviz's lexer reads them: only \"
// is an escape there; other backslashes stay for the label's own escapes.
// Anything else fails the test: a string the manifest smuggled out of its
// quotes shows up as a statement of the wrong shape.

struct Dot {
  std::map<std::string, std::map<std::string, std::string>> nodes;
  struct Edge {
    std::string from, to;
    std::map<std::string, std::string> attrs;
  };
  std::vector<Edge> edges;
  std::map<std::string, std::string> graph;  // the graph's own attributes

  // Edges from -> to with this label.
  size_t count(const std::string& from, const std::string& to, const std::string& label) const {
    return size_t(std::count_if(edges.begin(), edges.end(), [&](const Edge& e) {
      return e.from == from && e.to == to && e.attrs.count("label") && e.attrs.at("label") == label;
    }));
  }
};

struct Lexer {
  std::string_view s;
  size_t i = 0;
  std::string error;

  void skip() {
    while (i < s.size()) {
      if (std::isspace(static_cast<unsigned char>(s[i]))) {
        ++i;
      } else if (s.substr(i, 2) == "//") {
        while (i < s.size() && s[i] != '\n') ++i;
      } else {
        break;
      }
    }
  }
  // The next token: a quoted string (unquoted, \" undone), a word, or one of
  // -> [ ] = , ; { }. Empty at the end.
  bool next(std::string* tok, bool* quoted) {
    skip();
    *quoted = false;
    tok->clear();
    if (i >= s.size()) return false;
    char c = s[i];
    if (c == '"') {
      *quoted = true;
      for (++i; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '"') {
          *tok += '"';
          ++i;
        } else if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
          *tok += "\\\\";  // kept for the label's escapes; never read as \"
          ++i;
        } else if (s[i] == '"') {
          ++i;
          return true;
        } else if (s[i] == '\n') {
          error = "newline inside a quoted string";
          return false;
        } else {
          *tok += s[i];
        }
      }
      error = "unterminated string";
      return false;
    }
    if (s.substr(i, 2) == "->") {
      *tok = "->";
      i += 2;
      return true;
    }
    if (std::string_view("[]=,;{}").find(c) != std::string_view::npos) {
      *tok = c;
      ++i;
      return true;
    }
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '.' ||
                            s[i] == '#' || s[i] == '-') && s.substr(i, 2) != "->")
      *tok += s[i++];
    if (tok->empty()) {
      error = std::string("unexpected character '") + c + "'";
      return false;
    }
    return true;
  }
};

// Parses `text`; on failure the test fails with where.
bool parse_dot(const std::string& text, Dot* dot) {
  Lexer lx{text, 0, {}};
  std::string tok;
  bool quoted = false;
  auto expect = [&](const char* want) {
    if (!lx.next(&tok, &quoted) || quoted || tok != want) {
      ADD_FAILURE() << "expected '" << want << "' at " << lx.i << ", got '" << tok << "' " << lx.error;
      return false;
    }
    return true;
  };
  if (!expect("digraph")) return false;
  if (!lx.next(&tok, &quoted)) return false;
  if (!expect("{")) return false;
  while (true) {
    if (!lx.next(&tok, &quoted)) {
      ADD_FAILURE() << "unexpected end " << lx.error;
      return false;
    }
    if (!quoted && tok == "}") break;
    std::string first = tok;
    bool first_quoted = quoted;
    std::string second;
    if (!lx.next(&tok, &quoted)) return false;
    bool is_edge = !quoted && tok == "->";
    if (is_edge) {
      if (!lx.next(&second, &quoted) || !quoted) {
        ADD_FAILURE() << "edge to what? at " << lx.i;
        return false;
      }
      if (!lx.next(&tok, &quoted)) return false;
    }
    if (quoted || tok != "[") {
      ADD_FAILURE() << "expected '[' at " << lx.i << " after " << first << ", got '" << tok << "'";
      return false;
    }
    std::map<std::string, std::string> attrs;
    while (true) {
      std::string key, value;
      if (!lx.next(&key, &quoted) || quoted) {
        ADD_FAILURE() << "attribute name at " << lx.i << ": '" << key << "'";
        return false;
      }
      if (!expect("=")) return false;
      if (!lx.next(&value, &quoted)) return false;
      if (!attrs.emplace(key, value).second) {
        ADD_FAILURE() << "attribute " << key << " twice at " << lx.i;
        return false;
      }
      if (!lx.next(&tok, &quoted) || quoted) return false;
      if (tok == "]") break;
      if (tok != ",") {
        ADD_FAILURE() << "expected ',' or ']' at " << lx.i << ", got '" << tok << "'";
        return false;
      }
    }
    if (!expect(";")) return false;
    if (is_edge) {
      dot->edges.push_back({first, second, attrs});
    } else if (!first_quoted && first == "graph") {
      dot->graph = attrs;
    } else if (!first_quoted && (first == "node" || first == "edge")) {
      // defaults
    } else {
      if (!first_quoted) {
        ADD_FAILURE() << "unquoted node ID " << first;
        return false;
      }
      if (!dot->nodes.emplace(first, attrs).second) {
        ADD_FAILURE() << "node " << first << " twice";
        return false;
      }
    }
  }
  lx.skip();
  if (lx.i != text.size()) {
    ADD_FAILURE() << "text after the graph at " << lx.i;
    return false;
  }
  return true;
}

// A label as Graphviz shows it: its lines, \\ shown as one backslash.
std::vector<std::string> label_lines(const std::string& label) {
  std::vector<std::string> lines{""};
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] == '\\' && i + 1 < label.size()) {
      char n = label[++i];
      if (n == 'n') lines.emplace_back();
      else if (n == '\\') lines.back() += '\\';
      else ADD_FAILURE() << "escape \\" << n << " in label " << label << ": Graphviz would substitute it";
    } else {
      lines.back() += label[i];
    }
  }
  return lines;
}

bool has_line(const std::string& label, const std::string& line) {
  auto lines = label_lines(label);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

moat::System parse_system(const std::string& text) {
  moat::System s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

constexpr const char* kSmall = R"(
machine { nics { pci: "00:04.0" udp_forward: "5555:10.0.2.16:7" } disks { pci: "00:05.0" image: "d.img" } }
domains { name: "builder" role: BUILDER memory: "16M" debug_console: true }
domains { name: "console" role: CONSOLE memory: "8M" ioports { first: 0x3f8 count: 8 } debug_console: true }
domains { name: "xenstore" role: XENSTORE memory: "16M" }
domains { name: "netback" role: NETBACK memory: "16M" pci: "00:04.0" irqs: [11] }
domains { name: "a" role: GUEST memory: "16M" cmdline: "x=1" }
domains { name: "b" role: GUEST memory: "16M" grants { peer: "a" rights: [MAP_RW, COPY] } events { peer: "a" }
          mmio { base: 0xfe000000 size: 0x1000 } cpu_cap: 50 }
domains { name: "ts" role: TOOLSTACK memory: "8M" ioports { first: 0x2f8 count: 8 } controls: ["b", "a"] }
connections { frontend: "a" backend: "console" kind: CONSOLE }
connections { frontend: "a" backend: "xenstore" kind: XENSTORE }
connections { frontend: "a" backend: "netback" kind: VIF }
connections { frontend: "a" backend: "b" kind: RING }
connections { frontend: "b" backend: "netback" kind: VIF mac: "00:16:3e:00:00:09" }
)";

TEST(GraphDot, SmallManifestHasItsNodesAndEdges) {
  std::string text = moat::graph::to_dot(parse_system(kSmall), "small.textproto");
  Dot dot;
  ASSERT_TRUE(parse_dot(text, &dot)) << text;

  std::set<std::string> names;
  for (const auto& [id, attrs] : dot.nodes) names.insert(id);
  EXPECT_EQ(names, (std::set<std::string>{"a", "b", "builder", "console", "netback", "pci 00:04.0", "pci 00:05.0",
                                          "ts", "xenstore"}));

  // Connections, front-end -> back-end, labelled with their kind.
  EXPECT_EQ(dot.count("a", "console", "console"), 1u);
  EXPECT_EQ(dot.count("a", "xenstore", "xenstore"), 1u);
  EXPECT_EQ(dot.count("a", "netback", "vif"), 1u);
  EXPECT_EQ(dot.count("b", "netback", "vif 00:16:3e:00:00:09"), 1u);
  EXPECT_EQ(dot.count("a", "b", "ring"), 1u);
  // Capabilities, holder -> peer.
  EXPECT_EQ(dot.count("b", "a", "grant map_rw+copy"), 1u);
  EXPECT_EQ(dot.count("b", "a", "event"), 1u);
  EXPECT_EQ(dot.count("ts", "a", "controls"), 1u);
  EXPECT_EQ(dot.count("ts", "b", "controls"), 1u);
  // The driver domain holds its PCI function; the machine's disk has no
  // driver domain here and says so.
  EXPECT_EQ(dot.count("netback", "pci 00:04.0", "pci"), 1u);
  EXPECT_EQ(dot.edges.size(), 10u) << "nothing drawn that the manifest does not say";
  EXPECT_TRUE(has_line(dot.nodes["pci 00:05.0"]["label"], "(no driver domain)"));
  EXPECT_FALSE(has_line(dot.nodes["pci 00:04.0"]["label"], "(no driver domain)"));
  EXPECT_TRUE(has_line(dot.nodes["pci 00:04.0"]["label"], "udp 5555:10.0.2.16:7"));

  // What a domain holds alone is in its box.
  const std::string& console = dot.nodes["console"]["label"];
  EXPECT_TRUE(has_line(console, "ioports 0x3f8-0x3ff")) << console;
  EXPECT_TRUE(has_line(console, "debug console")) << console;
  EXPECT_TRUE(has_line(dot.nodes["netback"]["label"], "irqs 11"));
  EXPECT_TRUE(has_line(dot.nodes["b"]["label"], "mmio 0xfe000000+0x1000"));
  EXPECT_TRUE(has_line(dot.nodes["b"]["label"], "cap 50%"));
  EXPECT_TRUE(has_line(dot.nodes["a"]["label"], "cmdline: x=1"));
  EXPECT_TRUE(has_line(dot.nodes["ts"]["label"], "TOOLSTACK, 8M, 1 vCPU"));
  EXPECT_FALSE(has_line(dot.nodes["a"]["label"], "debug console"));

  // Roles look different: each its own fill, driver domains 3-D, the
  // builder and the toolstack with a double border.
  std::set<std::string> fills;
  for (const char* n : {"builder", "console", "xenstore", "netback", "a", "ts"})
    fills.insert(dot.nodes[n]["fillcolor"]);
  EXPECT_EQ(fills.size(), 6u);
  EXPECT_EQ(dot.nodes["a"]["fillcolor"], dot.nodes["b"]["fillcolor"]);
  EXPECT_EQ(dot.nodes["netback"]["shape"], "box3d");
  EXPECT_EQ(dot.nodes["ts"]["peripheries"], "2");
  EXPECT_EQ(dot.nodes["builder"]["peripheries"], "2");
  EXPECT_EQ(dot.nodes["a"].count("peripheries"), 0u);
  EXPECT_EQ(dot.nodes["pci 00:04.0"]["shape"], "component");
}

TEST(GraphDot, SameSystemInAnotherOrderGivesTheSameText) {
  moat::System s = parse_system(kSmall);
  std::string first = moat::graph::to_dot(s, "small");
  moat::System shuffled = s;
  std::reverse(shuffled.mutable_domains()->begin(), shuffled.mutable_domains()->end());
  std::reverse(shuffled.mutable_connections()->begin(), shuffled.mutable_connections()->end());
  shuffled.mutable_domains(0)->mutable_controls()->SwapElements(0, 1);
  EXPECT_EQ(moat::graph::to_dot(shuffled, "small"), first);
  EXPECT_EQ(moat::graph::to_dot(s, "small"), first);
}

TEST(GraphDot, EscapeLeavesNothingDotReads) {
  using moat::graph::escape;
  EXPECT_EQ(escape("plain-name_1.0"), "plain-name_1.0");
  EXPECT_EQ(escape("a\"b"), "a\\\"b");
  EXPECT_EQ(escape("a\\nb"), "a\\\\nb") << "a backslash in the manifest is not a DOT line break";
  EXPECT_EQ(escape("a\nb"), "a\\\\x0ab");
  EXPECT_EQ(escape(std::string("\0\x7f\xc3\xa9", 4)), "\\\\x00\\\\x7f\\\\xc3\\\\xa9");
  EXPECT_EQ(moat::graph::quote("x\"y"), "\"x\\\"y\"");
}

// Whatever a manifest's strings hold, they stay inside their quotes: every
// node and edge read back is one the manifest has, and a label shows the
// text as it was written (control bytes as \xHH).
TEST(GraphDot, HostileStringsStayInTheirQuotes) {
  moat::System s;
  auto* evil = s.add_domains();
  evil->set_name("x\" ]; \"evil\" -> \"a\" [label=\"");
  evil->set_role(moat::Domain::GUEST);
  evil->set_cmdline("a\"b\\c\\N\\G\nd}{;//");
  evil->set_image("img\"\\l");
  auto* a = s.add_domains();
  a->set_name("a");
  a->set_role(moat::Domain::GUEST);
  auto* g = a->add_grants();
  g->set_peer(evil->name());
  g->add_rights(moat::Grant::MAP_RO);
  auto* c = s.add_connections();
  c->set_frontend(evil->name());
  c->set_backend("a");
  c->set_kind(moat::Connection::RING);
  s.mutable_machine()->add_disks()->set_pci("00:05.0");
  s.mutable_machine()->mutable_disks(0)->set_image("d\"}.img");

  std::string text = moat::graph::to_dot(s, "t\"}");
  Dot dot;
  ASSERT_TRUE(parse_dot(text, &dot)) << text;
  EXPECT_EQ(dot.nodes.size(), 3u) << text;
  ASSERT_EQ(dot.nodes.count(evil->name()), 1u) << text;
  EXPECT_EQ(dot.nodes.count("evil"), 0u);
  EXPECT_EQ(dot.edges.size(), 2u) << text;
  EXPECT_EQ(dot.count(evil->name(), "a", "ring"), 1u);
  EXPECT_EQ(dot.count("a", evil->name(), "grant map_ro"), 1u);
  auto lines = label_lines(dot.nodes[evil->name()]["label"]);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], evil->name());
  EXPECT_EQ(lines.back(), "cmdline: a\"b\\c\\N\\G\\x0ad}{;//");
  EXPECT_TRUE(has_line(dot.nodes["pci 00:05.0"]["label"], "image d\"}.img"));
  EXPECT_EQ(label_lines(dot.graph["label"]), std::vector<std::string>{"t\"}: who may talk to whom"});
}

// ---- The command, in process and as the moat binary ----------------------

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "moat-graph-test-XXXXXX").string();
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    path = ::mkdtemp(name.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What main.cpp passes: load, check, print the problems.
bool load_and_check(const std::string& file, moat::manifest::Loaded* m) {
  std::vector<moat::manifest::Diagnostic> found;
  if (moat::manifest::load(file, m, &found)) {
    auto problems = moat::manifest::check(*m, fs::path(file).parent_path());
    found.insert(found.end(), problems.begin(), problems.end());
  }
  bool ok = true;
  for (const auto& d : found) {
    ok &= d.message.rfind("warning: ", 0) == 0;
    std::fprintf(stderr, "%s\n", moat::manifest::format(file, d).c_str());
  }
  return ok;
}

int run_command(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return moat::graph::command(int(argv.size()), argv.data(), load_and_check);
}

// A valid two-domain manifest in `dir` (its images empty files: the check
// wants them to exist, nothing reads them here).
fs::path tiny_manifest(const fs::path& dir) {
  write(dir / "b.elf", "");
  write(dir / "g.elf", "");
  fs::path file = dir / "tiny.textproto";
  write(file, R"(domains { name: "builder" role: BUILDER image: "b.elf" memory: "16M" }
domains { name: "g" role: GUEST image: "g.elf" memory: "16M" }
)");
  return file;
}

struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(const char* n, const char* value) : name(n) {
    if (const char* v = std::getenv(n)) old = v;
    ::setenv(n, value, 1);
  }
  ~ScopedEnv() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

TEST(GraphCommand, ChecksFirstAndWritesNothingForABadManifest) {
  TempDir tmp;
  fs::path file = tmp.path / "bad.textproto";
  write(file, "domains { name: \"g\" role: GUEST memory: \"16M\" }\n");  // no builder, no image
  fs::path out = tmp.path / "bad.dot";
  testing::internal::CaptureStderr();
  int rc = run_command({file.string(), "-o", out.string()});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(err.find(file.string() + ":1:"), std::string::npos) << "problems as moat check prints them: " << err;
}

TEST(GraphCommand, WritesDotWithoutGraphviz) {
  TempDir tmp;
  fs::path file = tiny_manifest(tmp.path);
  ScopedEnv no_dot("MOAT_DOT", "/nonexistent/dot");
  ASSERT_EQ(run_command({file.string(), "-o", (tmp.path / "t.dot").string()}), 0);
  Dot dot;
  ASSERT_TRUE(parse_dot(read(tmp.path / "t.dot"), &dot));
  EXPECT_EQ(dot.nodes.size(), 2u);
  EXPECT_TRUE(dot.edges.empty());
}

TEST(GraphCommand, SaysClearlyWhenDotIsMissing) {
  TempDir tmp;
  fs::path file = tiny_manifest(tmp.path);
  ScopedEnv no_dot("MOAT_DOT", "/nonexistent/dot");
  testing::internal::CaptureStderr();
  int rc = run_command({file.string(), "-o", (tmp.path / "t.svg").string()});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("moat graph: Graphviz's dot not found (apt-get install graphviz); use -o FILE.dot"),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(tmp.path / "t.svg"));
}

TEST(GraphCommand, UsageErrors) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_command({}), 2);
  EXPECT_EQ(run_command({"x.textproto"}), 2) << "-o is required";
  EXPECT_EQ(run_command({"x.textproto", "-o", "x.jpeg"}), 2) << "an extension it cannot write";
  EXPECT_EQ(run_command({"x.textproto", "-o"}), 2);
  EXPECT_EQ(run_command({"x.textproto", "--bogus", "-o", "x.dot"}), 2);
  testing::internal::GetCapturedStderr();
}

TEST(GraphCommand, AFailingDotLeavesNoFile) {
  TempDir tmp;
  fs::path file = tiny_manifest(tmp.path);
  // A "dot" that writes half a file and fails.
  fs::path fake = tmp.path / "fake-dot";
  write(fake, "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && echo half > \"$2\"; shift; done\nexit 3\n");
  fs::permissions(fake, fs::perms::owner_all);
  ScopedEnv fake_dot("MOAT_DOT", fake.c_str());
  testing::internal::CaptureStderr();
  int rc = run_command({file.string(), "-o", (tmp.path / "t.svg").string()});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("exited with 3"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp.path / "t.svg"));
}

// End to end: the moat binary draws the demo system as an SVG. The demo's
// images are built files (../out/domains/...); the test copies the manifest
// into a directory where each is an empty file, so it does not depend on
// which build directory has them.
TEST(GraphEndToEnd, DemoBecomesAnSvg) {
  if (!moat::graph::find_dot()) GTEST_SKIP() << "Graphviz's dot is not installed (build/deps.sh installs it)";
  TempDir tmp;
  fs::path demo = fs::path(MOAT_SOURCE_DIR) / "examples" / "demo.textproto";
  fs::path file = tmp.path / "examples" / "demo.textproto";
  write(file, read(demo));
  moat::manifest::Loaded m;
  std::vector<moat::manifest::Diagnostic> errors;
  ASSERT_TRUE(moat::manifest::load(file, &m, &errors));
  for (const auto& d : m.system.domains()) write(file.parent_path() / d.image(), "");

  fs::path svg = tmp.path / "demo.svg";
  std::string cmd = std::string(MOAT_BINARY) + " graph " + file.string() + " -o " + svg.string() + " 2>" +
                    (tmp.path / "err").string();
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << read(tmp.path / "err");
  std::string out = read(svg);
  EXPECT_NE(out.find("<svg"), std::string::npos);
  // dot writes each node's and edge's ID as its <title>.
  for (const auto& d : m.system.domains())
    EXPECT_NE(out.find("<title>" + d.name() + "</title>"), std::string::npos) << d.name();
  EXPECT_NE(out.find("<title>ping&#45;&gt;netback</title>"), std::string::npos);
  EXPECT_NE(out.find("<title>pong&#45;&gt;ping</title>"), std::string::npos) << "pong's grant on ping";
  EXPECT_NE(out.find("<title>netback&#45;&gt;pci 00:04.0</title>"), std::string::npos);

  // And the DOT on stdout is the same graph moat graph -o .dot writes.
  fs::path dot_file = tmp.path / "demo.dot";
  cmd = std::string(MOAT_BINARY) + " graph " + file.string() + " -o " + dot_file.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  cmd = std::string(MOAT_BINARY) + " graph " + file.string() + " -o - >" + (tmp.path / "stdout.dot").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(read(dot_file), read(tmp.path / "stdout.dot"));
  Dot dot;
  EXPECT_TRUE(parse_dot(read(dot_file), &dot));
  EXPECT_EQ(dot.count("ping", "blkback", "vbd 0+2048 rw"), 1u);
}

}  // namespace
