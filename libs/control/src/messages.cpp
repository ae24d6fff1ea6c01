// The control channel's messages with nanopb (see messages.hpp). The nanopb
// structs (control.pb.h) stay inside this file: callers see plain structs,
// checked on the way in and on the way out.

#include <control/messages.hpp>

#include <base/format.hpp>
#include <base/raw_enum.hpp>

#include <cstdarg>

#include <pb_decode.h>
#include <pb_encode.h>

#include "control.pb.h"

namespace control {

namespace {

static_assert(sizeof(moat_control_DomainRequest{}.name) == kNameLen + 1);
static_assert(sizeof(moat_control_ShutdownRequest{}.name) == kNameLen + 1);
static_assert(sizeof(moat_control_DomainInfo{}.name) == kNameLen + 1);
static_assert(sizeof(moat_control_Response{}.error) == kErrorLen + 1);
static_assert(sizeof(moat_control_Response{}.domains) / sizeof(moat_control_DomainInfo) == kMaxListed);
static_assert(sizeof(moat_control_XenstoreRequest{}.path) == kPathLen + 1);
static_assert(sizeof(moat_control_XenstoreRequest{}.value.bytes) == kValueLen);
static_assert(sizeof(moat_control_Response{}.value.bytes) == kValueLen);
static_assert(sizeof(moat_control_Response{}.children) / sizeof(moat_control_Response{}.children[0]) == kMaxChildren);
static_assert(sizeof(moat_control_Response{}.children[0]) == kChildLen + 1);
static_assert(moat_control_Request_xenstore_tag == unsigned(Op::xenstore) &&
              moat_control_XenstoreRequest_Op_LS == int(XsOp::ls) &&
              moat_control_XenstoreRequest_Op_READ == int(XsOp::read) &&
              moat_control_XenstoreRequest_Op_WRITE == int(XsOp::write) &&
              moat_control_XenstoreRequest_Op_RM == int(XsOp::rm));
static_assert(moat_control_Request_list_tag == unsigned(Op::list) && moat_control_Request_pause_tag == unsigned(Op::pause) &&
              moat_control_Request_unpause_tag == unsigned(Op::unpause) &&
              moat_control_Request_shutdown_tag == unsigned(Op::shutdown) &&
              moat_control_Request_destroy_tag == unsigned(Op::destroy));

bool path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '@' || c == '/';
}

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

__attribute__((format(printf, 3, 4))) void say(char* err, size_t err_len, const char* fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(err, err_len, fmt, ap);
    va_end(ap);
}

using base::raw_enum;

void copy_str(char* dst, size_t cap, const char* src) {
    size_t i = 0;
    for (; i + 1 < cap && src[i]; ++i) dst[i] = src[i];
    dst[i] = '\0';
}

// nanopb ends a string at its length; a NUL inside it would end it early
// and pass for a shorter name or path. So the strings of the request's
// operation (a domain's name: field 1 of pause, unpause, shutdown, destroy; a path:
// field 2 of xenstore) are looked at as bytes on the wire: each occurrence
// (protobuf keeps the last, nanopb merges) must be free of NULs.
bool strings_have_nul(const uint8_t* data, size_t len) {
    pb_istream_t s = pb_istream_from_buffer(data, len);
    pb_wire_type_t wt;
    uint32_t tag;
    bool eof;
    while (pb_decode_tag(&s, &wt, &tag, &eof)) {
        uint32_t inner = tag == moat_control_Request_pause_tag || tag == moat_control_Request_unpause_tag ||
                                 tag == moat_control_Request_shutdown_tag || tag == moat_control_Request_destroy_tag
                             ? 1
                         : tag == moat_control_Request_xenstore_tag ? 2
                                                                     : 0;
        if (!inner || wt != PB_WT_STRING) {
            if (!pb_skip_field(&s, wt)) return true;
            continue;
        }
        pb_istream_t sub;
        if (!pb_make_string_substream(&s, &sub)) return true;
        while (pb_decode_tag(&sub, &wt, &tag, &eof)) {
            if (tag != inner || wt != PB_WT_STRING) {
                if (!pb_skip_field(&sub, wt)) return true;
                continue;
            }
            uint32_t n;
            if (!pb_decode_varint32(&sub, &n) || n > sub.bytes_left) return true;
            pb_byte_t b[64];
            for (uint32_t k = 0; k < n; k += sizeof b) {
                uint32_t chunk = n - k < sizeof b ? n - k : uint32_t(sizeof b);
                if (!pb_read(&sub, b, chunk)) return true;
                for (uint32_t q = 0; q < chunk; ++q)
                    if (b[q] == 0) return true;
            }
        }
        if (!pb_close_string_substream(&s, &sub)) return true;
    }
    return false;
}

bool printable(const char* s) {
    for (; *s; ++s)
        if (uint8_t(*s) < 0x20 || uint8_t(*s) == 0x7f) return false;
    return true;
}

}  // namespace

