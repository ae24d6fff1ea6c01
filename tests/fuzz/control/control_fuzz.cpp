// libs/control as the toolstack uses it, on hostile input: bytes from COM2
// into the FrameReader, each frame it hands out decoded as a Request, and
// the input itself decoded as a Request and as a Response. Checks:
//   * the reader never holds a frame's worth of bytes after next() says
//     false, and every payload it hands out has a valid CRC and length;
//   * a request decoded OK has a known op and a valid name where one is
//     needed (a xenstore one: a known access, a valid path, a value of at
//     most 512 bytes and only for write), re-encodes, and decodes to the
//     same request;
//   * a response decoded OK has valid children's names and a value within
//     its size, re-encodes and decodes to the same response.

#include <control/frame.hpp>
#include <control/messages.hpp>

#include <base/crc32.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#define CHECK(x)                                                        \
    do {                                                                \
        if (!(x)) {                                                     \
            std::fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #x); \
            std::abort();                                               \
        }                                                               \
    } while (0)

namespace {

void check_request(const uint8_t* p, size_t n) {
    control::Request q;
    char err[200];
    control::Status s = control::decode_request(p, n, q, err, sizeof err);
    CHECK(s == control::Status::ok || s == control::Status::bad_version || s == control::Status::bad_request);
    if (s != control::Status::ok) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(q.version == control::kVersion);
    CHECK(q.op == control::Op::list || q.op == control::Op::pause || q.op == control::Op::unpause ||
          q.op == control::Op::shutdown || q.op == control::Op::xenstore || q.op == control::Op::destroy ||
          q.op == control::Op::upload || q.op == control::Op::create || q.op == control::Op::trace ||
          q.op == control::Op::console_input);
    // destroy and create, like pause, name exactly one domain (never "" = every one).
    if (q.op == control::Op::pause || q.op == control::Op::unpause || q.op == control::Op::destroy ||
        q.op == control::Op::create || q.op == control::Op::console_input)
        CHECK(control::valid_name(q.name));
    if (q.op == control::Op::console_input) CHECK(q.input_len >= 1 && q.input_len <= control::kInputLen);
    else CHECK(q.input_len == 0);
    CHECK(q.start < control::kMaxDomains && (q.op == control::Op::list || q.start == 0));
    if (q.op == control::Op::shutdown) CHECK(q.name[0] == '\0' || control::valid_name(q.name));
    if (q.op == control::Op::list || q.op == control::Op::xenstore || q.op == control::Op::upload ||
        q.op == control::Op::trace)
        CHECK(q.name[0] == '\0');
    if (q.op == control::Op::upload)
        CHECK(q.data_len >= 1 && q.data_len <= control::kUploadLen && q.offset + q.data_len <= control::kStageBytes);
    if (q.op == control::Op::create) {
        CHECK(q.memory_kib >= control::kMinCreateKib && q.memory_kib <= control::kMaxCreateKib && q.memory_kib % 4 == 0);
        CHECK(q.vcpus >= 1 && q.vcpus <= control::kMaxVcpus && control::valid_cmdline(q.cmdline));
        CHECK(q.console[0] == '\0' || control::valid_name(q.console));
        CHECK(q.xenstore[0] == '\0' || control::valid_name(q.xenstore));
        CHECK(q.net[0] == '\0' || control::valid_name(q.net));
        // A disk: a back-end and sectors that neither are zero nor overflow,
        // or nothing at all.
        if (q.blk[0])
            CHECK(control::valid_name(q.blk) && q.disk_sectors && q.disk_first + q.disk_sectors >= q.disk_first);
        else
            CHECK(!q.disk_first && !q.disk_sectors && !q.disk_read_only);
        CHECK(q.image_size >= 1 && q.image_size <= control::kStageBytes);
    }
    if (q.op == control::Op::trace)
        CHECK(q.trace_op == control::TraceOp::read || (q.trace_op != control::TraceOp::none && !q.cpu && !q.cursor));
    if (q.op == control::Op::xenstore) {
        CHECK(q.xs_op == control::XsOp::ls || q.xs_op == control::XsOp::read || q.xs_op == control::XsOp::write ||
              q.xs_op == control::XsOp::rm || q.xs_op == control::XsOp::watch ||
              q.xs_op == control::XsOp::watch_read || q.xs_op == control::XsOp::unwatch);
        CHECK(control::valid_path(q.path));
        CHECK(q.value_len <= control::kValueLen);
        CHECK(q.xs_op == control::XsOp::write || q.value_len == 0);
    } else {
        CHECK(q.xs_op == control::XsOp::none && q.path[0] == '\0' && q.value_len == 0);
    }
    uint8_t again[control::kMaxPayload];
    size_t m = control::encode_request(q, again, sizeof again);
    CHECK(m > 0);
    control::Request back;
    CHECK(control::decode_request(again, m, back, err, sizeof err) == control::Status::ok);
    CHECK(back.op == q.op && back.seq == q.seq && std::strcmp(back.name, q.name) == 0);
    CHECK(back.xs_op == q.xs_op && std::strcmp(back.path, q.path) == 0 && back.value_len == q.value_len &&
          std::memcmp(back.value, q.value, q.value_len) == 0);
    CHECK(back.offset == q.offset && back.data_len == q.data_len && std::memcmp(back.data, q.data, q.data_len) == 0);
    CHECK(back.memory_kib == q.memory_kib && back.vcpus == q.vcpus && std::strcmp(back.cmdline, q.cmdline) == 0 &&
          std::strcmp(back.console, q.console) == 0 && std::strcmp(back.xenstore, q.xenstore) == 0 &&
          std::strcmp(back.net, q.net) == 0 && std::strcmp(back.blk, q.blk) == 0 && back.disk_first == q.disk_first &&
          back.disk_sectors == q.disk_sectors && back.disk_read_only == q.disk_read_only &&
          back.image_size == q.image_size && back.image_crc32 == q.image_crc32);
    CHECK(back.trace_op == q.trace_op && back.cpu == q.cpu && back.cursor == q.cursor &&
          back.trace_kinds == q.trace_kinds);
    CHECK((q.trace_kinds & ~control::kTraceKindsAll) == 0 && (q.trace_op == control::TraceOp::start || !q.trace_kinds));
    CHECK(back.start == q.start && back.input_len == q.input_len && std::memcmp(back.input, q.input, q.input_len) == 0);
}

void check_response(const uint8_t* p, size_t n) {
    static control::Response r, back;
    char err[200];
    if (!control::decode_response(p, n, r, err, sizeof err)) return;
    CHECK(r.n_domains <= control::kMaxListed);
    CHECK(r.n_children <= control::kMaxChildren && r.value_len <= control::kValueLen);
    for (unsigned k = 0; k < r.n_children; ++k) CHECK(control::valid_child(r.children[k]));
    CHECK(r.records_len % control::kTraceRecordBytes == 0 && r.n_events <= control::kMaxEvents);
    for (unsigned k = 0; k < r.n_events; ++k) CHECK(control::valid_path(r.events[k]));
    static uint8_t again[64 * 1024];
    size_t m = control::encode_response(r, again, sizeof again);
    CHECK(m > 0);
    CHECK(control::decode_response(again, m, back, err, sizeof err));
    CHECK(back.status == r.status && back.seq == r.seq && back.n_domains == r.n_domains);
    CHECK(std::strcmp(back.error, r.error) == 0);
    CHECK(back.n_children == r.n_children && back.value_len == r.value_len &&
          std::memcmp(back.value, r.value, r.value_len) == 0);
    for (unsigned k = 0; k < r.n_children; ++k) CHECK(std::strcmp(back.children[k], r.children[k]) == 0);
    CHECK(back.records_len == r.records_len && std::memcmp(back.records, r.records, r.records_len) == 0 &&
          back.next == r.next && back.lost == r.lost && back.cpus == r.cpus && back.free_memory_kib == r.free_memory_kib);
    CHECK(back.n_events == r.n_events && back.total == r.total && r.total <= control::kMaxDomains);
    for (unsigned k = 0; k < r.n_events; ++k) CHECK(std::strcmp(back.events[k], r.events[k]) == 0);
    for (unsigned k = 0; k < r.n_domains; ++k) {
        CHECK(std::strcmp(back.domains[k].name, r.domains[k].name) == 0);
        CHECK(back.domains[k].state == r.domains[k].state && back.domains[k].cpu_time_ns == r.domains[k].cpu_time_ns);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static control::FrameReader reader;
    reader.reset();
    for (size_t i = 0; i < size; ++i) {
        reader.put(data[i]);
        while (reader.next()) {
            const uint8_t* p = reader.payload();
            size_t n = reader.payload_len();
            CHECK(n <= control::kMaxPayload);
            // The header the payload came with checks.
            const uint8_t* h = p - control::kHeaderBytes;
            CHECK(h[0] == 'M' && h[1] == 'C' && size_t(h[2] | h[3] << 8) == n);
            CHECK((uint32_t(h[4]) | uint32_t(h[5]) << 8 | uint32_t(h[6]) << 16 | uint32_t(h[7]) << 24) ==
                  base::crc32(p, n));
            check_request(p, n);
        }
        CHECK(reader.pending() < control::kMaxFrame);
    }
    // Frames are rare in random bytes: the decoders see the raw input too.
    check_request(data, size);
    check_response(data, size);
    return 0;
}
