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
// XenStore access (Request.xenstore): a path of 1 to kPathLen bytes of
// XenStore's path characters, absolute or relative to the toolstack's home;
// a value of at most kValueLen bytes (any bytes); an ls answer of at most
// kMaxChildren names of 1 to kChildLen bytes (fewer when the frame is full).
inline constexpr size_t kPathLen = 256;
inline constexpr size_t kValueLen = 512;
inline constexpr size_t kChildLen = 64;
inline constexpr size_t kMaxChildren = 64;
// moat create (Request.upload, Request.create): an image is staged in the
// toolstack in pieces of 1 to kUploadLen bytes, within kStageBytes; a
// command line of at most kCmdlineLen printable bytes.
inline constexpr size_t kUploadLen = 768;
inline constexpr size_t kStageBytes = 4u << 20;
inline constexpr size_t kCmdlineLen = 255;
inline constexpr uint64_t kMinCreateKib = 1024, kMaxCreateKib = 1ull << 30;
inline constexpr uint32_t kMaxVcpus = 128;
// moat trace (Response.records): whole records of kTraceRecordBytes
// (abi/trace.hpp), at most kRecordsLen bytes an answer.
inline constexpr size_t kTraceRecordBytes = 32;
inline constexpr size_t kRecordsLen = 896;
// trace start (Request.trace_kinds): a bit per abi::TraceKind 1 to 5; 0: all.
inline constexpr uint32_t kTraceKindsAll = 0x3E;
// xenstore WATCH_READ (Response.events): at most kMaxEvents fired paths.
inline constexpr size_t kMaxEvents = 3;
// list (Request.start, Response.total): a page of the domains from start,
// start and total below kMaxDomains.
inline constexpr uint32_t kMaxDomains = 4096;
// console_input: 1 to kInputLen bytes for one domain's console.
inline constexpr size_t kInputLen = 256;

// The operation: Request's oneof field numbers.
enum class Op : uint8_t { none = 0, list = 3, pause = 4, unpause = 5, shutdown = 6, xenstore = 7,
                         destroy = 8, upload = 9, create = 10, trace = 11, console_input = 12 };
// XenstoreRequest.Op, numbers as in proto/control.proto.
enum class XsOp : uint8_t { none = 0, ls = 1, read = 2, write = 3, rm = 4, watch = 5, watch_read = 6,
                            unwatch = 7 };
// TraceRequest.Op.
enum class TraceOp : uint8_t { none = 0, start = 1, read = 2, stop = 3 };
// Numbers as in proto/control.proto.
enum class Status : uint8_t { unspecified = 0, ok = 1, bad_version = 2, bad_request = 3, no_such_domain = 4,
                              refused = 5, failed = 6 };
enum class State : uint8_t { unspecified = 0, running = 1, paused = 2, shutdown = 3, crashed = 4 };

struct Request {
    uint32_t version;
    uint32_t seq;
    Op op;
    // pause, unpause, destroy: the domain; shutdown: the domain, or "" for every one.
    char name[kNameLen + 1];
    // xenstore: which access, the path (valid_path), write's value.
    XsOp xs_op;
    char path[kPathLen + 1];
    uint16_t value_len;   // at most kValueLen
    uint8_t value[kValueLen];
    // upload: data_len (1 to kUploadLen) bytes at offset, within kStageBytes.
    uint32_t offset;
    uint16_t data_len;
    uint8_t data[kUploadLen];
    // create: the new guest (name above); memory_kib a multiple of 4 in
    // [kMinCreateKib, kMaxCreateKib]; vcpus 1 to kMaxVcpus; console and
    // xenstore valid names or ""; the image staged at [0, image_size),
    // image_size 1 to kStageBytes.
    uint64_t memory_kib;
    uint32_t vcpus;
    char cmdline[kCmdlineLen + 1];
    char console[kNameLen + 1];
    char xenstore[kNameLen + 1];
    char net[kNameLen + 1];   // create: its VIF back-end, or ""
    // create: its VBD back-end, or ""; with one, its disk's sectors on it
    // (disk_sectors non-zero, the end within 64 bits), else all zero.
    char blk[kNameLen + 1];
    uint64_t disk_first, disk_sectors;
    bool disk_read_only;
    uint32_t image_size, image_crc32;
    // trace: start, read (cpu, cursor), stop.
    TraceOp trace_op;
    uint32_t cpu;
    uint64_t cursor;
    uint32_t trace_kinds;   // start only: bits of kTraceKindsAll (0: all)
    // list: the first domain wanted (below kMaxDomains).
    uint32_t start;
    // console_input: input_len (1 to kInputLen) bytes for `name`'s console.
    uint16_t input_len;
    uint8_t input[kInputLen];
};

