// CreditScheduler under a simulated CPU: a virtual clock, a timer (periodic,
// jittered, or one-shot from next_event_ns()), and workloads that are either
// CPU-bound or I/O-like (run a burst, block, wake after a sleep). The
// simulator drives the scheduler as the kernel would and keeps its own
// account of who ran when, to check the scheduler's own accounting too.

#include <core/credit.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

namespace {

using core::CreditScheduler;
using core::SchedEntity;
using core::SchedPrio;

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;

// What a vCPU would be: the entity is embedded and found again with offsetof.
struct Task {
    SchedEntity se;
    bool io = false;              // false: CPU-bound, always runnable
    uint64_t burst_ns = 0;        // io: run this long, then block
    uint64_t sleep_ns = 0;        // io: then sleep this long
    uint64_t burst_left = 0;
    bool blocked = false;
    bool alive = true;
    uint64_t wake_at = 0;
    // Simulator's own accounting.
    uint64_t ran_ns = 0;
    uint64_t bursts_done = 0;
    bool waiting_since_wake = false;
    uint64_t woke_at = 0;
    uint64_t max_wake_latency = 0;
    uint64_t last_ran_end = 0;    // when it last stopped running
    uint64_t max_gap = 0;         // longest runnable-but-not-running stretch
};

Task& task_of(SchedEntity* e) {
    return *reinterpret_cast<Task*>(reinterpret_cast<char*>(e) - offsetof(Task, se));
}

enum class Timer { periodic, jitter, tickless };

class Sim {
public:
    Timer timer = Timer::periodic;
    uint64_t tick_ns = 1 * kMs;      // periodic
    uint64_t jitter_lo = 500 * kUs;  // jitter: each tick after lo..hi
    uint64_t jitter_hi = 1500 * kUs;
    bool pick_on_wake = true;        // kernel reschedules at once on wake
    uint64_t now = 0;
    uint64_t idle_ns = 0;
    SchedEntity* cur = nullptr;
    CreditScheduler s;
    std::deque<Task> tasks;          // stable addresses

    Task& hog(uint32_t weight = 256, uint32_t cap = 0) {
        Task& t = tasks.emplace_back();
        t.se.weight = weight;
        t.se.cap = cap;
        s.add(t.se);
        s.wake(t.se, now);
        t.last_ran_end = now;
        resched();
        return t;
    }

    Task& io(uint64_t burst, uint64_t sleep, uint32_t weight = 256) {
        Task& t = hog(weight);
        t.io = true;
        t.burst_ns = burst;
        t.sleep_ns = sleep;
        t.burst_left = burst;
        return t;
    }

    void resched() {
        cur = s.pick(cur, now);
        ASSERT_TRUE(cur == nullptr || task_of(cur).alive);
        if (cur) {
            Task& t = task_of(cur);
            ASSERT_FALSE(t.blocked);
            if (t.waiting_since_wake) {
                t.max_wake_latency = std::max(t.max_wake_latency, now - t.woke_at);
                t.waiting_since_wake = false;
            }
        }
        rearm_if_tickless();
    }

    void rearm_if_tickless() {
        if (timer != Timer::tickless) return;
        next_timer_ = s.next_event_ns(now);
        ASSERT_GE(next_timer_, now);
    }

    void kill(Task& t) {
        s.remove(t.se);
        t.alive = false;
        if (cur == &t.se) resched();
    }

    void run_for(uint64_t d) { run_until(now + d); }

