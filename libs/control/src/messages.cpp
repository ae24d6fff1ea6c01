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
              moat_control_XenstoreRequest_Op_RM == int(XsOp::rm) &&
              moat_control_XenstoreRequest_Op_WATCH == int(XsOp::watch) &&
              moat_control_XenstoreRequest_Op_WATCH_READ == int(XsOp::watch_read) &&
              moat_control_XenstoreRequest_Op_UNWATCH == int(XsOp::unwatch));
static_assert(moat_control_Request_upload_tag == unsigned(Op::upload) &&
              moat_control_Request_create_tag == unsigned(Op::create) &&
              moat_control_Request_trace_tag == unsigned(Op::trace) &&
              moat_control_TraceRequest_Op_START == int(TraceOp::start) &&
              moat_control_TraceRequest_Op_READ == int(TraceOp::read) &&
              moat_control_TraceRequest_Op_STOP == int(TraceOp::stop));
static_assert(sizeof(moat_control_UploadRequest{}.data.bytes) == kUploadLen);
static_assert(moat_control_Request_console_input_tag == unsigned(Op::console_input) &&
              sizeof(moat_control_ConsoleInput{}.name) == kNameLen + 1 &&
              sizeof(moat_control_ConsoleInput{}.data.bytes) == kInputLen);
static_assert(sizeof(moat_control_CreateRequest{}.name) == kNameLen + 1 &&
              sizeof(moat_control_CreateRequest{}.cmdline) == kCmdlineLen + 1 &&
              sizeof(moat_control_CreateRequest{}.console) == kNameLen + 1 &&
              sizeof(moat_control_CreateRequest{}.xenstore) == kNameLen + 1);
static_assert(sizeof(moat_control_Response{}.records.bytes) == kRecordsLen && kRecordsLen % kTraceRecordBytes == 0);
static_assert(sizeof(moat_control_Response{}.events) / sizeof(moat_control_Response{}.events[0]) == kMaxEvents &&
              sizeof(moat_control_Response{}.events[0]) == kPathLen + 1);
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
// operation (a domain's name: field 1 of pause, unpause, shutdown, destroy,
// create; a path: field 2 of xenstore; create's cmdline, console, xenstore,
// net and blk: fields 4 to 6, 9 and 10) are looked at as bytes on the wire: each
// occurrence (protobuf keeps the last, nanopb merges) must be free of NULs.
uint32_t string_fields(uint32_t op_tag) {   // a bit per field number
    switch (op_tag) {
    case moat_control_Request_pause_tag:
    case moat_control_Request_unpause_tag:
    case moat_control_Request_shutdown_tag:
    case moat_control_Request_destroy_tag:
    case moat_control_Request_console_input_tag: return 1u << 1;
    case moat_control_Request_xenstore_tag: return 1u << 2;
    case moat_control_Request_create_tag: return 1u << 1 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 9 | 1u << 10;
    default: return 0;
    }
}

