// moat-bench-merge IN_GBENCH_JSON OUT_FLAT_JSON
//
// Merges Google Benchmark output (--benchmark_format=json or --benchmark_out)
// into the flat results file (bench/results.json, metric -> number) that
// moat-systest also writes. Per benchmark entry:
//   no user counters:  "<name>" -> real_time, converted to nanoseconds
//   user counters:     "<name>/<counter>" -> counter value, for each counter
// Entries with error_occurred are skipped (reported on stderr).
#include "json.hpp"

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

namespace {

// Keys Google Benchmark writes itself; any other numeric key is a user counter.
const std::set<std::string_view> kStandardKeys = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "label", "error_occurred", "error_message",
    "bytes_per_second", "items_per_second"};

double to_ns(double t, std::string_view unit) {
  if (unit == "us") return t * 1e3;
  if (unit == "ms") return t * 1e6;
  if (unit == "s") return t * 1e9;
  return t;  // "ns" (the default)
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
    std::puts("usage: moat-bench-merge IN_GBENCH_JSON OUT_FLAT_JSON\n"
              "Merges each Google Benchmark result into the flat JSON object OUT_FLAT_JSON:\n"
              "name -> real_time in ns, or name/counter -> value for user counters.");
    return 0;
  }
  if (argc != 3) {
    std::fputs("usage: moat-bench-merge IN_GBENCH_JSON OUT_FLAT_JSON\n", stderr);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "moat-bench-merge: cannot read %s\n", argv[1]);
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  auto doc = moat::json::parse(text.str(), &error);
  const moat::json::Value* benchmarks = doc ? doc->find("benchmarks") : nullptr;
  if (!doc || !benchmarks || benchmarks->kind != moat::json::Value::Kind::Array) {
    std::fprintf(stderr, "moat-bench-merge: %s: not Google Benchmark JSON%s%s\n", argv[1],
                 error.empty() ? "" : ": ", error.c_str());
    return 1;
  }

  moat::json::Flat figures;
  for (const auto& b : benchmarks->items) {
    const auto* name = b.find("name");
    if (b.kind != moat::json::Value::Kind::Object || !name || name->kind != moat::json::Value::Kind::String)
      continue;
    if (const auto* err = b.find("error_occurred"); err && err->boolean) {
      const auto* msg = b.find("error_message");
      std::fprintf(stderr, "moat-bench-merge: skipping %s: %s\n", name->string.c_str(),
                   msg ? msg->string.c_str() : "error");
      continue;
    }
    bool counters = false;
    for (const auto& [key, v] : b.members) {
      if (kStandardKeys.count(key) || v.kind != moat::json::Value::Kind::Number) continue;
      figures[name->string + "/" + key] = moat::json::format_number(v.number);
      counters = true;
    }
    if (counters) continue;
    const auto* real = b.find("real_time");
    if (!real || real->kind != moat::json::Value::Kind::Number) continue;
    const auto* unit = b.find("time_unit");
    figures[name->string] = moat::json::format_number(to_ns(real->number, unit ? unit->string : "ns"));
  }

  if (!moat::json::merge_into_file(argv[2], figures, &error)) {
    std::fprintf(stderr, "moat-bench-merge: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "moat-bench-merge: %zu figure(s) merged into %s\n", figures.size(), argv[2]);
  return 0;
}