    void run_until(uint64_t end) {
        if (!armed_) {
            next_timer_ = now;
            armed_ = true;
        }
        unsigned stuck = 0;
        while (now < end) {
            uint64_t t = std::min(end, next_timer_);
            if (cur && task_of(cur).io) t = std::min(t, now + task_of(cur).burst_left);
            for (auto& k : tasks)
                if (k.alive && k.blocked) t = std::min(t, k.wake_at);
            ASSERT_GE(t, now);
            stuck = t == now ? stuck + 1 : 0;
            ASSERT_LT(stuck, 1000u) << "no progress at " << now;
            advance(t);

            if (cur && task_of(cur).io && task_of(cur).burst_left == 0) {
                Task& k = task_of(cur);
                ++k.bursts_done;
                k.blocked = true;
                k.wake_at = now + k.sleep_ns;
                s.block(k.se, now);
                resched();
            }
            for (auto& k : tasks) {
                if (!k.alive || !k.blocked || k.wake_at > now) continue;
                k.blocked = false;
                k.burst_left = k.burst_ns;
                k.waiting_since_wake = true;
                k.woke_at = now;
                k.last_ran_end = now;
                s.wake(k.se, now);
                if (pick_on_wake) resched(); else rearm_if_tickless();
            }
            if (now >= next_timer_) {
                bool r = s.tick(cur, now);
                if (timer == Timer::tickless) {
                    ASSERT_GE(s.next_event_ns(now), now);
                }
                if (r) resched();
                arm_next();
            }
        }
    }

    // Charges the running entity up to `now`, so runtime_ns is complete.
    void settle() { (void)s.tick(cur, now); }

    double share(const Task& t, uint64_t since_ns, uint64_t base) const {
        return double(t.ran_ns - base) / double(now - since_ns);
    }

private:
    void advance(uint64_t t) {
        uint64_t dt = t - now;
        if (cur) {
            Task& k = task_of(cur);
            k.ran_ns += dt;
            if (k.io) k.burst_left -= dt;
        } else {
            idle_ns += dt;
        }
        // Gaps: runnable tasks not running.
        for (auto& k : tasks) {
            if (!k.alive || k.blocked) continue;
            if (&k.se == cur) {
                k.last_ran_end = t;
            } else {
                k.max_gap = std::max(k.max_gap, t - k.last_ran_end);
            }
        }
        now = t;
    }

    void arm_next() {
        switch (timer) {
        case Timer::periodic: next_timer_ = now + tick_ns; break;
        case Timer::jitter: {
            std::uniform_int_distribution<uint64_t> d(jitter_lo, jitter_hi);
            next_timer_ = now + d(rng_);
            break;
        }
        case Timer::tickless: next_timer_ = s.next_event_ns(now); break;
        }
    }

