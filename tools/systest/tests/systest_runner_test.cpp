// Unit tests: QEMU command line, console line classification, verdicts and
// the flat results JSON.
#include "console.hpp"
#include "json.hpp"
#include "qemu.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <unistd.h>

using namespace moat;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/moat-systest-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

systest::Verdict run(const systest::Expectations& e, const std::vector<std::string>& lines,
                     systest::RunEnd end = {.exited = true, .code = 33}) {
  systest::Checker c(e);
  for (const auto& l : lines) c.line(l);
  return c.finish(end);
}

}  // namespace

TEST(Qemu, EscapesCommasInModules) {
  EXPECT_EQ(qemu::escape_module("a.elf x=1,y=2"), "a.elf x=1,,y=2");
  EXPECT_EQ(qemu::escape_module(",,"), ",,,,");
  EXPECT_EQ(qemu::join_modules({"d1.elf a,b", "d2.elf"}), "d1.elf a,,b,d2.elf");
  EXPECT_EQ(qemu::join_modules({}), "");
}

TEST(Qemu, BuildsTheStandardCommandLine) {
  qemu::BootSpec s;
  s.qemu = "qemu";
  s.kernel = "k.bin";
  s.modules = {"d1.elf console,debug", "d2.elf"};
  s.console = qemu::Console::Plain;
  s.icount = true;
  auto argv = qemu::build_argv(s);
  EXPECT_EQ(qemu::shell_quote(argv),
            "qemu -accel tcg -cpu max -m 256M -smp 1 -nodefaults -no-reboot -display none "
            "-serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 "
            "-icount shift=0 -kernel k.bin -initrd 'd1.elf console,,debug,d2.elf'");
  for (const auto& a : argv) EXPECT_EQ(a.find("kvm"), std::string::npos);
}

TEST(Qemu, IommuMachineIsQ35WithTheIommuBeforeEveryDevice) {
  qemu::BootSpec s;
  s.qemu = "qemu";
  s.kernel = "k.bin";
  s.console = qemu::Console::Plain;
  s.iommu = true;
  s.extra = {"-device", "virtio-net-pci,netdev=net0,addr=04.0"};
  auto argv = qemu::build_argv(s);
  EXPECT_EQ(qemu::shell_quote(argv),
            "qemu -accel tcg -cpu max -m 256M -smp 1 -nodefaults -no-reboot -display none -machine q35 "
            "-serial stdio -monitor none -device intel-iommu,intremap=on "
            "-device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel k.bin "
            "-device virtio-net-pci,netdev=net0,addr=04.0");
  // QEMU wants the IOMMU created before the devices it translates: the
  // first -device of all.
  auto first_device = std::find(argv.begin(), argv.end(), "-device");
  ASSERT_NE(first_device, argv.end());
  EXPECT_EQ(*(first_device + 1), "intel-iommu,intremap=on");
  // The PC has neither.
  s.iommu = false;
  auto pc = qemu::shell_quote(qemu::build_argv(s));
  EXPECT_EQ(pc.find("-machine"), std::string::npos);
  EXPECT_EQ(pc.find("intel-iommu"), std::string::npos);
}

TEST(Qemu, InteractiveConsoleMultiplexesMonitorAndLogs) {
  qemu::BootSpec s;
  s.qemu = "qemu";
  s.kernel = "k";
  s.serial_log = "/tmp/a,b.log";
  s.gdb = true;
  auto q = qemu::shell_quote(qemu::build_argv(s));
  EXPECT_NE(q.find("-chardev stdio,id=console,mux=on,logfile=/tmp/a,,b.log -serial chardev:console "
                   "-mon chardev=console,mode=readline"),
            std::string::npos);
  EXPECT_NE(q.find("-s -S"), std::string::npos);
  EXPECT_EQ(q.find("-initrd"), std::string::npos);
}

