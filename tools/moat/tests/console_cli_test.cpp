// `moat console` (tools/moat/console_cli.cpp): the filter that picks one
// domain's lines out of the console log (exact prefix, lines split across
// reads, long lines, sanitising, kernel and other domains' lines skipped),
// and the follower against a log in a temporary run directory, with a child
// process standing in for QEMU: backlog, new lines as they are appended in
// pieces, --until, --timeout, keys (without a toolstack a note, then
// Ctrl-]; with one, sent in batches through an input sink, a refusal said
// once and no more sent), --send (its escapes, batches of 256, `until`
// counting only lines after it), a log started afresh, the system's end.
#include "console_cli.hpp"
#include "rundir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <atomic>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace {

namespace mc = moat::cli;
namespace fs = std::filesystem;

std::vector<std::string> filter_all(std::string_view domain, std::string_view bytes) {
  mc::ConsoleFilter f(domain);
  std::vector<std::string> out;
  f.feed(bytes, &out);
  return out;
}

const std::string kMixed =
    "moat: kernel line\r\n"
    "ping: one\r\n"
    "pingpong: not ping's\r\n"
    "ping:no space\r\n"
    "xping: not ping's either\r\n"
    " ping: indented, not ping's\r\n"
    "builder: ping (domain 4) built\r\n"
    "ping: two: with a colon\r\n"
    "pong: ping: quoted\r\n"
    "ping: \r\n"
    "ping: three\n";

TEST(ConsoleFilter, OnlyTheDomainsLinesExactPrefix) {
  EXPECT_EQ(filter_all("ping", kMixed), (std::vector<std::string>{"one", "two: with a colon", "", "three"}));
  EXPECT_EQ(filter_all("pingpong", kMixed), (std::vector<std::string>{"not ping's"}));
  EXPECT_EQ(filter_all("pong", kMixed), (std::vector<std::string>{"ping: quoted"}));
  EXPECT_TRUE(filter_all("pin", kMixed).empty());
}

TEST(ConsoleFilter, LinesSplitAcrossReadsAtEveryPoint) {
  const auto whole = filter_all("ping", kMixed);
  for (size_t cut = 0; cut <= kMixed.size(); ++cut) {
    mc::ConsoleFilter f("ping");
    std::vector<std::string> out;
    f.feed(std::string_view(kMixed).substr(0, cut), &out);
    f.feed(std::string_view(kMixed).substr(cut), &out);
    EXPECT_EQ(out, whole) << "cut at " << cut;
  }
  mc::ConsoleFilter f("ping");
  std::vector<std::string> out;
  for (char c : kMixed) f.feed(std::string_view(&c, 1), &out);
  EXPECT_EQ(out, whole);
}

TEST(ConsoleFilter, PartialLine) {
  mc::ConsoleFilter f("ping");
  std::vector<std::string> out;
  f.feed("pi", &out);
  EXPECT_FALSE(f.partial());   // not known to be ping's yet
  f.feed("ng: hal", &out);
  EXPECT_EQ(f.partial(), "hal");
  f.feed("f\npong: x", &out);
  EXPECT_EQ(out, std::vector<std::string>{"half"});
  EXPECT_FALSE(f.partial());
  f.reset();
  f.feed("ping: new\n", &out);
  EXPECT_EQ(out.back(), "new");
}

TEST(ConsoleFilter, SanitisesWhatCouldDriveTheTerminal) {
  std::string line = "ping: \x1b[2J\x07 bell\ttab \\x1b kept \xc3\xa9 nul";
  line += '\0';
  line += "\r mid\x7f\r\n";
  EXPECT_EQ(filter_all("ping", line),
            std::vector<std::string>{"\\033[2J\\007 bell\ttab \\x1b kept \\303\\251 nul\\000\\015 mid\\177"});
  EXPECT_EQ(mc::sanitise_console("\r"), "");
  EXPECT_EQ(mc::sanitise_console("a\r\r"), "a\\015");
}

