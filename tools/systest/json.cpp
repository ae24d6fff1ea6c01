#include "json.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace moat::json {

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::optional<Value> document(std::string* error) {
    Value v;
    skip_ws();
    if (!value(&v, 0)) return fail(error);
    skip_ws();
    if (pos_ != s_.size()) {
      err_ = "trailing characters";
      return fail(error);
    }
    return v;
  }

 private:
  std::optional<Value> fail(std::string* error) {
    if (error) *error = err_ + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }
  bool bad(const char* what) {
    if (err_.empty()) err_ = what;
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return bad("unexpected token");
    pos_ += word.size();
    return true;
  }

  bool value(Value* v, int depth) {
    if (depth > 200) return bad("nesting too deep");
    if (pos_ >= s_.size()) return bad("unexpected end");
    size_t start = pos_;
    bool ok;
    switch (s_[pos_]) {
      case '{': ok = object(v, depth); break;
      case '[': ok = array(v, depth); break;
      case '"': v->kind = Value::Kind::String; ok = string(&v->string); break;
      case 't': v->kind = Value::Kind::Bool; v->boolean = true; ok = literal("true"); break;
      case 'f': v->kind = Value::Kind::Bool; ok = literal("false"); break;
      case 'n': v->kind = Value::Kind::Null; ok = literal("null"); break;
      default: ok = number(v); break;
    }
    if (ok) v->raw = std::string(s_.substr(start, pos_ - start));
    return ok;
  }

  bool object(Value* v, int depth) {
    v->kind = Value::Kind::Object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return bad("expected a key");
      std::string key;
      if (!string(&key)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return bad("expected ':'");
      ++pos_;
      skip_ws();
      Value member;
      if (!value(&member, depth + 1)) return false;
      v->members.push_back(Member{std::move(key), std::move(member)});
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return bad("expected ',' or '}'");
    }
  }

  bool array(Value* v, int depth) {
    v->kind = Value::Kind::Array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      Value item;
      if (!value(&item, depth + 1)) return false;
      v->items.push_back(std::move(item));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return bad("expected ',' or ']'");
    }
  }

  bool hex4(unsigned* out) {
    if (pos_ + 4 > s_.size()) return bad("short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return bad("bad \\u escape");
    }
    *out = v;
    return true;
  }

  static void utf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string* out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= s_.size()) return bad("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return bad("control character in string");
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (pos_ >= s_.size()) return bad("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          unsigned cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(pos_, 2) == "\\u") {
            size_t save = pos_;
            pos_ += 2;
            unsigned lo;
            if (!hex4(&lo)) return false;
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else pos_ = save;
          }
          utf8(cp, out);
          break;
        }
        default:
          return bad("bad escape");
      }
    }
  }

  bool number(Value* v) {
    size_t start = pos_;
    auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (!digit()) return bad("unexpected character");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit()) return bad("bad number");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) return bad("bad number");
      while (digit()) ++pos_;
    }
    v->kind = Value::Kind::Number;
    std::string text(s_.substr(start, pos_ - start));
    v->number = std::strtod(text.c_str(), nullptr);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string err_;
};

bool is_json_number(std::string_view t) {
  Parser p(t);
  std::string error;
  auto v = p.document(&error);
  return v && v->kind == Value::Kind::Number && v->raw.size() == t.size();
}

}  // namespace

std::optional<Value> parse(std::string_view text, std::string* error) { return Parser(text).document(error); }

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string format_number(double v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return std::strcmp(buf, "-0") == 0 ? "0" : buf;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::optional<std::string> normalize_number(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  if (is_json_number(text)) return std::string(text);
  // Relaxed forms: leading '+', leading zeros, "5." and ".5". Digits, one
  // optional '.', an optional exponent; nothing strtod would read as hex/inf/nan.
  size_t i = 0;
  if (text[i] == '+' || text[i] == '-') ++i;
  size_t digits = 0, dots = 0;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') ++dots;
    else if (text[i] >= '0' && text[i] <= '9') ++digits;
    else return std::nullopt;
  }
  if (digits == 0 || dots > 1) return std::nullopt;
  if (i < text.size()) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (i == text.size()) return std::nullopt;
    for (; i < text.size(); ++i)
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  std::string copy(text);
  errno = 0;
  double v = std::strtod(copy.c_str(), nullptr);
  if (!std::isfinite(v)) return std::nullopt;
  return format_number(v);
}

std::optional<Flat> read_flat(std::string_view text, std::string* error) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return Flat{};
  auto v = parse(text, error);
  if (!v) return std::nullopt;
  if (v->kind != Value::Kind::Object) {
    if (error) *error = "not a JSON object";
    return std::nullopt;
  }
  Flat flat;
  for (auto& [k, member] : v->members) flat[k] = member.raw;
  return flat;
}

std::string write_flat(const Flat& flat) {
  if (flat.empty()) return "{}\n";
  std::string out = "{\n";
  size_t n = 0;
  for (const auto& [k, v] : flat) {
    out += "  " + quote(k) + ": " + v;
    out += ++n < flat.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

bool merge_into_file(const std::string& path, const Flat& numbers, std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = path + ": " + what;
    return false;
  };
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);

  std::string lock_path = path + ".lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) return fail(std::string("cannot open lock file: ") + std::strerror(errno));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock};
  while (::flock(lock, LOCK_EX) != 0) {
    if (errno != EINTR) return fail(std::string("cannot lock: ") + std::strerror(errno));
  }

  Flat flat;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream buf;
      buf << in.rdbuf();
      std::string parse_error;
      auto existing = read_flat(buf.str(), &parse_error);
      if (!existing) return fail("not a flat JSON object (" + parse_error + "); left unchanged");
      flat = std::move(*existing);
    }
  }
  for (const auto& [k, v] : numbers) flat[k] = v;

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << write_flat(flat);
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return fail("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::filesystem::remove(tmp, ec);
    return fail(std::string("cannot replace: ") + std::strerror(errno));
  }
  return true;
}

}  // namespace moat::json
