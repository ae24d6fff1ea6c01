#pragma once
// The control channel's messages (proto/control.proto), encoded and decoded
// with nanopb into these plain structs: no heap, every field checked. A
// decoder says why it refuses, in one line fit for a person, and never
// guesses: a name that is not 1 to 32 of [A-Za-z0-9_.-] (a NUL inside
// included), a number out of its enum, a missing operation are errors.
// Unknown fields are skipped, as protobuf does (a newer peer may add some);
// an unknown operation is a request without one (BAD_REQUEST).

#include <cstddef>
#include <cstdint>

namespace control {

inline constexpr uint32_t kVersion = 1;     // Version.V1
inline constexpr size_t kNameLen = 32;      // a domain name, as the manifest's
inline constexpr size_t kErrorLen = 159;    // Response.error, without its NUL
inline constexpr size_t kMaxListed = 64;    // Response.domains (those that fit in a frame, fewer)

// The operation: Request's oneof field numbers.
enum class Op : uint8_t { none = 0, list = 3, pause = 4, unpause = 5, shutdown = 6 };
// Numbers as in proto/control.proto.
enum class Status : uint8_t { unspecified = 0, ok = 1, bad_version = 2, bad_request = 3, no_such_domain = 4,
                              refused = 5, failed = 6 };
enum class State : uint8_t { unspecified = 0, running = 1, paused = 2, shutdown = 3, crashed = 4 };

struct Request {
    uint32_t version;
    uint32_t seq;
    Op op;
    // pause, unpause: the domain; shutdown: the domain, or "" for every one.
    char name[kNameLen + 1];
};

struct DomainInfo {
    char name[kNameLen + 1];
    uint32_t id;
    uint64_t memory_kib, max_memory_kib;
    uint32_t vcpus;
    State state;
    uint64_t cpu_time_ns;
};

struct Response {
    uint32_t version;
    uint32_t seq;
    Status status;
    char error[kErrorLen + 1];   // "" when status is ok (or a note, e.g. domains left out of a list)
    uint16_t n_domains;          // at most kMaxListed
    DomainInfo domains[kMaxListed];
};

// Whether s is a domain name: 1 to kNameLen of [A-Za-z0-9_.-], NUL-terminated.
[[nodiscard]] bool valid_name(const char* s);

// Decodes and checks a Request. ok: `out` is a request this version serves.
// bad_version: it decoded, but speaks another version (out.version says
// which). bad_request: undecodable, no operation, or a field out of range;
// err says which. out.seq holds the request's seq whenever it was read, so
// that even a refusal answers the right request.
[[nodiscard]] Status decode_request(const uint8_t* data, size_t len, Request& out, char* err, size_t err_len);
// Encodes a request (checked as decode_request checks one, version aside);
// the payload's size, or 0 if it is not valid or does not fit in cap.
[[nodiscard]] size_t encode_request(const Request& r, uint8_t* out, size_t cap);

// Encodes a response; its size, or 0 if a field is out of range (a name, a
// status or state, n_domains) or it does not fit in cap.
[[nodiscard]] size_t encode_response(const Response& r, uint8_t* out, size_t cap);
// Decodes and checks a response: false, with err, unless every field is
// valid (version kVersion, a known status, every domain named and in a
// known state, error printable).
[[nodiscard]] bool decode_response(const uint8_t* data, size_t len, Response& out, char* err, size_t err_len);

const char* status_name(Status s);   // "OK", "REFUSED", ...
const char* state_name(State s);     // "running", "paused", ...

}  // namespace control
