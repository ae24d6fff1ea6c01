#pragma once
// Node names. A canonical path is absolute ("/", "/a", "/a/b"), never ends in
// '/', has no "//", uses only [A-Za-z0-9_@/-] and is at most kAbsPathMax
// bytes; a relative name is taken relative to the caller's home,
// /local/domain/<id>. Special watch paths start with '@'.

#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>
#include <base/number.hpp>

namespace xs {

// A canonical path in a caller-owned buffer.
struct Path {
    char s[kPathBuf];
    size_t n;
    bool relative;  // the request named it relative to the caller's home
    bool special;   // '@...' (only when allowed)
};

// Canonicalises `in` (n bytes, no NUL) for `caller`. `limit_rel` applies the
// per-domain limit kRelPathMax to the part below /local/domain/<id>/ (Xen
// exempts privileged callers). Special names are accepted only when
// allow_special. EINVAL on any violation.
[[nodiscard]] Status canonicalize(DomId caller, const char* in, size_t n, bool allow_special,
                                  bool limit_rel, Path& out);

// Length of the parent of p ("/a/b" -> "/a", "/a" -> "/"); p must not be "/".
size_t parent_len(const char* p, size_t n);
// p is anc or lies below it.
bool is_self_or_below(const char* p, size_t pn, const char* anc, size_t an);
uint32_t path_hash(const char* p, size_t n);

// "/local/domain/<id>" into out (at least 24 bytes); returns its length.
size_t home_path(DomId dom, char* out);
size_t format_u32(uint32_t v, char* out);
// Strict decimal (no sign, no leading zeros except "0", no junk).
using base::parse_u32;   // decimal, no leading zeros (base/number.hpp)
bool parse_domid(const char* s, size_t n, DomId& d);

size_t cstr_len(const char* s);
bool bytes_equal(const char* a, size_t an, const char* b, size_t bn);

}  // namespace xs