TEST(ConsoleFilter, LongLinesInBoundedPiecesNeverTakenForAnothers) {
  constexpr size_t kMax = mc::ConsoleFilter::kMaxLine;
  // ping's own long line: every byte of it, in pieces.
  std::string text(3 * kMax, 'a');
  auto out = filter_all("ping", "ping: " + text + "\nping: after\n");
  std::string joined;
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    EXPECT_LE(out[i].size(), kMax);
    joined += out[i];
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(out.back(), "after");
  // Exactly a piece long: no empty line of its own after it.
  out = filter_all("ping", "ping: " + std::string(kMax - 6, 'b') + "\nping: next\n");
  EXPECT_EQ(out, (std::vector<std::string>{std::string(kMax - 6, 'b'), "next"}));
  // Another's long line whose later piece starts with "ping: ": not ping's.
  std::string other = "pong: " + std::string(kMax - 6, 'c') + "ping: forged " + std::string(kMax, 'd') + "\nping: real\n";
  EXPECT_EQ(filter_all("ping", other), std::vector<std::string>{"real"});
  // A log without a newline at all: nothing of another's, and bounded.
  mc::ConsoleFilter f("ping");
  std::vector<std::string> none;
  std::string junk(kMax / 2, 'x');
  for (int i = 0; i < 64; ++i) f.feed(junk, &none);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(f.partial());
}