bool valid_name(const char* s) {
    size_t n = 0;
    for (; s[n]; ++n)
        if (n == kNameLen || !name_char(s[n])) return false;
    return n > 0;
}

bool valid_path(const char* s) {
    size_t n = 0;
    for (; s[n]; ++n)
        if (n == kPathLen || !path_char(s[n])) return false;
    return n > 0;
}

bool valid_child(const char* s) {
    size_t n = 0;
    for (; s[n]; ++n)
        if (n == kChildLen || s[n] == '/' || !path_char(s[n])) return false;
    return n > 0;
}

Status decode_request(const uint8_t* data, size_t len, Request& out, char* err, size_t err_len) {
    out = Request{};
    if (err && err_len) err[0] = '\0';
    moat_control_Request m = moat_control_Request_init_zero;
    pb_istream_t s = pb_istream_from_buffer(data, len);
    bool decoded = pb_decode(&s, moat_control_Request_fields, &m);
    out.seq = m.seq;   // what was read of it, for the answer
    if (!decoded) {
        say(err, err_len, "undecodable request: %s", PB_GET_ERROR(&s));
        return Status::bad_request;
    }
    int32_t version = raw_enum(m.version);
    out.version = uint32_t(version);
    if (version != int32_t(kVersion)) {
        say(err, err_len, "request speaks version %d, this toolstack version %u", int(version), kVersion);
        return Status::bad_version;
    }
    const char* name = nullptr;
    switch (m.which_op) {
    case moat_control_Request_list_tag: out.op = Op::list; break;
    case moat_control_Request_pause_tag: out.op = Op::pause, name = m.op.pause.name; break;
    case moat_control_Request_unpause_tag: out.op = Op::unpause, name = m.op.unpause.name; break;
    case moat_control_Request_shutdown_tag: out.op = Op::shutdown, name = m.op.shutdown.name; break;
    case moat_control_Request_xenstore_tag: out.op = Op::xenstore; break;
    case moat_control_Request_destroy_tag: out.op = Op::destroy, name = m.op.destroy.name; break;
    default:
        say(err, err_len, "request has no operation (list, pause, unpause, shutdown, xenstore, destroy)");
        return Status::bad_request;
    }
    if ((name || out.op == Op::xenstore) && strings_have_nul(data, len)) {
        if (out.op == Op::xenstore) {
            say(err, err_len, "xenstore: malformed path: it contains a NUL byte");
            return Status::bad_request;
        }
        say(err, err_len, "malformed domain name: it contains a NUL byte");
        return Status::bad_request;
    }
    if (out.op == Op::xenstore) {
        const moat_control_XenstoreRequest& x = m.op.xenstore;
        int32_t op = raw_enum(x.op);
        if (op <= 0 || op > int32_t(XsOp::rm)) {
            say(err, err_len, "xenstore: unknown operation %d (ls, read, write, rm)", int(op));
            return Status::bad_request;
        }
        out.xs_op = XsOp(op);
        if (!valid_path(x.path)) {
            say(err, err_len, "xenstore %s: malformed path: expected 1 to %zu of A-Z a-z 0-9 _ @ / -",
                xs_op_name(out.xs_op), kPathLen);
            return Status::bad_request;
        }
        if (out.xs_op != XsOp::write && x.value.size != 0) {
            say(err, err_len, "xenstore %s: a value is for write only", xs_op_name(out.xs_op));
            return Status::bad_request;
        }
        copy_str(out.path, sizeof out.path, x.path);
        out.value_len = uint16_t(x.value.size);
        __builtin_memcpy(out.value, x.value.bytes, x.value.size);
        return Status::ok;
    }
    // shutdown alone may name no domain (every one it controls).
    if (name && !(out.op == Op::shutdown && !name[0]) && !valid_name(name)) {
        say(err, err_len, "%s: malformed domain name: expected 1 to %zu of A-Z a-z 0-9 _ . -",
            out.op == Op::pause     ? "pause"
            : out.op == Op::unpause ? "unpause"
            : out.op == Op::destroy ? "destroy"
                                    : "shutdown",
            kNameLen);
        return Status::bad_request;
    }
    if (name) copy_str(out.name, sizeof out.name, name);
    return Status::ok;
}

