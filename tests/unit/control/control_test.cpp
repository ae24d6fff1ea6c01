// libs/control: frames and messages of the control channel.

#include <control/frame.hpp>
#include <control/messages.hpp>

#include <base/crc32.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;

Bytes frame(const Bytes& payload) {
    Bytes out(control::kMaxFrame);
    size_t n = control::encode_frame(payload.data(), payload.size(), out.data(), out.size());
    out.resize(n);
    return out;
}

// Feeds bytes; returns every payload the reader hands out.
std::vector<Bytes> feed(control::FrameReader& r, const Bytes& in) {
    std::vector<Bytes> got;
    for (uint8_t b : in) {
        r.put(b);
        while (r.next()) got.emplace_back(r.payload(), r.payload() + r.payload_len());
    }
    return got;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

Bytes text(const char* s) { return Bytes(s, s + std::strlen(s)); }

TEST(ControlFrame, HeaderIsMagicLengthCrc) {
    Bytes f = frame(text("123456789"));
    ASSERT_EQ(f.size(), 8u + 9);
    EXPECT_EQ(f[0], 'M');
    EXPECT_EQ(f[1], 'C');
    EXPECT_EQ(f[2], 9);
    EXPECT_EQ(f[3], 0);
    // zlib's crc32("123456789"), little endian.
    EXPECT_EQ(f[4] | f[5] << 8 | f[6] << 16 | uint32_t(f[7]) << 24, 0xcbf43926u);
}

TEST(ControlFrame, EncodeRefusesOversizedOrNoRoom) {
    Bytes big(control::kMaxPayload + 1, 'x'), out(2 * control::kMaxFrame);
    EXPECT_EQ(control::encode_frame(big.data(), big.size(), out.data(), out.size()), 0u);
    EXPECT_EQ(control::encode_frame(big.data(), control::kMaxPayload, out.data(), out.size()), control::kMaxFrame);
    EXPECT_EQ(control::encode_frame(big.data(), 10, out.data(), 17), 0u);
    EXPECT_EQ(control::encode_frame(big.data(), 10, out.data(), 18), 18u);
}

TEST(ControlFrame, RoundTripsEmptyAndFullPayloads) {
    control::FrameReader r;
    Bytes full(control::kMaxPayload);
    for (size_t i = 0; i < full.size(); ++i) full[i] = uint8_t(i * 7);
    auto got = feed(r, cat({frame({}), frame(full), frame(text("x"))}));
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(got[0].empty());
    EXPECT_EQ(got[1], full);
    EXPECT_EQ(got[2], text("x"));
    EXPECT_EQ(r.bad_frames(), 0u);
    EXPECT_EQ(r.skipped_bytes(), 0u);
}

TEST(ControlFrame, TruncatedFrameWaitsThenCompletes) {
    control::FrameReader r;
    Bytes f = frame(text("hello"));
    auto got = feed(r, Bytes(f.begin(), f.end() - 1));
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(r.pending(), f.size() - 1);
    got = feed(r, Bytes(f.end() - 1, f.end()));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("hello"));
    EXPECT_EQ(r.pending(), 0u);
}

TEST(ControlFrame, ResetForgetsAHalfFrame) {
    control::FrameReader r;
    Bytes f = frame(text("hello"));
    (void)feed(r, Bytes(f.begin(), f.begin() + 5));
    r.reset();
    auto got = feed(r, f);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("hello"));
}

TEST(ControlFrame, OversizedLengthIsDroppedAndNextFrameFound) {
    control::FrameReader r;
    // A header claiming 1025 bytes: never waited for.
    Bytes bad = {'M', 'C', 0x01, 0x04, 0, 0, 0, 0};
    auto got = feed(r, cat({bad, frame(text("ok"))}));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("ok"));
    EXPECT_EQ(r.bad_frames(), 1u);
}

TEST(ControlFrame, BadCrcIsDroppedAndNextFrameFound) {
    control::FrameReader r;
    Bytes f = frame(text("payload"));
    f.back() ^= 1;
    auto got = feed(r, cat({f, frame(text("second"))}));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("second"));
    EXPECT_EQ(r.bad_frames(), 1u);
}

TEST(ControlFrame, ResyncAfterGarbage) {
    control::FrameReader r;
    // Junk with stray magic bytes, then two frames.
    Bytes junk = text("xxMxMCMMC\x03");
    auto got = feed(r, cat({junk, frame(text("a")), frame(text("b"))}));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], text("a"));
    EXPECT_EQ(got[1], text("b"));
    EXPECT_GE(r.skipped_bytes(), junk.size());
}

TEST(ControlFrame, FrameHiddenInsideABadFrameIsFound) {
    control::FrameReader r;
    // A header claiming 40 bytes whose payload is a whole valid frame, then
    // junk: the outer frame's CRC fails, and the inner one is found.
    Bytes inner = frame(text("inner"));
    Bytes outer = {'M', 'C', 40, 0, 1, 2, 3, 4};
    Bytes body = inner;
    body.resize(40, 'z');
    auto got = feed(r, cat({outer, body}));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("inner"));
    EXPECT_EQ(r.bad_frames(), 1u);
}

TEST(ControlFrame, EndlessGarbageHoldsLessThanAFrame) {
    control::FrameReader r;
    Bytes junk(100000);
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = i % 3 ? 'M' : 'C';
    EXPECT_TRUE(feed(r, junk).empty());
    EXPECT_LT(r.pending(), control::kMaxFrame);
    auto got = feed(r, frame(text("after")));
    // The held junk may swallow a few bytes of the frame's start only if they
    // could be part of a frame; a valid frame after junk is still found.
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], text("after"));
}

