#include "create.hpp"

#include <base/format.hpp>

namespace builder {

namespace {

// The value of " key=" in v before its command line (the rest of v, which
// may hold anything printable), up to the next space: its start and length;
// false if the key is not there or the value is empty.
bool field(const char* v, const char* key, const char** at, size_t* len) {
    size_t kn = __builtin_strlen(key);
    if (!*v) return false;
    for (const char* p = v + 1; *p; ++p) {
        if (p[-1] == ' ' && __builtin_strncmp(p, "cmdline=", 8) == 0) return false;
        if (p[-1] != ' ' || __builtin_strncmp(p, key, kn) != 0 || p[kn] != '=') continue;
        *at = p + kn + 1;
        size_t n = 0;
        while ((*at)[n] && (*at)[n] != ' ') ++n;
        *len = n;
        return n > 0;
    }
    return false;
}

// A decimal number of 1 to 19 digits.
bool number(const char* s, size_t n, uint64_t* out) {
    if (n == 0 || n > 19) return false;
    uint64_t x = 0;
    for (size_t k = 0; k < n; ++k) {
        if (s[k] < '0' || s[k] > '9') return false;
        x = x * 10 + uint64_t(s[k] - '0');
    }
    *out = x;
    return true;
}

bool num_field(const char* v, const char* key, uint64_t* out) {
    const char* at;
    size_t n;
    return field(v, key, &at, &n) && number(at, n, out);
}

// A back-end's name, or "-" for none.
bool name_field(const char* v, const char* key, char* out) {
    const char* at;
    size_t n;
    if (!field(v, key, &at, &n) || n > 32) return false;
    __builtin_memcpy(out, at, n);
    out[n] = '\0';
    if (n == 1 && out[0] == '-') {
        out[0] = '\0';
        return true;
    }
    return create_valid_name(out);
}

}  // namespace

bool create_valid_name(const char* s) {
    size_t n = 0;
    for (; s[n]; ++n) {
        char c = s[n];
        if (n == 32 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                         c == '.' || c == '-'))
            return false;
    }
    return n > 0;
}

bool parse_create(const char* name, const char* v, CreateRequest& out, char* why, size_t why_len) {
    out = CreateRequest{};
    auto bad = [&](const char* what) {
        base::snformat(why, why_len, "malformed request: %s", what);
        return false;
    };
    if (!create_valid_name(name)) return bad("the name is not 1 to 32 of A-Z a-z 0-9 _ . -");
    base::snformat(out.name, sizeof out.name, "%s", name);
    if (__builtin_strncmp(v, "create ", 7) != 0) return bad("it does not begin with \"create \"");
    uint64_t x;
    if (!num_field(v, "memory", &x) || x % 4 != 0 || x < 1024 || x > (1u << 20))
        return bad("memory is not 1024 to 1048576 KiB in whole pages");
    out.memory_kib = x;
    if (!name_field(v, "console", out.console)) return bad("console is not a domain name or -");
    if (!name_field(v, "xenstore", out.xenstore)) return bad("xenstore is not a domain name or -");
    // net= and blk= may be left out (none): the requests written by hand in
    // tests predate them. Each only names a back-end, checked against the
    // quota like the others; a disk's sectors come with its blk.
    const char* at;
    size_t n;
    if (field(v, "net", &at, &n) && !name_field(v, "net", out.net)) return bad("net is not a domain name or -");
    if (field(v, "blk", &at, &n) && !name_field(v, "blk", out.blk)) return bad("blk is not a domain name or -");
    if (out.blk[0]) {
        // disk=FIRST,SECTORS,r|w
        uint64_t d[2];
        if (!field(v, "disk", &at, &n)) return bad("a blk without its disk=FIRST,SECTORS,r|w");
        for (unsigned k = 0; k < 2; ++k) {
            size_t m = 0;
            while (m < n && at[m] != ',') ++m;
            if (m == n || !number(at, m, &d[k])) return bad("disk is not FIRST,SECTORS,r|w");
            at += m + 1;
            n -= m + 1;
        }
        if (n != 1 || (at[0] != 'r' && at[0] != 'w')) return bad("disk is not FIRST,SECTORS,r|w");
        if (d[1] == 0 || d[0] + d[1] < d[0]) return bad("disk has no sectors, or they overflow");
        out.disk_first = d[0];
        out.disk_sectors = d[1];
        out.disk_read_only = at[0] == 'r';
    }
    if (!num_field(v, "size", &x) || x == 0 || x > kCreateStageBytes) return bad("size is not 1 to 4194304 bytes");
    out.image_size = uint32_t(x);
    if (!num_field(v, "crc", &x) || x > 0xFFFFFFFFu) return bad("crc is not a 32-bit number");
    out.image_crc32 = uint32_t(x);
    if (!field(v, "list", &at, &n)) return bad("no list of frames");
    for (unsigned k = 0; k < kCreateListPages; ++k) {
        size_t m = 0;
        while (m < n && at[m] != ',') ++m;
        if (!number(at, m, &out.list[k])) return bad("list is not its frames' numbers, comma-separated");
        if (k + 1 < kCreateListPages) {
            if (m == n) return bad("list names too few frames");
            at += m + 1;
            n -= m + 1;
        } else if (m != n) {
            return bad("list names too many frames");
        }
    }
    if (!num_field(v, "asked", &out.asked_ns)) return bad("no asked time");
    // The command line is the rest of the value: spaces allowed, printable only.
    const char* c = nullptr;
    for (const char* p = v + 1; *p; ++p)
        if (p[-1] == ' ' && __builtin_strncmp(p, "cmdline=", 8) == 0) {
            c = p + 8;
            break;
        }
    if (!c) return bad("no cmdline");
    size_t cl = __builtin_strlen(c);
    if (cl > kCreateCmdlineLen) return bad("cmdline over 255 bytes");
    for (size_t k = 0; k < cl; ++k)
        if (uint8_t(c[k]) < 0x20 || uint8_t(c[k]) > 0x7e) return bad("cmdline holds a byte that is not printable");
    __builtin_memcpy(out.cmdline, c, cl + 1);
    return true;
}

}  // namespace builder