// COM2 as the control socket (docs/control.md) comes after the console's
// -serial in either console mode, so that COM1 stays the console.
TEST(Qemu, ControlSocketIsTheSecondSerialPort) {
  for (auto console : {qemu::Console::Interactive, qemu::Console::Plain}) {
    qemu::BootSpec s;
    s.qemu = "qemu";
    s.kernel = "k";
    s.console = console;
    s.control_socket = "out/run/a,b/control.sock";
    auto q = qemu::shell_quote(qemu::build_argv(s));
    size_t control = q.find("-chardev socket,id=control,path=out/run/a,,b/control.sock,server=on,wait=off "
                            "-serial chardev:control");
    ASSERT_NE(control, std::string::npos) << q;
    size_t console_serial = q.find("-serial");
    EXPECT_LT(console_serial, control) << q;
    EXPECT_NE(q.substr(console_serial, 20), "-serial chardev:cont") << q;
  }
  qemu::BootSpec none;
  none.kernel = "k";
  EXPECT_EQ(qemu::shell_quote(qemu::build_argv(none)).find("id=control"), std::string::npos);
  none.control_socket = std::string(120, 'x');
  bool too_long = false;
  for (const auto& e : qemu::validate(none)) too_long |= e.find("too long for a unix socket") != std::string::npos;
  EXPECT_TRUE(too_long);
}

TEST(Qemu, MoatQemuEnvironmentOverridesBinary) {
  ::setenv("MOAT_QEMU", "/opt/fake-qemu", 1);
  EXPECT_EQ(qemu::default_binary(), "/opt/fake-qemu");
  ::setenv("MOAT_QEMU", "", 1);
  EXPECT_EQ(qemu::default_binary(), "qemu-system-x86_64");
  ::unsetenv("MOAT_QEMU");
  EXPECT_EQ(qemu::default_binary(), "qemu-system-x86_64");
}

TEST(Qemu, Validates) {
  EXPECT_TRUE(qemu::valid_memory("256M"));
  EXPECT_TRUE(qemu::valid_memory("1G"));
  EXPECT_TRUE(qemu::valid_memory("512"));
  EXPECT_FALSE(qemu::valid_memory("M"));
  EXPECT_FALSE(qemu::valid_memory("256MB"));
  qemu::BootSpec s;
  s.kernel = "/nonexistent/k";
  s.modules = {"/nonexistent/d args", " leading"};
  auto errors = qemu::validate(s);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("kernel image not found"), std::string::npos);
  EXPECT_NE(errors[1].find("module image not found: /nonexistent/d"), std::string::npos);
  EXPECT_NE(errors[2].find("blanks"), std::string::npos);
}

TEST(Lines, SplitsPartialLinesCrLfAndJunk) {
  systest::LineSplitter s;
  std::vector<std::string> lines;
  s.feed("moat: he", &lines);
  EXPECT_TRUE(lines.empty());
  s.feed("llo\r\nd1: PASS a\r", &lines);
  s.feed(std::string_view("\n\x01\x1b[0m\xff\x00z\n", 10), &lines);
  s.feed(std::string_view("tail\0", 5), &lines);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "moat: hello");
  EXPECT_EQ(lines[1], "d1: PASS a");
  EXPECT_EQ(lines[2], "\\x01\\x1b[0m\xff\\x00z");
  EXPECT_EQ(s.finish(), "tail\\x00");
  EXPECT_EQ(s.finish(), std::nullopt);
}

TEST(Lines, CutsOverlongLines) {
  systest::LineSplitter s;
  std::vector<std::string> lines;
  s.feed(std::string(systest::LineSplitter::kMaxLine * 2 + 5, 'x'), &lines);
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(s.finish()->size(), 5u);
}

TEST(Lines, Classifies) {
  auto k = systest::classify("moat: booting");
  EXPECT_EQ(k.source, systest::ConsoleLine::Source::Kernel);
  EXPECT_EQ(k.text, "booting");
  auto d = systest::classify("d12: PASS foo");
  EXPECT_EQ(d.source, systest::ConsoleLine::Source::Domain);
  EXPECT_EQ(d.name, "d12");
  EXPECT_EQ(d.domain, 12);
  EXPECT_EQ(d.text, "PASS foo");
  EXPECT_EQ(systest::classify("d1 PASS foo").source, systest::ConsoleLine::Source::Other);
  EXPECT_EQ(systest::classify("d1:").source, systest::ConsoleLine::Source::Other);
  EXPECT_EQ(systest::classify("d1: ").text, "");
  EXPECT_EQ(systest::classify("PASS foo").source, systest::ConsoleLine::Source::Other);
}