bool strings_have_nul(const uint8_t* data, size_t len) {
    pb_istream_t s = pb_istream_from_buffer(data, len);
    pb_wire_type_t wt;
    uint32_t tag;
    bool eof;
    while (pb_decode_tag(&s, &wt, &tag, &eof)) {
        uint32_t fields = string_fields(tag);
        if (!fields || wt != PB_WT_STRING) {
            if (!pb_skip_field(&s, wt)) return true;
            continue;
        }
        pb_istream_t sub;
        if (!pb_make_string_substream(&s, &sub)) return true;
        while (pb_decode_tag(&sub, &wt, &tag, &eof)) {
            if (tag >= 32 || !(fields & (1u << tag)) || wt != PB_WT_STRING) {
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

bool nul_within(const char* s, size_t cap) {
    for (size_t i = 0; i < cap; ++i)
        if (!s[i]) return true;
    return false;
}

bool name_or_empty(const char* s, size_t cap) { return nul_within(s, cap) && (!s[0] || valid_name(s)); }

// The checks decode_request makes of an upload, create or trace, shared
// with the encoder (which refuses what the decoder would).
const char* upload_problem(uint32_t offset, size_t data_len) {
    if (data_len == 0 || data_len > kUploadLen) return "upload: expected 1 to 768 bytes of data";
    if (offset > kStageBytes || data_len > kStageBytes - offset)
        return "upload: the piece ends beyond the staging area (4 MiB)";
    return nullptr;
}

// The disk fields of a create: a back-end and sectors, or nothing at all.
const char* disk_problem(const char* blk, uint64_t first, uint64_t sectors, bool read_only) {
    if (!name_or_empty(blk, kNameLen + 1)) return "create: the disk's back-end (blk) must be a domain name or empty";
    if (!blk[0]) return first || sectors || read_only ? "create: disk sectors without a disk back-end (blk)" : nullptr;
    if (sectors == 0) return "create: a disk of no sectors";
    if (first + sectors < first) return "create: the disk's sectors overflow";
    return nullptr;
}

const char* create_problem(const char* name, uint64_t memory_kib, uint32_t vcpus, const char* cmdline,
                           const char* console, const char* xenstore, const char* net, uint32_t image_size) {
    if (!valid_name(name)) return "create: malformed domain name: expected 1 to 32 of A-Z a-z 0-9 _ . -";
    if (memory_kib < kMinCreateKib || memory_kib > kMaxCreateKib || memory_kib % 4)
        return "create: memory must be whole pages from 1 MiB to 1 TiB";
    if (vcpus == 0 || vcpus > kMaxVcpus) return "create: vcpus must be 1 to 128";
    if (!valid_cmdline(cmdline)) return "create: the command line must be at most 255 printable bytes";
    if (!name_or_empty(console, kNameLen + 1) || !name_or_empty(xenstore, kNameLen + 1) ||
        !name_or_empty(net, kNameLen + 1))
        return "create: a back-end (console, xenstore, net) must be a domain name or empty";
    if (image_size == 0 || image_size > kStageBytes) return "create: the image must be 1 byte to 4 MiB";
    return nullptr;
}

bool valid_upload(const Request& r) { return !upload_problem(r.offset, r.data_len); }

bool valid_create(const Request& r) {
    return nul_within(r.name, sizeof r.name) && nul_within(r.cmdline, sizeof r.cmdline) &&
           nul_within(r.console, sizeof r.console) && nul_within(r.xenstore, sizeof r.xenstore) &&
           nul_within(r.net, sizeof r.net) && nul_within(r.blk, sizeof r.blk) &&
           !create_problem(r.name, r.memory_kib, r.vcpus, r.cmdline, r.console, r.xenstore, r.net, r.image_size) &&
           !disk_problem(r.blk, r.disk_first, r.disk_sectors, r.disk_read_only);
}

Status decode_upload(const moat_control_UploadRequest& u, Request& out, char* err, size_t err_len) {
    if (const char* why = upload_problem(u.offset, u.data.size)) {
        say(err, err_len, "%s", why);
        return Status::bad_request;
    }
    out.offset = u.offset;
    out.data_len = uint16_t(u.data.size);
    __builtin_memcpy(out.data, u.data.bytes, u.data.size);
    return Status::ok;
}

Status decode_create(const moat_control_CreateRequest& c, Request& out, char* err, size_t err_len) {
    if (const char* why =
            create_problem(c.name, c.memory_kib, c.vcpus, c.cmdline, c.console, c.xenstore, c.net, c.image_size)) {
        say(err, err_len, "%s", why);
        return Status::bad_request;
    }
    if (const char* why = disk_problem(c.blk, c.disk_first_sector, c.disk_sectors, c.disk_read_only)) {
        say(err, err_len, "%s", why);
        return Status::bad_request;
    }
    copy_str(out.name, sizeof out.name, c.name);
    out.memory_kib = c.memory_kib;
    out.vcpus = c.vcpus;
    copy_str(out.cmdline, sizeof out.cmdline, c.cmdline);
    copy_str(out.console, sizeof out.console, c.console);
    copy_str(out.xenstore, sizeof out.xenstore, c.xenstore);
    copy_str(out.net, sizeof out.net, c.net);
    copy_str(out.blk, sizeof out.blk, c.blk);
    out.disk_first = c.disk_first_sector;
    out.disk_sectors = c.disk_sectors;
    out.disk_read_only = c.disk_read_only;
    out.image_size = c.image_size;
    out.image_crc32 = c.image_crc32;
    return Status::ok;
}

Status decode_trace(const moat_control_TraceRequest& t, Request& out, char* err, size_t err_len) {
    int32_t op = raw_enum(t.op);
    if (op <= 0 || op > int32_t(TraceOp::stop)) {
        say(err, err_len, "trace: unknown operation %d (start, read, stop)", int(op));
        return Status::bad_request;
    }
    out.trace_op = TraceOp(op);
    if (out.trace_op != TraceOp::read && (t.cpu || t.cursor)) {
        say(err, err_len, "trace %s: cpu and cursor are for read only", trace_op_name(out.trace_op));
        return Status::bad_request;
    }
    if (t.kinds & ~(out.trace_op == TraceOp::start ? kTraceKindsAll : 0u)) {
        say(err, err_len, "trace %s: kinds 0x%x: only a start names kinds, bits 1 to 5", trace_op_name(out.trace_op),
            unsigned(t.kinds));
        return Status::bad_request;
    }
    out.trace_kinds = t.kinds;
    out.cpu = t.cpu;
    out.cursor = t.cursor;
    return Status::ok;
}

}  // namespace

bool valid_cmdline(const char* s) {
    size_t n = 0;
    for (; s[n]; ++n)
        if (n == kCmdlineLen || uint8_t(s[n]) < 0x20 || uint8_t(s[n]) >= 0x7f) return false;
    return true;
}

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
    case moat_control_Request_list_tag:
        out.op = Op::list;
        if (m.op.list.start >= kMaxDomains) {
            say(err, err_len, "list: start %u is past the %u domains there can be", unsigned(m.op.list.start),
                unsigned(kMaxDomains));
            return Status::bad_request;
        }
        out.start = m.op.list.start;
        break;
    case moat_control_Request_pause_tag: out.op = Op::pause, name = m.op.pause.name; break;
    case moat_control_Request_unpause_tag: out.op = Op::unpause, name = m.op.unpause.name; break;
    case moat_control_Request_shutdown_tag: out.op = Op::shutdown, name = m.op.shutdown.name; break;
    case moat_control_Request_xenstore_tag: out.op = Op::xenstore; break;
    case moat_control_Request_destroy_tag: out.op = Op::destroy, name = m.op.destroy.name; break;
    case moat_control_Request_upload_tag: out.op = Op::upload; break;
    case moat_control_Request_create_tag: out.op = Op::create; break;
    case moat_control_Request_trace_tag: out.op = Op::trace; break;
    case moat_control_Request_console_input_tag: out.op = Op::console_input, name = m.op.console_input.name; break;
    default:
        say(err, err_len,
            "request has no operation (list, pause, unpause, shutdown, xenstore, destroy, upload, create, trace, "
            "console_input)");
        return Status::bad_request;
    }
    if ((name || out.op == Op::xenstore || out.op == Op::create) && strings_have_nul(data, len)) {
        if (out.op == Op::xenstore) {
            say(err, err_len, "xenstore: malformed path: it contains a NUL byte");
            return Status::bad_request;
        }
        if (out.op == Op::create) {
            say(err, err_len, "create: a string (name, cmdline, console, xenstore, net, blk) contains a NUL byte");
            return Status::bad_request;
        }
        say(err, err_len, "malformed domain name: it contains a NUL byte");
        return Status::bad_request;
    }
    if (out.op == Op::upload) return decode_upload(m.op.upload, out, err, err_len);
    if (out.op == Op::create) return decode_create(m.op.create, out, err, err_len);
    if (out.op == Op::trace) return decode_trace(m.op.trace, out, err, err_len);
    if (out.op == Op::xenstore) {
        const moat_control_XenstoreRequest& x = m.op.xenstore;
        int32_t op = raw_enum(x.op);
        if (op <= 0 || op > int32_t(XsOp::unwatch)) {
            say(err, err_len, "xenstore: unknown operation %d (ls, read, write, rm, watch, watch_read, unwatch)",
                int(op));
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
            : out.op == Op::console_input ? "console_input"
                                    : "shutdown",
            kNameLen);
        return Status::bad_request;
    }
    if (name) copy_str(out.name, sizeof out.name, name);
    if (out.op == Op::console_input) {
        const auto& in = m.op.console_input.data;
        if (in.size == 0 || in.size > kInputLen) {
            say(err, err_len, "console_input: expected 1 to %zu bytes of input", kInputLen);
            return Status::bad_request;
        }
        out.input_len = uint16_t(in.size);
        __builtin_memcpy(out.input, in.bytes, in.size);
    }
    return Status::ok;
}

size_t encode_request(const Request& r, uint8_t* out, size_t cap) {
    moat_control_Request m = moat_control_Request_init_zero;
    m.version = moat_control_Version(r.version);
    m.seq = r.seq;
    char* name = nullptr;
    switch (r.op) {
    case Op::list:
        if (r.start >= kMaxDomains) return 0;
        m.which_op = moat_control_Request_list_tag;
        m.op.list.start = r.start;
        break;
    case Op::console_input:
        if (r.input_len == 0 || r.input_len > kInputLen) return 0;
        m.which_op = moat_control_Request_console_input_tag, name = m.op.console_input.name;
        m.op.console_input.data.size = r.input_len;
        __builtin_memcpy(m.op.console_input.data.bytes, r.input, r.input_len);
        break;
    case Op::pause: m.which_op = moat_control_Request_pause_tag, name = m.op.pause.name; break;
    case Op::unpause: m.which_op = moat_control_Request_unpause_tag, name = m.op.unpause.name; break;
    case Op::shutdown: m.which_op = moat_control_Request_shutdown_tag, name = m.op.shutdown.name; break;
    case Op::destroy: m.which_op = moat_control_Request_destroy_tag, name = m.op.destroy.name; break;
    case Op::xenstore: {
        if (r.xs_op == XsOp::none || uint8_t(r.xs_op) > uint8_t(XsOp::unwatch) || r.value_len > kValueLen ||
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
    case Op::upload:
        if (!valid_upload(r)) return 0;
        m.which_op = moat_control_Request_upload_tag;
        m.op.upload.offset = r.offset;
        m.op.upload.data.size = r.data_len;
        __builtin_memcpy(m.op.upload.data.bytes, r.data, r.data_len);
        break;
    case Op::create: {
        if (!valid_create(r)) return 0;
        moat_control_CreateRequest& c = m.op.create;
        m.which_op = moat_control_Request_create_tag;
        copy_str(c.name, sizeof c.name, r.name);
        c.memory_kib = r.memory_kib;
        c.vcpus = r.vcpus;
        copy_str(c.cmdline, sizeof c.cmdline, r.cmdline);
        copy_str(c.console, sizeof c.console, r.console);
        copy_str(c.xenstore, sizeof c.xenstore, r.xenstore);
        copy_str(c.net, sizeof c.net, r.net);
        copy_str(c.blk, sizeof c.blk, r.blk);
        c.disk_first_sector = r.disk_first;
        c.disk_sectors = r.disk_sectors;
        c.disk_read_only = r.disk_read_only;
        c.image_size = r.image_size;
        c.image_crc32 = r.image_crc32;
        break;
    }
    case Op::trace:
        if (r.trace_op == TraceOp::none || uint8_t(r.trace_op) > uint8_t(TraceOp::stop) ||
            (r.trace_op != TraceOp::read && (r.cpu || r.cursor)) ||
            (r.trace_kinds & ~(r.trace_op == TraceOp::start ? kTraceKindsAll : 0u)))
            return 0;
        m.which_op = moat_control_Request_trace_tag;
        m.op.trace.op = moat_control_TraceRequest_Op(r.trace_op);
        m.op.trace.cpu = r.cpu;
        m.op.trace.cursor = r.cursor;
        m.op.trace.kinds = r.trace_kinds;
        break;
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
    if (r.n_domains > kMaxListed || r.value_len > kValueLen || r.n_children > kMaxChildren || r.total > kMaxDomains ||
        r.records_len > kRecordsLen || r.records_len % kTraceRecordBytes || r.n_events > kMaxEvents ||
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
        o.events_sent = d.events_sent;
        o.grant_ops = d.grant_ops;
        o.grant_copy_bytes = d.grant_copy_bytes;
    }
    m.free_memory_kib = r.free_memory_kib;
    m.total = r.total;
    m.records.size = r.records_len;
    __builtin_memcpy(m.records.bytes, r.records, r.records_len);
    m.next = r.next;
    m.lost = r.lost;
    m.cpus = r.cpus;
    m.events_count = r.n_events;
    for (unsigned k = 0; k < r.n_events; ++k) {
        if (!nul_within(r.events[k], sizeof r.events[k]) || !valid_path(r.events[k])) return 0;
        copy_str(m.events[k], sizeof m.events[k], r.events[k]);
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
    out.free_memory_kib = 0;
    out.total = 0;
    out.records_len = 0;
    out.next = out.lost = 0;
    out.cpus = 0;
    out.n_events = 0;
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
        o.events_sent = d.events_sent;
        o.grant_ops = d.grant_ops;
        o.grant_copy_bytes = d.grant_copy_bytes;
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
    if (m.records.size % kTraceRecordBytes) {
        say(err, err_len, "response's records are not whole records (%u bytes)", unsigned(m.records.size));
        out.n_domains = out.n_children = 0;
        return false;
    }
    for (unsigned k = 0; k < m.events_count; ++k) {
        if (!valid_path(m.events[k])) {
            say(err, err_len, "response's events[%u] is not a XenStore path", k);
            out.n_domains = out.n_children = 0;
            return false;
        }
        copy_str(out.events[k], sizeof out.events[k], m.events[k]);
    }
    out.n_events = uint16_t(m.events_count);
    if (m.total > kMaxDomains) {
        say(err, err_len, "response's total %u is over the %u domains there can be", unsigned(m.total),
            unsigned(kMaxDomains));
        out.n_domains = out.n_children = out.n_events = 0;
        return false;
    }
    out.total = m.total;
    out.free_memory_kib = m.free_memory_kib;
    out.records_len = uint16_t(m.records.size);
    __builtin_memcpy(out.records, m.records.bytes, m.records.size);
    out.next = m.next;
    out.lost = m.lost;
    out.cpus = m.cpus;
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
    case XsOp::watch: return "watch";
    case XsOp::watch_read: return "watch_read";
    case XsOp::unwatch: return "unwatch";
    default: return "?";
    }
}

const char* trace_op_name(TraceOp op) {
    switch (op) {
    case TraceOp::start: return "start";
    case TraceOp::read: return "read";
    case TraceOp::stop: return "stop";
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
