// Command-line numbers, read the one way every moat command reads them.
#pragma once

#include <cstdlib>

namespace moat::cli {

// Whether s is a whole number in [lo, hi] (strtod's syntax, nothing after
// it; NaN and infinities are out of every range): *out, or false.
[[nodiscard]] inline bool parse_number(const char* s, double lo, double hi, double* out) {
  if (!s) return false;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo) || !(v <= hi)) return false;
  *out = v;
  return true;
}

// A --timeout: more than 0, at most a day.
[[nodiscard]] inline bool parse_timeout(const char* s, double* out) {
  double v;
  if (!parse_number(s, 0, 86400, &v) || !(v > 0)) return false;
  *out = v;
  return true;
}

}  // namespace moat::cli
