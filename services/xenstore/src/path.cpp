#include <xenstore/path.hpp>
#include <base/number.hpp>

namespace xs {

namespace {

bool valid_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '@' || c == '/';
}

constexpr char kLocalDomain[] = "/local/domain/";
constexpr size_t kLocalDomainLen = sizeof(kLocalDomain) - 1;

// Offset just past "/local/domain/<digits>/" (Xen's "%5u/"), or 0.
size_t home_offset(const char* p, size_t n) {
    if (n <= kLocalDomainLen || !bytes_equal(p, kLocalDomainLen, kLocalDomain, kLocalDomainLen))
        return 0;
    size_t i = kLocalDomainLen, digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 5) ++i, ++digits;
    if (digits == 0 || i >= n || p[i] != '/') return 0;
    return i + 1;
}

}  // namespace

size_t cstr_len(const char* s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

bool bytes_equal(const char* a, size_t an, const char* b, size_t bn) {
    if (an != bn) return false;
    for (size_t i = 0; i < an; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

size_t format_u32(uint32_t v, char* out) {
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
    return n;
}

bool parse_domid(const char* s, size_t n, DomId& d) {
    uint32_t v;
    if (!parse_u32(s, n, v) || v >= kDomIdLimit) return false;
    d = static_cast<DomId>(v);
    return true;
}

size_t home_path(DomId dom, char* out) {
    for (size_t i = 0; i < kLocalDomainLen; ++i) out[i] = kLocalDomain[i];
    return kLocalDomainLen + format_u32(dom, out + kLocalDomainLen);
}

Status canonicalize(DomId caller, const char* in, size_t n, bool allow_special, bool limit_rel,
                    Path& out) {
    out.relative = false;
    out.special = false;
    out.n = 0;
    if (n == 0 || n > kAbsPathMax) return Err{Error::inval};
    size_t pos = 0;
    if (in[0] == '@') {
        if (!allow_special) return Err{Error::inval};
        out.special = true;
    } else if (in[0] != '/') {
        // Relative: prefix the caller's home.
        pos = home_path(caller, out.s);
        out.s[pos++] = '/';
        out.relative = true;
    }
    if (pos + n > kAbsPathMax) return Err{Error::inval};
    for (size_t i = 0; i < n; ++i) {
        if (!valid_char(in[i])) return Err{Error::inval};
        out.s[pos++] = in[i];
    }
    out.n = pos;
    out.s[pos] = '\0';
    if (out.n > 1 && out.s[out.n - 1] == '/') return Err{Error::inval};
    for (size_t i = 1; i < out.n; ++i)
        if (out.s[i] == '/' && out.s[i - 1] == '/') return Err{Error::inval};
    if (out.special) {
        if (out.n < 2) return Err{Error::inval};
        for (size_t i = 0; i < out.n; ++i)
            if (out.s[i] == '/') return Err{Error::inval};
    }
    if (limit_rel && out.n - home_offset(out.s, out.n) > kRelPathMax) return Err{Error::inval};
    return {};
}

size_t parent_len(const char* p, size_t n) {
    size_t i = n;
    while (i > 0 && p[i - 1] != '/') --i;
    // i is just past the last '/'; the parent is "/" when that slash is the first.
    return i <= 1 ? 1 : i - 1;
}

bool is_self_or_below(const char* p, size_t pn, const char* anc, size_t an) {
    if (an == 1 && anc[0] == '/') return pn >= 1 && p[0] == '/';
    if (pn < an) return false;
    for (size_t i = 0; i < an; ++i)
        if (p[i] != anc[i]) return false;
    return pn == an || p[an] == '/';
}

uint32_t path_hash(const char* p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<uint8_t>(p[i]);
        h *= 16777619u;
    }
    return h;
}

}  // namespace xs
