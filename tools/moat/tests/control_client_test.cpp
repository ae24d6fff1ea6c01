// The host's side of the control channel (tools/moat/control_*.cpp,
// rundir.cpp) against a fake toolstack: a thread on the other end of a
// socketpair (or of a unix socket in a run directory) that answers with
// whatever frames a case wants, well-formed or hostile. Each hostile answer
// (truncated, oversized, bad CRC, another seq, another version, unknown
// fields, nonsense in a field) ends the exchange with a clear reason, or is
// skipped, and never leaves the client waiting past its deadline.
#include "control_cli.hpp"
#include "control_client.hpp"
#include "control_frame.hpp"
#include "rundir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

namespace mc = moat::control;
using Clock = std::chrono::steady_clock;

// A short deadline for the cases that must time out: how long is not what
// is tested, only that the exchange ends and says why.
constexpr auto kShort = std::chrono::milliseconds(300);
constexpr auto kLong = std::chrono::seconds(20);

std::string payload_of(const google::protobuf::Message& m) {
  std::string s;
  EXPECT_TRUE(m.SerializeToString(&s));
  return s;
}

mc::Response ok_answer(const mc::Request& request) {
  mc::Response r;
  r.set_version(mc::V1);
  r.set_seq(request.seq());
  r.set_status(mc::OK);
  return r;
}

mc::DomainInfo domain(const std::string& name, uint32_t id, mc::State state) {
  mc::DomainInfo d;
  d.set_name(name);
  d.set_id(id);
  d.set_memory_kib(4096);
  d.set_max_memory_kib(8192);
  d.set_vcpus(1);
  d.set_state(state);
  d.set_cpu_time_ns(1'500'000'000);
  return d;
}

// The fake toolstack: reads one Request frame from `fd`, then writes what
// `answer` makes of it (raw bytes: frames or junk), then closes if asked.
void serve(int fd, std::function<std::string(const mc::Request&)> answer, bool close_after) {
  mc::FrameReader reader;
  char buf[256];
  mc::Request request;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    reader.feed(std::string_view(buf, size_t(n)));
    if (auto p = reader.next()) {
      if (!request.ParseFromString(*p)) return;
      break;
    }
  }
  std::string bytes = answer(request);
  if (!bytes.empty()) (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (close_after) ::shutdown(fd, SHUT_WR);
}

// One exchange of `request` with the fake answering `answer`.
mc::Exchange run(const mc::Request& request, std::function<std::string(const mc::Request&)> answer,
                 Clock::duration limit = kLong, bool close_after = false) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread fake(serve, sv[1], answer, close_after);
  mc::Exchange x = mc::exchange_on(sv[0], request, Clock::now() + limit);
  ::shutdown(sv[0], SHUT_RDWR);   // the fake may still wait for a request
  fake.join();
  ::close(sv[0]);
  ::close(sv[1]);
  return x;
}

mc::Request list_request() {
  mc::Request r = mc::make_request(0x1234567);
  r.mutable_list();
  return r;
}

mc::Request pause_request(const std::string& name) {
  mc::Request r = mc::make_request(77);
  r.mutable_pause()->set_name(name);
  return r;
}

std::string frame(const google::protobuf::Message& m) { return mc::encode_frame(payload_of(m)); }

TEST(ControlFrame, RoundTripsByteByByteAndBetweenJunk) {
  std::string stream = "junk M MC\x05" + mc::encode_frame("hello") + "\x01\x02MCx" + mc::encode_frame("") +
                       mc::encode_frame(std::string(mc::kMaxPayload, 'z'));
  mc::FrameReader reader;
  std::vector<std::string> got;
  for (char c : stream) {
    reader.feed(std::string_view(&c, 1));
    while (auto p = reader.next()) got.push_back(*p);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "hello");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string(mc::kMaxPayload, 'z'));
}

TEST(ControlFrame, DropsOversizedAndBadCrcFramesAndFindsTheNext) {
  std::string big = mc::encode_frame("x");
  big[2] = char(0x01), big[3] = char(0x04);   // length 1025: over kMaxPayload
  std::string bad = mc::encode_frame("payload");
  bad[5] = char(bad[5] ^ 0x40);               // CRC off by one bit
  mc::FrameReader reader;
  reader.feed(big + bad + mc::encode_frame("good"));
  auto p = reader.next();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "good");
  EXPECT_EQ(reader.dropped(), 2u);
  EXPECT_FALSE(reader.next().has_value());
}

