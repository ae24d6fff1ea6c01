#pragma once
// Decoding requests and building replies in Xen's wire format: a 16-byte
// header {type, req_id, tx_id, len} and len payload bytes, len <= 4096.

#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <abi/xs_wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Request {
    uint32_t type;
    uint32_t req_id;
    uint32_t tx_id;
    const char* payload;
    uint32_t len;
};

// The header fields that can be read, for replying to a malformed message.
abi::XsdSockmsg peek_header(const uint8_t* msg, size_t n);

// Checks that msg is exactly one message: a full header, len <= 4096 and
// exactly len payload bytes. EINVAL otherwise (E2BIG for len > 4096).
[[nodiscard]] Result<Request> decode(const uint8_t* msg, size_t n);

// Payload split at NULs. s[i] points into the payload; n[i] excludes the NUL.
inline constexpr size_t kMaxArgs = kMaxPermEntries + 1;
struct Args {
    const char* s[kMaxArgs];
    size_t n[kMaxArgs];
    size_t count;
};

// Exactly `want` NUL-terminated strings filling the payload.
[[nodiscard]] Status split_exact(const Request& r, size_t want, Args& out);
// One NUL-terminated string, then the raw rest (WRITE: path \0 value).
[[nodiscard]] Status split_path_value(const Request& r, Args& out);
// One or more NUL-terminated strings filling the payload (at most kMaxArgs;
// E2BIG beyond).
[[nodiscard]] Status split_all(const Request& r, Args& out);

// A reply or watch event, laid out as it goes on the ring: header, payload.
struct Reply {
    abi::XsdSockmsg hdr;
    char payload[kPayloadMax];

    const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(this); }
    size_t size() const { return sizeof(hdr) + hdr.len; }
    bool is_error() const { return hdr.type == static_cast<uint32_t>(abi::XsType::error); }
};
static_assert(sizeof(abi::XsdSockmsg) == 16);

// Reply builders: each fills the whole header (type, echoed ids, len).
void reply_error(Reply& out, uint32_t req_id, uint32_t tx_id, Error e);
void reply_ok(Reply& out, uint32_t type, uint32_t req_id, uint32_t tx_id);
void reply_begin(Reply& out, uint32_t type, uint32_t req_id, uint32_t tx_id);
// Appends to a reply begun with reply_begin; false (nothing appended) if the
// payload would pass kPayloadMax.
bool reply_append(Reply& out, const char* s, size_t n);

}  // namespace xs
