// base::format / snformat: the printf subset the kernel and domains use.

#include <gtest/gtest.h>

#include <base/format.hpp>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

namespace {

template <typename... A>
std::string fmt(const char* f, A... a) {
    char buf[256];
    size_t n = base::snformat(buf, sizeof buf, f, a...);
    EXPECT_LT(n, sizeof buf);
    EXPECT_EQ(std::strlen(buf), n) << "return value is the length written";
    return buf;
}

// The streaming form must agree with the buffer form.
void collect(void* ctx, const char* s, size_t n) { static_cast<std::string*>(ctx)->append(s, n); }

template <typename... A>
std::string fmt_stream(const char* f, A... a) {
    std::string out;
    size_t n = base::format(collect, &out, f, a...);
    EXPECT_EQ(n, out.size());
    return out;
}

TEST(Format, Literals) {
    EXPECT_EQ(fmt("plain text"), "plain text");
    EXPECT_EQ(fmt(""), "");
    EXPECT_EQ(fmt("100%%"), "100%");
    EXPECT_EQ(fmt("%%d"), "%d");
}

TEST(Format, SignedDecimal) {
    EXPECT_EQ(fmt("%d", 0), "0");
    EXPECT_EQ(fmt("%d", 42), "42");
    EXPECT_EQ(fmt("%d", -42), "-42");
    EXPECT_EQ(fmt("%i", -7), "-7");
    EXPECT_EQ(fmt("%d", INT_MAX), "2147483647");
    EXPECT_EQ(fmt("%d", INT_MIN), "-2147483648");
    EXPECT_EQ(fmt("%ld", -1234567890123L), "-1234567890123");
    EXPECT_EQ(fmt("%lld", static_cast<long long>(INT64_MIN)), "-9223372036854775808");
    EXPECT_EQ(fmt("%ld", static_cast<long>(INT64_MIN)), "-9223372036854775808");
    EXPECT_EQ(fmt("%lld", static_cast<long long>(INT64_MAX)), "9223372036854775807");
    EXPECT_EQ(fmt("%zd", static_cast<ssize_t>(-5)), "-5");
}

TEST(Format, Unsigned) {
    EXPECT_EQ(fmt("%u", 0u), "0");
    EXPECT_EQ(fmt("%u", 4000000000u), "4000000000");
    EXPECT_EQ(fmt("%u", static_cast<unsigned>(-1)), "4294967295");
    EXPECT_EQ(fmt("%lu", ~0ul), "18446744073709551615");
    EXPECT_EQ(fmt("%llu", ~0ull), "18446744073709551615");
    EXPECT_EQ(fmt("%zu", sizeof(uint64_t)), "8");
    EXPECT_EQ(fmt("%o", 8u), "10");
}

TEST(Format, Hex) {
    EXPECT_EQ(fmt("%x", 0u), "0");
    EXPECT_EQ(fmt("%x", 0xdeadbeefu), "deadbeef");
    EXPECT_EQ(fmt("%X", 0xdeadbeefu), "DEADBEEF");
    EXPECT_EQ(fmt("%x", -1), "ffffffff") << "int promoted to unsigned, not sign-extended";
    EXPECT_EQ(fmt("%lx", 0xffff800000000000ul), "ffff800000000000");
    EXPECT_EQ(fmt("%#x", 0x1fu), "0x1f");
    EXPECT_EQ(fmt("%#lx", 0x1000ul), "0x1000");
    EXPECT_EQ(fmt("%#018lx", 0x1234ul), "0x0000000000001234");
    EXPECT_EQ(fmt("%#018lx", 0xffff800000000000ul), "0xffff800000000000");
    EXPECT_EQ(fmt("%016lx", 0xabcul), "0000000000000abc");
    EXPECT_EQ(fmt("%#10x", 0xabu), "      0xab");
    EXPECT_EQ(fmt("%-#8x|", 0xabu), "0xab    |");
}

TEST(Format, Pointer) {
    EXPECT_EQ(fmt("%p", reinterpret_cast<void*>(0x1234)), "0x1234");
    EXPECT_EQ(fmt("%p", reinterpret_cast<void*>(0xffff800000001000ull)), "0xffff800000001000");
    EXPECT_EQ(fmt("%18p", reinterpret_cast<void*>(0x10)), "              0x10");
}

TEST(Format, Strings) {
    EXPECT_EQ(fmt("%s", "abc"), "abc");
    EXPECT_EQ(fmt("[%s]", ""), "[]");
    EXPECT_EQ(fmt("%s", static_cast<const char*>(nullptr)), "(null)");
    EXPECT_EQ(fmt("%5s|", "ab"), "   ab|");
    EXPECT_EQ(fmt("%-5s|", "ab"), "ab   |");
    EXPECT_EQ(fmt("%05s|", "ab"), "   ab|") << "'0' does not apply to strings";
    EXPECT_EQ(fmt("%2s", "abcdef"), "abcdef") << "width never truncates";
    EXPECT_EQ(fmt("%.3s", "abcdef"), "abc");
    EXPECT_EQ(fmt("%.*s", 2, "abcdef"), "ab");
    EXPECT_EQ(fmt("%.*s", 0, "abcdef"), "");
    EXPECT_EQ(fmt("%.*s", 10, "abc"), "abc");
    EXPECT_EQ(fmt("%.*s", -1, "abc"), "abc") << "a negative precision is no precision";
    // Precision bounds the read: the string need not be terminated.
    const char unterminated[4] = {'w', 'x', 'y', 'z'};
    EXPECT_EQ(fmt("%.*s", 4, unterminated), "wxyz");
    EXPECT_EQ(fmt("%6.2s|", "abcdef"), "    ab|");
}

TEST(Format, Chars) {
    EXPECT_EQ(fmt("%c", 'A'), "A");
    EXPECT_EQ(fmt("%c%c%c", 'a', 'b', 'c'), "abc");
    EXPECT_EQ(fmt("%3c|", 'x'), "  x|");
    EXPECT_EQ(fmt("%-3c|", 'x'), "x  |");
}

TEST(Format, WidthsAndFlags) {
    EXPECT_EQ(fmt("%5d|", 42), "   42|");
    EXPECT_EQ(fmt("%-5d|", 42), "42   |");
    EXPECT_EQ(fmt("%05d", 42), "00042");
    EXPECT_EQ(fmt("%05d", -42), "-0042") << "zeros go after the sign";
    EXPECT_EQ(fmt("%5d|", -42), "  -42|");
    EXPECT_EQ(fmt("%-5d|", -42), "-42  |");
    EXPECT_EQ(fmt("%-05d|", 42), "42   |") << "'-' overrides '0'";
    EXPECT_EQ(fmt("%1d", 12345), "12345");
    EXPECT_EQ(fmt("%*d|", 6, 7), "     7|");
    EXPECT_EQ(fmt("%*d|", -6, 7), "7     |") << "a negative '*' width means '-'";
    EXPECT_EQ(fmt("%-*d|", 4, 7), "7   |");
    EXPECT_EQ(fmt("%40d", 1), std::string(39, ' ') + "1") << "padding longer than one chunk";
    EXPECT_EQ(fmt("%040d", -1), "-" + std::string(38, '0') + "1");
    EXPECT_EQ(fmt("%20lld|", static_cast<long long>(INT64_MIN)), "-9223372036854775808|");
    EXPECT_EQ(fmt("%021lld", static_cast<long long>(INT64_MIN)), "-09223372036854775808");
}

TEST(Format, Mixed) {
    EXPECT_EQ(fmt("domain %u (%s): %lu pages at %#lx", 3u, "xenstore", 1024ul, 0x400000ul),
              "domain 3 (xenstore): 1024 pages at 0x400000");
    EXPECT_EQ(fmt("d%u: %.*s\n", 7u, 5, "hello world"), "d7: hello\n");
    EXPECT_EQ(fmt_stream("a%db%sc%%", 1, "x"), "a1bxc%");
    EXPECT_EQ(fmt_stream("%#018lx", 0x1234ul), "0x0000000000001234");
}

TEST(Snformat, TruncatesButReturnsFullLength) {
    char buf[8];
    std::memset(buf, 'Z', sizeof buf);
    EXPECT_EQ(base::snformat(buf, sizeof buf, "%s", "0123456789"), 10u);
    EXPECT_STREQ(buf, "0123456");
    std::memset(buf, 'Z', sizeof buf);
    EXPECT_EQ(base::snformat(buf, sizeof buf, "%d-%d", 1234, 5678), 9u);
    EXPECT_STREQ(buf, "1234-56");
    // Exactly fitting.
    std::memset(buf, 'Z', sizeof buf);
    EXPECT_EQ(base::snformat(buf, sizeof buf, "%s", "0123456"), 7u);
    EXPECT_STREQ(buf, "0123456");
    // Padding is truncated too.
    std::memset(buf, 'Z', sizeof buf);
    EXPECT_EQ(base::snformat(buf, sizeof buf, "%20d", 5), 20u);
    EXPECT_STREQ(buf, "       ");
}

TEST(Snformat, TinyBuffers) {
    char buf[4] = {'Z', 'Z', 'Z', 'Z'};
    EXPECT_EQ(base::snformat(buf, 1, "abc"), 3u);
    EXPECT_EQ(buf[0], '\0');
    EXPECT_EQ(buf[1], 'Z') << "nothing written past cap";
    buf[0] = 'Z';
    EXPECT_EQ(base::snformat(buf, 0, "abc"), 3u);
    EXPECT_EQ(buf[0], 'Z') << "cap 0 writes nothing";
    EXPECT_EQ(base::snformat(nullptr, 0, "%d", 12345), 5u) << "length query";
    EXPECT_EQ(base::snformat(buf, 2, "%c%c", 'x', 'y'), 2u);
    EXPECT_STREQ(buf, "x");
}

TEST(Snformat, Vsnformat) {
    auto call = [](char* b, size_t cap, const char* f, ...) {
        va_list ap;
        va_start(ap, f);
        size_t n = base::vsnformat(b, cap, f, ap);
        va_end(ap);
        return n;
    };
    char buf[16];
    EXPECT_EQ(call(buf, sizeof buf, "%s=%d", "x", -3), 4u);
    EXPECT_STREQ(buf, "x=-3");
}

}  // namespace