TEST(ControlExchange, ListIsAnsweredAndPrintedAsXlDoes) {
  auto x = run(list_request(), [](const mc::Request& q) {
    EXPECT_EQ(q.version(), mc::V1);
    EXPECT_TRUE(q.has_list());
    mc::Response r = ok_answer(q);
    *r.add_domains() = domain("toolstack", 5, mc::RUNNING);
    *r.add_domains() = domain("ping", 6, mc::PAUSED);
    r.set_total(2);
    return frame(r);
  });
  ASSERT_EQ(x.outcome, mc::Outcome::answered) << x.why;
  std::string text = mc::format_list(x.response);
  EXPECT_EQ(text,
            "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
            "toolstack                                    5     4     1     r-----      1.5\n"
            "ping                                         6     4     1     --p---      1.5\n");
}

TEST(ControlExchange, AnswersToOtherRequestsAndJunkAreSkipped) {
  auto x = run(list_request(), [](const mc::Request& q) {
    mc::Response stale = ok_answer(q);
    stale.set_seq(q.seq() + 1);   // a late answer to someone else's request
    std::string bad = frame(ok_answer(q));
    bad.back() = char(bad.back() ^ 1);   // damaged on the way
    return "\xff\xfe garbage" + frame(stale) + bad + frame(ok_answer(q));
  });
  ASSERT_EQ(x.outcome, mc::Outcome::answered) << x.why;
  EXPECT_EQ(x.stale, 1u);
  EXPECT_EQ(x.dropped, 1u);
}

TEST(ControlExchange, SilenceAndDamagedFramesEndInATimeout) {
  auto silent = run(list_request(), [](const mc::Request&) { return std::string(); }, kShort);
  EXPECT_EQ(silent.outcome, mc::Outcome::timeout);

  auto damaged = run(list_request(), [](const mc::Request& q) {
    std::string f = frame(ok_answer(q));
    f[4] = char(f[4] ^ 0xff);
    return f;
  }, kShort);
  EXPECT_EQ(damaged.outcome, mc::Outcome::timeout);
  EXPECT_EQ(damaged.dropped, 1u);

  // A length far over the limit: dropped, not waited for.
  auto oversized = run(list_request(), [](const mc::Request& q) {
    std::string f = frame(ok_answer(q));
    f[2] = char(0xff), f[3] = char(0xff);
    return f + std::string(4000, 'A');
  }, kShort);
  EXPECT_EQ(oversized.outcome, mc::Outcome::timeout);
  EXPECT_EQ(oversized.dropped, 1u);
}

TEST(ControlExchange, TruncatedAnswerThenCloseSaysSo) {
  auto x = run(list_request(), [](const mc::Request& q) {
    std::string f = frame(ok_answer(q));
    return f.substr(0, f.size() - 2);
  }, kLong, /*close_after=*/true);
  EXPECT_EQ(x.outcome, mc::Outcome::unreachable);
  EXPECT_NE(x.why.find("closed the connection"), std::string::npos) << x.why;
}

TEST(ControlExchange, UndecodablePayloadIsABadAnswer) {
  auto x = run(list_request(), [](const mc::Request&) { return mc::encode_frame("\xff\xff\xff\xff"); });
  EXPECT_EQ(x.outcome, mc::Outcome::bad_answer);
  EXPECT_NE(x.why.find("does not decode"), std::string::npos) << x.why;
}

TEST(ControlExchange, WrongVersionAndUnknownFieldsAreBadAnswers) {
  auto version = run(list_request(), [](const mc::Request& q) {
    mc::Response r = ok_answer(q);
    r.set_version(mc::Version(2));
    return frame(r);
  });
  EXPECT_EQ(version.outcome, mc::Outcome::bad_answer);
  EXPECT_NE(version.why.find("protocol version 2"), std::string::npos) << version.why;

  // A toolstack of another version says so in its own version: an answer.
  auto other = run(list_request(), [](const mc::Request& q) {
    mc::Response r = ok_answer(q);
    r.set_version(mc::Version(2));
    r.set_status(mc::BAD_VERSION);
    r.set_error("this toolstack speaks version 2");
    return frame(r);
  });
  ASSERT_EQ(other.outcome, mc::Outcome::answered) << other.why;
  EXPECT_EQ(other.response.status(), mc::BAD_VERSION);

  auto unknown = run(list_request(), [](const mc::Request& q) {
    // Field 15, varint 1, appended to a valid answer.
    return mc::encode_frame(payload_of(ok_answer(q)) + "\x78\x01");
  });
  EXPECT_EQ(unknown.outcome, mc::Outcome::bad_answer);
  EXPECT_NE(unknown.why.find("does not know"), std::string::npos) << unknown.why;
}

TEST(ControlExchange, RefusalComesBackWithItsReason) {
  auto x = run(pause_request("xenstore"), [](const mc::Request& q) {
    EXPECT_EQ(q.pause().name(), "xenstore");
    mc::Response r = ok_answer(q);
    r.set_status(mc::REFUSED);
    r.set_error("xenstore: the toolstack holds no Domain capability for it");
    return frame(r);
  });
  ASSERT_EQ(x.outcome, mc::Outcome::answered) << x.why;
  EXPECT_EQ(x.response.status(), mc::REFUSED);
  EXPECT_EQ(x.response.error(), "xenstore: the toolstack holds no Domain capability for it");
}