// A run directory with a log, and a child process standing in for QEMU.
class Follow : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-console-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ / "console.log";
    out_path_ = dir_ / "out";
    err_path_ = dir_ / "err";
    qemu_ = ::fork();
    ASSERT_GE(qemu_, 0);
    if (qemu_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  void TearDown() override {
    end_qemu();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void end_qemu() {
    if (qemu_ > 0) {
      ::kill(qemu_, SIGKILL);
      ::waitpid(qemu_, nullptr, 0);
      qemu_ = -1;
    }
  }
  void append(const std::string& bytes) {
    std::ofstream o(log_, std::ios::app | std::ios::binary);
    o << bytes;
  }
  // Runs the follower; its output and errors land in files read afterwards.
  int follow(const mc::FollowOptions& o, int keys = -1, pid_t qemu = 0, mc::InputSink* input = nullptr) {
    FILE* out = std::fopen(out_path_.c_str(), "w");
    FILE* err = std::fopen(err_path_.c_str(), "w");
    int rc = mc::follow_console(log_, qemu ? qemu : qemu_, o, out, err, keys, nullptr, input);
    std::fclose(out);
    std::fclose(err);
    return rc;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string out() const { return read(out_path_); }
  // Until the follower's output so far ends with `text` (a backstop of 60 s,
  // for a loaded host; the cases take milliseconds).
  bool wait_for_out(const std::string& text) const {
    for (int i = 0; i < 6000; ++i) {
      if (out().ends_with(text)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string err() const { return read(err_path_); }

  static mc::FollowOptions options(bool follow, size_t lines = 20) {
    mc::FollowOptions o;
    o.domain = "ping";
    o.system = "test";
    o.follow = follow;
    o.lines = lines;
    o.timeout = 60;   // a backstop: the cases end long before
    return o;
  }

  fs::path dir_, log_, out_path_, err_path_;
  pid_t qemu_ = -1;
};

TEST_F(Follow, BacklogIsTheLastLinesOfTheDomain) {
  for (int i = 1; i <= 30; ++i) append("ping: line " + std::to_string(i) + "\r\npong: other " + std::to_string(i) + "\r\n");
  append("ping: unfinished");
  EXPECT_EQ(follow(options(false, 3)), 0);
  EXPECT_EQ(out(), "line 28\nline 29\nline 30\nunfinished\n");
  EXPECT_EQ(follow(options(false, 0)), 0);
  EXPECT_EQ(out(), "unfinished\n");
}

TEST_F(Follow, NoFollowWithUntil) {
  append("ping: booted\nping: ready now\npong: ready\n");
  auto o = options(false);
  o.until = "ready";
  EXPECT_EQ(follow(o), 0);
  EXPECT_EQ(out(), "booted\nready now\n");
  o.until = "never printed";
  EXPECT_EQ(follow(o), 1);
  EXPECT_NE(err().find("'never printed' not seen"), std::string::npos) << err();
}

TEST_F(Follow, NewLinesInPiecesThenTheSystemEnds) {
  append("ping: old\n");
  int rc = -1;
  std::thread t([&] { rc = follow(options(true)); });
  // Appended in pieces while it follows (whether it reads them one by one
  // or together, the lines are the same); then QEMU goes.
  for (const char* piece : {"pi", "ng: hel", "lo\r", "\npingpong: no\n", "moat: kernel\nping: \x1b", "]0;title\x07\n",
                            "ping: last, unfinished"}) {
    append(piece);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  end_qemu();
  t.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out(), "old\nhello\n\\033]0;title\\007\nlast, unfinished\n");
  EXPECT_NE(err().find("system test has ended"), std::string::npos) << err();
}

TEST_F(Follow, UntilSeenInNewLinesNotAnothers) {
  append("ping: booting\n");
  auto o = options(true);
  o.until = "ready";
  int rc = -1;
  std::thread t([&] { rc = follow(o); });
  append("pong: ready\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  append("ping: rea");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  append("dy at last\nping: after it\n");
  t.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out(), "booting\nready at last\n");
}

TEST_F(Follow, UntilNotSeenByTheTimeout) {
  append("ping: booting\n");
  auto o = options(true);
  o.until = "ready";
  o.timeout = 0.2;
  EXPECT_EQ(follow(o), 1);
  EXPECT_NE(err().find("'ready' not seen in ping's lines in 0.2 s"), std::string::npos) << err();
}

TEST_F(Follow, UntilNotSeenBeforeTheEnd) {
  append("ping: booting\n");
  end_qemu();
  auto o = options(true);
  o.until = "ready";
  EXPECT_EQ(follow(o), 1);
  EXPECT_NE(err().find("not seen in ping's lines before the system ended"), std::string::npos) << err();
}

TEST_F(Follow, KeysGetANoteOnceThenCtrlRightBracketDetaches) {
  append("ping: up\n");
  int keys[2];
  ASSERT_EQ(::pipe(keys), 0);
  ASSERT_EQ(::write(keys[1], "ab\x1dz", 4), 4);
  EXPECT_EQ(follow(options(true), keys[0]), 0);
  ::close(keys[0]);
  ::close(keys[1]);
  std::string e = err();
  EXPECT_NE(e.find("input: system test has no toolstack: type in the system's own terminal, where Ctrl-] moves the "
                   "focus"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("input:"), e.rfind("input:"));   // once
  EXPECT_NE(e.find("detached from ping"), std::string::npos) << e;
  EXPECT_EQ(out(), "up\n");
}

// An input sink that records what it is given; it refuses from the
// `refuse_from`th request on (0: never).
class FakeInput : public mc::InputSink {
 public:
  bool send(std::string_view bytes, std::string* why) override {
    std::lock_guard<std::mutex> l(m_);
    ++calls_;
    if (refuse_from_ && calls_ >= refuse_from_) {
      *why = "refused: console input for \"ping\": not ours";
      return false;
    }
    EXPECT_FALSE(bytes.empty());
    EXPECT_LE(bytes.size(), mc::kInputBatch);
    got_.emplace_back(bytes);
    return true;
  }
  std::vector<std::string> got() {
    std::lock_guard<std::mutex> l(m_);
    return got_;
  }
  unsigned calls() {
    std::lock_guard<std::mutex> l(m_);
    return calls_;
  }
  unsigned refuse_from_ = 0;
  bool closed_ = false;   // a refusal is a connection closed unanswered
  bool closed_unanswered() const override { return closed_; }

 private:
  std::mutex m_;
  std::vector<std::string> got_;
  unsigned calls_ = 0;
};

TEST_F(Follow, KeysAreSentInBatchesUntilCtrlRightBracket) {
  append("ping: up\n");
  int keys[2];
  ASSERT_EQ(::pipe(keys), 0);
  FakeInput input;
  int rc = -1;
  std::thread t([&] { rc = follow(options(true), keys[0], 0, &input); });
  // Written together: one request. Ctrl-C is a key for the guest here.
  ASSERT_EQ(::write(keys[1], "ls\r\x03", 4), 4);
  for (int i = 0; i < 6000 && input.got().size() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // What comes before a Ctrl-] goes; what follows it does not.
  ASSERT_EQ(::write(keys[1], "q\x1dzz", 4), 4);
  t.join();
  ::close(keys[0]);
  ::close(keys[1]);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(input.got(), (std::vector<std::string>{"ls\r\x03", "q"}));
  EXPECT_NE(err().find("detached from ping"), std::string::npos) << err();
  EXPECT_EQ(err().find("input:"), std::string::npos) << err();   // no note: input works
}

TEST_F(Follow, ARefusalIsSaidOnceThenNoMoreKeysAreSentAndLinesGoOn) {
  append("ping: up\n");
  int keys[2];
  ASSERT_EQ(::pipe(keys), 0);
  FakeInput input;
  input.refuse_from_ = 1;
  int rc = -1;
  std::thread t([&] { rc = follow(options(true), keys[0], 0, &input); });
  ASSERT_EQ(::write(keys[1], "a", 1), 1);
  for (int i = 0; i < 6000 && input.calls() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(::write(keys[1], "b", 1), 1);
  append("ping: still shown\n");
  ASSERT_TRUE(wait_for_out("still shown\n"));
  ASSERT_EQ(::write(keys[1], "\x1d", 1), 1);
  t.join();
  ::close(keys[0]);
  ::close(keys[1]);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(input.calls(), 1u);   // "b" was not sent
  std::string e = err();
  EXPECT_NE(e.find("input to ping not sent: refused: console input for \"ping\": not ours; keys typed here are no "
                   "longer sent"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("not sent"), e.rfind("not sent"));   // once
  EXPECT_EQ(out(), "up\nstill shown\n");
}

TEST_F(Follow, SendGoesAfterTheBacklogAndUntilCountsOnlyLaterLines) {
  // "got" is in the backlog already: it must not end the wait.
  append("ping: got \"hello\"\n");
  FakeInput input;
  auto o = options(true);
  o.send = std::string(300, 'x') + "\r";
  o.until = "got \"hello\"";
  std::atomic<int> rc = -1;
  std::thread t([&] { rc = follow(o, -1, 0, &input); });
  for (int i = 0; i < 6000 && input.got().size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(rc, -1);   // still waiting
  append("ping: got \"hello\"\n");
  t.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(input.got(), (std::vector<std::string>{std::string(256, 'x'), std::string(44, 'x') + "\r"}));
  EXPECT_EQ(out(), "got \"hello\"\ngot \"hello\"\n");
}

TEST_F(Follow, SendRefusedOrWithoutAToolstackIsAnError) {
  append("ping: up\n");
  FakeInput input;
  input.refuse_from_ = 1;
  auto o = options(true);
  o.send = "x";
  EXPECT_EQ(follow(o, -1, 0, &input), 1);
  EXPECT_NE(err().find("--send to ping: refused: console input for \"ping\": not ours"), std::string::npos) << err();
  EXPECT_EQ(follow(o), 1);
  EXPECT_NE(err().find("--send: system test has no toolstack domain to take input"), std::string::npos) << err();
}

// A send whose connection closes unanswered (the bytes ended the system
// before the toolstack's answer left it): with --until, the domain's lines
// decide; without, or if the line never comes, it is an error.
TEST_F(Follow, SendClosedUnansweredIsJudgedByWhatTheDomainPrints) {
  append("ping: up\n");
  FakeInput input;
  input.refuse_from_ = 1;
  input.closed_ = true;
  auto o = options(true);
  o.send = "quit\r";
  o.until = "got \"quit\"";
  std::atomic<int> rc = -1;
  std::thread t([&] { rc = follow(o, -1, 0, &input); });
  for (int i = 0; i < 6000 && input.calls() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  append("ping: got \"quit\"\n");
  t.join();
  EXPECT_EQ(rc, 0);
  EXPECT_NE(err().find("no answer (the system closed the connection); looking for"), std::string::npos) << err();
  // The system ends without the line: not seen, an error.
  o.until = "never printed";
  std::thread t2([&] { rc = follow(o, -1, 0, &input); });
  for (int i = 0; i < 6000 && input.calls() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  end_qemu();
  t2.join();
  EXPECT_EQ(rc, 1);
  // Without --until there is nothing to judge by: an error at once.
  o.until.clear();
  EXPECT_EQ(follow(o, -1, 0, &input), 1);
  EXPECT_NE(err().find("--send to ping: refused"), std::string::npos) << err();
}

TEST(SendText, Escapes) {
  std::string out, why;
  ASSERT_TRUE(mc::parse_send_text("hello\\r", &out, &why)) << why;
  EXPECT_EQ(out, "hello\r");
  ASSERT_TRUE(mc::parse_send_text("a\\nb\\tc\\\\d\\e[\\x00\\x7F\\xfF", &out, &why)) << why;
  EXPECT_EQ(out, std::string("a\nb\tc\\d\x1b[\0\x7f\xff", 12));
  ASSERT_TRUE(mc::parse_send_text("plain text", &out, &why)) << why;
  EXPECT_EQ(out, "plain text");
  EXPECT_FALSE(mc::parse_send_text("end\\", &out, &why));
  EXPECT_NE(why.find("at the end"), std::string::npos) << why;
  EXPECT_FALSE(mc::parse_send_text("\\q", &out, &why));
  EXPECT_NE(why.find("unknown escape \\q"), std::string::npos) << why;
  EXPECT_FALSE(mc::parse_send_text("\\x4", &out, &why));
  EXPECT_FALSE(mc::parse_send_text("\\xg0", &out, &why));
  EXPECT_NE(why.find("two hex digits"), std::string::npos) << why;
  EXPECT_FALSE(mc::parse_send_text("", &out, &why));
}

TEST(SendText, BatchesAndKeys) {
  EXPECT_TRUE(mc::input_batches("").empty());
  EXPECT_EQ(mc::input_batches("abc"), (std::vector<std::string>{"abc"}));
  auto b = mc::input_batches(std::string(513, 'k'));
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].size(), 256u);
  EXPECT_EQ(b[1].size(), 256u);
  EXPECT_EQ(b[2].size(), 1u);
  EXPECT_EQ(mc::input_batches(std::string(256, 'k')).size(), 1u);
  auto k = mc::take_keys("ab\x03c");
  EXPECT_EQ(k.send, "ab\x03c");
  EXPECT_FALSE(k.detach);
  k = mc::take_keys("ab\x1d" "cd\x1d");
  EXPECT_EQ(k.send, "ab");
  EXPECT_TRUE(k.detach);
  k = mc::take_keys("\x1d");
  EXPECT_EQ(k.send, "");
  EXPECT_TRUE(k.detach);
}

TEST_F(Follow, ALogStartedAfreshIsReadFromItsStart) {
  append("ping: first run, a long line of it\n");
  int rc = -1;
  std::thread t([&] { rc = follow(options(true)); });
  // Each step once the follower has shown the one before (it flushes each line).
  ASSERT_TRUE(wait_for_out("first run, a long line of it\n"));
  { std::ofstream truncate(log_, std::ios::trunc); }
  append("ping: again\n");   // shorter than what was read: the log is seen truncated
  ASSERT_TRUE(wait_for_out("again\n"));
  // Another file in its place: read from its start too, even once QEMU is gone.
  fs::remove(log_);
  append("ping: new file\n");
  end_qemu();
  t.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out(), "first run, a long line of it\nagain\nnew file\n");
}

TEST_F(Follow, NoLogIsAClearError) {
  EXPECT_EQ(follow(options(true)), 1);
  EXPECT_NE(err().find("cannot read system test's console log"), std::string::npos) << err();
}

// The command: the system found as `moat list` finds it, the name checked
// against its manifest's domains.
TEST_F(Follow, CommandRefusesANameNotInTheManifest) {
  ::setenv("MOAT_RUN_DIR", dir_.c_str(), 1);
  fs::create_directories(dir_ / "sys");
  std::ofstream(dir_ / "sys" / "pid") << qemu_ << "\n";
  std::ofstream(dir_ / "sys" / "console.log") << "ping: hi\n";
  auto load = [](const std::string& file, moat::manifest::Loaded* m) {
    EXPECT_EQ(file, "the-manifest");
    m->system.add_domains()->set_name("ping");
    m->system.add_domains()->set_name("pingpong");
    return true;
  };
  auto running = [](const std::string& wanted, std::string* file, std::string*) {
    EXPECT_EQ(wanted, "sys");
    *file = "the-manifest";
    return true;
  };
  auto run = [&](std::vector<const char*> args) {
    std::vector<char*> argv;
    for (auto* a : args) argv.push_back(const_cast<char*>(a));
    return mc::console_command(int(argv.size()), argv.data(), load, running);
  };
  EXPECT_EQ(run({"pin", "--no-follow"}), 1);
  EXPECT_EQ(run({"ping", "--no-follow"}), 0);
  EXPECT_EQ(run({"ping", "--no-follow", "--until", "hi"}), 0);
  EXPECT_EQ(run({"ping", "--no-follow", "--until", "ho"}), 1);
  EXPECT_EQ(run({"ping", "--system", "other"}), 1);   // not running
  EXPECT_EQ(run({"ping", "--lines", "-1"}), 2);
  EXPECT_EQ(run({"ping", "--timeout", "0"}), 2);
  EXPECT_EQ(run({"ping", "pong"}), 2);
  EXPECT_EQ(run({"ping", "--send", "bad\\q"}), 2);
  EXPECT_EQ(run({"ping", "--send", ""}), 2);
  EXPECT_EQ(run({"ping", "--no-follow", "--send", "x", "--until", "y"}), 2);
  // This manifest has no toolstack: nothing can take the text.
  EXPECT_EQ(run({"ping", "--send", "x\\r", "--timeout", "5"}), 1);
  EXPECT_EQ(run({}), 2);
  ::unsetenv("MOAT_RUN_DIR");
}

}  // namespace
