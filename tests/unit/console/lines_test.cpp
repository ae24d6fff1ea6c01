// The console domain's lines: whole lines out, bounded partial lines,
// control bytes escaped, the "<name>: " prefix.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <console/lines.hpp>

namespace {

using console::LineAssembler;

struct Out {
    std::vector<std::string> lines;
    static void emit(void* ctx, const char* s, size_t n) { static_cast<Out*>(ctx)->lines.emplace_back(s, n); }
};

std::vector<std::string> feed(LineAssembler& a, const std::string& s) {
    Out o;
    a.feed(s.data(), s.size(), Out::emit, &o);
    return o.lines;
}

TEST(ConsoleLines, WholeLinesOnly) {
    LineAssembler a;
    EXPECT_TRUE(feed(a, "hel").empty());
    EXPECT_TRUE(a.pending());
    EXPECT_EQ(feed(a, "lo\nwor"), std::vector<std::string>{"hello"});
    EXPECT_EQ(feed(a, "ld\n\n"), (std::vector<std::string>{"world", ""}));
    EXPECT_FALSE(a.pending());
}

TEST(ConsoleLines, EscapesControlBytesAndDropsCarriageReturns) {
    LineAssembler a;
    EXPECT_EQ(feed(a, std::string("a\tb\r\n\x1b[2Jc\x7f\x01\xff\0d\n", 16)),
              (std::vector<std::string>{"a\tb", "\\x1b[2Jc\\x7f\\x01\\xff\\x00d"}));
}

TEST(ConsoleLines, LongLinesAreCutAtTheBound) {
    LineAssembler a;
    std::string input(LineAssembler::kMaxLine * 2 + 10, 'x');
    auto out = feed(a, input + "\n");
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0], std::string(LineAssembler::kMaxLine, 'x'));
    EXPECT_EQ(out[1], std::string(LineAssembler::kMaxLine, 'x'));
    EXPECT_EQ(out[2], std::string(10, 'x'));
    // The bound counts input bytes: escaped ones fit as well.
    out = feed(a, std::string(LineAssembler::kMaxLine, '\x1b'));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].size(), 4 * LineAssembler::kMaxLine);
}

TEST(ConsoleLines, FlushSendsThePartialLine) {
    LineAssembler a;
    feed(a, "login: ");
    Out o;
    a.flush(Out::emit, &o);
    EXPECT_EQ(o.lines, std::vector<std::string>{"login: "});
    a.flush(Out::emit, &o);   // nothing more
    EXPECT_EQ(o.lines.size(), 1u);
}

TEST(ConsoleLines, FormatsWithTheName) {
    char out[console::kMaxLineOut];
    size_t n = console::format_line("xenstore", "PASS up", 7, out);
    EXPECT_EQ(std::string(out, n), "xenstore: PASS up\n");
    std::string longest(LineAssembler::kMaxText, 'y');
    n = console::format_line(std::string(32, 'n').c_str(), longest.data(), longest.size(), out);
    EXPECT_EQ(n, console::kMaxLineOut);
}

}  // namespace