// Every field of a Response is checked before it is believed.
TEST(ControlCheck, RefusesNonsenseInEveryField) {
  const mc::Request list = list_request();
  auto refused = [&](const mc::Request& q, const mc::Response& r, const char* want) {
    std::string why;
    bool ok = mc::check_response(q, r, &why);
    EXPECT_FALSE(ok) << want;
    EXPECT_NE(why.find(want), std::string::npos) << "why: " << why << " want: " << want;
  };
  mc::Response good = ok_answer(list);
  *good.add_domains() = domain("ping", 6, mc::RUNNING);
  good.set_total(8);
  std::string why;
  EXPECT_TRUE(mc::check_response(list, good, &why)) << why;

  mc::Response r = good;
  r.set_status(mc::Status(42));
  refused(list, r, "unknown status 42");
  r = good, r.set_status(mc::STATUS_UNSPECIFIED);
  refused(list, r, "unknown status 0");
  // A note with OK only where some may be left out: a list (or an ls).
  r = good, r.set_error("3 more domains not listed");
  EXPECT_TRUE(mc::check_response(list, r, &why)) << why;
  {
    const mc::Request pause = pause_request("ping");
    mc::Response p = ok_answer(pause);
    p.set_error("but");
    refused(pause, p, "status OK with an error");
  }
  r = good, r.set_status(mc::REFUSED);
  refused(list, r, "without a reason");
  r = good, r.set_status(mc::REFUSED), r.set_error("no\x1b[2Jcap");
  refused(list, r, "control characters");
  r = good, r.set_seq(list.seq() + 1);
  refused(list, r, "seq");
  r = good, r.mutable_domains(0)->set_name("");
  refused(list, r, "domain name");
  r = good, r.mutable_domains(0)->set_name("has space");
  refused(list, r, "domain name");
  r = good, r.mutable_domains(0)->set_name(std::string(33, 'a'));
  refused(list, r, "domain name");
  r = good, *r.add_domains() = domain("ping", 7, mc::RUNNING);
  refused(list, r, "listed twice");
  r = good, *r.add_domains() = domain("pong", 6, mc::RUNNING);
  refused(list, r, "id 6 listed twice");
  r = good, r.mutable_domains(0)->set_id(0x7ff0);
  refused(list, r, "out of range");
  r = good, r.mutable_domains(0)->set_vcpus(0);
  refused(list, r, "0 vCPUs");
  r = good, r.mutable_domains(0)->set_state(mc::State(9));
  refused(list, r, "unknown state 9");
  r = good, r.mutable_domains(0)->set_memory_kib(9000);
  refused(list, r, "over its maximum");
  // Domains only answer a list.
  const mc::Request pause = pause_request("ping");
  r = good, r.set_seq(pause.seq());
  refused(pause, r, "not a list");
}

mc::Request xs_request(mc::XenstoreRequest::Op op, const std::string& path, const std::string& value = "") {
  mc::Request r = mc::make_request(99);
  r.mutable_xenstore()->set_op(op);
  r.mutable_xenstore()->set_path(path);
  if (!value.empty()) r.mutable_xenstore()->set_value(value);
  return r;
}

// A value only answers a read, children only an ls; each checked.
TEST(ControlCheck, XenstoreAnswersAreChecked) {
  auto refused = [&](const mc::Request& q, const mc::Response& r, const char* want) {
    std::string why;
    EXPECT_FALSE(mc::check_response(q, r, &why)) << want;
    EXPECT_NE(why.find(want), std::string::npos) << "why: " << why << " want: " << want;
  };
  std::string why;
  const mc::Request read = xs_request(mc::XenstoreRequest::READ, "/local/domain/5/name");
  const mc::Request ls = xs_request(mc::XenstoreRequest::LS, "/local/domain/5");
  const mc::Request write = xs_request(mc::XenstoreRequest::WRITE, "data/x", "1");

  mc::Response r = ok_answer(read);
  r.set_value(std::string("any\0bytes\xff", 10));
  EXPECT_TRUE(mc::check_response(read, r, &why)) << why;
  r.set_value(std::string(512, 'v'));
  EXPECT_TRUE(mc::check_response(read, r, &why)) << why;
  r.set_value(std::string(513, 'v'));
  refused(read, r, "over 512");
  r = ok_answer(write), r.set_value("v");
  refused(write, r, "not a read");
  r = ok_answer(read), r.set_status(mc::FAILED), r.set_error("EACCES: xenstore read x"), r.set_value("v");
  refused(read, r, "not a read");
  r = ok_answer(read), r.set_error("a note");
  refused(read, r, "status OK with an error");

  r = ok_answer(ls);
  for (const char* c : {"name", "domid", "a_b-c@d", "0"}) r.add_children(c);
  r.set_error("4 of 70 children listed (the rest do not fit in one answer)");
  EXPECT_TRUE(mc::check_response(ls, r, &why)) << why;
  for (const std::string& bad : {std::string(""), std::string("a/b"), std::string("a b"), std::string("\x1b[2J"),
                                 std::string(65, 'c')}) {
    mc::Response b = ok_answer(ls);
    b.add_children(bad);
    refused(ls, b, "not a node name");
  }
  r = ok_answer(ls), r.add_children("x"), r.add_children("x");
  refused(ls, r, "listed twice");
  r = ok_answer(read), r.add_children("x");
  refused(read, r, "not an ls");
  r = ok_answer(ls), r.add_domains()->CopyFrom(domain("ping", 6, mc::RUNNING));
  refused(ls, r, "not a list");
}

