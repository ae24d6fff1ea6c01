// The kernel log ring (core/log.hpp): the ring on its own, then the kernel's
// log through console_io on the fake machine: CONSOLEIO_read, its capability
// check, the UART handover and the kernel taking the UART back.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <abi/console.hpp>
#include <abi/hypercall.hpp>
#include <cap/capability.hpp>
#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>

#include "test_domain.hpp"

namespace {

using core::LogRing;

// ---- the ring on its own ---------------------------------------------------------

struct Ring {
    explicit Ring(size_t size) : storage(size), ring(storage.data(), size) {}
    void put(const std::string& s) { ring.append(s.data(), s.size()); }
    std::string get(size_t n = 1 << 20) {
        std::string out(n, '\0');
        out.resize(ring.read(c, out.data(), n));
        return out;
    }
    std::vector<char> storage;
    LogRing ring;
    LogRing::Cursor c;
};

TEST(LogRing, ReadsWhatWasWrittenInOrder) {
    Ring r(64);
    EXPECT_EQ(r.get(), "");
    EXPECT_FALSE(r.ring.has_unread(r.c));
    r.put("moat: one\n");
    r.put("a: two\n");
    EXPECT_TRUE(r.ring.has_unread(r.c));
    EXPECT_EQ(r.get(4), "moat");
    EXPECT_EQ(r.get(), ": one\na: two\n");
    EXPECT_EQ(r.get(), "");
    EXPECT_EQ(r.ring.head(), 17u);
}

TEST(LogRing, WrapsAround) {
    Ring r(16);
    r.put("0123456789\n");
    EXPECT_EQ(r.get(), "0123456789\n");
    r.put("abcdefghij\n");   // crosses the end of the storage
    EXPECT_EQ(r.get(), "abcdefghij\n");
    for (int i = 0; i < 50; ++i) {
        std::string line = "l" + std::to_string(i) + "\n";
        r.put(line);
        EXPECT_EQ(r.get(), line);
    }
}

TEST(LogRing, OverflowIsReportedWithTheBytesLost) {
    Ring r(32);
    r.put("first line\n");                          // 11 bytes, never read
    r.put("second line\n");                         // 12
    r.put("third line is here\n");                  // 19: 42 written, 10 overwritten
    // The oldest byte held is at 10 ('\n' of the first line), so the reader
    // goes on at "second line": the 11 bytes of the first line are lost.
    EXPECT_EQ(r.get(), "moat: console log overflowed, 11 bytes lost\nsecond line\nthird line is here\n");
    EXPECT_FALSE(r.ring.has_unread(r.c));
    r.put("more\n");
    EXPECT_EQ(r.get(), "more\n");
}

TEST(LogRing, OverflowMidLineEndsTheLineFirstAndResyncsToALineStart) {
    Ring r(32);
    r.put("abcdefgh\n");
    EXPECT_EQ(r.get(3), "abc");   // mid-line
    r.put("0123456789012345678901234\n");   // 26: head 35, oldest 3
    r.put("x\n");                           // head 37, oldest 5
    // Held from 5: "fgh\n" then the long line. The reader resumes after the
    // first '\n' (at 8): positions 3..8 are lost (6 bytes).
    EXPECT_EQ(r.get(), "\nmoat: console log overflowed, 6 bytes lost\n0123456789012345678901234\nx\n");
}

TEST(LogRing, MarkerComesOutInPieces) {
    // The oldest byte held starts a line: nothing more is skipped.
    Ring r(16);
    r.put("aaaaaaaaaaaaaaa\n");
    r.put("bbbbbbbbbbbbbbb\n");
    std::string all;
    for (std::string piece; !(piece = r.get(5)).empty();) {
        EXPECT_LE(piece.size(), 5u);
        all += piece;
    }
    EXPECT_EQ(all, "moat: console log overflowed, 16 bytes lost\nbbbbbbbbbbbbbbb\n");
}

TEST(LogRing, AppendLongerThanTheRingKeepsTheEnd) {
    Ring r(16);
    std::string big;
    for (int i = 0; i < 10; ++i) big += "line" + std::to_string(i) + "\n";   // 60 bytes
    r.put(big);
    EXPECT_EQ(r.ring.head(), 60u);
    // Held: the last 16 bytes, "ne7\nline8\nline9\n" from the middle of a
    // line: the reader goes on after its end.
    EXPECT_EQ(r.get(), "moat: console log overflowed, 48 bytes lost\nline8\nline9\n");
}

TEST(LogRing, EmptyAppendsChangeNothing) {
    Ring r(8);
    r.put("abcdefghij\n");   // held from 'd', mid-line
    r.put("");                // the slot before 'd' holds the '\n' now: not a line start
    EXPECT_EQ(r.get(), "moat: console log overflowed, 11 bytes lost\n");
}

TEST(LogRing, NoNewlineHeldResumesAtTheOldestByte) {
    Ring r(8);
    r.put("abcdefghijkl");   // no line end anywhere
    EXPECT_EQ(r.get(), "moat: console log overflowed, 4 bytes lost\nefghijkl");
}

TEST(LogRing, SkipAllDropsWhatIsThere) {
    Ring r(16);
    r.put("old\n");
    r.put("aaaaaaaaaaaaaaaaaaaaaa\n");   // overflowed too: no marker after a skip
    r.ring.skip_all(r.c);
    EXPECT_FALSE(r.ring.has_unread(r.c));
    r.put("new\n");
    EXPECT_EQ(r.get(), "new\n");
}

TEST(LogRing, ACopiedCursorReadsAgain) {
    // CONSOLEIO_read peeks on a copy and commits only after delivering.
    Ring r(16);
    r.put("x\ny\n");
    LogRing::Cursor copy = r.c;
    EXPECT_EQ(r.get(), "x\ny\n");
    char buf[8];
    EXPECT_EQ(r.ring.read(copy, buf, sizeof buf), 4u);
    EXPECT_EQ(std::string(buf, 4), "x\ny\n");
}

// ---- console line prefixes -----------------------------------------------------------

std::string name_of(const char* name, size_t len, uint32_t id) {
    char out[abi::kConsoleNameMax + 1];
    size_t n = abi::console_name(name, len, id, out);
    EXPECT_EQ(n, std::string(out).size());
    return out;
}

TEST(ConsoleName, KeepsSafeNamesAndMendsTheRest) {
    EXPECT_EQ(name_of("xenstore", 32, 1), "xenstore");
    EXPECT_EQ(name_of("d3-child", 32, 4), "d3-child");
    EXPECT_EQ(name_of("not_an_elf.txt", 32, 0), "not_an_elf.txt");
    EXPECT_EQ(name_of("a b:\x1b[2J", 32, 2), "a_b___2J");
    EXPECT_EQ(name_of("", 32, 7), "d7");
    EXPECT_EQ(name_of("moat", 32, 12), "d12");      // never the kernel's prefix
    EXPECT_EQ(name_of("moat2", 32, 12), "moat2");
    EXPECT_EQ(name_of("abcdef", 3, 0), "abc");       // not NUL-terminated: bounded
    std::string longname(40, 'x');
    EXPECT_EQ(name_of(longname.c_str(), 40, 0), std::string(32, 'x'));
    EXPECT_EQ(name_of("", 0, 4294967295u), "d4294967295");
}

// ---- the kernel's log and console_io ----------------------------------------------

constexpr int64_t kEperm = -1, kEfault = -14, kEbusy = -16;

class KernelLog : public coretest::DomainTest {
protected:
    void SetUp() override {
        DomainTest::SetUp();
        if (HasFatalFailure()) return;
        scratch = coretest::kImageEnd + 0x200000;
        ASSERT_LT(scratch + 0x20000, l.v_end);
    }

