#pragma once
// One source's console output turned into whole lines for the UART: bytes up
// to '\n' make a line; a line that has no end yet goes out once kMaxLine
// bytes of it have come (or when flushed); '\r' is dropped and every other
// byte outside printable ASCII (tab aside) is written as "\xNN", so no domain
// sends escape sequences to the operator's terminal. Portable: the console
// domain uses it, hosted unit tests drive it.

#include <cstddef>
#include <cstdint>

namespace console {

class LineAssembler {
public:
    static constexpr size_t kMaxLine = 256;          // input bytes in one line at most
    static constexpr size_t kMaxText = 4 * kMaxLine; // its text once escaped

    // Called with each line's text (escaped, no '\n').
    using Emit = void (*)(void* ctx, const char* text, size_t n);

    void feed(const char* s, size_t n, Emit emit, void* ctx);
    // The line begun and not ended yet, if any, goes out as it is.
    void flush(Emit emit, void* ctx);
    bool pending() const { return raw_ != 0; }

private:
    void end_line(Emit emit, void* ctx);

    char text_[kMaxText] = {};
    size_t len_ = 0;   // bytes in text_
    size_t raw_ = 0;   // input bytes they came from
};

// "<name>: <text>\n" into out; its length. `out` holds at least
// kMaxLineOut bytes; the name is at most 32 (abi/console.hpp).
inline constexpr size_t kMaxLineOut = 32 + 2 + LineAssembler::kMaxText + 1;
size_t format_line(const char* name, const char* text, size_t n, char* out);

}  // namespace console