// ---- messages ----

control::Request request(control::Op op, const char* name = "", uint32_t seq = 7) {
    control::Request q{};
    q.version = control::kVersion;
    q.seq = seq;
    q.op = op;
    std::strncpy(q.name, name, sizeof q.name - 1);
    return q;
}

Bytes encode(const control::Request& q) {
    Bytes out(control::kMaxPayload);
    size_t n = control::encode_request(q, out.data(), out.size());
    out.resize(n);
    return out;
}

control::Status decode(const Bytes& b, control::Request& q, std::string* why = nullptr) {
    char err[200];
    control::Status s = control::decode_request(b.data(), b.size(), q, err, sizeof err);
    if (why) *why = err;
    return s;
}

TEST(ControlMessages, EveryRequestRoundTrips) {
    struct {
        control::Op op;
        const char* name;
    } cases[] = {{control::Op::list, ""},      {control::Op::pause, "ping"},  {control::Op::unpause, "a.b-c_9"},
                 {control::Op::shutdown, ""}, {control::Op::shutdown, "pong"},
                 {control::Op::pause, "abcdefghijklmnopqrstuvwxyz012345"}, {control::Op::destroy, "pong"}};
    for (auto& c : cases) {
        control::Request q = request(c.op, c.name, 0xfffffff0u), back{};
        Bytes b = encode(q);
        ASSERT_FALSE(b.empty()) << c.name;
        ASSERT_EQ(decode(b, back), control::Status::ok) << c.name;
        EXPECT_EQ(back.op, c.op);
        EXPECT_EQ(back.seq, 0xfffffff0u);
        EXPECT_EQ(back.version, control::kVersion);
        EXPECT_STREQ(back.name, c.name);
    }
}

TEST(ControlMessages, EncodeRefusesBadNames) {
    EXPECT_TRUE(encode(request(control::Op::pause, "")).empty());
    EXPECT_TRUE(encode(request(control::Op::pause, "bad name")).empty());
    EXPECT_TRUE(encode(request(control::Op::unpause, "x/y")).empty());
    // destroy names one domain: never "every one", as shutdown's empty name is.
    EXPECT_TRUE(encode(request(control::Op::destroy, "")).empty());
    EXPECT_TRUE(encode(request(control::Op::destroy, "a b")).empty());
    EXPECT_TRUE(encode(request(control::Op::none)).empty());
}

TEST(ControlMessages, WrongVersionIsBadVersionWithSeq) {
    control::Request q = request(control::Op::list, "", 42), back{};
    q.version = 2;
    std::string why;
    EXPECT_EQ(decode(encode(q), back, &why), control::Status::bad_version);
    EXPECT_EQ(back.seq, 42u);
    EXPECT_EQ(back.version, 2u);
    EXPECT_NE(why.find("version 2"), std::string::npos) << why;
    q.version = 0;   // unset
    EXPECT_EQ(decode(encode(q), back), control::Status::bad_version);
}

