#include <xenstore/path.hpp>
#include <xenstore/perms.hpp>
#include <xenstore/wire.hpp>

namespace xs {

uint8_t access(const Perms& p, DomId caller, DomId privileged) {
    if (caller == privileged || caller == p.owner()) return kPermRead | kPermWrite | kPermOwner;
    for (size_t i = 1; i < p.count; ++i)
        if (p.e[i].dom == caller) return p.e[i].bits;
    return p.e[0].bits;
}

Result<Perms> parse_perms(const Args& args, size_t first) {
    if (args.count <= first) return Err{Error::inval};
    size_t n = args.count - first;
    if (n > kMaxPermEntries) return Err{Error::too_big};
    Perms p;
    p.count = static_cast<uint8_t>(n);
    for (size_t i = 0; i < n; ++i) {
        const char* s = args.s[first + i];
        size_t len = args.n[first + i];
        if (len < 2) return Err{Error::inval};
        uint8_t bits;
        switch (s[0]) {
        case 'n': bits = kPermNone; break;
        case 'r': bits = kPermRead; break;
        case 'w': bits = kPermWrite; break;
        case 'b': bits = kPermRead | kPermWrite; break;
        default: return Err{Error::inval};
        }
        DomId d;
        if (!parse_domid(s + 1, len - 1, d)) return Err{Error::inval};
        p.e[i] = {d, bits};
    }
    return p;
}

size_t format_perms(const Perms& p, char* out) {
    size_t n = 0;
    for (size_t i = 0; i < p.count; ++i) {
        uint8_t b = p.e[i].bits & (kPermRead | kPermWrite);
        out[n++] = b == (kPermRead | kPermWrite) ? 'b' : b == kPermRead ? 'r' : b == kPermWrite ? 'w' : 'n';
        n += format_u32(p.e[i].dom, out + n);
        out[n++] = '\0';
    }
    return n;
}

}  // namespace xs