size_t encode_request(const Request& r, uint8_t* out, size_t cap) {
    moat_control_Request m = moat_control_Request_init_zero;
    m.version = moat_control_Version(r.version);
    m.seq = r.seq;
    char* name = nullptr;
    switch (r.op) {
    case Op::list: m.which_op = moat_control_Request_list_tag; break;
    case Op::pause: m.which_op = moat_control_Request_pause_tag, name = m.op.pause.name; break;
    case Op::unpause: m.which_op = moat_control_Request_unpause_tag, name = m.op.unpause.name; break;
    case Op::shutdown: m.which_op = moat_control_Request_shutdown_tag, name = m.op.shutdown.name; break;
    case Op::destroy: m.which_op = moat_control_Request_destroy_tag, name = m.op.destroy.name; break;
    case Op::xenstore: {
        if (r.xs_op == XsOp::none || uint8_t(r.xs_op) > uint8_t(XsOp::rm) || r.value_len > kValueLen ||
            (r.xs_op != XsOp::write && r.value_len))
            return 0;
        bool terminated = false;
        for (char c : r.path) terminated |= c == '\0';
        if (!terminated || !valid_path(r.path)) return 0;
        m.which_op = moat_control_Request_xenstore_tag;
        m.op.xenstore.op = moat_control_XenstoreRequest_Op(r.xs_op);
        copy_str(m.op.xenstore.path, sizeof m.op.xenstore.path, r.path);
        m.op.xenstore.value.size = r.value_len;
        __builtin_memcpy(m.op.xenstore.value.bytes, r.value, r.value_len);
        break;
    }
    default: return 0;
    }
    if (name) {
        if (!(r.op == Op::shutdown && !r.name[0]) && !valid_name(r.name)) return 0;
        copy_str(name, kNameLen + 1, r.name);
    }
    pb_ostream_t s = pb_ostream_from_buffer(out, cap);
    return pb_encode(&s, moat_control_Request_fields, &m) ? s.bytes_written : 0;
}

size_t encode_response(const Response& r, uint8_t* out, size_t cap) {
    if (r.n_domains > kMaxListed || r.value_len > kValueLen || r.n_children > kMaxChildren ||
        r.status == Status::unspecified || uint8_t(r.status) > uint8_t(Status::failed))
        return 0;
    // On the toolstack's stack: ~10 KiB of its 64.
    moat_control_Response m = moat_control_Response_init_zero;
    m.version = moat_control_Version(r.version);
    m.seq = r.seq;
    m.status = moat_control_Status(r.status);
    bool terminated = false;
    for (char c : r.error) terminated |= c == '\0';
    if (!terminated || !printable(r.error)) return 0;
    copy_str(m.error, sizeof m.error, r.error);
    m.domains_count = r.n_domains;
    for (unsigned k = 0; k < r.n_domains; ++k) {
        const DomainInfo& d = r.domains[k];
        moat_control_DomainInfo& o = m.domains[k];
        if (!valid_name(d.name) || d.state == State::unspecified || uint8_t(d.state) > uint8_t(State::crashed)) return 0;
        copy_str(o.name, sizeof o.name, d.name);
        o.id = d.id;
        o.memory_kib = d.memory_kib;
        o.max_memory_kib = d.max_memory_kib;
        o.vcpus = d.vcpus;
        o.state = moat_control_State(d.state);
        o.cpu_time_ns = d.cpu_time_ns;
    }
    m.value.size = r.value_len;
    __builtin_memcpy(m.value.bytes, r.value, r.value_len);
    m.children_count = r.n_children;
    for (unsigned k = 0; k < r.n_children; ++k) {
        bool ended = false;
        for (char c : r.children[k]) ended |= c == '\0';
        if (!ended || !valid_child(r.children[k])) return 0;
        copy_str(m.children[k], sizeof m.children[k], r.children[k]);
    }
    pb_ostream_t s = pb_ostream_from_buffer(out, cap);
    return pb_encode(&s, moat_control_Response_fields, &m) ? s.bytes_written : 0;
}