// Hand-written protobuf: tag, then the value.
Bytes varint_field(uint32_t field, uint64_t v) {
    Bytes b = {uint8_t(field << 3)};
    do {
        b.push_back(uint8_t((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
    return b;
}
Bytes bytes_field(uint32_t field, const Bytes& v) {
    Bytes b = {uint8_t(field << 3 | 2), uint8_t(v.size())};
    b.insert(b.end(), v.begin(), v.end());
    return b;
}

TEST(ControlMessages, UnknownFieldsAreSkipped) {
    control::Request q{};
    // version 1, seq 5, a varint field 15 and a bytes field 14 we do not know, list.
    Bytes b = cat({varint_field(1, 1), varint_field(2, 5), varint_field(15, 99), bytes_field(14, text("zz")),
                   bytes_field(3, {})});
    EXPECT_EQ(decode(b, q), control::Status::ok);
    EXPECT_EQ(q.op, control::Op::list);
    EXPECT_EQ(q.seq, 5u);
}

TEST(ControlMessages, UnknownOperationIsBadRequest) {
    control::Request q{};
    std::string why;
    // Field 14: an operation of a later version.
    Bytes b = cat({varint_field(1, 1), varint_field(2, 9), bytes_field(14, bytes_field(1, text("ping")))});
    EXPECT_EQ(decode(b, q, &why), control::Status::bad_request);
    EXPECT_EQ(q.seq, 9u);
    EXPECT_NE(why.find("no operation"), std::string::npos) << why;
}

TEST(ControlMessages, MalformedNamesAreBadRequest) {
    auto with_name = [](uint32_t op, const Bytes& name) {
        return cat({varint_field(1, 1), varint_field(2, 3), bytes_field(op, bytes_field(1, name))});
    };
    control::Request q{};
    std::string why;
    EXPECT_EQ(decode(with_name(4, text("")), q), control::Status::bad_request);    // pause needs a name
    EXPECT_EQ(decode(with_name(5, text("a b")), q), control::Status::bad_request);
    EXPECT_EQ(decode(with_name(4, Bytes(33, 'a')), q, &why), control::Status::bad_request);   // 33 bytes
    EXPECT_EQ(decode(with_name(6, text("ok\n")), q), control::Status::bad_request);
    // A NUL inside would pass for "ping" if the bytes were not looked at.
    Bytes nul = text("ping");
    nul.push_back(0);
    nul.push_back('x');
    EXPECT_EQ(decode(with_name(4, nul), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("NUL"), std::string::npos) << why;
    EXPECT_EQ(decode(with_name(6, text("")), q), control::Status::ok);   // shutdown of everything
    EXPECT_EQ(q.op, control::Op::shutdown);
    // destroy (field 8): one domain, checked as pause's; no empty name (no
    // "destroy everything"), no NUL inside.
    EXPECT_EQ(decode(with_name(8, text("")), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("destroy"), std::string::npos) << why;
    EXPECT_EQ(decode(with_name(8, nul), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("NUL"), std::string::npos) << why;
    EXPECT_EQ(decode(with_name(8, text("x/y")), q), control::Status::bad_request);
    EXPECT_EQ(decode(with_name(8, text("pong")), q), control::Status::ok);
    EXPECT_EQ(q.op, control::Op::destroy);
    EXPECT_STREQ(q.name, "pong");
}

TEST(ControlMessages, TruncatedAndGarbageRequestsAreBadRequest) {
    Bytes b = encode(request(control::Op::pause, "ping"));
    control::Request q{};
    for (size_t n = 0; n < b.size(); ++n) {
        control::Status s = decode(Bytes(b.begin(), b.begin() + long(n)), q);
        EXPECT_NE(s, control::Status::ok) << "prefix of " << n << " bytes";
    }
    EXPECT_EQ(decode(text("\xff\xff\xff\xff"), q), control::Status::bad_request);
}

control::Response response() {
    control::Response r{};
    r.version = control::kVersion;
    r.seq = 11;
    r.status = control::Status::ok;
    const char* names[] = {"toolstack", "ping", "pong"};
    control::State states[] = {control::State::running, control::State::paused, control::State::crashed};
    for (int i = 0; i < 3; ++i) {
        control::DomainInfo& d = r.domains[r.n_domains++];
        std::strcpy(d.name, names[i]);
        d.id = uint32_t(3 + i);
        d.memory_kib = 16384 - uint64_t(i);
        d.max_memory_kib = 16384;
        d.vcpus = 1;
        d.state = states[i];
        d.cpu_time_ns = 123456789012ull * uint64_t(i);
    }
    return r;
}

TEST(ControlMessages, ResponsesRoundTrip) {
    control::Response r = response();
    Bytes b(control::kMaxPayload);
    size_t n = control::encode_response(r, b.data(), b.size());
    ASSERT_GT(n, 0u);
    control::Response back{};
    char err[200];
    ASSERT_TRUE(control::decode_response(b.data(), n, back, err, sizeof err)) << err;
    EXPECT_EQ(back.seq, 11u);
    EXPECT_EQ(back.status, control::Status::ok);
    ASSERT_EQ(back.n_domains, 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_STREQ(back.domains[i].name, r.domains[i].name);
        EXPECT_EQ(back.domains[i].id, r.domains[i].id);
        EXPECT_EQ(back.domains[i].memory_kib, r.domains[i].memory_kib);
        EXPECT_EQ(back.domains[i].max_memory_kib, r.domains[i].max_memory_kib);
        EXPECT_EQ(back.domains[i].vcpus, 1u);
        EXPECT_EQ(back.domains[i].state, r.domains[i].state);
        EXPECT_EQ(back.domains[i].cpu_time_ns, r.domains[i].cpu_time_ns);
    }
    // Every error status, with its reason.
    for (auto s : {control::Status::bad_version, control::Status::bad_request, control::Status::no_such_domain,
                   control::Status::refused, control::Status::failed}) {
        control::Response e{};
        e.version = control::kVersion;
        e.seq = 1;
        e.status = s;
        std::strcpy(e.error, "pause \"loner\": no Domain capability with the control right");
        n = control::encode_response(e, b.data(), b.size());
        ASSERT_GT(n, 0u);
        ASSERT_TRUE(control::decode_response(b.data(), n, back, err, sizeof err)) << err;
        EXPECT_EQ(back.status, s);
        EXPECT_STREQ(back.error, e.error);
        EXPECT_EQ(back.n_domains, 0u);
    }
}

TEST(ControlMessages, EncodeResponseRefusesBadFields) {
    Bytes b(control::kMaxPayload);
    control::Response r = response();
    r.domains[1].state = control::State::unspecified;
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    r = response();
    std::strcpy(r.domains[0].name, "no spaces");
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    r = response();
    r.status = control::Status::unspecified;
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    r = response();
    std::strcpy(r.error, "two\nlines");
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    // Too large for the buffer: refused, not cut.
    r = response();
    EXPECT_EQ(control::encode_response(r, b.data(), 20), 0u);
}

TEST(ControlMessages, AFullListFitsOrIsRefused) {
    // kMaxListed domains with the longest names do not fit in one frame: the
    // encoder says so (the toolstack then lists fewer).
    control::Response r{};
    r.version = control::kVersion;
    r.status = control::Status::ok;
    r.n_domains = control::kMaxListed;
    for (auto& d : r.domains) {
        std::memset(d.name, 'n', control::kNameLen);
        d.name[control::kNameLen] = 0;
        d.state = control::State::running;
        d.cpu_time_ns = ~0ull;
    }
    Bytes b(control::kMaxPayload);
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    r.n_domains = 10;
    EXPECT_GT(control::encode_response(r, b.data(), b.size()), 0u);
}

TEST(ControlMessages, DecodeResponseChecksFields) {
    char err[200];
    control::Response back{};
    // status 9, state 7, version 3: each refused.
    Bytes bad_status = cat({varint_field(1, 1), varint_field(3, 9)});
    EXPECT_FALSE(control::decode_response(bad_status.data(), bad_status.size(), back, err, sizeof err));
    EXPECT_NE(std::string(err).find("status 9"), std::string::npos) << err;
    Bytes bad_state = cat({varint_field(1, 1), varint_field(3, 1), bytes_field(5, cat({bytes_field(1, text("a")), varint_field(6, 7)}))});
    EXPECT_FALSE(control::decode_response(bad_state.data(), bad_state.size(), back, err, sizeof err));
    Bytes bad_version = cat({varint_field(1, 3), varint_field(3, 1)});
    EXPECT_FALSE(control::decode_response(bad_version.data(), bad_version.size(), back, err, sizeof err));
}

TEST(ControlMessages, ValidName) {
    EXPECT_TRUE(control::valid_name("a"));
    EXPECT_TRUE(control::valid_name("abcdefghijklmnopqrstuvwxyz012345"));
    EXPECT_FALSE(control::valid_name("abcdefghijklmnopqrstuvwxyz0123456"));
    EXPECT_FALSE(control::valid_name(""));
    EXPECT_FALSE(control::valid_name("a b"));
}

// ---- xenstore ----

// A length-delimited field of any length (bytes_field's length is one byte).
Bytes long_field(uint32_t field, const Bytes& v) {
    Bytes b = {uint8_t(field << 3 | 2)};
    size_t n = v.size();
    do {
        b.push_back(uint8_t((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
        n >>= 7;
    } while (n);
    b.insert(b.end(), v.begin(), v.end());
    return b;
}

control::Request xs_request(control::XsOp op, const char* path, const Bytes& value = {}) {
    control::Request q = request(control::Op::xenstore);
    q.xs_op = op;
    std::strncpy(q.path, path, sizeof q.path - 1);
    q.value_len = uint16_t(value.size());
    if (!value.empty()) std::memcpy(q.value, value.data(), value.size());
    return q;
}

TEST(ControlXenstore, EveryOperationRoundTrips) {
    std::string longest(control::kPathLen, 'p');
    longest[0] = '/';
    Bytes any_bytes(control::kValueLen);   // a value is bytes: NULs and all
    for (size_t i = 0; i < any_bytes.size(); ++i) any_bytes[i] = uint8_t(i * 7);
    struct {
        control::XsOp op;
        std::string path;
        Bytes value;
    } cases[] = {{control::XsOp::ls, "/local/domain/3", {}},      {control::XsOp::read, "name", {}},
                 {control::XsOp::write, "data/a_b-c@d", text("v")}, {control::XsOp::write, "/x", {}},
                 {control::XsOp::write, longest, any_bytes},      {control::XsOp::rm, "/local/domain/3/data", {}}};
    for (auto& c : cases) {
        control::Request q = xs_request(c.op, c.path.c_str(), c.value), back{};
        Bytes b = encode(q);
        ASSERT_FALSE(b.empty()) << c.path;
        EXPECT_LE(control::encode_frame(b.data(), b.size(), Bytes(control::kMaxFrame).data(), control::kMaxFrame),
                  control::kMaxFrame);
        std::string why;
        ASSERT_EQ(decode(b, back, &why), control::Status::ok) << c.path << ": " << why;
        EXPECT_EQ(back.op, control::Op::xenstore);
        EXPECT_EQ(back.xs_op, c.op);
        EXPECT_EQ(back.path, c.path);
        EXPECT_EQ(Bytes(back.value, back.value + back.value_len), c.value);
    }
}

TEST(ControlXenstore, EncodeRefusesBadRequests) {
    EXPECT_TRUE(encode(xs_request(control::XsOp::none, "/a")).empty());
    EXPECT_TRUE(encode(xs_request(control::XsOp::read, "")).empty());
    EXPECT_TRUE(encode(xs_request(control::XsOp::read, "a b")).empty());
    EXPECT_TRUE(encode(xs_request(control::XsOp::read, "a.b")).empty());   // not a XenStore path character
    control::Request unterminated = xs_request(control::XsOp::read, "/a");
    std::memset(unterminated.path, 'a', sizeof unterminated.path);
    EXPECT_TRUE(encode(unterminated).empty());
    EXPECT_TRUE(encode(xs_request(control::XsOp::read, "/a", text("v"))).empty());   // a value for write only
    control::Request q = xs_request(control::XsOp::write, "/a");
    q.value_len = control::kValueLen + 1;
    EXPECT_TRUE(encode(q).empty());
}

TEST(ControlXenstore, MalformedRequestsAreBadRequest) {
    auto xs = [](uint64_t op, const Bytes& path, const Bytes& value = {}) {
        Bytes inner = cat({varint_field(1, op), long_field(2, path)});
        if (!value.empty()) inner = cat({inner, long_field(3, value)});
        return cat({varint_field(1, 1), varint_field(2, 3), long_field(7, inner)});
    };
    control::Request q{};
    std::string why;
    EXPECT_EQ(decode(xs(2, text("/local/domain/1/name")), q, &why), control::Status::ok) << why;
    EXPECT_EQ(q.xs_op, control::XsOp::read);
    EXPECT_EQ(decode(xs(0, text("/a")), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("unknown operation 0"), std::string::npos) << why;
    EXPECT_EQ(decode(xs(8, text("/a")), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("unknown operation 8"), std::string::npos) << why;
    EXPECT_EQ(decode(xs(2, text("")), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("malformed path"), std::string::npos) << why;
    EXPECT_EQ(decode(xs(2, text("/a\n")), q), control::Status::bad_request);
    EXPECT_EQ(decode(xs(2, text("/a b")), q), control::Status::bad_request);
    EXPECT_EQ(decode(xs(2, Bytes(control::kPathLen, 'a')), q), control::Status::ok);
    // 257 bytes: over nanopb's size for the field (undecodable) or over ours.
    EXPECT_EQ(decode(xs(2, Bytes(control::kPathLen + 1, 'a')), q), control::Status::bad_request);
    // A NUL inside would pass for "/local" if the bytes were not looked at.
    Bytes nul = text("/local");
    nul.push_back(0);
    nul.push_back('x');
    EXPECT_EQ(decode(xs(2, nul), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("NUL"), std::string::npos) << why;
    // A value on anything but write; and over 512 bytes.
    EXPECT_EQ(decode(xs(2, text("/a"), text("v")), q, &why), control::Status::bad_request);
    EXPECT_NE(why.find("write only"), std::string::npos) << why;
    EXPECT_EQ(decode(xs(3, text("/a"), Bytes(control::kValueLen, 'v')), q, &why), control::Status::ok) << why;
    EXPECT_EQ(q.value_len, control::kValueLen);
    EXPECT_EQ(decode(xs(3, text("/a"), Bytes(control::kValueLen + 1, 'v')), q, &why), control::Status::bad_request);
    // Every prefix of a write is refused (never half a path or value).
    Bytes b = encode(xs_request(control::XsOp::write, "/local/domain/3/data", text("hello")));
    for (size_t n = 0; n < b.size(); ++n)
        EXPECT_NE(decode(Bytes(b.begin(), b.begin() + long(n)), q), control::Status::ok) << n;
}

control::Response xs_response() {
    control::Response r{};
    r.version = control::kVersion;
    r.seq = 12;
    r.status = control::Status::ok;
    return r;
}

TEST(ControlXenstore, ValueAndChildrenRoundTrip) {
    control::Response r = xs_response();
    r.value_len = control::kValueLen;
    for (size_t i = 0; i < control::kValueLen; ++i) r.value[i] = uint8_t(255 - i);
    const char* kids[] = {"name", "domid", "a_b-c@d", "0"};
    for (const char* k : kids) std::strcpy(r.children[r.n_children++], k);
    Bytes b(control::kMaxPayload);
    size_t n = control::encode_response(r, b.data(), b.size());
    ASSERT_GT(n, 0u);
    control::Response back{};
    char err[200];
    ASSERT_TRUE(control::decode_response(b.data(), n, back, err, sizeof err)) << err;
    ASSERT_EQ(back.value_len, control::kValueLen);
    EXPECT_EQ(std::memcmp(back.value, r.value, control::kValueLen), 0);
    ASSERT_EQ(back.n_children, 4u);
    for (int i = 0; i < 4; ++i) EXPECT_STREQ(back.children[i], kids[i]);
}

TEST(ControlXenstore, EncodeResponseRefusesBadFields) {
    Bytes b(control::kMaxPayload);
    control::Response r = xs_response();
    r.value_len = control::kValueLen + 1;
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    for (const char* bad : {"", "a/b", "a b", "a.b"}) {
        r = xs_response();
        std::strcpy(r.children[0], bad);
        r.n_children = 1;
        EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u) << bad;
    }
    r = xs_response();
    r.n_children = control::kMaxChildren + 1;
    for (auto& c : r.children) std::strcpy(c, "c");
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    // The longest names, as many as the struct holds: too many for a frame
    // (the toolstack then lists fewer, and says so).
    r = xs_response();
    r.n_children = control::kMaxChildren;
    for (auto& c : r.children) {
        std::memset(c, 'c', control::kChildLen);
        c[control::kChildLen] = 0;
    }
    EXPECT_EQ(control::encode_response(r, b.data(), b.size()), 0u);
    r.n_children = 10;
    EXPECT_GT(control::encode_response(r, b.data(), b.size()), 0u);
    // Short names: every one fits.
    for (auto& c : r.children) std::strcpy(c, "backend");
    r.n_children = control::kMaxChildren;
    EXPECT_GT(control::encode_response(r, b.data(), b.size()), 0u);
}

TEST(ControlXenstore, DecodeResponseChecksChildren) {
    char err[200];
    control::Response back{};
    for (const char* bad : {"", "a/b", "a\nb"}) {
        Bytes r = cat({varint_field(1, 1), varint_field(3, 1), bytes_field(7, text(bad))});
        EXPECT_FALSE(control::decode_response(r.data(), r.size(), back, err, sizeof err)) << bad;
        EXPECT_NE(std::string(err).find("children[0]"), std::string::npos) << err;
    }
    Bytes too_big = cat({varint_field(1, 1), varint_field(3, 1), long_field(6, Bytes(control::kValueLen + 1, 'v'))});
    EXPECT_FALSE(control::decode_response(too_big.data(), too_big.size(), back, err, sizeof err));
}

TEST(ControlXenstore, ValidPathAndChild) {
    EXPECT_TRUE(control::valid_path("/"));
    EXPECT_TRUE(control::valid_path("name"));
    EXPECT_TRUE(control::valid_path("/local/domain/0/a_b-c@d"));
    EXPECT_TRUE(control::valid_path(std::string(control::kPathLen, 'a').c_str()));
    EXPECT_FALSE(control::valid_path(std::string(control::kPathLen + 1, 'a').c_str()));
    EXPECT_FALSE(control::valid_path(""));
    EXPECT_FALSE(control::valid_path("a b"));
    EXPECT_FALSE(control::valid_path("a\x7f"));
    EXPECT_TRUE(control::valid_child("domid"));
    EXPECT_FALSE(control::valid_child("a/b"));
    EXPECT_FALSE(control::valid_child(""));
    EXPECT_FALSE(control::valid_child(std::string(control::kChildLen + 1, 'a').c_str()));
}


// ---- create, upload, trace, watch, top's counters (protocol only) ----

control::Request create_request() {
    control::Request q = request(control::Op::create, "guest2");
    q.memory_kib = 4096;
    q.vcpus = 1;
    std::strcpy(q.cmdline, "role=idle stay");
    std::strcpy(q.console, "console");
    std::strcpy(q.xenstore, "xenstore");
    std::strcpy(q.net, "netback");
    std::strcpy(q.blk, "blkback");
    q.disk_first = 1ull << 40;
    q.disk_sectors = 2048;
    q.disk_read_only = true;
    q.image_size = 123456;
    q.image_crc32 = 0xdeadbeef;
    return q;
}

TEST(ControlCreate, CreateUploadAndTraceRoundTrip) {
    control::Request q = create_request(), back{};
    ASSERT_EQ(decode(encode(q), back), control::Status::ok);
    EXPECT_EQ(back.op, control::Op::create);
    EXPECT_STREQ(back.name, "guest2");
    EXPECT_EQ(back.memory_kib, 4096u);
    EXPECT_EQ(back.vcpus, 1u);
    EXPECT_STREQ(back.cmdline, "role=idle stay");
    EXPECT_STREQ(back.console, "console");
    EXPECT_STREQ(back.xenstore, "xenstore");
    EXPECT_STREQ(back.net, "netback");
    EXPECT_STREQ(back.blk, "blkback");
    EXPECT_EQ(back.disk_first, 1ull << 40);
    EXPECT_EQ(back.disk_sectors, 2048u);
    EXPECT_TRUE(back.disk_read_only);
    EXPECT_EQ(back.image_size, 123456u);
    EXPECT_EQ(back.image_crc32, 0xdeadbeefu);

    control::Request u = request(control::Op::upload);
    u.offset = uint32_t(control::kStageBytes - control::kUploadLen);
    u.data_len = uint16_t(control::kUploadLen);
    for (size_t k = 0; k < control::kUploadLen; ++k) u.data[k] = uint8_t(k * 7);
    Bytes b = encode(u);
    ASSERT_FALSE(b.empty());
    ASSERT_LE(b.size() + control::kHeaderBytes, control::kMaxFrame);
    ASSERT_EQ(decode(b, back), control::Status::ok);
    EXPECT_EQ(back.offset, u.offset);
    ASSERT_EQ(back.data_len, control::kUploadLen);
    EXPECT_EQ(0, std::memcmp(back.data, u.data, control::kUploadLen));

    control::Request t = request(control::Op::trace);
    t.trace_op = control::TraceOp::read;
    t.cpu = 3;
    t.cursor = 1ull << 40;
    ASSERT_EQ(decode(encode(t), back), control::Status::ok);
    EXPECT_EQ(back.trace_op, control::TraceOp::read);
    EXPECT_EQ(back.cpu, 3u);
    EXPECT_EQ(back.cursor, 1ull << 40);
}

TEST(ControlCreate, EncoderRefusesWhatTheDecoderWould) {
    auto refused = [](void (*mutate)(control::Request&)) {
        control::Request q = create_request();
        mutate(q);
        return encode(q).empty();
    };
    EXPECT_TRUE(refused([](control::Request& q) { q.name[0] = '\0'; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.memory_kib = 1020; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.memory_kib = 4098; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.memory_kib = control::kMaxCreateKib + 4; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.vcpus = 0; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.vcpus = control::kMaxVcpus + 1; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.cmdline[3] = '\n'; }));
    EXPECT_TRUE(refused([](control::Request& q) { std::strcpy(q.console, "no spaces"); }));
    EXPECT_TRUE(refused([](control::Request& q) { std::strcpy(q.net, "net/back"); }));
    EXPECT_TRUE(refused([](control::Request& q) { std::strcpy(q.blk, "blk back"); }));
    EXPECT_TRUE(refused([](control::Request& q) { q.disk_sectors = 0; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.disk_first = ~0ull - 100; }));   // first + sectors overflows
    EXPECT_TRUE(refused([](control::Request& q) { q.blk[0] = '\0'; }));   // sectors without a back-end
    EXPECT_TRUE(refused([](control::Request& q) { q.blk[0] = '\0', q.disk_first = q.disk_sectors = 0; }));   // read_only
    EXPECT_FALSE(refused([](control::Request& q) {
        q.blk[0] = '\0', q.disk_first = q.disk_sectors = 0, q.disk_read_only = false;
    }));
    EXPECT_TRUE(refused([](control::Request& q) { q.image_size = 0; }));
    EXPECT_TRUE(refused([](control::Request& q) { q.image_size = uint32_t(control::kStageBytes) + 1; }));
    EXPECT_FALSE(refused([](control::Request& q) { q.console[0] = q.xenstore[0] = q.cmdline[0] = '\0'; }));
    control::Request u = request(control::Op::upload);
    u.data_len = 0;
    EXPECT_TRUE(encode(u).empty());
    u.data_len = 1;
    u.offset = uint32_t(control::kStageBytes);
    EXPECT_TRUE(encode(u).empty());
    control::Request t = request(control::Op::trace);
    EXPECT_TRUE(encode(t).empty());   // no trace op
    t.trace_op = control::TraceOp::start;
    t.cpu = 1;
    EXPECT_TRUE(encode(t).empty());   // cpu is for read only
}

TEST(ControlCreate, HostileCreatesAreBadRequest) {
    // A create (field 10) with inner fields as a hostile host could write them.
    auto create = [](std::initializer_list<Bytes> inner) {
        return cat({varint_field(1, 1), varint_field(2, 4), long_field(10, cat(inner))});
    };
    Bytes ok_fields[] = {long_field(1, text("g")), varint_field(2, 4096), varint_field(3, 1), varint_field(7, 10)};
    control::Request q{};
    std::string why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3]}), q, &why), control::Status::ok)
        << why;
    // A NUL inside the name, the cmdline, a back-end's name.
    Bytes nul_name = {'g', 0, 'x'};
    EXPECT_EQ(decode(create({long_field(1, nul_name), ok_fields[1], ok_fields[2], ok_fields[3]}), q, &why),
              control::Status::bad_request);
    EXPECT_NE(why.find("NUL"), std::string::npos) << why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(4, nul_name)}), q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(5, nul_name)}), q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(9, nul_name)}), q),
              control::Status::bad_request);
    // Oversized strings and out-of-range numbers.
    EXPECT_EQ(decode(create({long_field(1, Bytes(33, 'a')), ok_fields[1], ok_fields[2], ok_fields[3]}), q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(4, Bytes(256, 'a'))}),
                     q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], varint_field(2, ~0ull), ok_fields[2], ok_fields[3]}), q, &why),
              control::Status::bad_request);
    EXPECT_NE(why.find("memory"), std::string::npos) << why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], varint_field(3, 1u << 31), ok_fields[3]}), q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], varint_field(7, 0xffffffffu)}), q),
              control::Status::bad_request);
    // A disk: its back-end (field 10) with sectors (12) decodes; sectors
    // without a back-end, a back-end without sectors, overflowing sectors
    // (11 + 12), a NUL or 33 bytes in the back-end's name do not.
    const Bytes blk = long_field(10, text("blkback"));
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], blk, varint_field(12, 8)}), q,
                     &why),
              control::Status::ok)
        << why;
    EXPECT_STREQ(q.blk, "blkback");
    EXPECT_EQ(q.disk_sectors, 8u);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], varint_field(12, 8)}), q, &why),
              control::Status::bad_request);
    EXPECT_NE(why.find("without a disk back-end"), std::string::npos) << why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], varint_field(13, 1)}), q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], blk}), q, &why),
              control::Status::bad_request);
    EXPECT_NE(why.find("no sectors"), std::string::npos) << why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], blk, varint_field(11, ~0ull),
                             varint_field(12, 1)}),
                     q, &why),
              control::Status::bad_request);
    EXPECT_NE(why.find("overflow"), std::string::npos) << why;
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(10, nul_name),
                             varint_field(12, 8)}),
                     q),
              control::Status::bad_request);
    EXPECT_EQ(decode(create({ok_fields[0], ok_fields[1], ok_fields[2], ok_fields[3], long_field(10, Bytes(33, 'b')),
                             varint_field(12, 8)}),
                     q),
              control::Status::bad_request);
    // An upload past the staging area, or with more data than a piece holds.
    auto upload = [](uint64_t offset, size_t n) {
        return cat({varint_field(1, 1), varint_field(2, 4),
                    long_field(9, cat({varint_field(1, offset), long_field(2, Bytes(n, 'x'))}))});
    };
    EXPECT_EQ(decode(upload(0, 768), q), control::Status::ok);
    EXPECT_EQ(decode(upload(0, 769), q), control::Status::bad_request);
    EXPECT_EQ(decode(upload(control::kStageBytes - 1, 2), q), control::Status::bad_request);
    EXPECT_EQ(decode(upload(0xffffffffu, 1), q), control::Status::bad_request);
    // A trace op out of range.
    EXPECT_EQ(decode(cat({varint_field(1, 1), long_field(11, varint_field(1, 9))}), q, &why),
              control::Status::bad_request);
    // Every prefix of a create is refused.
    Bytes b = encode(create_request());
    for (size_t n = 1; n < b.size(); ++n) EXPECT_NE(decode(Bytes(b.begin(), b.begin() + long(n)), q),
                                                   control::Status::ok) << n;
}

