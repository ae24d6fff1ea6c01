#pragma once
// The kernel log. Lines go out whole ("moat: ..." from the kernel, "<name>: ..."
// from a domain's console_io writes), so output from different sources never
// interleaves mid-line.
//
// Every line goes into one fixed ring, which a domain holding DebugConsole
// reads with console_io(CONSOLEIO_read). Until a console domain takes the
// UART over, every line also goes to the UART (platform::log_write) as it is
// written. Handover: the first read by a domain that may also drive COM1 makes
// it the UART's owner; from then on the kernel writes to the UART only when
// it takes the UART back (the owner died, the system ends, a panic), and then
// it first writes what the owner had not read yet.

#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace core {

struct Domain;

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(const char* fmt, va_list ap);

// Lines a domain causes (its console_io output, the refusals it provokes)
// are rate limited per domain, so that no guest can flood the log and push
// out everybody else's lines: a token bucket of kLogBurst lines, refilled by
// one every kLogLineNs of system time. A line refused is counted; the count
// is logged ("domain N (name): K log lines dropped (rate limit)") before the
// domain's next line gets through, and when the domain is taken apart.
// Domains holding DebugConsole (the builder, the console) are trusted with
// the log and not limited.
inline constexpr uint32_t kLogBurst = 256;
inline constexpr uint64_t kLogLineNs = 5'000'000;   // 200 lines a second

// May `d` log one more line now? Takes a token; false counts it as dropped.
[[nodiscard]] bool log_allowed(Domain& d);
// log(), as a line `d` caused.
void log_for(Domain& d, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Logs how many of d's lines were dropped, if any (d is going).
void log_flush_dropped(Domain& d);

// Bytes in a fixed ring, free-running positions. Older bytes are overwritten
// when it is full; a reader that falls that far behind is told so (a marker
// line with the number of bytes lost) and goes on at the oldest whole line
// still held. No platform calls: tested hosted as it is.
class LogRing {
public:
    static constexpr size_t kMarkerMax = 80;

    // Where one reader is: the next position to read, whether what it was
    // given so far ends a line, and the rest of a marker line not given yet.
    struct Cursor {
        uint64_t pos = 0;
        bool line_start = true;
        uint8_t marker_len = 0, marker_off = 0;
        char marker[kMarkerMax] = {};
    };

    // `size` is a power of two; `storage` holds `size` bytes.
    constexpr LogRing(char* storage, size_t size) : buf_(storage), size_(size) {}

    void append(const char* s, size_t n);

    // Copies up to `n` bytes `c` has not read into `out` and moves `c` past
    // them; the count. Bytes overwritten before `c` got to them come out as
    // "moat: console log overflowed, N bytes lost" (on a line of its own).
    size_t read(Cursor& c, char* out, size_t n) const;

    // Moves `c` past everything written so far.
    void skip_all(Cursor& c) const;

    bool has_unread(const Cursor& c) const { return c.marker_off < c.marker_len || c.pos != head_; }
    uint64_t head() const { return head_; }
    size_t size() const { return size_; }

private:
    char* buf_;
    size_t size_;
    uint64_t head_ = 0;            // bytes ever appended
    bool oldest_starts_line_ = true;   // the byte before the oldest one held was a '\n'
};

inline constexpr size_t kLogRingSize = 64 * 1024;

// A complete line (or lines) for the log: into the ring, and to the UART
// while the kernel drives it.
void log_line(const char* s, size_t n);

// CONSOLEIO_read, in two steps so that nothing is consumed that could not be
// delivered: log_peek copies up to `n` unread bytes to `out` and says where
// the reader would be after them; log_commit moves the reader there.
size_t log_peek(char* out, size_t n, LogRing::Cursor& after);
void log_commit(const LogRing::Cursor& after);

// The domain that drives the UART now, or -1 for the kernel.
int log_uart_owner();

// Hands the UART to `domid`: what was logged so far the kernel has written
// itself, so the new owner's reads start after it.
void log_hand_over(uint16_t domid);

// The kernel drives the UART again: it is put back into a state the kernel
// can write with, and what the owner had not read is written to it. Nothing
// if the kernel drives it already.
void log_reclaim_uart();

// Domain `domid` is being taken apart: if it drives the UART, the kernel
// takes the UART back (and says so).
void log_domain_gone(uint16_t domid);

#if MOAT_HOSTED
// Tests: an empty ring and no owner.
void log_reset_for_tests();
#endif

}  // namespace core