// The fields of moat create, top, trace and xenstore watch: each only in
// the answer it belongs to, each in range; a hostile answer of each kind.
TEST(ControlCheck, NewOperationsAnswersAreChecked) {
  auto refused = [&](const mc::Request& q, const mc::Response& r, const char* want) {
    std::string why;
    EXPECT_FALSE(mc::check_response(q, r, &why)) << want;
    EXPECT_NE(why.find(want), std::string::npos) << "why: " << why << " want: " << want;
  };
  std::string why;
  const mc::Request list = list_request();
  const mc::Request pause = pause_request("ping");

  // moat top: counters in a list (any value), free memory only in a list.
  mc::Response r = ok_answer(list);
  mc::DomainInfo d = domain("ping", 6, mc::RUNNING);
  d.set_events_sent(~0ull), d.set_grant_ops(3), d.set_grant_copy_bytes(300);
  *r.add_domains() = d;
  r.set_free_memory_kib(123456);
  r.set_total(1);
  EXPECT_TRUE(mc::check_response(list, r, &why)) << why;
  r = ok_answer(pause), r.set_free_memory_kib(1);
  refused(pause, r, "free memory in an answer that is not a list");
  r = ok_answer(list), r.set_status(mc::FAILED), r.set_error("x"), r.set_free_memory_kib(1);
  refused(list, r, "free memory in an answer that is not a list");

  // moat create: exactly the one domain created in its OK answer; none in an upload's.
  mc::Request create = mc::make_request(5);
  create.mutable_create()->set_name("guest1");
  mc::Request upload = mc::make_request(6);
  upload.mutable_upload()->set_offset(0);
  upload.mutable_upload()->set_data("abc");
  r = ok_answer(create), *r.add_domains() = domain("guest1", 9, mc::RUNNING);
  EXPECT_TRUE(mc::check_response(create, r, &why)) << why;
  r = ok_answer(create);
  refused(create, r, "0 domains in the answer to a create");
  r = ok_answer(create), *r.add_domains() = domain("guest1", 9, mc::RUNNING);
  *r.add_domains() = domain("guest2", 10, mc::RUNNING);
  refused(create, r, "2 domains in the answer to a create");
  r = ok_answer(create), *r.add_domains() = domain("ping", 9, mc::RUNNING);
  refused(create, r, "names another domain");
  r = ok_answer(create), *r.add_domains() = domain("guest1", 9, mc::State(7));
  refused(create, r, "unknown state 7");
  r = ok_answer(create), r.set_status(mc::FAILED), r.set_error("ENOMEM");
  *r.add_domains() = domain("guest1", 9, mc::RUNNING);
  refused(create, r, "not a list");
  r = ok_answer(create), r.set_status(mc::FAILED), r.set_error("ENOMEM");
  EXPECT_TRUE(mc::check_response(create, r, &why)) << why;
  r = ok_answer(upload);
  EXPECT_TRUE(mc::check_response(upload, r, &why)) << why;
  r = ok_answer(upload), *r.add_domains() = domain("guest1", 9, mc::RUNNING);
  refused(upload, r, "not a list");
  r = ok_answer(create), *r.add_domains() = domain("guest1", 9, mc::RUNNING), r.set_error("note");
  refused(create, r, "status OK with an error");

  // moat trace: cpus in start and read, records/next/lost only in read.
  auto trace = [](mc::TraceRequest::Op op, uint32_t cpu = 0, uint64_t cursor = 0) {
    mc::Request q = mc::make_request(7);
    q.mutable_trace()->set_op(op);
    q.mutable_trace()->set_cpu(cpu);
    q.mutable_trace()->set_cursor(cursor);
    return q;
  };
  const mc::Request start = trace(mc::TraceRequest::START);
  const mc::Request read = trace(mc::TraceRequest::READ, 1, 100);
  const mc::Request stop = trace(mc::TraceRequest::STOP);
  r = ok_answer(start), r.set_cpus(2);
  EXPECT_TRUE(mc::check_response(start, r, &why)) << why;
  r = ok_answer(start);
  refused(start, r, "0 CPUs");
  r = ok_answer(start), r.set_cpus(4097);
  refused(start, r, "4097 CPUs");
  r = ok_answer(start), r.set_cpus(2), r.set_records(std::string(32, 'r'));
  refused(start, r, "not a trace read");
  r = ok_answer(stop), r.set_cpus(2);
  refused(stop, r, "not a trace start or read");
  r = ok_answer(stop), r.set_next(5);
  refused(stop, r, "not a trace read");
  r = ok_answer(list), r.set_lost(1);
  refused(list, r, "not a trace read");
  r = ok_answer(read), r.set_cpus(2), r.set_records(std::string(896, 'r')), r.set_next(128), r.set_lost(0);
  EXPECT_TRUE(mc::check_response(read, r, &why)) << why;
  r = ok_answer(read), r.set_cpus(2), r.set_next(100), r.set_lost(7);   // nothing new: next == cursor
  EXPECT_TRUE(mc::check_response(read, r, &why)) << why;
  r = ok_answer(read), r.set_cpus(2), r.set_records(std::string(928, 'r')), r.set_next(129);
  refused(read, r, "not whole 32-byte records within 896");
  r = ok_answer(read), r.set_cpus(2), r.set_records(std::string(33, 'r')), r.set_next(101);
  refused(read, r, "not whole 32-byte records");
  r = ok_answer(read), r.set_cpus(2), r.set_records(std::string(32, 'r')), r.set_next(99);
  refused(read, r, "cursor that went back");
  r = ok_answer(read), r.set_cpus(1), r.set_next(100);
  refused(read, r, "records of CPU 1 of only 1");
  r = ok_answer(read), r.set_next(100);
  refused(read, r, "0 CPUs");
  r = ok_answer(read), r.set_status(mc::FAILED), r.set_error("EINVAL"), r.set_records(std::string(32, 'r'));
  refused(read, r, "not a trace read");
  r = ok_answer(read), r.set_status(mc::FAILED), r.set_error("EINVAL"), r.set_cpus(2);
  refused(read, r, "not a trace start or read");

  // xenstore WATCH_READ: at most 3 fired paths, each a path; a note for an overflow.
  const mc::Request watch_read = xs_request(mc::XenstoreRequest::WATCH_READ, "/local/domain/5");
  const mc::Request watch = xs_request(mc::XenstoreRequest::WATCH, "/local/domain/5");
  r = ok_answer(watch_read);
  for (const char* e : {"/local/domain/5/name", "/local/domain/5/data/x", "@releaseDomain"}) r.add_events(e);
  r.set_error("12 events lost: the queue overflowed");
  EXPECT_TRUE(mc::check_response(watch_read, r, &why)) << why;
  r.add_events("/local/domain/5/more");
  refused(watch_read, r, "4 watch events, over 3");
  for (const std::string& bad : {std::string(""), std::string("/a b"), std::string("/\x1b[2J"),
                                 std::string(257, 'p')}) {
    mc::Response b = ok_answer(watch_read);
    b.add_events(bad);
    refused(watch_read, b, "not a XenStore path");
  }
  r = ok_answer(watch), r.add_events("/local/domain/5");
  refused(watch, r, "not a watch_read");
  r = ok_answer(watch), r.set_error("a note");
  refused(watch, r, "status OK with an error");
  r = ok_answer(watch_read), r.set_status(mc::FAILED), r.set_error("ENOENT"), r.add_events("/x");
  refused(watch_read, r, "not a watch_read");
  r = ok_answer(watch_read), r.set_value("v");
  refused(watch_read, r, "not a read");
}

