#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>

#include <base/format.hpp>

namespace core {

// ---- the ring ------------------------------------------------------------------

void LogRing::append(const char* s, size_t n) {
    if (n == 0) return;
    // Remember whether the oldest byte held afterwards starts a line: the
    // byte before it is about to be overwritten (or is one of the new ones).
    uint64_t end = head_ + n;
    if (end > size_) {
        uint64_t before = end - size_ - 1;
        oldest_starts_line_ = (before >= head_ ? s[before - head_] : buf_[before & (size_ - 1)]) == '\n';
    }
    // Only the last size_ bytes of a longer write can be held.
    size_t skip = n > size_ ? n - size_ : 0;
    uint64_t pos = head_ + skip;
    for (size_t i = skip; i < n;) {
        size_t off = pos & (size_ - 1);
        size_t k = n - i < size_ - off ? n - i : size_ - off;
        __builtin_memcpy(buf_ + off, s + i, k);
        i += k;
        pos += k;
    }
    head_ += n;
}

size_t LogRing::read(Cursor& c, char* out, size_t n) const {
    size_t done = 0;
    while (done < n) {
        if (c.marker_off < c.marker_len) {
            size_t k = n - done < size_t(c.marker_len - c.marker_off) ? n - done : c.marker_len - c.marker_off;
            __builtin_memcpy(out + done, c.marker + c.marker_off, k);
            c.marker_off = uint8_t(c.marker_off + k);
            done += k;
            if (c.marker_off == c.marker_len) {
                c.marker_off = c.marker_len = 0;
                c.line_start = true;   // the marker ends its line
            }
            continue;
        }
        if (c.pos > head_) c.pos = head_;
        if (head_ - c.pos > size_) {
            // Overwritten before this reader got to it. Go on at the oldest
            // whole line still held; what is skipped counts as lost too.
            uint64_t oldest = head_ - size_, resume = oldest;
            if (!oldest_starts_line_) {
                uint64_t p = oldest;
                while (p < head_ && buf_[p & (size_ - 1)] != '\n') ++p;
                if (p < head_) resume = p + 1;   // else no line end held: go on mid-line
            }
            size_t len = base::snformat(c.marker, sizeof c.marker, "%smoat: console log overflowed, %lu bytes lost\n",
                                        c.line_start ? "" : "\n", static_cast<unsigned long>(resume - c.pos));
            c.marker_len = uint8_t(len < sizeof c.marker ? len : sizeof c.marker - 1);
            c.marker_off = 0;
            c.pos = resume;
            continue;
        }
        if (c.pos == head_) break;
        size_t off = c.pos & (size_ - 1);
        size_t k = n - done;
        if (k > head_ - c.pos) k = size_t(head_ - c.pos);
        if (k > size_ - off) k = size_ - off;
        __builtin_memcpy(out + done, buf_ + off, k);
        c.line_start = out[done + k - 1] == '\n';
        c.pos += k;
        done += k;
    }
    return done;
}

void LogRing::skip_all(Cursor& c) const {
    c = Cursor{};
    c.pos = head_;
}

// ---- the kernel's log -------------------------------------------------------------

namespace {

char g_storage[kLogRingSize];
constinit LogRing g_ring(g_storage, kLogRingSize);
constinit LogRing::Cursor g_reader;   // CONSOLEIO_read's position (one reader: the console)
int g_owner = -1;                     // the domain driving the UART, -1: the kernel

void take_back(uint16_t domid) {
    log_reclaim_uart();
    log("console taken back from domain %u", domid);
}

}  // namespace

void vlog(const char* fmt, va_list ap) {
    // Format the whole line first, then write it in one go.
    char line[512];
    size_t n = base::snformat(line, sizeof line, "moat: ");
    va_list aq;
    va_copy(aq, ap);
    size_t m = base::vsnformat(line + n, sizeof line - n - 1, fmt, aq);
    va_end(aq);
    n += m < sizeof line - n - 1 ? m : sizeof line - n - 2;
    line[n++] = '\n';
    log_line(line, n);
}

void log(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

bool log_allowed(Domain& d) {
    LogBucket& b = d.log_bucket;
    if (b.exempt_gen != caps::generation()) {
        b.exempt = caps::holds_type(d, cap::Type::debug_console, cap::right::use);
        b.exempt_gen = caps::generation();
    }
    if (b.exempt) return true;
    uint64_t now = platform::now_ns();
    if (!b.primed) {
        b.primed = true;
        b.tokens = kLogBurst;
        b.stamp_ns = now;
    } else if (now - b.stamp_ns >= kLogLineNs) {
        uint64_t add = (now - b.stamp_ns) / kLogLineNs;
        if (b.tokens + add >= kLogBurst) {
            b.tokens = kLogBurst;
            b.stamp_ns = now;
        } else {
            b.tokens += uint32_t(add);
            b.stamp_ns += add * kLogLineNs;   // the part of an interval not used yet counts next time
        }
    }
    if (b.tokens == 0) {
        ++b.dropped;
        return false;
    }
    --b.tokens;
    log_flush_dropped(d);
    return true;
}

void log_flush_dropped(Domain& d) {
    if (d.log_bucket.dropped == 0) return;
    uint64_t n = d.log_bucket.dropped;
    d.log_bucket.dropped = 0;
    log("domain %u (%s): %lu log lines dropped (rate limit)", d.id, d.name, n);
}

void log_for(Domain& d, const char* fmt, ...) {
    if (!log_allowed(d)) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void log_line(const char* s, size_t n) {
    // An owner that stopped without being taken apart (yet) drives nothing.
    if (g_owner >= 0) {
        const Domain* o = domain_at(unsigned(g_owner));
        if (!o || o->state != DomainState::running) take_back(uint16_t(g_owner));
    }
    g_ring.append(s, n);
    if (g_owner < 0) platform::log_write(s, n);
}

size_t log_peek(char* out, size_t n, LogRing::Cursor& after) {
    after = g_reader;
    return g_ring.read(after, out, n);
}

void log_commit(const LogRing::Cursor& after) { g_reader = after; }

int log_uart_owner() { return g_owner; }

void log_hand_over(uint16_t domid) {
    g_owner = domid;
    g_ring.skip_all(g_reader);
}

void log_reclaim_uart() {
    if (g_owner < 0) return;
    g_owner = -1;   // first: a panic from here on must not come back in
    platform::log_sink_reclaim();
    char buf[256];
    for (size_t k; (k = g_ring.read(g_reader, buf, sizeof buf)) != 0;) platform::log_write(buf, k);
}

void log_domain_gone(uint16_t domid) {
    if (g_owner == int(domid)) take_back(domid);
}

#if MOAT_HOSTED
void log_reset_for_tests() {
    g_ring = LogRing(g_storage, kLogRingSize);
    g_reader = LogRing::Cursor{};
    g_owner = -1;
}
#endif

}  // namespace core