bool decode_response(const uint8_t* data, size_t len, Response& out, char* err, size_t err_len) {
    out.version = out.seq = 0;
    out.status = Status::unspecified;
    out.error[0] = '\0';
    out.n_domains = 0;
    out.value_len = 0;
    out.n_children = 0;
    if (err && err_len) err[0] = '\0';
    moat_control_Response m = moat_control_Response_init_zero;
    pb_istream_t s = pb_istream_from_buffer(data, len);
    if (!pb_decode(&s, moat_control_Response_fields, &m)) {
        say(err, err_len, "undecodable response: %s", PB_GET_ERROR(&s));
        return false;
    }
    out.seq = m.seq;
    int32_t version = raw_enum(m.version), status = raw_enum(m.status);
    out.version = uint32_t(version);
    if (version != int32_t(kVersion)) {
        say(err, err_len, "response speaks version %d, not %u", int(version), kVersion);
        return false;
    }
    if (status <= 0 || status > int32_t(Status::failed)) {
        say(err, err_len, "response has unknown status %d", int(status));
        return false;
    }
    out.status = Status(status);
    // A NUL inside the error ends it early: what is shown is still one printable line.
    if (!printable(m.error)) {
        say(err, err_len, "response's error has control characters");
        return false;
    }
    copy_str(out.error, sizeof out.error, m.error);
    for (unsigned k = 0; k < m.domains_count; ++k) {
        const moat_control_DomainInfo& d = m.domains[k];
        int32_t state = raw_enum(d.state);
        if (!valid_name(d.name)) {
            say(err, err_len, "response's domains[%u] has a malformed name", k);
            return false;
        }
        if (state <= 0 || state > int32_t(State::crashed)) {
            say(err, err_len, "response's domain \"%s\" has unknown state %d", d.name, int(state));
            return false;
        }
        DomainInfo& o = out.domains[k];
        copy_str(o.name, sizeof o.name, d.name);
        o.id = d.id;
        o.memory_kib = d.memory_kib;
        o.max_memory_kib = d.max_memory_kib;
        o.vcpus = d.vcpus;
        o.state = State(state);
        o.cpu_time_ns = d.cpu_time_ns;
    }
    out.n_domains = uint16_t(m.domains_count);
    // A child's name is a path component (a NUL inside ends it early: the host
    // checks the wire's bytes with libprotobuf).
    for (unsigned k = 0; k < m.children_count; ++k) {
        if (!valid_child(m.children[k])) {
            say(err, err_len, "response's children[%u] is not a node name (1 to %zu of A-Z a-z 0-9 _ @ -)", k,
                kChildLen);
            out.n_domains = 0;
            return false;
        }
        copy_str(out.children[k], sizeof out.children[k], m.children[k]);
    }
    out.n_children = uint16_t(m.children_count);
    out.value_len = uint16_t(m.value.size);
    __builtin_memcpy(out.value, m.value.bytes, m.value.size);
    return true;
}

const char* status_name(Status s) {
    switch (s) {
    case Status::ok: return "OK";
    case Status::bad_version: return "BAD_VERSION";
    case Status::bad_request: return "BAD_REQUEST";
    case Status::no_such_domain: return "NO_SUCH_DOMAIN";
    case Status::refused: return "REFUSED";
    case Status::failed: return "FAILED";
    default: return "STATUS_UNSPECIFIED";
    }
}

const char* xs_op_name(XsOp op) {
    switch (op) {
    case XsOp::ls: return "ls";
    case XsOp::read: return "read";
    case XsOp::write: return "write";
    case XsOp::rm: return "rm";
    default: return "?";
    }
}

const char* state_name(State s) {
    switch (s) {
    case State::running: return "running";
    case State::paused: return "paused";
    case State::shutdown: return "shutdown";
    case State::crashed: return "crashed";
    default: return "?";
    }
}

}  // namespace control
