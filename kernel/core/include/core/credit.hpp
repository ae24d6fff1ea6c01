#pragma once
// CreditScheduler: a proportional-share CPU scheduling policy after Xen's
// credit scheduler (credit1), simplified to one CPU per scheduler object.
//
// The policy knows nothing of vCPUs. It orders SchedEntity objects, which the
// kernel embeds in each vCPU (and maps back with offsetof, so SchedEntity is
// standard-layout). There are no globals: the kernel keeps one CreditScheduler
// per CPU. No heap, no exceptions, no locks: every call must be made with the
// owning CPU's scheduler lock held (or with interrupts off on that CPU).
//
// The policy in brief (details and reasons in credit.cpp):
//   * Credit is CPU time, in nanoseconds. Running burns credit by the time
//     actually run. Every accounting period (kPeriodNs) the CPU time used in
//     the period is paid back as credit to the entities that were active in
//     it, in proportion to their weights (and to how much of the period they
//     were active).
//   * Priorities, highest first: BOOST (just woken, not ahead of its share),
//     UNDER (has had no more than its share: credit plus the share accrued so
//     far this period >= 0), OVER (has had more). Round robin within BOOST
//     and UNDER, with a time slice of kSliceNs; among OVER entities the one
//     least past its share goes first.
//   * An entity with a cap may use at most cap% of one CPU per period; past
//     that it is PARKED (runnable but never picked) until the next
//     accounting. Overruns are carried into the next period, so the long-run
//     share is exact even with a coarse tick.
//   * Credit is clamped to [kCreditMinNs, kCreditMaxNs] so that an idle
//     entity cannot hoard credit, nor a long-past burst be held against an
//     entity for ever.
//
// Time: callers pass a monotonic clock in nanoseconds; the scheduler never
// reads a clock itself.

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace core {

class CreditScheduler;
struct SchedEntity;

// Higher value, higher priority.
enum class SchedPrio : uint8_t { over = 0, under = 1, boost = 2 };

// Scheduler-private per-entity state. Only CreditScheduler changes it; the
// accessors are for tests, diagnostics and `top`.
class SchedState {
public:
    int64_t credit_ns() const { return credit_ns_; }
    SchedPrio priority() const { return prio_; }
    bool runnable() const { return runnable_; }   // woken and not blocked (parked counts)
    bool parked() const { return parked_; }       // over its cap for this period
    bool known() const { return known_; }         // between add() and remove()

private:
    friend class CreditScheduler;

    struct Link {
        SchedEntity* prev;
        SchedEntity* next;
    };

    int64_t credit_ns_ = 0;
    int64_t cap_budget_ns_ = 0;     // CPU time left under the cap this period
    uint64_t ran_in_period_ns_ = 0; // run time since the last accounting
    uint64_t slice_left_ns_ = 0;    // rest of a slice cut short by preemption
    uint64_t active_from_ns_ = 0;   // when it last became active
    uint64_t vt_from_ = 0;          // the scheduler's vt_ then (or at the last accounting)
    uint32_t acct_weight_ = 0;      // its weight in weight_active_ (while active_)
    Link rq_{nullptr, nullptr};     // on a runqueue (only while queued_)
    Link all_{nullptr, nullptr};    // on the list of known entities
    SchedPrio prio_ = SchedPrio::under;
    bool known_ = false;
    bool active_ = false;           // earns credit (see credit.cpp)
    bool runnable_ = false;
    bool queued_ = false;           // on a runqueue; never true for the running entity
    bool parked_ = false;
    bool yielded_ = false;          // running entity asked to go behind its peers
    bool resumed_ = false;          // queued at the head after a preemption
    bool acct_open_ = false;        // scratch flag of accounting (see account())
};

struct SchedEntity {
    static constexpr uint32_t kDefaultWeight = 256;
    static constexpr uint32_t kMaxWeight = 65535;

    // Set by the owner (the domain's parameters); read at every accounting
    // period, so they may change while the entity is known.
    uint32_t weight = kDefaultWeight;   // relative share, 1..65535 (0 acts as 1)
    uint32_t cap = 0;                   // max % of one CPU, 0 (or >= 100) = uncapped

    // Total CPU time charged to this entity.
    uint64_t runtime_ns = 0;

    SchedState state;
};

static_assert(std::is_standard_layout_v<SchedEntity>, "the kernel finds the vCPU with offsetof");

class CreditScheduler {
public:
    static constexpr uint64_t kMsNs = 1'000'000;
    static constexpr uint64_t kPeriodNs = 30 * kMsNs;   // accounting period
    static constexpr uint64_t kSliceNs = 10 * kMsNs;    // round-robin time slice
    // A boosted entity is charged (and so loses its boost) at most this long
    // after it starts to run, when others are waiting; next_event_ns() asks
    // for it, so a tickless kernel gets the same effect as a 1 ms tick.
    static constexpr uint64_t kBoostNs = 1 * kMsNs;
    // An entity runs at least this long before an UNDER entity may preempt
    // it for being OVER (BOOST preempts at once). Without it, entities whose
    // shares are all exactly met would trade the CPU every nanosecond.
    static constexpr uint64_t kMinRunNs = 3 * kMsNs;
    static constexpr int64_t kCreditMaxNs = static_cast<int64_t>(kPeriodNs);
    static constexpr int64_t kCreditMinNs = -static_cast<int64_t>(kPeriodNs);
    static constexpr uint64_t kNoEvent = ~uint64_t{0};

    CreditScheduler() = default;
    CreditScheduler(const CreditScheduler&) = delete;
    CreditScheduler& operator=(const CreditScheduler&) = delete;

    // Makes `e` known, blocked, with no credit. No-op if already known.
    void add(SchedEntity& e);
    // Forgets `e` (domain destroyed): it is never picked again, and if it was
    // running, the next pick() does not touch it (the caller may free it as
    // soon as remove() returns). No-op if not known.
    void remove(SchedEntity& e);
    // Blocked or new -> runnable. An entity with credit left (UNDER) gets
    // BOOST so that an I/O-bound domain runs soon after its event. The caller
    // should then pick() (or let tick() say so) to preempt a lower priority.
    void wake(SchedEntity& e, uint64_t now_ns);
    // Runnable -> blocked. If `e` is running it is charged up to now_ns; the
    // caller then calls pick().
    void block(SchedEntity& e, uint64_t now_ns);
    // `e` goes behind the other entities of its priority: at once if queued;
    // if running, at the next pick(), which the caller should make now.
    void yield(SchedEntity& e);

    // The CPU's current entity has run since it was last picked: charge it,
    // then return the entity to run next (may be the same one; null = idle).
    // `current` must be what the previous pick() returned, or null; it is
    // only compared, never dereferenced, so it may be a removed entity.
    SchedEntity* pick(SchedEntity* current, uint64_t now_ns);
    // Timer tick on this CPU: charges the current entity and runs accounting
    // when due. True if the caller should pick(): the slice is over with a
    // peer waiting, a higher priority is waiting, the current entity is
    // parked, blocked, removed or yielding, or the CPU idles with work queued.
    bool tick(SchedEntity* current, uint64_t now_ns);
    // When tick() should next be called (>= now_ns): end of the slice, the
    // current entity running out of credit or of its cap, the end of its
    // boost, or the next accounting. kNoEvent if nothing is runnable, parked
    // or running.
    uint64_t next_event_ns(uint64_t now_ns) const;

    // Credit plus the share accrued since the last accounting: >= 0 when `e`
    // has had no more than its share so far (for diagnostics and `top`).
    int64_t standing_ns(const SchedEntity& e, uint64_t now_ns) const { return score(e, now_ns); }
    SchedEntity* running() const { return running_; }
    unsigned queued() const { return nr_queued_; }

private:
    struct List {
        SchedEntity* head = nullptr;
        SchedEntity* tail = nullptr;
    };
    using LinkOf = SchedState::Link SchedState::*;

    static void push_back(List& l, LinkOf link, SchedEntity& e);
    static void push_front(List& l, LinkOf link, SchedEntity& e);
    static void unlink(List& l, LinkOf link, SchedEntity& e);

    List& runq(SchedPrio p) { return runq_[static_cast<unsigned>(p)]; }
    void enqueue(SchedEntity& e, bool front);
    void dequeue(SchedEntity& e);
    SchedEntity* dequeue_best(uint64_t now_ns);
    bool waiting_above(SchedPrio p) const;
    bool waiting_at_least(SchedPrio p) const;
    bool must_yield_to_waiting(const SchedEntity& cur, uint64_t now_ns) const;

    uint64_t vt_now(uint64_t now_ns) const;
    void advance_vt(uint64_t now_ns);
    int64_t accrued(const SchedEntity& e, uint64_t now_ns) const;
    int64_t score(const SchedEntity& e, uint64_t now_ns) const;
    void activate(SchedEntity& e, uint64_t now_ns);
    void charge(SchedEntity& e, uint64_t now_ns);
    void maybe_account(uint64_t now_ns);
    void account(uint64_t now_ns);
    void set_parked(SchedEntity& e, bool parked);
    void update_prio(SchedEntity& e, uint64_t now_ns);
    void refresh_over(uint64_t now_ns);

    List runq_[3];                   // indexed by SchedPrio
    List all_;                       // every known entity, for accounting
    SchedEntity* running_ = nullptr; // what the last pick() returned, unless removed
    uint64_t last_charge_ns_ = 0;    // running_ is charged up to here
    uint64_t slice_end_ns_ = 0;      // running_'s slice ends here
    uint64_t picked_at_ns_ = 0;      // running_ was picked at this time
    uint64_t next_acct_ns_ = 0;
    uint64_t period_start_ns_ = 0;   // time of the last accounting
    uint64_t weight_active_ = 0;     // sum of acct_weight_ of active entities
    // Since the last accounting: the integral of 2^32 / weight_active_ over
    // time, up to vt_at_ns_. An active entity's share accrued since time t is
    // weight * (vt(now) - vt(t)) / 2^32.
    uint64_t vt_ = 0;
    uint64_t vt_at_ns_ = 0;
    bool started_ = false;           // first accounting done
    unsigned nr_queued_ = 0;
    unsigned nr_parked_ = 0;
};

}  // namespace core
