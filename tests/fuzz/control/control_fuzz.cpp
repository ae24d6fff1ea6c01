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
          q.op == control::Op::shutdown || q.op == control::Op::xenstore || q.op == control::Op::destroy);
    // destroy, like pause, names exactly one domain (never "" = every one).
    if (q.op == control::Op::pause || q.op == control::Op::unpause || q.op == control::Op::destroy)
        CHECK(control::valid_name(q.name));
    if (q.op == control::Op::shutdown) CHECK(q.name[0] == '\0' || control::valid_name(q.name));
    if (q.op == control::Op::list || q.op == control::Op::xenstore) CHECK(q.name[0] == '\0');
    if (q.op == control::Op::xenstore) {
        CHECK(q.xs_op == control::XsOp::ls || q.xs_op == control::XsOp::read || q.xs_op == control::XsOp::write ||
              q.xs_op == control::XsOp::rm);
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
}

void check_response(const uint8_t* p, size_t n) {
    static control::Response r, back;
    char err[200];
    if (!control::decode_response(p, n, r, err, sizeof err)) return;
    CHECK(r.n_domains <= control::kMaxListed);
    CHECK(r.n_children <= control::kMaxChildren && r.value_len <= control::kValueLen);
    for (unsigned k = 0; k < r.n_children; ++k) CHECK(control::valid_child(r.children[k]));
    static uint8_t again[64 * 1024];
    size_t m = control::encode_response(r, again, sizeof again);
    CHECK(m > 0);
    CHECK(control::decode_response(again, m, back, err, sizeof err));
    CHECK(back.status == r.status && back.seq == r.seq && back.n_domains == r.n_domains);
    CHECK(std::strcmp(back.error, r.error) == 0);
    CHECK(back.n_children == r.n_children && back.value_len == r.value_len &&
          std::memcmp(back.value, r.value, r.value_len) == 0);
    for (unsigned k = 0; k < r.n_children; ++k) CHECK(std::strcmp(back.children[k], r.children[k]) == 0);
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