TEST(ControlCreate, NewResponseFieldsRoundTripAndAreChecked) {
    control::Response r = response();
    r.domains[1].events_sent = 1234567;
    r.domains[1].grant_ops = 89;
    r.domains[1].grant_copy_bytes = 1ull << 33;
    r.free_memory_kib = 99999;
    r.records_len = uint16_t(control::kRecordsLen);
    for (size_t k = 0; k < control::kRecordsLen; ++k) r.records[k] = uint8_t(k);
    r.next = 77;
    r.lost = 5;
    r.cpus = 4;
    r.n_events = 2;
    std::strcpy(r.events[0], "/local/domain/3/data/x");
    std::strcpy(r.events[1], "data");
    r.n_domains = 2;   // with the records, three do not fit a frame
    Bytes b(control::kMaxPayload);
    size_t n = control::encode_response(r, b.data(), b.size());
    ASSERT_GT(n, 0u);
    control::Response back{};
    char err[200];
    ASSERT_TRUE(control::decode_response(b.data(), n, back, err, sizeof err)) << err;
    EXPECT_EQ(back.domains[1].events_sent, 1234567u);
    EXPECT_EQ(back.domains[1].grant_ops, 89u);
    EXPECT_EQ(back.domains[1].grant_copy_bytes, 1ull << 33);
    EXPECT_EQ(back.free_memory_kib, 99999u);
    ASSERT_EQ(back.records_len, control::kRecordsLen);
    EXPECT_EQ(0, std::memcmp(back.records, r.records, control::kRecordsLen));
    EXPECT_EQ(back.next, 77u);
    EXPECT_EQ(back.lost, 5u);
    EXPECT_EQ(back.cpus, 4u);
    ASSERT_EQ(back.n_events, 2u);
    EXPECT_STREQ(back.events[1], "data");
    // Part of a record, a bad path, too many events: refused both ways.
    control::Response bad = r;
    bad.records_len = 31;
    EXPECT_EQ(control::encode_response(bad, b.data(), b.size()), 0u);
    bad = r;
    std::strcpy(bad.events[0], "a b");
    EXPECT_EQ(control::encode_response(bad, b.data(), b.size()), 0u);
    bad = r;
    bad.n_events = uint16_t(control::kMaxEvents + 1);
    EXPECT_EQ(control::encode_response(bad, b.data(), b.size()), 0u);
    Bytes partial = cat({varint_field(1, 1), varint_field(3, 1), long_field(9, Bytes(33, 'r'))});
    EXPECT_FALSE(control::decode_response(partial.data(), partial.size(), back, err, sizeof err));
    Bytes bad_event = cat({varint_field(1, 1), varint_field(3, 1), long_field(13, text("a\tb"))});
    EXPECT_FALSE(control::decode_response(bad_event.data(), bad_event.size(), back, err, sizeof err));
}