TEST(Lines, ClassifiesNamedDomains) {
  using Source = systest::ConsoleLine::Source;
  auto n = systest::classify("xenstore: PASS store.up");
  EXPECT_EQ(n.source, Source::Domain);
  EXPECT_EQ(n.name, "xenstore");
  EXPECT_EQ(n.domain, -1);
  EXPECT_EQ(n.text, "PASS store.up");
  auto c = systest::classify("d3-child: FAIL x: y");
  EXPECT_EQ(c.source, Source::Domain);
  EXPECT_EQ(c.name, "d3-child");
  EXPECT_EQ(c.domain, -1);   // not "dN"
  EXPECT_EQ(c.text, "FAIL x: y");
  EXPECT_EQ(systest::classify("not_an_elf.txt: hi").name, "not_an_elf.txt");
  EXPECT_EQ(systest::classify("d: x").name, "d");
  EXPECT_EQ(systest::classify("d: x").domain, -1);
  EXPECT_EQ(systest::classify("dx: PASS foo").source, Source::Domain);
  EXPECT_EQ(systest::classify("abi_test: abi_test: done, 0 failed").text, "abi_test: done, 0 failed");
  // The kernel's prefix stays the kernel's.
  EXPECT_EQ(systest::classify("moat: PASS x").source, Source::Kernel);
  // 32 characters at most, from the set, then ": ".
  std::string longest(32, 'a'), too_long(33, 'a');
  EXPECT_EQ(systest::classify(longest + ": PASS x").source, Source::Domain);
  EXPECT_EQ(systest::classify(too_long + ": PASS x").source, Source::Other);
  EXPECT_EQ(systest::classify(": PASS x").source, Source::Other);
  EXPECT_EQ(systest::classify("a b: PASS x").source, Source::Other);
  EXPECT_EQ(systest::classify("a/b: PASS x").source, Source::Other);
  EXPECT_EQ(systest::classify("name:PASS x").source, Source::Other);
  EXPECT_EQ(systest::classify("  #0 0xffff800000101234 kmain+0x12").source, Source::Other);
  EXPECT_EQ(systest::classify("backtrace:").source, Source::Other);
}

TEST(Lines, PassFailBench) {
  EXPECT_EQ(systest::pass_name("PASS foo"), "foo");
  EXPECT_EQ(systest::pass_name("PASS foo (3 ms)"), "foo");
  EXPECT_EQ(systest::pass_name("PASS "), std::nullopt);
  EXPECT_EQ(systest::pass_name("PASSfoo"), std::nullopt);
  EXPECT_TRUE(systest::matches_pass("PASS foo", "foo"));
  EXPECT_TRUE(systest::matches_pass("PASS foo extra", "foo"));
  EXPECT_FALSE(systest::matches_pass("PASS foobar", "foo"));
  EXPECT_FALSE(systest::matches_pass("PASS fo", "foo"));
  EXPECT_TRUE(systest::is_fail("FAIL foo: bad"));
  EXPECT_FALSE(systest::is_fail("PASS FAIL"));

  auto b = systest::parse_bench("BENCH hypercall_ns 123");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->metric, "hypercall_ns");
  EXPECT_EQ(b->number, "123");
  EXPECT_EQ(systest::parse_bench("BENCH x 1.50 ns")->number, "1.50");
  EXPECT_EQ(systest::parse_bench("BENCH x +007")->number, "7");
  EXPECT_EQ(systest::parse_bench("BENCH x .5")->number, "0.5");
  EXPECT_EQ(systest::parse_bench("BENCH x -2e3")->number, "-2e3");
  EXPECT_TRUE(systest::parse_bench("BENCH x nan")->number.empty());
  EXPECT_TRUE(systest::parse_bench("BENCH x 0x10")->number.empty());
  EXPECT_TRUE(systest::parse_bench("BENCH x")->number.empty());
  EXPECT_TRUE(systest::parse_bench("BENCH")->number.empty());
  EXPECT_FALSE(systest::parse_bench("BENCHMARK x 1"));
  EXPECT_FALSE(systest::parse_bench("PASS x"));
}

