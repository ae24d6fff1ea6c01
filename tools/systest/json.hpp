// A small JSON reader, and the flat {"metric": number, ...} results file.
//
// bench/results.json is one flat JSON object: benchmark metric -> number.
// moat-systest merges BENCH lines into it and moat-bench-merge merges Google
// Benchmark output; both keep every key they do not write.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moat::json {

struct Member;

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;  // String: the unescaped text
  std::string raw;     // the value's source text, verbatim
  std::vector<Value> items;
  std::vector<Member> members;  // objects: in source order

  const Value* find(std::string_view key) const;  // an object's first member `key`
};

struct Member {
  std::string key;
  Value value;
};

// Parses one JSON document (RFC 8259; nesting at most 200 deep).
std::optional<Value> parse(std::string_view text, std::string* error);

// Key as a JSON string literal, quotes included.
std::string quote(std::string_view text);

// A number in JSON form: "12", "-3.5", "1e+20"; input may also be "+7", "007",
// "5.", ".5". nullopt for anything else (including inf/nan/hex).
std::optional<std::string> normalize_number(std::string_view text);

// Shortest text that reads back as exactly v (integers without a fraction).
std::string format_number(double v);

// key -> the value's JSON text (numbers normally; other values are kept verbatim).
using Flat = std::map<std::string, std::string>;

// Reads a flat object. Empty or all-blank text is an empty object.
std::optional<Flat> read_flat(std::string_view text, std::string* error);

// {"a": 1, ...} with one key per line, keys sorted, trailing newline.
std::string write_flat(const Flat& flat);

// Merges `numbers` (key -> JSON number text) into the flat file at `path`
// under an exclusive lock on `path`.lock, replacing the file atomically.
// Creates the file (and its directory) if missing. False with *error on failure;
// the file is left as it was if it cannot be parsed.
bool merge_into_file(const std::string& path, const Flat& numbers, std::string* error);

}  // namespace moat::json
