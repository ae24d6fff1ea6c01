#include "console.hpp"

#include <abi/console.hpp>

#include <cstdio>

namespace moat::systest {

void LineSplitter::feed(std::string_view bytes, std::vector<std::string>* lines) {
  for (char c : bytes) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') {
      lines->push_back(std::move(pending_));
      pending_.clear();
      have_pending_ = false;
      continue;
    }
    if (c == '\r') continue;
    have_pending_ = true;
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      pending_ += buf;
    } else {
      pending_ += c;
    }
    if (pending_.size() >= kMaxLine) {
      lines->push_back(std::move(pending_));
      pending_.clear();
      have_pending_ = false;
    }
  }
}

std::optional<std::string> LineSplitter::finish() {
  if (!have_pending_) return std::nullopt;
  have_pending_ = false;
  std::string rest = std::move(pending_);
  pending_.clear();
  return rest;
}

ConsoleLine classify(std::string_view line) {
  ConsoleLine out;
  out.text = line;
  if (line.starts_with("moat: ")) {
    out.source = ConsoleLine::Source::Kernel;
    out.text = line.substr(6);
    return out;
  }
  // NAME: 1..32 of [A-Za-z0-9_.-], then ": ".
  size_t i = 0;
  while (i < line.size() && i <= kMaxName && abi::console_name_char(line[i])) ++i;
  if (i == 0 || i > kMaxName || line.substr(i, 2) != ": ") return out;
  out.source = ConsoleLine::Source::Domain;
  out.name = line.substr(0, i);
  out.text = line.substr(i + 2);
  // "dN": a domain known by its id.
  if (i >= 2 && i <= 7 && line[0] == 'd') {
    int n = 0;
    size_t j = 1;
    while (j < i && line[j] >= '0' && line[j] <= '9') n = n * 10 + (line[j++] - '0');
    if (j == i) out.domain = n;
  }
  return out;
}

bool is_fail(std::string_view text) { return text.starts_with("FAIL"); }

std::optional<std::string_view> pass_name(std::string_view text) {
  if (!text.starts_with("PASS ")) return std::nullopt;
  std::string_view rest = text.substr(5);
  size_t end = rest.find(' ');
  std::string_view name = rest.substr(0, end);
  if (name.empty()) return std::nullopt;
  return name;
}

bool matches_pass(std::string_view text, std::string_view name) {
  if (!text.starts_with("PASS ")) return false;
  std::string_view rest = text.substr(5);
  if (!rest.starts_with(name)) return false;
  return rest.size() == name.size() || rest[name.size()] == ' ';
}

std::optional<Bench> parse_bench(std::string_view text) {
  if (text != "BENCH" && !text.starts_with("BENCH ")) return std::nullopt;
  std::vector<std::string_view> words;
  size_t i = 5;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  Bench b;
  if (words.size() < 2) return b;
  auto number = json::normalize_number(words[1]);
  if (!number) return b;
  b.metric = std::string(words[0]);
  b.number = *number;
  return b;
}

Checker::Checker(Expectations e)
    : e_(std::move(e)),
      seen_pass_(e_.passes.size()),
      seen_line_(e_.lines.size()),
      forbidden_at_(e_.forbidden.size()),
      forbidden_text_(e_.forbidden.size()),
      between_(e_.between.size(), Window::before) {}

void Checker::line(std::string_view line) {
  ++line_no_;
  std::string at = "line " + std::to_string(line_no_) + ": ";
  if (line.find("PANIC") != std::string_view::npos && e_.exit != ExpectExit::Panic)
    problems_.push_back(at + "kernel panic: " + std::string(line));
  for (size_t i = 0; i < e_.lines.size(); ++i)
    if (!seen_line_[i] && line.find(e_.lines[i]) != std::string_view::npos) seen_line_[i] = true;
  for (size_t i = 0; i < e_.forbidden.size(); ++i)
    if (forbidden_at_[i] == 0 && line.find(e_.forbidden[i]) != std::string_view::npos) {
      forbidden_at_[i] = line_no_;
      forbidden_text_[i] = std::string(line);
    }

  for (size_t i = 0; i < e_.between.size(); ++i) {
    const auto& b = e_.between[i];
    switch (between_[i]) {
      case Window::before:
        if (line.find(b.start) != std::string_view::npos) between_[i] = Window::open;
        break;
      case Window::open:
        if (line.find(b.end) != std::string_view::npos) between_[i] = Window::closed;
        else if (line.find(b.inside) != std::string_view::npos) between_[i] = Window::satisfied;
        break;
      case Window::satisfied:
      case Window::closed:
        break;
    }
  }

  ConsoleLine c = classify(line);
  if (c.source == ConsoleLine::Source::Kernel) {
    constexpr std::string_view kLongest = "longest hypercall invocation: ";
    if (c.text.substr(0, kLongest.size()) == kLongest) {
      std::string rest(c.text.substr(kLongest.size()));
      char* end = nullptr;
      long us = std::strtol(rest.c_str(), &end, 10);
      if (end != rest.c_str() && us >= 0) {
        longest_hypercall_us_ = us;
        longest_hypercall_line_ = std::string(line);
      } else {
        problems_.push_back(at + "malformed \"longest hypercall invocation\" line: " + std::string(line));
      }
    }
  }
  if (c.source != ConsoleLine::Source::Domain) return;
  if (is_fail(c.text)) problems_.push_back(at + "domain reported failure: " + std::string(line));
  if (pass_name(c.text)) {
    ++pass_lines_;
    for (size_t i = 0; i < e_.passes.size(); ++i)
      if (matches_pass(c.text, e_.passes[i])) seen_pass_[i] = true;
  }
  if (c.text.substr(0, 6) == "SHARE ") {
    char group[64];
    double w = 0, a = 0;
    std::string text(c.text);
    if (std::sscanf(text.c_str(), "SHARE %63s %lf %lf", group, &w, &a) == 3 && w > 0 && a >= 0)
      share_lines_.push_back({group, w, a});
    else
      problems_.push_back(at + "malformed SHARE line (want SHARE <group> <weight> <amount>): " + std::string(line));
  }
  if (auto b = parse_bench(c.text)) {
    if (b->number.empty()) problems_.push_back(at + "malformed BENCH line (want BENCH <metric> <number>): " + std::string(line));
    else bench_[b->metric] = b->number;
  }
}

