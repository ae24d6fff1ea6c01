// Reading a Moat serial console: splitting the byte stream into lines,
// classifying them and deciding whether a system test passed.
//
// Console lines: kernel lines "moat: ...", a panic report whose first line
// contains "PANIC", domain lines "NAME: TEXT" (NAME the domain's name, 1..32
// of [A-Za-z0-9_.-], see libs/abi/include/abi/console.hpp; "dN" for a domain
// without one) where TEXT may be "PASS <name>", "FAIL <name>: <why>" or
// "BENCH <metric> <number>".
#pragma once

#include "json.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moat::systest {

// Splits a byte stream into lines: '\n' ends a line, '\r' is dropped, other
// control bytes and NUL become "\xNN", bytes >= 0x80 are kept (UTF-8). A line
// longer than kMaxLine is cut into pieces so junk cannot grow without bound.
class LineSplitter {
 public:
  static constexpr size_t kMaxLine = 16 * 1024;
  // Appends every line completed by `bytes` to *lines.
  void feed(std::string_view bytes, std::vector<std::string>* lines);
  // The unterminated rest, if any (call at end of stream).
  std::optional<std::string> finish();

 private:
  std::string pending_;
  bool have_pending_ = false;
};

struct ConsoleLine {
  enum class Source { Kernel, Domain, Other };
  Source source = Source::Other;
  std::string_view name;  // NAME of "NAME: " (Domain lines)
  int domain = -1;        // N of "dN: ", -1 for other names
  std::string_view text;  // after "moat: " / "NAME: "; the whole line for Other
};
inline constexpr size_t kMaxName = 32;   // abi::kConsoleNameMax
ConsoleLine classify(std::string_view line);

// Domain-line text predicates.
bool is_fail(std::string_view text);                              // starts with "FAIL"
std::optional<std::string_view> pass_name(std::string_view text); // "PASS name[ ...]" -> name
bool matches_pass(std::string_view text, std::string_view name);  // "PASS name" then end or ' '
struct Bench {
  std::string metric;
  std::string number;  // JSON number text
};
// "BENCH metric number [anything]": nullopt if the text is not a BENCH line;
// a Bench with empty number if it is one but malformed.
std::optional<Bench> parse_bench(std::string_view text);

enum class ExpectExit { Clean, Panic };

struct Expectations {
  ExpectExit exit = ExpectExit::Clean;
  std::vector<std::string> passes;      // --expect-pass
  std::vector<std::string> lines;       // --expect-line (substrings)
  std::vector<std::string> forbidden;   // --forbid-line (substrings)
  // --expect-between START END INSIDE: some line containing INSIDE comes
  // after the first line containing START and before the next containing END.
  struct Between {
    std::string start, end, inside;
  };
  std::vector<Between> between;
  // --expect-shares GROUP:PCT: the domains' "SHARE GROUP <weight> <amount>"
  // lines (at least two) have amounts proportional to their weights, each
  // share within PCT percent (relative) of weight / total weight.
  struct Shares {
    std::string group;
    double tolerance_pct;
  };
  std::vector<Shares> shares;
  int min_pass = 0;
  bool want_bench = false;              // --bench-json given: at least one BENCH line
  // --max-hypercall-us N: the kernel's closing line "longest hypercall
  // invocation: X us ..." must be there and say X <= N (0: not checked).
  long max_hypercall_us = 0;
};

struct RunEnd {
  bool started = true;      // QEMU could be started
  std::string start_error;
  bool timed_out = false;
  double timeout_s = 0;
  bool exited = false;      // QEMU exited (else killed by a signal)
  int code = 0;
  int signal = 0;
};

struct Verdict {
  bool ok = false;
  std::vector<std::string> reasons;  // every failure, in order found
  int pass_lines = 0;
  json::Flat bench;                  // metric -> number
};

// Feed every console line in order, then decide.
class Checker {
 public:
  explicit Checker(Expectations e);
  void line(std::string_view line);
  Verdict finish(const RunEnd& end) const;

 private:
  Expectations e_;
  size_t line_no_ = 0;
  int pass_lines_ = 0;
  std::vector<std::string> problems_;        // found while reading
  std::vector<bool> seen_pass_, seen_line_;
  std::vector<size_t> forbidden_at_;         // line number (1-based) or 0
  std::vector<std::string> forbidden_text_;
  enum class Window : uint8_t { before, open, satisfied, closed };
  std::vector<Window> between_;
  struct ShareLine {
    std::string group;
    double weight, amount;
  };
  std::vector<ShareLine> share_lines_;
  json::Flat bench_;
  long longest_hypercall_us_ = -1;   // from the kernel's closing line, -1 until seen
  std::string longest_hypercall_line_;
};

// The verdict as text: first line "moat-systest: PASS ..." or "moat-systest: FAIL ...",
// then one "  - reason" line each.
std::string format_verdict(const Verdict& v, const std::string& name);

}  // namespace moat::systest
