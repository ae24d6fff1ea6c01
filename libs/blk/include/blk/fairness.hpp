#pragma once
// Who may start a request on the device: blkback's fairness between its
// front-ends, apart from its I/O so it is tested hosted.
//
// A request holds a slot and one bounce page per segment while it is on
// the device. Each front-end may have at most max_requests of them there,
// holding at most max_pages pages between them, so one front-end's flood
// never takes everything. With three or more front-ends sending large
// requests, the pool may still be empty whenever one of them looks; a
// stream of small requests could then starve a large one forever. So the
// first front-end whose request finds too few free pages becomes the
// waiter: until it has started, nobody else takes pages that would leave
// fewer than it needs. Pages come back as requests finish, so it starts
// after at most the requests already on the device.

#include <cstdint>

namespace blk {

class Fairness {
public:
    constexpr Fairness(unsigned max_requests, unsigned max_pages) : max_requests_(max_requests), max_pages_(max_pages) {}

    // What one front-end has on the device.
    struct Share {
        unsigned requests;
        unsigned pages;
    };

    // Whether front-end `fe` (holding `mine`) may start a request of `need`
    // bounce pages now that `free` are free. A request it may not start
    // only for want of free pages makes it the waiter, if there is none.
    [[nodiscard]] bool admit(unsigned fe, Share mine, unsigned need, unsigned free) {
        if (mine.requests >= max_requests_) return false;
        if (need == 0) return true;
        if (mine.pages + need > max_pages_) return false;
        unsigned reserved = waiting() && waiter_ != fe ? waiter_pages_ : 0;
        if (free >= need + reserved) return true;
        if (!waiting()) {
            waiter_ = fe;
            waiter_pages_ = need;
        }
        return false;
    }

    // `fe` started the request admit() let through.
    void started(unsigned fe) {
        if (waiter_ == fe) waiter_ = kNone;
    }
    // `fe` is gone: it waits for nothing any more.
    void forget(unsigned fe) { started(fe); }

    bool waiting() const { return waiter_ != kNone; }
    unsigned waiter() const { return waiter_; }

private:
    static constexpr unsigned kNone = ~0u;
    unsigned max_requests_, max_pages_;
    unsigned waiter_ = kNone;
    unsigned waiter_pages_ = 0;
};

}  // namespace blk