Verdict Checker::finish(const RunEnd& end) const {
  Verdict v;
  v.pass_lines = pass_lines_;
  v.bench = bench_;
  auto& r = v.reasons;
  if (!end.started) {
    r.push_back("QEMU could not be started: " + end.start_error);
  } else if (end.timed_out) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "TIMEOUT after %g s", end.timeout_s);
    r.push_back(buf);
  } else {
    int want = e_.exit == ExpectExit::Clean ? 33 : 35;
    const char* want_what = e_.exit == ExpectExit::Clean ? "clean end" : "kernel panic";
    if (!end.exited) {
      r.push_back("QEMU killed by signal " + std::to_string(end.signal) + ", expected exit " +
                  std::to_string(want) + " (" + want_what + ")");
    } else if (end.code != want) {
      std::string what = end.code == 33   ? " (clean end)"
                         : end.code == 35 ? " (kernel panic)"
                         : end.code == 0  ? " (triple fault or reset under -no-reboot)"
                         : end.code == 1  ? " (QEMU error)"
                                          : "";
      r.push_back("QEMU exited with " + std::to_string(end.code) + what + ", expected " + std::to_string(want) +
                  " (" + want_what + ")");
    }
  }
  r.insert(r.end(), problems_.begin(), problems_.end());
  for (size_t i = 0; i < e_.passes.size(); ++i)
    if (!seen_pass_[i]) r.push_back("missing \"PASS " + e_.passes[i] + "\"");
  for (size_t i = 0; i < e_.lines.size(); ++i)
    if (!seen_line_[i]) r.push_back("missing expected line containing \"" + e_.lines[i] + "\"");
  for (size_t i = 0; i < e_.forbidden.size(); ++i)
    if (forbidden_at_[i] != 0)
      r.push_back("line " + std::to_string(forbidden_at_[i]) + ": forbidden \"" + e_.forbidden[i] +
                  "\": " + forbidden_text_[i]);
  for (size_t i = 0; i < e_.between.size(); ++i)
    if (between_[i] != Window::satisfied)
      r.push_back("no line containing \"" + e_.between[i].inside + "\" between \"" + e_.between[i].start +
                  "\" and \"" + e_.between[i].end + "\"");
  for (const auto& want : e_.shares) {
    double wsum = 0, asum = 0;
    unsigned n = 0;
    for (const auto& l : share_lines_)
      if (l.group == want.group) wsum += l.weight, asum += l.amount, ++n;
    if (n < 2 || asum <= 0) {
      r.push_back("fewer than two SHARE lines for \"" + want.group + "\"");
      continue;
    }
    for (const auto& l : share_lines_) {
      if (l.group != want.group) continue;
      double expected = l.weight / wsum, got = l.amount / asum;
      double dev = 100.0 * (got > expected ? got - expected : expected - got) / expected;
      char buf[200];
      std::snprintf(buf, sizeof buf, "share %s weight %g: %.2f%% of the total, expected %.2f%% (off by %.1f%% > %g%%)",
                    want.group.c_str(), l.weight, 100 * got, 100 * expected, dev, want.tolerance_pct);
      if (dev > want.tolerance_pct) r.push_back(buf);
    }
  }
  if (pass_lines_ < e_.min_pass)
    r.push_back("only " + std::to_string(pass_lines_) + " PASS line(s), expected at least " +
                std::to_string(e_.min_pass));
  if (e_.want_bench && bench_.empty()) r.push_back("no BENCH lines, but benchmark results were asked for");
  if (e_.max_hypercall_us > 0) {
    if (longest_hypercall_us_ < 0)
      r.push_back("no \"longest hypercall invocation\" line from the kernel");
    else if (longest_hypercall_us_ > e_.max_hypercall_us)
      r.push_back("a hypercall ran " + std::to_string(longest_hypercall_us_) + " us without a preemption point (limit " +
                  std::to_string(e_.max_hypercall_us) + " us): " + longest_hypercall_line_);
  }
  v.ok = r.empty();
  return v;
}

std::string format_verdict(const Verdict& v, const std::string& name) {
  std::string label = name.empty() ? "" : " " + name;
  std::string out;
  if (v.ok) {
    out = "moat-systest: PASS" + label + " (" + std::to_string(v.pass_lines) + " PASS line(s)";
    if (!v.bench.empty()) out += ", " + std::to_string(v.bench.size()) + " BENCH figure(s)";
    return out + ")\n";
  }
  out = "moat-systest: FAIL" + label + " (" + std::to_string(v.reasons.size()) + " reason(s))\n";
  for (const auto& reason : v.reasons) out += "  - " + reason + "\n";
  return out;
}

}  // namespace moat::systest