    uint64_t next_timer_ = 0;
    bool armed_ = false;
    std::mt19937_64 rng_{12345};
};

void expect_share(double got, double want, double rel_tol, const char* what) {
    EXPECT_NEAR(got, want, want * rel_tol) << what << ": got " << got << " want " << want;
}

// ---- long-run shares --------------------------------------------------------

struct TimerCase {
    const char* name;
    Timer timer;
    uint64_t tick_ns;
};

class SharesTest : public ::testing::TestWithParam<TimerCase> {
protected:
    void configure(Sim& sim) {
        sim.timer = GetParam().timer;
        sim.tick_ns = GetParam().tick_ns;
    }
};

TEST_P(SharesTest, Weights1To2To4) {
    Sim sim;
    configure(sim);
    Task& a = sim.hog(256);
    Task& b = sim.hog(512);
    Task& c = sim.hog(1024);
    sim.run_for(3 * kSec);
    sim.settle();

    double sa = sim.share(a, 0, 0), sb = sim.share(b, 0, 0), sc = sim.share(c, 0, 0);
    std::printf("  [%s] 1:2:4 shares %.4f %.4f %.4f (ideal %.4f %.4f %.4f)\n", GetParam().name,
                sa, sb, sc, 1 / 7.0, 2 / 7.0, 4 / 7.0);
    expect_share(sa, 1 / 7.0, 0.02, "weight 1");
    expect_share(sb, 2 / 7.0, 0.02, "weight 2");
    expect_share(sc, 4 / 7.0, 0.02, "weight 4");
    EXPECT_EQ(sim.idle_ns, 0u);
    // The scheduler's charges match the simulator's clock exactly.
    EXPECT_EQ(a.se.runtime_ns, a.ran_ns);
    EXPECT_EQ(b.se.runtime_ns, b.ran_ns);
    EXPECT_EQ(c.se.runtime_ns, c.ran_ns);
    for (Task* t : {&a, &b, &c}) {
        EXPECT_LE(t->se.state.credit_ns(), CreditScheduler::kCreditMaxNs);
        EXPECT_GE(t->se.state.credit_ns(), CreditScheduler::kCreditMinNs);
    }
}

TEST_P(SharesTest, EqualWeightsEqualShares) {
    Sim sim;
    configure(sim);
    Task* t[4];
    for (auto& p : t) p = &sim.hog(300);
    sim.run_for(3 * kSec);
    sim.settle();
    for (auto* p : t) {
        expect_share(sim.share(*p, 0, 0), 0.25, 0.02, "equal weights");
        EXPECT_EQ(p->se.runtime_ns, p->ran_ns);
    }
}

TEST_P(SharesTest, CapHoldsEntityWhileOthersBusy) {
    Sim sim;
    configure(sim);
    // By weight it would get 2/3; the cap holds it to 25%.
    Task& capped = sim.hog(1024, 25);
    Task& b = sim.hog(256);
    Task& c = sim.hog(256);
    sim.run_for(3 * kSec);
    double s = sim.share(capped, 0, 0);
    std::printf("  [%s] capped 25%% with 2 busy peers: %.4f, peers %.4f %.4f\n", GetParam().name,
                s, sim.share(b, 0, 0), sim.share(c, 0, 0));
    EXPECT_NEAR(s, 0.25, 0.005);
    expect_share(sim.share(b, 0, 0), 0.375, 0.02, "peer b");
    expect_share(sim.share(c, 0, 0), 0.375, 0.02, "peer c");
    EXPECT_EQ(sim.idle_ns, 0u);
}

TEST_P(SharesTest, CapIsAbsoluteWhenAlone) {
    Sim sim;
    configure(sim);
    Task& capped = sim.hog(256, 25);
    sim.run_for(3 * kSec);
    double s = sim.share(capped, 0, 0);
    std::printf("  [%s] capped 25%% alone: %.4f, idle %.4f\n", GetParam().name, s,
                double(sim.idle_ns) / double(sim.now));
    EXPECT_NEAR(s, 0.25, 0.005);
    EXPECT_NEAR(double(sim.idle_ns) / double(sim.now), 0.75, 0.005);

    // Uncapped, the same entity takes the whole CPU.
    capped.se.cap = 0;
    uint64_t t0 = sim.now, r0 = capped.ran_ns;
    sim.run_for(1 * kSec);
    EXPECT_GT(sim.share(capped, t0, r0), 0.99);
}

TEST_P(SharesTest, IoEntityGetsWhatItNeedsAndHogsShareTheRest) {
    Sim sim;
    configure(sim);
    Task& h1 = sim.hog();
    Task& h2 = sim.hog(512);
    Task& h3 = sim.hog(1024);
    Task& io = sim.io(300 * kUs, 3 * kMs);
    sim.run_for(3 * kSec);
    // The I/O task needs 0.3/3.3 of the CPU and gets it: no burst is delayed
    // by more than a tick or so.
    double ideal_bursts = double(sim.now) / double(3300 * kUs);
    EXPECT_GT(double(io.bursts_done), 0.97 * ideal_bursts);
    // The rest is shared 1:2:4 among the hogs.
    double rest = 1.0 - sim.share(io, 0, 0);
    std::printf("  [%s] io share %.4f (%llu bursts, max latency %.3f ms), hogs %.4f %.4f %.4f\n",
                GetParam().name, sim.share(io, 0, 0), (unsigned long long)io.bursts_done,
                double(io.max_wake_latency) / kMs, sim.share(h1, 0, 0) / rest,
                sim.share(h2, 0, 0) / rest, sim.share(h3, 0, 0) / rest);
    expect_share(sim.share(h1, 0, 0) / rest, 1 / 7.0, 0.03, "hog 1");
    expect_share(sim.share(h2, 0, 0) / rest, 2 / 7.0, 0.03, "hog 2");
    expect_share(sim.share(h3, 0, 0) / rest, 4 / 7.0, 0.03, "hog 4");
}

INSTANTIATE_TEST_SUITE_P(Timers, SharesTest,
    ::testing::Values(TimerCase{"tick 1ms", Timer::periodic, 1 * kMs},
                      TimerCase{"tick 10ms", Timer::periodic, 10 * kMs},
                      TimerCase{"tick 0.5-1.5ms", Timer::jitter, 0},
                      TimerCase{"tickless", Timer::tickless, 0}),
    [](const auto& info) {
        switch (info.param.timer) {
        case Timer::periodic: return std::string("Tick") + std::to_string(info.param.tick_ns / kMs) + "ms";
        case Timer::jitter: return std::string("JitteredTick");
        case Timer::tickless: return std::string("Tickless");
        }
        return std::string("x");
    });

// ---- boost and latency ------------------------------------------------------

TEST(CreditBoost, WokenEntityRunsAtOnceWhenKernelPicksOnWake) {
    Sim sim;
    for (int i = 0; i < 3; ++i) sim.hog();
    Task& io = sim.io(200 * kUs, 2 * kMs);
    sim.run_for(1 * kSec);
    EXPECT_GT(io.bursts_done, 400u);
    EXPECT_EQ(io.max_wake_latency, 0u);
}

TEST(CreditBoost, WokenEntityRunsWithinOneTickWhenOnlyTheTickPreempts) {
    for (uint64_t tick : {1 * kMs, 4 * kMs}) {
        Sim sim;
        sim.pick_on_wake = false;
        sim.tick_ns = tick;
        for (int i = 0; i < 3; ++i) sim.hog();
        Task& io = sim.io(200 * kUs, 3 * kMs + 100 * kUs);
        sim.run_for(1 * kSec);
        std::printf("  tick %llu ms: max wake latency %.3f ms\n", (unsigned long long)(tick / kMs),
                    double(io.max_wake_latency) / kMs);
        EXPECT_LE(io.max_wake_latency, tick);
        EXPECT_GT(io.bursts_done, 200u);
    }
}

TEST(CreditBoost, WokenEntityPreemptsAtOnceAndIsBoosted) {
    CreditScheduler s;
    SchedEntity hog, io;
    s.add(hog);
    s.add(io);
    s.wake(hog, 0);
    ASSERT_EQ(s.pick(nullptr, 0), &hog);
    EXPECT_FALSE(s.tick(&hog, 1 * kMs));
    s.wake(io, 1500 * kUs);
    EXPECT_EQ(io.state.priority(), SchedPrio::boost);
    EXPECT_TRUE(s.tick(&hog, 2 * kMs));   // a higher priority is waiting
    EXPECT_EQ(s.pick(&hog, 2 * kMs), &io);
    // The boost ends with the first charge of run time.
    (void)s.tick(&io, 3 * kMs);
    EXPECT_NE(io.state.priority(), SchedPrio::boost);
    // The preempted hog kept its place (head of UNDER) and the rest of its slice.
    s.block(io, 3200 * kUs);
    EXPECT_EQ(s.pick(&io, 3200 * kUs), &hog);
    EXPECT_EQ(s.next_event_ns(3200 * kUs), CreditScheduler::kPeriodNs);  // alone: only accounting
}

// An entity that blocks and wakes constantly (runs 0.9 ms, sleeps 0.1 ms)
// cannot use the boost to take more than its share from a hog: only an entity
// with credit left is boosted.
TEST(CreditBoost, CannotBeAbusedByFrequentWakeups) {
    Sim sim;
    Task& hog = sim.hog();
    Task& waker = sim.io(900 * kUs, 100 * kUs);
    sim.run_for(3 * kSec);
    std::printf("  hog %.4f, frequent waker %.4f\n", sim.share(hog, 0, 0), sim.share(waker, 0, 0));
    EXPECT_NEAR(sim.share(hog, 0, 0), 0.5, 0.02);
    EXPECT_NEAR(sim.share(waker, 0, 0), 0.5, 0.02);
}

// ---- remove, yield, starvation, idle ---------------------------------------

TEST(CreditScheduler, RemoveRunningEntity) {
    Sim sim;
    Task& a = sim.hog();
    Task& b = sim.hog();
    Task& c = sim.hog();
    sim.run_for(95 * kMs + 300 * kUs);
    ASSERT_NE(sim.cur, nullptr);
    Task& victim = task_of(sim.cur);
    uint64_t frozen = victim.se.runtime_ns;
    sim.kill(victim);   // remove() then pick(removed entity)
    EXPECT_FALSE(victim.se.state.known());
    EXPECT_NE(sim.cur, &victim.se);
    uint64_t t0 = sim.now;
    std::vector<std::pair<Task*, uint64_t>> base;
    for (Task* t : {&a, &b, &c})
        if (t != &victim) base.push_back({t, t->ran_ns});
    sim.run_for(1 * kSec);
    sim.settle();
    EXPECT_EQ(victim.se.runtime_ns, frozen);
    for (auto [t, r0] : base) expect_share(sim.share(*t, t0, r0), 0.5, 0.02, "survivor");
    EXPECT_EQ(sim.idle_ns, 0u);
}

TEST(CreditScheduler, RemovedEntityMayBeFreedBeforeNextPick) {
    CreditScheduler s;
    SchedEntity other;
    auto* doomed = new SchedEntity;
    s.add(*doomed);
    s.add(other);
    s.wake(*doomed, 0);
    s.wake(other, 0);
    SchedEntity* cur = s.pick(nullptr, 0);
    ASSERT_EQ(cur, doomed);
    s.remove(*doomed);
    delete doomed;   // ASan reports any later access
    EXPECT_EQ(s.pick(cur, 1 * kMs), &other);
    EXPECT_FALSE(s.tick(&other, 2 * kMs));
}

TEST(CreditScheduler, RemoveQueuedAndRemoveTwice) {
    CreditScheduler s;
    SchedEntity a, b;
    s.add(a);
    s.add(b);
    s.wake(a, 0);
    s.wake(b, 0);
    ASSERT_EQ(s.pick(nullptr, 0), &a);
    s.remove(b);
    s.remove(b);
    EXPECT_EQ(s.queued(), 0u);
    EXPECT_FALSE(s.tick(&a, 20 * kMs));   // slice over, but nobody waiting
    EXPECT_EQ(s.pick(&a, 20 * kMs), &a);
    s.wake(b, 21 * kMs);                  // not known any more: ignored
    EXPECT_EQ(s.queued(), 0u);
}

TEST(CreditScheduler, YieldGoesBehindPeers) {
    CreditScheduler s;
    SchedEntity a, b, c;
    for (auto* e : {&a, &b, &c}) {
        s.add(*e);
        s.wake(*e, 0);
    }
    // All boosted on wake; run each once so they are UNDER with credit.
    ASSERT_EQ(s.pick(nullptr, 0), &a);
    s.yield(a);
    EXPECT_TRUE(s.tick(&a, 100 * kUs));
    EXPECT_EQ(s.pick(&a, 100 * kUs), &b);   // b, c were boosted; a now UNDER behind them
    s.yield(b);
    EXPECT_EQ(s.pick(&b, 200 * kUs), &c);
    s.yield(c);
    EXPECT_EQ(s.pick(&c, 300 * kUs), &a);
    // Queued yield: b moves behind c.
    s.yield(b);
    s.yield(a);
    EXPECT_EQ(s.pick(&a, 400 * kUs), &c);
    s.yield(c);
    EXPECT_EQ(s.pick(&c, 500 * kUs), &b);

    // Alone at its priority, a yielding entity runs on.
    CreditScheduler s1;
    SchedEntity x;
    s1.add(x);
    s1.wake(x, 0);
    ASSERT_EQ(s1.pick(nullptr, 0), &x);
    s1.yield(x);
    EXPECT_EQ(s1.pick(&x, 1 * kMs), &x);
}

TEST(CreditScheduler, OverEntitiesAreNotStarved) {
    // A light entity is OVER nearly all the time (1 ms of running is four
    // periods of its earnings), yet gets its share, in regular turns, while
    // an I/O task keeps waking with boost.
    Sim sim;
    Task& light = sim.hog(4);
    Task& a = sim.hog(256);
    Task& b = sim.hog(256);
    Task& io = sim.io(300 * kUs, 2 * kMs);
    sim.run_for(3 * kSec);
    double rest = 1.0 - sim.share(io, 0, 0);
    double want = rest * 4 / 516.0;
    std::printf("  weight 4 vs 2x256: light %.5f (ideal %.5f), max gap %.1f ms; heavy gaps %.1f %.1f ms\n",
                sim.share(light, 0, 0), want, double(light.max_gap) / kMs, double(a.max_gap) / kMs,
                double(b.max_gap) / kMs);
    // Not exact at a 1:128 ratio (each turn is at least a tick and
    // kMinRunNs), but bounded: within a factor of two.
    EXPECT_GT(sim.share(light, 0, 0), want / 2);
    EXPECT_LT(sim.share(light, 0, 0), want * 2);
    EXPECT_LE(light.max_gap, 500 * kMs);
    EXPECT_LE(a.max_gap, 50 * kMs);
    EXPECT_LE(b.max_gap, 50 * kMs);
}

TEST(CreditScheduler, EqualOverEntitiesAllRunEveryFewSlices) {
    Sim sim;
    sim.tick_ns = 10 * kMs;   // coarse ticks overdraw credit: everyone goes OVER at times
    Task* t[5];
    for (auto& p : t) p = &sim.hog();
    sim.run_for(3 * kSec);
    for (auto* p : t) {
        EXPECT_LE(p->max_gap, 5 * CreditScheduler::kSliceNs + 10 * kMs);
        expect_share(sim.share(*p, 0, 0), 0.2, 0.02, "equal");
    }
}

TEST(CreditScheduler, IdleWhenNothingRunnable) {
    CreditScheduler s;
    EXPECT_EQ(s.pick(nullptr, 0), nullptr);
    EXPECT_FALSE(s.tick(nullptr, 1 * kMs));
    EXPECT_EQ(s.next_event_ns(1 * kMs), CreditScheduler::kNoEvent);

    SchedEntity a;
    s.add(a);   // known, not runnable
    EXPECT_EQ(s.pick(nullptr, 2 * kMs), nullptr);
    EXPECT_EQ(s.next_event_ns(2 * kMs), CreditScheduler::kNoEvent);

    s.wake(a, 3 * kMs);
    EXPECT_TRUE(s.tick(nullptr, 3 * kMs));   // idle CPU with work queued
    ASSERT_EQ(s.pick(nullptr, 3 * kMs), &a);
    s.block(a, 4 * kMs);
    EXPECT_EQ(s.pick(&a, 4 * kMs), nullptr);
    EXPECT_EQ(a.runtime_ns, 1 * kMs);
    EXPECT_FALSE(s.tick(nullptr, 5 * kMs));
    EXPECT_EQ(s.next_event_ns(5 * kMs), CreditScheduler::kNoEvent);
}

// An entity that used less than its share for a long time does not come
// back with a hoard of credit when it turns CPU-bound.
TEST(CreditScheduler, IdleEntityDoesNotHoardCredit) {
    Sim sim;
    Task& a = sim.hog();
    Task& b = sim.hog();
    Task& saver = sim.io(200 * kUs, 5 * kMs);   // uses ~4% of a 33% share
    sim.run_for(2 * kSec);
    EXPECT_GE(saver.se.state.credit_ns(), CreditScheduler::kCreditMaxNs - int64_t(kMs));  // saturated
    saver.burst_ns = 100 * kSec;                 // CPU-bound from its next wake-up
    while (saver.blocked || saver.burst_left < saver.burst_ns - kMs) sim.run_for(100 * kUs);
    uint64_t r0 = saver.ran_ns;
    sim.run_for(300 * kMs);
    // Fair share is 1/3 of 300 ms = 100 ms; the clamp allows at most one
    // period of credit on top.
    std::printf("  saver got %.1f ms of 300 ms after turning CPU-bound\n",
                double(saver.ran_ns - r0) / kMs);
    EXPECT_LE(saver.ran_ns - r0, 100 * kMs + CreditScheduler::kPeriodNs);
    EXPECT_GE(saver.ran_ns - r0, 100 * kMs);
    (void)a;
    (void)b;
}

// ---- next_event_ns ----------------------------------------------------------

TEST(CreditNextEvent, BoostAndMinimumRunAreEvents) {
    CreditScheduler s;
    SchedEntity a, b;
    s.add(a);
    s.add(b);
    s.wake(a, 0);
    s.wake(b, 0);
    ASSERT_EQ(s.pick(nullptr, 0), &a);
    // a is boosted, b (boosted too) waits: a is charged, and unboosted,
    // after kBoostNs, and b takes over.
    EXPECT_EQ(s.next_event_ns(0), CreditScheduler::kBoostNs);
    EXPECT_TRUE(s.tick(&a, 1 * kMs));
    EXPECT_EQ(a.state.priority(), SchedPrio::over);   // 1 ms run, 0.5 ms share
    ASSERT_EQ(s.pick(&a, 1 * kMs), &b);
    EXPECT_EQ(s.next_event_ns(1 * kMs), 2 * kMs);
    EXPECT_FALSE(s.tick(&b, 2 * kMs));
    EXPECT_EQ(b.state.priority(), SchedPrio::under);  // 1 ms run, 1 ms share
    // b's share runs out at once, but it keeps the CPU for kMinRunNs.
    uint64_t ev = 1 * kMs + CreditScheduler::kMinRunNs;
    EXPECT_EQ(s.next_event_ns(2 * kMs), ev);
    EXPECT_FALSE(s.tick(&b, ev - 1));
    EXPECT_EQ(b.state.priority(), SchedPrio::over);
    EXPECT_TRUE(s.tick(&b, ev));
    EXPECT_EQ(s.pick(&b, ev), &a);
}

TEST(CreditNextEvent, SliceEndIsAnEvent) {
    CreditScheduler s;
    SchedEntity a, b;
    a.weight = 1000;
    b.weight = 1;
    s.add(a);
    s.add(b);
    s.wake(a, 0);
    s.wake(b, 0);
    ASSERT_EQ(s.pick(nullptr, 0), &a);
    EXPECT_TRUE(s.tick(&a, 1 * kMs));    // unboosted; b, still boosted, preempts
    ASSERT_EQ(s.pick(&a, 1 * kMs), &b);  // a waits at the head, 9 ms of slice left
    EXPECT_FALSE(s.tick(&b, 2 * kMs));   // b is OVER, a UNDER: but kMinRunNs
    uint64_t t = 1 * kMs + CreditScheduler::kMinRunNs;
    EXPECT_TRUE(s.tick(&b, t));
    ASSERT_EQ(s.pick(&b, t), &a);
    // a's share will not run out for seconds: its slice end is the event.
    uint64_t ev = s.next_event_ns(t);
    EXPECT_EQ(ev, t + 9 * kMs);
    EXPECT_FALSE(s.tick(&a, ev - 1));
    // Slice over, but only an OVER entity waits: a carries on, new slice.
    EXPECT_FALSE(s.tick(&a, ev));
    EXPECT_EQ(s.pick(&a, ev), &a);
    EXPECT_EQ(s.next_event_ns(ev), ev + CreditScheduler::kSliceNs);
}

TEST(CreditNextEvent, CapAndReleaseAreEvents) {
    CreditScheduler s;
    SchedEntity a;
    a.cap = 10;   // 3 ms per 30 ms period
    s.add(a);
    s.wake(a, 0);
    ASSERT_EQ(s.pick(nullptr, 0), &a);
    EXPECT_EQ(s.next_event_ns(0), 3 * kMs);
    EXPECT_FALSE(s.tick(&a, 3 * kMs - 1));
    EXPECT_TRUE(s.tick(&a, 3 * kMs));
    EXPECT_TRUE(a.state.parked());
    EXPECT_EQ(s.pick(&a, 3 * kMs), nullptr);
    // Parked and runnable: the release at the next accounting is an event.
    EXPECT_EQ(s.next_event_ns(3 * kMs), CreditScheduler::kPeriodNs);
    EXPECT_FALSE(s.tick(nullptr, CreditScheduler::kPeriodNs - 1));
    EXPECT_TRUE(s.tick(nullptr, CreditScheduler::kPeriodNs));
    EXPECT_FALSE(a.state.parked());
    EXPECT_EQ(s.pick(nullptr, CreditScheduler::kPeriodNs), &a);
    // An overrun (here 0.5 ms past the budget) is taken from the next period.
    EXPECT_TRUE(s.tick(&a, CreditScheduler::kPeriodNs + 3500 * kUs));
    EXPECT_EQ(s.pick(&a, CreditScheduler::kPeriodNs + 3500 * kUs), nullptr);
    EXPECT_TRUE(s.tick(nullptr, 2 * CreditScheduler::kPeriodNs));
    ASSERT_EQ(s.pick(nullptr, 2 * CreditScheduler::kPeriodNs), &a);
    EXPECT_EQ(s.next_event_ns(2 * CreditScheduler::kPeriodNs),
              2 * CreditScheduler::kPeriodNs + 2500 * kUs);
}

TEST(CreditNextEvent, NeverInThePastAndTickBeforeItIsQuiet) {
    // Random workloads, driven only at next_event_ns(), plus probes: a tick
    // strictly before the announced event never asks for a reschedule
    // (unless something woke since).
    std::mt19937_64 rng(7);
    for (int round = 0; round < 20; ++round) {
        CreditScheduler s;
        SchedEntity e[4];
        for (auto& x : e) {
            x.weight = 1 + rng() % 1000;
            x.cap = rng() % 3 == 0 ? 5 + rng() % 90 : 0;
            s.add(x);
            s.wake(x, 0);
        }
        uint64_t now = 0;
        SchedEntity* cur = s.pick(nullptr, now);
        for (int step = 0; step < 2000; ++step) {
            uint64_t ev = s.next_event_ns(now);
            ASSERT_GE(ev, now);
            if (ev == CreditScheduler::kNoEvent) break;
            // (A tick ends a boost early, by design: skip the probe then.)
            bool boosted = cur && cur->state.priority() == SchedPrio::boost;
            if (ev > now + 1 && !boosted) {
                uint64_t probe = now + 1 + rng() % (ev - now - 1);
                SchedPrio before = cur ? cur->state.priority() : SchedPrio::over;
                int64_t sc_now = cur ? s.standing_ns(*cur, now) : 0;
                int64_t sc_probe = cur ? s.standing_ns(*cur, probe) : 0;
                int64_t cred = cur ? cur->state.credit_ns() : 0;
                ASSERT_FALSE(s.tick(cur, probe)) << "round " << round << " step " << step
                    << " now " << now << " ev " << ev << " probe " << probe << " cur " << (cur ? cur - e : -1)
                    << " prio " << int(before) << "->" << (cur ? int(cur->state.priority()) : -1)
                    << " credit " << cred << " parked " << (cur && cur->state.parked()) << " queued " << s.queued()
                    << " cap " << (cur ? cur->cap : 0) << " w " << (cur ? cur->weight : 0)
                    << " score now " << sc_now << " at probe (uncharged) " << sc_probe;
                // (Crossing times are rounded early, so the recomputed event
                // may move a little; it is never in the past.)
                ASSERT_GE(s.next_event_ns(probe), probe);
                now = probe;
            }
            now = ev;
            if (s.tick(cur, now)) cur = s.pick(cur, now);
            // Occasionally block the current entity and wake the others.
            if (cur && rng() % 16 == 0) {
                s.block(*cur, now);
                cur = s.pick(cur, now);
            }
            if (rng() % 8 == 0) {
                s.wake(e[rng() % 4], now);
                cur = s.pick(cur, now);
            }
        }
    }
}

}  // namespace