TEST(Verdict, PassesACleanRun) {
  systest::Expectations e;
  e.passes = {"a", "b"};
  e.lines = {"booted"};
  e.forbidden = {"warning"};
  e.min_pass = 2;
  auto v = run(e, {"moat: booted", "d1: PASS a", "d2: PASS b extra", "d1: BENCH m 5"});
  EXPECT_TRUE(v.ok) << systest::format_verdict(v, "");
  EXPECT_EQ(v.pass_lines, 2);
  EXPECT_EQ(v.bench.at("m"), "5");
  EXPECT_EQ(systest::format_verdict(v, "t"), "moat-systest: PASS t (2 PASS line(s), 1 BENCH figure(s))\n");
}

TEST(Verdict, ReadsNamedDomainLines) {
  // Lines as the kernel (console_io) and the console domain write them.
  systest::Expectations e;
  e.passes = {"a", "b"};
  auto v = run(e, {"moat: booted", "abi_test: PASS a", "xenstore: PASS b", "d3-child: BENCH m 7"});
  EXPECT_TRUE(v.ok) << systest::format_verdict(v, "");
  EXPECT_EQ(v.bench.at("m"), "7");
  auto f = run(e, {"abi_test: PASS a", "xenstore: PASS b", "guest.1: FAIL c: wrong"});
  EXPECT_FALSE(f.ok);
  EXPECT_NE(systest::format_verdict(f, "").find("domain reported failure: guest.1: FAIL c: wrong"), std::string::npos);
}