TEST(ControlXenstore, WatchOperationsRoundTrip) {
    for (control::XsOp op : {control::XsOp::watch, control::XsOp::watch_read, control::XsOp::unwatch}) {
        control::Request q = xs_request(op, "data"), back{};
        ASSERT_EQ(decode(encode(q), back), control::Status::ok) << control::xs_op_name(op);
        EXPECT_EQ(back.xs_op, op);
        EXPECT_STREQ(back.path, "data");
        EXPECT_TRUE(encode(xs_request(op, "data", text("v"))).empty()) << "a value is for write only";
    }
}


TEST(ControlPaging, ListStartAndTotalRoundTrip) {
    control::Request q = request(control::Op::list), back{};
    q.start = 40;
    ASSERT_EQ(decode(encode(q), back), control::Status::ok);
    EXPECT_EQ(back.start, 40u);
    q.start = control::kMaxDomains;
    EXPECT_TRUE(encode(q).empty());
    std::string why;
    Bytes b = cat({varint_field(1, 1), long_field(3, varint_field(1, control::kMaxDomains))});
    EXPECT_EQ(decode(b, back, &why), control::Status::bad_request);
    EXPECT_NE(why.find("start"), std::string::npos) << why;
    control::Response r = response();
    r.total = 300;
    Bytes out(control::kMaxPayload);
    size_t n = control::encode_response(r, out.data(), out.size());
    ASSERT_GT(n, 0u);
    control::Response rb{};
    char err[200];
    ASSERT_TRUE(control::decode_response(out.data(), n, rb, err, sizeof err)) << err;
    EXPECT_EQ(rb.total, 300u);
    r.total = control::kMaxDomains + 1;
    EXPECT_EQ(control::encode_response(r, out.data(), out.size()), 0u);
    Bytes big = cat({varint_field(1, 1), varint_field(3, 1), varint_field(14, control::kMaxDomains + 1)});
    EXPECT_FALSE(control::decode_response(big.data(), big.size(), rb, err, sizeof err));
}