    int64_t console_io(core::Vcpu& who, abi::ConsoleIo op, uint64_t count, uint64_t buf) {
        core::Regs r = who.regs;
        r.rax = uint64_t(abi::Hypercall::console_io);
        r.rdi = uint64_t(op);
        r.rsi = count;
        r.rdx = buf;
        r.rip = r.rcx = 0x400802;
        core::hypercall(who, r);
        return int64_t(r.rax);
    }
    int64_t read(uint64_t count) { return console_io(*v, abi::ConsoleIo::read, count, scratch); }
    std::string read_all() {
        std::string out;
        for (int64_t n; (n = read(0x10000)) > 0;) {
            std::string chunk(size_t(n), '\0');
            EXPECT_TRUE(platform::copy_from_guest(chunk.data(), scratch, size_t(n)));
            out += chunk;
        }
        return out;
    }
    void write(const std::string& s) {
        ASSERT_TRUE(platform::copy_to_guest(scratch + 0x10000, s.data(), s.size()));
        ASSERT_EQ(console_io(*v, abi::ConsoleIo::write, s.size(), scratch + 0x10000), 0);
    }
    void give(core::Domain& to, const cap::Capability& c) { ASSERT_GE(core::caps::give_root(to, c), 0); }

    uint64_t scratch = 0;
};

TEST_F(KernelLog, ReadNeedsDebugConsole) {
    EXPECT_EQ(read(100), kEperm);
    give(*d, cap::Capability::io_ports(0x3F8, 8));   // ports alone are not enough
    EXPECT_EQ(read(100), kEperm);
    EXPECT_EQ(core::log_uart_owner(), -1);
}

TEST_F(KernelLog, DomainLinesCarryTheDomainsName) {
    write("hello\x1b[0m\nand a partial");
    EXPECT_NE(fake::log().find("test: hello?[0m\n"), std::string::npos) << fake::log();
    EXPECT_EQ(fake::log().find("partial"), std::string::npos);
    write(" line\n");
    EXPECT_NE(fake::log().find("test: and a partial line\n"), std::string::npos) << fake::log();
}

TEST_F(KernelLog, ReaderWithoutPortsReadsTheLogAndTheKernelKeepsTheUart) {
    give(*d, cap::Capability::debug_console());
    core::log("before %d", 1);
    write("from the guest\n");
    std::string got = read_all();
    EXPECT_NE(got.find("moat: before 1\ntest: from the guest\n"), std::string::npos) << got;
    EXPECT_EQ(read(100), 0);
    EXPECT_EQ(core::log_uart_owner(), -1);
    core::log("after");
    EXPECT_NE(fake::log().find("moat: after\n"), std::string::npos);   // still on the UART
    EXPECT_EQ(read_all(), "moat: after\n");
    EXPECT_EQ(read(0), 0);
}

TEST_F(KernelLog, FirstReadWithCom1HandsTheUartOver) {
    give(*d, cap::Capability::debug_console());
    give(*d, cap::Capability::io_ports(0x3F8, 8));
    core::log("boot line");
    EXPECT_EQ(read(100), 0);   // everything so far went to the UART already
    EXPECT_EQ(core::log_uart_owner(), int(d->id));
    EXPECT_NE(fake::log().find("moat: console handed over to domain 0 (test)\n"), std::string::npos) << fake::log();

    size_t uart = fake::log().size();
    core::log("for the console domain");
    write("guest line\n");
    EXPECT_EQ(fake::log().size(), uart);   // the kernel writes to the UART no more
    EXPECT_EQ(read_all(), "moat: for the console domain\ntest: guest line\n");

    // Another debug-console domain may not take lines from the owner.
    core::Domain* other = core::domain_alloc("other");
    ASSERT_NE(other, nullptr);
    give(*other, cap::Capability::debug_console());
    EXPECT_EQ(console_io(other->vcpu[0], abi::ConsoleIo::read, 0, 0), kEbusy);
}

TEST_F(KernelLog, PartOfCom1IsNoHandover) {
    give(*d, cap::Capability::debug_console());
    give(*d, cap::Capability::io_ports(0x3F8, 4));
    give(*d, cap::Capability::io_ports(0x2F8, 8));
    read_all();
    EXPECT_EQ(core::log_uart_owner(), -1);
    give(*d, cap::Capability::io_ports(0x3FC, 4));   // now all eight ports, in two pieces
    read_all();
    EXPECT_EQ(core::log_uart_owner(), int(d->id));
}

TEST_F(KernelLog, BadBufferLosesNothing) {
    give(*d, cap::Capability::debug_console());
    core::log("keep me");
    EXPECT_EQ(console_io(*v, abi::ConsoleIo::read, 100, l.v_end), kEfault);
    EXPECT_EQ(console_io(*v, abi::ConsoleIo::read, 100, 0xFFFF800000001000ull), kEfault);
    EXPECT_NE(read_all().find("moat: keep me\n"), std::string::npos);
}

TEST_F(KernelLog, ReadStopsAtTheEndOfTheBuffer) {
    give(*d, cap::Capability::debug_console());
    read_all();
    core::log("0123456789");
    // 17 bytes unread, 5 asked for: the rest stays unread.
    EXPECT_EQ(console_io(*v, abi::ConsoleIo::read, 5, scratch), 5);
    char first[5];
    ASSERT_TRUE(platform::copy_from_guest(first, scratch, 5));
    EXPECT_EQ(std::string(first, 5), "moat:");
    EXPECT_EQ(read_all(), " 0123456789\n");
}

TEST_F(KernelLog, OverflowBeforeAReadIsReported) {
    give(*d, cap::Capability::debug_console());
    read_all();
    for (int i = 0; i < 5000; ++i) core::log("line %d of a long log", i);
    std::string got = read_all();
    EXPECT_EQ(got.rfind("moat: console log overflowed, ", 0), 0u) << got.substr(0, 200);
    EXPECT_NE(got.find(" bytes lost\nmoat: line "), std::string::npos);
    EXPECT_TRUE(got.ends_with("moat: line 4999 of a long log\n"));
    EXPECT_LE(got.size(), core::kLogRingSize + LogRing::kMarkerMax);
}

TEST_F(KernelLog, OwnerDyingGivesTheUartBackWithWhatItHadNotRead) {
    give(*d, cap::Capability::debug_console());
    give(*d, cap::Capability::io_ports(0x3F8, 8));
    read_all();
    core::log("unread by the console");
    write("last words\n");
    size_t uart = fake::log().size();
    core::domain_kill(*d);
    std::string after = fake::log().substr(uart);
    EXPECT_EQ(after,
              "moat: unread by the console\ntest: last words\n"
              "moat: console taken back from domain 0\n");
    EXPECT_EQ(core::log_uart_owner(), -1);
    core::log("the kernel again");
    EXPECT_TRUE(fake::log().ends_with("moat: the kernel again\n"));
}

TEST_F(KernelLog, AStoppedOwnerIsNoOwner) {
    give(*d, cap::Capability::debug_console());
    give(*d, cap::Capability::io_ports(0x3F8, 8));
    read_all();
    write("unread\n");
    d->state = core::DomainState::stopped;   // shut down, not taken apart yet
    core::log("next line");
    EXPECT_TRUE(fake::log().ends_with("test: unread\nmoat: console taken back from domain 0\nmoat: next line\n"))
        << fake::log();
    d->state = core::DomainState::running;
}

TEST_F(KernelLog, ReclaimWritesTheUnreadOnce) {
    // What a panic and the end of the system do first.
    give(*d, cap::Capability::debug_console());
    give(*d, cap::Capability::io_ports(0x3F8, 8));
    read_all();
    core::log("pending");
    size_t uart = fake::log().size();
    core::log_reclaim_uart();
    core::log_reclaim_uart();
    EXPECT_EQ(fake::log().substr(uart), "moat: pending\n");
}

}  // namespace