// moat console's keys (Request.console_input): the answer is a status and,
// unless OK, its reason; anything else in it is malformed.
TEST(ControlCheck, ConsoleInputAnswersCarryNothingButTheirStatus) {
  auto refused = [&](const mc::Request& q, const mc::Response& r, const char* want) {
    std::string why;
    EXPECT_FALSE(mc::check_response(q, r, &why)) << want;
    EXPECT_NE(why.find(want), std::string::npos) << "why: " << why << " want: " << want;
  };
  std::string why;
  mc::Request q = mc::make_request(9);
  q.mutable_console_input()->set_name("echo");
  q.mutable_console_input()->set_data("hello\r");
  mc::Response r = ok_answer(q);
  EXPECT_TRUE(mc::check_response(q, r, &why)) << why;
  for (mc::Status s : {mc::REFUSED, mc::NO_SUCH_DOMAIN, mc::FAILED}) {
    r = ok_answer(q), r.set_status(s), r.set_error("console input for \"echo\": why");
    EXPECT_TRUE(mc::check_response(q, r, &why)) << why;
  }
  r = ok_answer(q), r.set_status(mc::REFUSED);
  refused(q, r, "without a reason");
  r = ok_answer(q), r.set_error("a note");
  refused(q, r, "status OK with an error");
  r = ok_answer(q), *r.add_domains() = domain("echo", 5, mc::RUNNING);
  refused(q, r, "not a list");
  r = ok_answer(q), r.set_value("v");
  refused(q, r, "not a read");
  r = ok_answer(q), r.add_children("c");
  refused(q, r, "not an ls");
  r = ok_answer(q), r.set_free_memory_kib(4);
  refused(q, r, "not a list");
  r = ok_answer(q), r.add_events("/x");
  refused(q, r, "not a watch_read");
  r = ok_answer(q), r.set_cpus(1);
  refused(q, r, "not a trace start or read");
  r = ok_answer(q), r.set_records(std::string(32, 'r'));
  refused(q, r, "not a trace read");
  // And the request carries the name and the bytes as they are.
  q.mutable_console_input()->set_data(std::string("\0\x1d\xff\r", 4));
  auto x = run(q, [](const mc::Request& got) {
    EXPECT_TRUE(got.has_console_input());
    EXPECT_EQ(got.console_input().name(), "echo");
    EXPECT_EQ(got.console_input().data(), std::string("\0\x1d\xff\r", 4));
    return frame(ok_answer(got));
  });
  EXPECT_EQ(x.outcome, mc::Outcome::answered) << x.why;
}

