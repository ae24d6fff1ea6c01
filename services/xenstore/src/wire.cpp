#include <xenstore/wire.hpp>

namespace xs {

namespace {

uint32_t load32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
           static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Splits the payload from `start` into NUL-terminated strings; false if the
// last one is unterminated or there are more than kMaxArgs.
bool split_from(const Request& r, size_t start, Args& out, bool& too_many) {
    too_many = false;
    size_t i = start;
    while (i < r.len) {
        size_t j = i;
        while (j < r.len && r.payload[j] != '\0') ++j;
        if (j == r.len) return false;  // unterminated
        if (out.count == kMaxArgs) {
            too_many = true;
            return false;
        }
        out.s[out.count] = r.payload + i;
        out.n[out.count] = j - i;
        out.count++;
        i = j + 1;
    }
    return true;
}

}  // namespace

abi::XsdSockmsg peek_header(const uint8_t* msg, size_t n) {
    abi::XsdSockmsg h{0, 0, 0, 0};
    if (n >= 8) h.req_id = load32(msg + 4);
    if (n >= 12) h.tx_id = load32(msg + 8);
    if (n >= 4) h.type = load32(msg);
    return h;
}

Result<Request> decode(const uint8_t* msg, size_t n) {
    if (msg == nullptr || n < sizeof(abi::XsdSockmsg)) return Err{Error::inval};
    Request r;
    r.type = load32(msg);
    r.req_id = load32(msg + 4);
    r.tx_id = load32(msg + 8);
    uint32_t len = load32(msg + 12);
    if (len > kPayloadMax) return Err{Error::too_big};
    if (n - sizeof(abi::XsdSockmsg) != len) return Err{Error::inval};
    r.len = len;
    r.payload = reinterpret_cast<const char*>(msg + sizeof(abi::XsdSockmsg));
    return r;
}

Status split_exact(const Request& r, size_t want, Args& out) {
    out.count = 0;
    bool too_many;
    if (!split_from(r, 0, out, too_many) || out.count != want) return Err{Error::inval};
    return {};
}

Status split_path_value(const Request& r, Args& out) {
    out.count = 0;
    size_t j = 0;
    while (j < r.len && r.payload[j] != '\0') ++j;
    if (j == r.len) return Err{Error::inval};
    out.s[0] = r.payload;
    out.n[0] = j;
    out.s[1] = r.payload + j + 1;
    out.n[1] = r.len - j - 1;
    out.count = 2;
    return {};
}

Status split_all(const Request& r, Args& out) {
    out.count = 0;
    bool too_many;
    if (!split_from(r, 0, out, too_many)) return Err{too_many ? Error::too_big : Error::inval};
    if (out.count == 0) return Err{Error::inval};
    return {};
}

void reply_begin(Reply& out, uint32_t type, uint32_t req_id, uint32_t tx_id) {
    out.hdr.type = type;
    out.hdr.req_id = req_id;
    out.hdr.tx_id = tx_id;
    out.hdr.len = 0;
}

bool reply_append(Reply& out, const char* s, size_t n) {
    if (n > kPayloadMax - out.hdr.len) return false;
    for (size_t i = 0; i < n; ++i) out.payload[out.hdr.len + i] = s[i];
    out.hdr.len += static_cast<uint32_t>(n);
    return true;
}

void reply_error(Reply& out, uint32_t req_id, uint32_t tx_id, Error e) {
    reply_begin(out, static_cast<uint32_t>(abi::XsType::error), req_id, tx_id);
    const char* name = error_name(e);
    size_t n = 0;
    while (name[n]) ++n;
    (void)reply_append(out, name, n + 1);
}

void reply_ok(Reply& out, uint32_t type, uint32_t req_id, uint32_t tx_id) {
    reply_begin(out, type, req_id, tx_id);
    (void)reply_append(out, "OK", 3);
}

}  // namespace xs