struct DomainInfo {
    char name[kNameLen + 1];
    uint32_t id;
    uint64_t memory_kib, max_memory_kib;
    uint32_t vcpus;
    State state;
    uint64_t cpu_time_ns;
    uint64_t events_sent, grant_ops, grant_copy_bytes;   // moat top's counters
};

struct Response {
    uint32_t version;
    uint32_t seq;
    Status status;
    char error[kErrorLen + 1];   // "" when status is ok (or a note, e.g. domains left out of a list)
    uint16_t n_domains;          // at most kMaxListed
    DomainInfo domains[kMaxListed];
    // xenstore read: the value (any bytes); value_len at most kValueLen.
    uint16_t value_len;
    uint8_t value[kValueLen];
    // xenstore ls: the children's names (each valid_child); at most kMaxChildren.
    uint16_t n_children;
    char children[kMaxChildren][kChildLen + 1];
    uint64_t free_memory_kib;   // list: the machine's free memory
    // trace read: records_len (a multiple of kTraceRecordBytes, at most
    // kRecordsLen) bytes of records; next, lost; start and read: cpus.
    uint16_t records_len;
    uint8_t records[kRecordsLen];
    uint64_t next, lost;
    uint32_t cpus;
    // xenstore watch_read: the fired paths (each valid_path); at most kMaxEvents.
    uint16_t n_events;
    char events[kMaxEvents][kPathLen + 1];
    uint32_t total;   // list: domains in all (at most kMaxDomains)
};

// Whether s is a domain name: 1 to kNameLen of [A-Za-z0-9_.-], NUL-terminated.
[[nodiscard]] bool valid_name(const char* s);

// Whether s is a XenStore path this channel carries: 1 to kPathLen of
// XenStore's path characters [A-Za-z0-9_@/-] (what the store accepts; '@'
// special paths are the store's to refuse), NUL-terminated.
[[nodiscard]] bool valid_path(const char* s);
// Whether s is a child's name in an ls answer: 1 to kChildLen of
// [A-Za-z0-9_@-] (a path component), NUL-terminated.
[[nodiscard]] bool valid_child(const char* s);

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
// status or state, n_domains, value_len, a child's name, n_children,
// records_len, an event's path, n_events) or it does not fit in cap.
[[nodiscard]] size_t encode_response(const Response& r, uint8_t* out, size_t cap);
// Decodes and checks a response: false, with err, unless every field is
// valid (version kVersion, a known status, every domain named and in a
// known state, error printable).
[[nodiscard]] bool decode_response(const uint8_t* data, size_t len, Response& out, char* err, size_t err_len);

const char* status_name(Status s);   // "OK", "REFUSED", ...
const char* state_name(State s);     // "running", "paused", ...
const char* xs_op_name(XsOp op);     // "ls", "read", "write", "rm", "watch", ...
const char* trace_op_name(TraceOp op);   // "start", "read", "stop"
// Whether s is a command line a create may carry: at most kCmdlineLen
// printable ASCII bytes, NUL-terminated.
[[nodiscard]] bool valid_cmdline(const char* s);


}  // namespace control
