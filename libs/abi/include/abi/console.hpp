#pragma once
// The lines on the system console (COM1), as the kernel and the console
// domain write them and the system tests read them:
//
//   moat: TEXT       the kernel
//   NAME: TEXT       a domain; NAME is 1..32 of [A-Za-z0-9_.-]
//
// A domain's name comes from whoever built it, so it is made to fit that
// shape before it prefixes a line: other bytes become '_', and a name that
// is empty or would pass for the kernel's ("moat") becomes "d<id>".

#include <cstddef>
#include <cstdint>

namespace abi {

inline constexpr std::size_t kConsoleNameMax = 32;

constexpr bool console_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

// Writes the prefix for the domain `id` called `name` (at most `name_len`
// bytes, NUL-terminated if shorter) to `out`, NUL-terminated; returns its
// length (1..kConsoleNameMax).
constexpr std::size_t console_name(const char* name, std::size_t name_len, uint32_t id,
                                   char (&out)[kConsoleNameMax + 1]) {
  std::size_t n = 0;
  while (n < name_len && n < kConsoleNameMax && name[n]) {
    out[n] = console_name_char(name[n]) ? name[n] : '_';
    ++n;
  }
  bool kernel = n == 4 && out[0] == 'm' && out[1] == 'o' && out[2] == 'a' && out[3] == 't';
  if (n == 0 || kernel) {
    // "d" and the decimal id.
    char digits[10];
    std::size_t k = 0;
    do {
      digits[k++] = char('0' + id % 10);
      id /= 10;
    } while (id);
    n = 0;
    out[n++] = 'd';
    while (k) out[n++] = digits[--k];
  }
  out[n] = '\0';
  return n;
}

}  // namespace abi