TEST(Verdict, ListsEveryReason) {
  systest::Expectations e;
  e.passes = {"a", "missing"};
  e.lines = {"never"};
  e.forbidden = {"oops"};
  e.min_pass = 3;
  auto v = run(e, {"moat: PANIC: page fault", "d1: PASS a", "d1: FAIL b: wrong", "x oops y", "d1: BENCH m"},
               {.exited = true, .code = 0});
  EXPECT_FALSE(v.ok);
  std::string text = systest::format_verdict(v, "t");
  for (const char* want : {"FAIL t (8 reason(s))", "QEMU exited with 0 (triple fault", "line 1: kernel panic",
                           "line 3: domain reported failure: d1: FAIL b: wrong", "malformed BENCH",
                           "missing \"PASS missing\"", "missing expected line containing \"never\"",
                           "line 4: forbidden \"oops\"", "only 1 PASS line(s), expected at least 3"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

TEST(Verdict, ExitStatuses) {
  systest::Expectations clean;
  EXPECT_TRUE(run(clean, {}).ok);
  EXPECT_FALSE(run(clean, {}, {.exited = true, .code = 35}).ok);
  EXPECT_FALSE(run(clean, {}, {.exited = false, .signal = 9}).ok);
  auto t = run(clean, {"d1: PASS a"}, {.timed_out = true, .timeout_s = 2.5});
  ASSERT_EQ(t.reasons.size(), 1u);
  EXPECT_EQ(t.reasons[0], "TIMEOUT after 2.5 s");
  auto s = run(clean, {}, {.started = false, .start_error = "nope"});
  EXPECT_EQ(s.reasons.at(0), "QEMU could not be started: nope");

  systest::Expectations panic;
  panic.exit = systest::ExpectExit::Panic;
  EXPECT_TRUE(run(panic, {"moat: PANIC: deliberate"}, {.exited = true, .code = 35}).ok);
  EXPECT_FALSE(run(panic, {}, {.exited = true, .code = 33}).ok);
}

TEST(Verdict, WantsBenchFiguresWhenAsked) {
  systest::Expectations e;
  e.want_bench = true;
  EXPECT_FALSE(run(e, {"d1: PASS a"}).ok);
  EXPECT_TRUE(run(e, {"d1: BENCH a 1", "d1: BENCH a 2"}).ok);
  EXPECT_EQ(run(e, {"d1: BENCH a 1", "d1: BENCH a 2"}).bench.at("a"), "2");
  // BENCH only counts from domains.
  EXPECT_FALSE(run(e, {"moat: BENCH a 1"}).ok);
}

TEST(Verdict, BoundsTheLongestHypercall) {
  systest::Expectations e;
  e.max_hypercall_us = 1000;
  auto ok = run(e, {"moat: longest hypercall invocation: 347 us (hypercall 13 of domain 5)"});
  EXPECT_TRUE(ok.ok) << systest::format_verdict(ok, "");
  auto slow = run(e, {"moat: longest hypercall invocation: 5899 us (hypercall 13 of domain 5)"});
  EXPECT_FALSE(slow.ok);
  EXPECT_NE(systest::format_verdict(slow, "t").find("ran 5899 us without a preemption point"), std::string::npos);
  auto missing = run(e, {"moat: booted"});
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(systest::format_verdict(missing, "t").find("no \"longest hypercall invocation\" line"), std::string::npos);
  // A domain saying it is not the kernel saying it.
  auto forged = run(e, {"evil: longest hypercall invocation: 1 us"});
  EXPECT_FALSE(forged.ok);
  // Not asked for: not checked.
  EXPECT_TRUE(run(systest::Expectations{}, {"moat: longest hypercall invocation: 99999 us"}).ok);
}

TEST(Json, ParsesAndQuotes) {
  std::string error;
  auto v = json::parse(R"({"a": [1, -2.5e3, true, null], "b\u00e9\"": {"c": "x\ny"}})", &error);
  ASSERT_TRUE(v) << error;
  EXPECT_EQ(v->members.size(), 2u);
  EXPECT_EQ(v->find("a")->items.at(1).number, -2500);
  EXPECT_EQ(v->members[1].key, "b\xc3\xa9\"");
  EXPECT_EQ(v->members[1].value.raw, R"({"c": "x\ny"})");
  EXPECT_EQ(json::quote("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "01", "1.", "{\"a\":1} x", "\"\x01\"", "nul"})
    EXPECT_FALSE(json::parse(bad, &error)) << bad;
  std::string deep(1000, '[');
  EXPECT_FALSE(json::parse(deep, &error));
}

TEST(Json, FormatsNumbers) {
  EXPECT_EQ(json::format_number(12), "12");
  EXPECT_EQ(json::format_number(-0.0), "0");
  EXPECT_EQ(json::format_number(0.1), "0.1");
  EXPECT_EQ(json::format_number(1234.5), "1234.5");
  EXPECT_EQ(json::format_number(1e20), "1e+20");
}

TEST(Json, FlatReadWrite) {
  std::string error;
  auto f = json::read_flat(" \n", &error);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->empty());
  EXPECT_EQ(json::write_flat({}), "{}\n");
  f = json::read_flat(R"({"z": 1, "a": 2.50, "note": "kept"})", &error);
  ASSERT_TRUE(f);
  EXPECT_EQ(json::write_flat(*f), "{\n  \"a\": 2.50,\n  \"note\": \"kept\",\n  \"z\": 1\n}\n");
  EXPECT_FALSE(json::read_flat("[1]", &error));
  EXPECT_FALSE(json::read_flat("{\"a\":", &error));
}

TEST(Json, MergesIntoFile) {
  TempDir dir;
  std::string path = (dir.path / "sub" / "results.json").string();
  std::string error;
  ASSERT_TRUE(json::merge_into_file(path, {{"b", "2"}, {"a", "1.5"}}, &error)) << error;
  EXPECT_EQ(slurp(path), "{\n  \"a\": 1.5,\n  \"b\": 2\n}\n");
  ASSERT_TRUE(json::merge_into_file(path, {{"b", "3"}, {"c", "-1"}}, &error)) << error;
  EXPECT_EQ(slurp(path), "{\n  \"a\": 1.5,\n  \"b\": 3,\n  \"c\": -1\n}\n");
  // A file that is not a flat object is left alone.
  std::ofstream(path) << "garbage";
  EXPECT_FALSE(json::merge_into_file(path, {{"x", "1"}}, &error));
  EXPECT_NE(error.find("left unchanged"), std::string::npos);
  EXPECT_EQ(slurp(path), "garbage");
}