TEST(ControlExchange, XenstoreRequestsCarryTheirFields) {
  auto x = run(xs_request(mc::XenstoreRequest::WRITE, "/local/domain/5/data/x", "hello"), [](const mc::Request& q) {
    EXPECT_TRUE(q.has_xenstore());
    EXPECT_EQ(q.xenstore().op(), mc::XenstoreRequest::WRITE);
    EXPECT_EQ(q.xenstore().path(), "/local/domain/5/data/x");
    EXPECT_EQ(q.xenstore().value(), "hello");
    return frame(ok_answer(q));
  });
  ASSERT_EQ(x.outcome, mc::Outcome::answered) << x.why;
  // A hostile value comes back, checked; printed, it cannot drive a terminal.
  x = run(xs_request(mc::XenstoreRequest::READ, "x"), [](const mc::Request& q) {
    mc::Response r = ok_answer(q);
    r.set_value("a\x1b[2J\\b\n");
    return frame(r);
  });
  ASSERT_EQ(x.outcome, mc::Outcome::answered) << x.why;
  EXPECT_EQ(mc::sanitise_value(x.response.value()), "a\\033[2J\\\\b\\012");
  EXPECT_EQ(mc::sanitise_value(std::string("\0\xff ~", 4)), "\\000\\377 ~");
  // Children in an answer to a read: malformed, not shown.
  x = run(xs_request(mc::XenstoreRequest::READ, "x"), [](const mc::Request& q) {
    mc::Response r = ok_answer(q);
    r.add_children("sneaky");
    return frame(r);
  });
  EXPECT_EQ(x.outcome, mc::Outcome::bad_answer);
}

// The run directory: which system a command talks to.
class RunDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-rundir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  // A child that lives until killed, to stand for QEMU.
  pid_t live_process() {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    children_.push_back(pid);
    return pid;
  }
  void kill_children() {
    for (pid_t p : children_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    children_.clear();
  }
  ~RunDir() override { kill_children(); }
  // A live system "sys" under root_ (its QEMU a live_process, $MOAT_RUN_DIR
  // set): the listening end of its control socket, for a fake toolstack;
  // -1 (with the failure added) if it cannot be made.
  int live_system() {
    namespace rd = moat::rundir;
    std::string why;
    if (!rd::prepare(root_, "sys", "/x/sys.textproto", &why) || !rd::write_pid(root_, "sys", live_process(), &why)) {
      ADD_FAILURE() << why;
      return -1;
    }
    ::setenv("MOAT_RUN_DIR", root_.c_str(), 1);
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = (root_ / "sys" / rd::kSocket).string();
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 4) != 0) {
      ADD_FAILURE() << "cannot listen on " << path << ": " << std::strerror(errno);
      ::close(listener);
      return -1;
    }
    return listener;
  }
  std::filesystem::path root_;
  std::vector<pid_t> children_;
};