TEST(ControlConsoleInput, RoundTripsAndRefusesBadInput) {
    control::Request q = request(control::Op::console_input, "ping"), back{};
    q.input_len = uint16_t(control::kInputLen);
    for (size_t k = 0; k < control::kInputLen; ++k) q.input[k] = uint8_t(k);   // any bytes, NUL and Ctrl-] included
    ASSERT_EQ(decode(encode(q), back), control::Status::ok);
    EXPECT_STREQ(back.name, "ping");
    ASSERT_EQ(back.input_len, control::kInputLen);
    EXPECT_EQ(0, std::memcmp(back.input, q.input, control::kInputLen));
    q.input_len = 0;
    EXPECT_TRUE(encode(q).empty());
    q.input_len = 1;
    q.name[0] = '\0';
    EXPECT_TRUE(encode(q).empty());
    auto input = [](const Bytes& name, size_t n) {
        return cat({varint_field(1, 1), long_field(12, cat({long_field(1, name), long_field(2, Bytes(n, 'k'))}))});
    };
    EXPECT_EQ(decode(input(text("ping"), 1), back), control::Status::ok);
    EXPECT_EQ(decode(input(text("ping"), 0), back), control::Status::bad_request);
    EXPECT_EQ(decode(input(text("ping"), control::kInputLen + 1), back), control::Status::bad_request);
    EXPECT_EQ(decode(input(Bytes{'p', 0, 'x'}, 1), back), control::Status::bad_request);
    EXPECT_EQ(decode(input(text("no spaces"), 1), back), control::Status::bad_request);
}


TEST(ControlCreate, TraceKindsOnlyOnAStartAndOnlyKnownOnes) {
    control::Request t = request(control::Op::trace), back{};
    t.trace_op = control::TraceOp::start;
    t.trace_kinds = control::kTraceKindsAll;
    ASSERT_EQ(decode(encode(t), back), control::Status::ok);
    EXPECT_EQ(back.trace_kinds, control::kTraceKindsAll);
    t.trace_kinds = 1;   // bit 0: no kind
    EXPECT_TRUE(encode(t).empty());
    t.trace_kinds = 1u << 6;
    EXPECT_TRUE(encode(t).empty());
    t.trace_op = control::TraceOp::read;
    t.trace_kinds = 2;   // kinds belong to a start
    EXPECT_TRUE(encode(t).empty());
    std::string why;
    Bytes b = cat({varint_field(1, 1), long_field(11, cat({varint_field(1, 3), varint_field(4, 2)}))});
    EXPECT_EQ(decode(b, back, &why), control::Status::bad_request);
    EXPECT_NE(why.find("only a start names kinds"), std::string::npos) << why;
}

}  // namespace