TEST_F(RunDir, ChoosesTheOnlyLiveSystemAndExplainsOtherwise) {
  namespace rd = moat::rundir;
  std::string chosen, why;
  EXPECT_FALSE(rd::choose(root_, "", &chosen, &why));
  EXPECT_NE(why.find("no system is running under " + root_.string()), std::string::npos) << why;

  ASSERT_TRUE(rd::prepare(root_, "alpha", "/x/alpha.textproto", &why)) << why;
  EXPECT_FALSE(rd::choose(root_, "", &chosen, &why));   // no pid yet: not running
  ASSERT_TRUE(rd::write_pid(root_, "alpha", live_process(), &why)) << why;
  ASSERT_TRUE(rd::choose(root_, "", &chosen, &why)) << why;
  EXPECT_EQ(chosen, "alpha");
  // A second one of the same name while it lives: refused.
  EXPECT_FALSE(rd::prepare(root_, "alpha", "/x/alpha.textproto", &why));
  EXPECT_NE(why.find("already running"), std::string::npos) << why;

  ASSERT_TRUE(rd::prepare(root_, "beta", "/x/beta.textproto", &why)) << why;
  ASSERT_TRUE(rd::write_pid(root_, "beta", live_process(), &why)) << why;
  EXPECT_FALSE(rd::choose(root_, "", &chosen, &why));
  EXPECT_NE(why.find("2 systems are running"), std::string::npos) << why;
  EXPECT_NE(why.find("alpha, beta"), std::string::npos) << why;
  ASSERT_TRUE(rd::choose(root_, "beta", &chosen, &why)) << why;
  EXPECT_EQ(chosen, "beta");
  EXPECT_FALSE(rd::choose(root_, "gamma", &chosen, &why));
  EXPECT_NE(why.find("no system named gamma"), std::string::npos) << why;
  EXPECT_FALSE(rd::choose(root_, "../etc", &chosen, &why));

  // Dead QEMUs: nothing runs, whatever the pid files say.
  kill_children();
  EXPECT_FALSE(rd::choose(root_, "", &chosen, &why));
  EXPECT_TRUE(rd::running(root_).empty());
  EXPECT_EQ(rd::name_of("a/b/demo.textproto"), "demo");
}

// `moat list` & co end to end in-process: a fake toolstack on the unix
// socket of a run directory ($MOAT_RUN_DIR), the commands' exit statuses.
TEST_F(RunDir, CommandsTalkToTheSystemsSocket) {
  int listener = live_system();
  ASSERT_GE(listener, 0);
  // Answers: a list, a refusal for xenstore, NO_SUCH_DOMAIN for others.
  std::thread fake([&]() {
    for (int i = 0; i < 4; ++i) {
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      serve(fd, [](const mc::Request& q) {
        mc::Response r = ok_answer(q);
        if (q.has_list()) {
          *r.add_domains() = domain("toolstack", 5, mc::RUNNING);
          *r.add_domains() = domain("ping", 6, mc::RUNNING);
          r.set_total(2);
        } else if (q.has_pause() && q.pause().name() == "xenstore") {
          r.set_status(mc::REFUSED);
          r.set_error("xenstore: not in the toolstack's controls");
        } else if (q.has_pause() && q.pause().name() != "ping") {
          r.set_status(mc::NO_SUCH_DOMAIN);
          r.set_error("no domain " + q.pause().name());
        }
        return frame(r);
      }, true);
      ::close(fd);
    }
  });
  char list[] = "--system", sys[] = "sys";
  char* list_args[] = {list, sys};
  EXPECT_EQ(moat::cli::control_command("list", 2, list_args), 0);
  char ping[] = "ping", xs[] = "xenstore", nope[] = "nope";
  char* pause_ping[] = {ping};
  EXPECT_EQ(moat::cli::control_command("pause", 1, pause_ping), 0);
  char* pause_xs[] = {xs};
  EXPECT_EQ(moat::cli::control_command("pause", 1, pause_xs), 1);
  char* pause_nope[] = {nope};
  EXPECT_EQ(moat::cli::control_command("pause", 1, pause_nope), 1);
  // Usage errors never reach the system.
  char bad[] = "no/such";
  char* pause_bad[] = {bad};
  EXPECT_EQ(moat::cli::control_command("pause", 1, pause_bad), 2);
  EXPECT_EQ(moat::cli::control_command("pause", 0, nullptr), 2);
  fake.join();
  ::close(listener);
  ::unsetenv("MOAT_RUN_DIR");
}

// `moat shutdown` of a whole system: the system may end before the
// toolstack's answer leaves it, and the connection closes unanswered. That
// counts as done only when the system (its QEMU) then ends; a shutdown of
// one domain, or a system that lives on, is still an error.
TEST_F(RunDir, ShutdownOfTheWholeSystemThatEndsUnansweredIsDone) {
  int listener = live_system();
  ASSERT_GE(listener, 0);
  // Reads the request, then closes without a word; the third time the
  // system's QEMU dies first.
  std::thread fake([&]() {
    for (int i = 0; i < 3; ++i) {
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buf[256];
      (void)::recv(fd, buf, sizeof buf, 0);
      if (i == 2) kill_children();
      ::close(fd);
    }
  });
  char sys_opt[] = "--system", sys[] = "sys", to[] = "--timeout", one[] = "1", ping[] = "ping";
  char* one_domain[] = {ping, sys_opt, sys, to, one};
  EXPECT_EQ(moat::cli::control_command("shutdown", 5, one_domain), 1);   // one domain: an answer is due
  char* whole[] = {sys_opt, sys, to, one};
  EXPECT_EQ(moat::cli::control_command("shutdown", 4, whole), 1);        // the system lives on
  EXPECT_EQ(moat::cli::control_command("shutdown", 4, whole), 0);        // it ended: done
  fake.join();
  ::close(listener);
  ::unsetenv("MOAT_RUN_DIR");
}

// `moat xenstore` end to end in-process against a fake toolstack: what it
// prints (as xenstore-list / -read do), its exit statuses, the usage errors
// that never reach the system.
TEST_F(RunDir, XenstoreCommandsPrintAsXenstoreToolsDo) {
  int listener = live_system();
  ASSERT_GE(listener, 0);
  constexpr int kAnswered = 6;
  std::thread fake([&]() {
    for (int i = 0; i < kAnswered; ++i) {
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      serve(fd, [](const mc::Request& q) {
        mc::Response r = ok_answer(q);
        const mc::XenstoreRequest& x = q.xenstore();
        if (x.path().rfind("/local/domain/0", 0) == 0) {
          r.set_status(mc::FAILED);
          r.set_error("EACCES: xenstore " + std::string(x.op() == mc::XenstoreRequest::RM ? "rm " : "read ") +
                      x.path());
        } else if (x.op() == mc::XenstoreRequest::LS) {
          r.add_children("name");
          r.add_children("domid");
        } else if (x.op() == mc::XenstoreRequest::READ) {
          r.set_value("ping\x07");
        } else if (x.op() == mc::XenstoreRequest::WRITE) {
          EXPECT_TRUE(x.value() == "some value" || x.value() == "-1") << x.value();
        }
        return frame(r);
      }, true);
      ::close(fd);
    }
  });
  auto cmd = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    return moat::cli::control_command("xenstore", int(argv.size()), argv.data());
  };
  testing::internal::CaptureStdout();
  EXPECT_EQ(cmd({"ls", "/local/domain/5"}), 0);
  EXPECT_EQ(cmd({"read", "/local/domain/5/name"}), 0);
  EXPECT_EQ(cmd({"write", "data/x", "some value"}), 0);
  EXPECT_EQ(cmd({"write", "data/x", "-1"}), 0);   // a value, not an option
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "name\ndomid\nping\\007\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd({"read", "/local/domain/0/name"}), 1);
  EXPECT_EQ(cmd({"rm", "/local/domain/0/x", "--system", "sys"}), 1);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("moat xenstore: failed: EACCES: xenstore read /local/domain/0/name"), std::string::npos) << err;
  EXPECT_NE(err.find("moat xenstore: failed: EACCES: xenstore rm /local/domain/0/x"), std::string::npos) << err;
  // Usage errors never reach the system.
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd({}), 2);
  EXPECT_EQ(cmd({"cat", "/x"}), 2);
  EXPECT_EQ(cmd({"read"}), 2);
  EXPECT_EQ(cmd({"read", "/a", "/b"}), 2);
  EXPECT_EQ(cmd({"write", "/a"}), 2);
  EXPECT_EQ(cmd({"read", "/a b"}), 2);
  EXPECT_EQ(cmd({"read", "/a.b"}), 2);
  EXPECT_EQ(cmd({"read", std::string(257, 'a')}), 2);
  EXPECT_EQ(cmd({"write", "/a", std::string(513, 'v')}), 2);
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("at most 512"), std::string::npos) << err;
  fake.join();
  ::close(listener);
  ::unsetenv("MOAT_RUN_DIR");
}


TEST(ControlCheck, ListPagesAreChecked) {
  mc::Request list = mc::make_request(9);
  list.mutable_list()->set_start(3);
  mc::Response r = ok_answer(list);
  *r.add_domains() = domain("guest4", 7, mc::RUNNING);
  *r.add_domains() = domain("guest5", 8, mc::RUNNING);
  r.set_total(5);
  std::string why;
  EXPECT_TRUE(mc::check_response(list, r, &why)) << why;
  r.set_total(4);   // two from the fourth of four: one too many
  EXPECT_FALSE(mc::check_response(list, r, &why));
  EXPECT_NE(why.find("2 domains from 3 in a list of 4"), std::string::npos) << why;
  r.set_total(5000);
  EXPECT_FALSE(mc::check_response(list, r, &why));
  EXPECT_NE(why.find("over 4096"), std::string::npos) << why;
  mc::Request pause = mc::make_request(9);
  pause.mutable_pause()->set_name("ping");
  mc::Response p = ok_answer(pause);
  p.set_total(1);
  EXPECT_FALSE(mc::check_response(pause, p, &why));
  EXPECT_NE(why.find("a total in an answer that is not a list"), std::string::npos) << why;
}

}  // namespace
