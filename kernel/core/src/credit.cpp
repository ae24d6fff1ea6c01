#include <core/credit.hpp>

// The credit policy, after Xen's credit1 (xen/common/sched/credit.c), with
// these differences, each for precision or simplicity on one CPU:
//
//   * Credit is kept in nanoseconds of CPU time and charged by the time
//     actually run at every charge point (pick, tick, block), not in 10 ms
//     ticks: shares do not depend on the tick length or its jitter.
//   * Accounting pays in arrears and conserves credit: at the end of a period
//     the CPU time the entities used in it is shared out among the entities
//     that were active in it, by weight times the fraction of the period they
//     were active. Handing out a full period of credit in advance (as Xen
//     does) gives a windfall of up to a period to whoever is active at the
//     first accounting and, when part of the CPU goes to an entity that does
//     not use its share, lets everyone saturate at the top clamp and fall
//     back to plain round robin; both cost the 1:2:4 test several percent.
//   * The share is handed out by water-filling: an entity whose credit would
//     pass kCreditMaxNs, or whose grant would pass its cap's allowance, gets
//     only what fits, and the rest goes to the others by weight. So the credit
//     an I/O-bound or capped entity cannot use goes to the CPU-bound ones, in
//     the ratio of their weights (Xen gets this from its credit_balance /
//     credit_xtra bookkeeping).
//   * Active means woken since it last slept through a whole period: an
//     entity becomes active on wake() and stops being active at an accounting
//     if it is blocked and did not run in the period just ended. (Xen: until
//     its credit saturates.) The share of the current period accrued so far
//     is estimated as elapsed * weight / active weight; priorities compare
//     credit plus that estimate with zero, so an entity is UNDER exactly when
//     it has had no more than its share up to now, not as of the last
//     accounting. The running entity is re-rated at each charge, queued ones
//     at each accounting (Xen's runqueue sort).
//   * Caps are enforced by a per-period CPU-time budget (cap% of kPeriodNs)
//     rather than by credit: the entity is parked as soon as the budget is
//     spent, and an overrun (up to one tick) is deducted from the next
//     period's budget. The budget never exceeds one period's allowance, so a
//     capped entity that slept does not get a burst above its cap.
//   * BOOST (as in Xen) is only given on wake to an entity that would be
//     UNDER and is not parked: an entity that overdrew cannot jump the queue
//     by blocking and waking. Boost only reorders: the time is charged as
//     usual. It is lost at the first charge of non-zero run time (every tick,
//     or kBoostNs into the run under a tickless kernel).
//   * An entity preempted by a BOOST goes to the head of its runqueue with
//     the rest of its slice, and without a new minimum run; one whose slice
//     ended, that yielded, or that went OVER with an UNDER waiting, goes to
//     the tail.
//
// Invariants (between calls):
//   * running_, if not null, is known and not queued. It may be not runnable
//     or parked only until the next pick() (block() or a charge just did it).
//   * An entity is queued iff it is known, runnable, not parked and not
//     running_; it is then on runq_[prio_] and on no other runqueue.
//   * Runnable entities are active. weight_active_ is the sum of acct_weight_
//     over active entities.
//   * nr_queued_ counts queued entities, nr_parked_ entities with parked_.

namespace core {

namespace {

uint32_t effective_weight(const SchedEntity& e) {
    if (e.weight == 0) return 1;
    return e.weight > SchedEntity::kMaxWeight ? SchedEntity::kMaxWeight : e.weight;
}

bool is_capped(const SchedEntity& e) { return e.cap != 0 && e.cap < 100; }

// CPU time a capped entity may use per accounting period.
int64_t cap_allowance(const SchedEntity& e) {
    return static_cast<int64_t>(CreditScheduler::kPeriodNs * e.cap / 100);
}

uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

}  // namespace

// ---- intrusive lists ------------------------------------------------------

void CreditScheduler::push_back(List& l, LinkOf link, SchedEntity& e) {
    auto& n = e.state.*link;
    n.prev = l.tail;
    n.next = nullptr;
    if (l.tail) (l.tail->state.*link).next = &e; else l.head = &e;
    l.tail = &e;
}

void CreditScheduler::push_front(List& l, LinkOf link, SchedEntity& e) {
    auto& n = e.state.*link;
    n.prev = nullptr;
    n.next = l.head;
    if (l.head) (l.head->state.*link).prev = &e; else l.tail = &e;
    l.head = &e;
}

void CreditScheduler::unlink(List& l, LinkOf link, SchedEntity& e) {
    auto& n = e.state.*link;
    if (n.prev) (n.prev->state.*link).next = n.next; else l.head = n.next;
    if (n.next) (n.next->state.*link).prev = n.prev; else l.tail = n.prev;
    n.prev = n.next = nullptr;
}

// ---- runqueues ------------------------------------------------------------

void CreditScheduler::enqueue(SchedEntity& e, bool front) {
    auto& s = e.state;
    if (front) push_front(runq(s.prio_), &SchedState::rq_, e);
    else push_back(runq(s.prio_), &SchedState::rq_, e);
    s.queued_ = true;
    ++nr_queued_;
}

void CreditScheduler::dequeue(SchedEntity& e) {
    auto& s = e.state;
    if (!s.queued_) return;
    unlink(runq(s.prio_), &SchedState::rq_, e);
    s.queued_ = false;
    --nr_queued_;
}

// The head of the highest non-empty runqueue; except that among OVER
// entities (all past their share) the one that will be back to its share
// soonest goes first (least debt per unit of weight; ties in queue order):
// round robin there would hand out equal time whatever the weights.
// O(queued OVER entities), only when no BOOST or UNDER is queued.
SchedEntity* CreditScheduler::dequeue_best(uint64_t now_ns) {
    for (unsigned p = 3; p-- > 1;) {
        if (SchedEntity* e = runq_[p].head) {
            dequeue(*e);
            return e;
        }
    }
    SchedEntity* best = runq_[0].head;
    if (!best) return nullptr;
    // score / weight compared by cross-multiplying: |score| < 2^40 (a few
    // periods), weight < 2^17, so the products fit.
    int64_t best_score = score(*best, now_ns);
    int64_t best_w = effective_weight(*best);
    for (SchedEntity* e = best->state.rq_.next; e; e = e->state.rq_.next) {
        int64_t sc = score(*e, now_ns);
        int64_t w = effective_weight(*e);
        if (sc * best_w > best_score * w) {
            best = e;
            best_score = sc;
            best_w = w;
        }
    }
    dequeue(*best);
    return best;
}

bool CreditScheduler::waiting_above(SchedPrio p) const {
    for (unsigned q = static_cast<unsigned>(p) + 1; q < 3; ++q)
        if (runq_[q].head) return true;
    return false;
}

bool CreditScheduler::waiting_at_least(SchedPrio p) const {
    return runq_[static_cast<unsigned>(p)].head || waiting_above(p);
}

// A higher priority is waiting and may take the CPU from `cur` now: BOOST at
// once, UNDER over OVER once cur has run kMinRunNs.
bool CreditScheduler::must_yield_to_waiting(const SchedEntity& cur, uint64_t now_ns) const {
    SchedPrio p = cur.state.prio_;
    if (p != SchedPrio::boost && runq_[static_cast<unsigned>(SchedPrio::boost)].head) return true;
    return waiting_above(p) && now_ns - picked_at_ns_ >= kMinRunNs;
}

// ---- entity state ---------------------------------------------------------

void CreditScheduler::set_parked(SchedEntity& e, bool parked) {
    auto& s = e.state;
    if (s.parked_ == parked) return;
    s.parked_ = parked;
    if (parked) ++nr_parked_; else --nr_parked_;
}

// Virtual time: vt_ advances at 2^32 / weight_active_ per ns, so an active
// entity's share of the CPU between two times is its weight times the vt_
// difference, even when the active weight changed in between. The delta is
// capped (accounting runs every period) so the shift cannot overflow.
uint64_t CreditScheduler::vt_now(uint64_t now_ns) const {
    if (weight_active_ == 0 || now_ns <= vt_at_ns_) return vt_;
    uint64_t d = min_u64(now_ns - vt_at_ns_, uint64_t{1} << 31);
    return vt_ + (d << 32) / weight_active_;
}

void CreditScheduler::advance_vt(uint64_t now_ns) {
    vt_ = vt_now(now_ns);
    if (now_ns > vt_at_ns_) vt_at_ns_ = now_ns;
}

// The entity's share of the CPU time since the last accounting (or since it
// became active), assuming the CPU was busy: the accounting will pay the
// time actually used. weight <= weight_active_ while active, so the product
// is at most (elapsed << 32), below 2^64 for elapsed < 2^31 ns.
int64_t CreditScheduler::accrued(const SchedEntity& e, uint64_t now_ns) const {
    const auto& s = e.state;
    if (!s.active_) return 0;
    uint64_t dv = vt_now(now_ns) - s.vt_from_;
    return static_cast<int64_t>((s.acct_weight_ * dv) >> 32);
}

// >= 0: the entity has had no more than its share so far.
int64_t CreditScheduler::score(const SchedEntity& e, uint64_t now_ns) const {
    return e.state.credit_ns_ + accrued(e, now_ns);
}

void CreditScheduler::activate(SchedEntity& e, uint64_t now_ns) {
    auto& s = e.state;
    if (s.active_) return;
    advance_vt(now_ns);
    s.active_ = true;
    s.active_from_ns_ = now_ns;
    s.vt_from_ = vt_;
    s.acct_weight_ = effective_weight(e);
    weight_active_ += s.acct_weight_;
}

// UNDER or OVER from the score; BOOST is kept until a charge clears it.
void CreditScheduler::update_prio(SchedEntity& e, uint64_t now_ns) {
    auto& s = e.state;
    if (s.prio_ == SchedPrio::boost) return;
    SchedPrio p = score(e, now_ns) >= 0 ? SchedPrio::under : SchedPrio::over;
    if (p == s.prio_) return;
    bool was_queued = s.queued_;
    dequeue(e);
    s.prio_ = p;
    if (was_queued) enqueue(e, false);
}

// Queued OVER entities whose score has come back to >= 0 since the last
// accounting (their accrued share grew while they waited) move to the tail of
// UNDER, in queue order. Only needed when nothing better is queued: then the
// choice is among OVER entities, and the ones still under their share should
// go first. O(queued OVER entities), at most once per tick or pick.
void CreditScheduler::refresh_over(uint64_t now_ns) {
    if (runq(SchedPrio::boost).head || runq(SchedPrio::under).head) return;
    SchedEntity* e = runq(SchedPrio::over).head;
    while (e) {
        SchedEntity* next = e->state.rq_.next;
        update_prio(*e, now_ns);
        e = next;
    }
}

// Charges running_ (`e`) for the time since it was last charged.
void CreditScheduler::charge(SchedEntity& e, uint64_t now_ns) {
    auto& s = e.state;
    uint64_t delta = now_ns > last_charge_ns_ ? now_ns - last_charge_ns_ : 0;
    if (now_ns > last_charge_ns_) last_charge_ns_ = now_ns;
    if (delta == 0) return;

    e.runtime_ns += delta;
    s.ran_in_period_ns_ += delta;
    s.credit_ns_ -= static_cast<int64_t>(delta);
    // e is running, so not queued: set the priority directly. This is where
    // BOOST ends.
    s.prio_ = score(e, now_ns) >= 0 ? SchedPrio::under : SchedPrio::over;

    if (is_capped(e)) {
        s.cap_budget_ns_ -= static_cast<int64_t>(delta);
        if (s.cap_budget_ns_ <= 0) set_parked(e, true);
    }
}

// ---- accounting -----------------------------------------------------------

void CreditScheduler::maybe_account(uint64_t now_ns) {
    if (!started_) {
        started_ = true;
        period_start_ns_ = now_ns;
        vt_at_ns_ = now_ns;
        next_acct_ns_ = now_ns + kPeriodNs;
        return;
    }
    if (now_ns < next_acct_ns_) return;
    // Keep the period's phase; after a long idle stretch, start afresh.
    next_acct_ns_ += kPeriodNs;
    if (next_acct_ns_ <= now_ns) next_acct_ns_ = now_ns + kPeriodNs;
    account(now_ns);
}

// Pays the CPU time used since the last accounting back to the active
// entities by weight (water-filling), then clamps credit, retires entities
// that slept through the period, re-rates priorities, refills cap budgets and
// releases parked entities.
void CreditScheduler::account(uint64_t now_ns) {
    uint64_t start = period_start_ns_;
    uint64_t period = now_ns > start ? now_ns - start : 0;

    // Room an entity has for credit this period.
    auto room = [](const SchedEntity& e) -> uint64_t {
        int64_t r = kCreditMaxNs - e.state.credit_ns_;
        if (is_capped(e) && cap_allowance(e) < r) r = cap_allowance(e);
        return r > 0 ? static_cast<uint64_t>(r) : 0;
    };
    // Weight times the fraction of the period the entity was active. Scaled
    // by 2^10 so that a short activity still counts; at most 2^26 per entity.
    auto acct_weight = [&](const SchedEntity& e) -> uint64_t {
        const auto& s = e.state;
        if (!s.active_) return 0;
        uint64_t w = uint64_t{s.acct_weight_} << 10;
        if (s.active_from_ns_ <= start || period == 0) return w;
        uint64_t part = now_ns > s.active_from_ns_ ? now_ns - s.active_from_ns_ : 0;
        uint64_t scaled = w * (part >> 10) / ((period >> 10) | 1);
        return scaled ? scaled : 1;
    };

    uint64_t used = 0;
    uint64_t weight_left = 0;
    for (SchedEntity* e = all_.head; e; e = e->state.all_.next) {
        auto& s = e->state;
        used += s.ran_in_period_ns_;
        s.acct_open_ = s.active_;
        weight_left += acct_weight(*e);
    }

    // Each round either closes at least one entity that reaches its room
    // (the fair share of the others can then only grow, so they are checked
    // again), or hands out the rest by weight and stops. Products stay below
    // 2^64: credit_left is the CPU time of one period (< 2^34 ns even if
    // accounting were late by 10 s) times a weight below 2^26.
    uint64_t credit_left = used;
    while (weight_left > 0 && credit_left > 0) {
        bool closed = false;
        for (SchedEntity* e = all_.head; e; e = e->state.all_.next) {
            auto& s = e->state;
            if (!s.acct_open_) continue;
            uint64_t w = acct_weight(*e);
            uint64_t fair = credit_left * w / weight_left;
            uint64_t r = room(*e);
            if (fair < r) continue;
            s.credit_ns_ += static_cast<int64_t>(r);
            s.acct_open_ = false;
            credit_left -= r;
            weight_left -= w;
            closed = true;
        }
        if (closed) continue;
        for (SchedEntity* e = all_.head; e; e = e->state.all_.next) {
            auto& s = e->state;
            if (!s.acct_open_) continue;
            s.credit_ns_ += static_cast<int64_t>(credit_left * acct_weight(*e) / weight_left);
        }
        break;
    }

    // The entities still open want more CPU than they get. Only the
    // differences between their credits matter among them; the level drops
    // when others bank credit (an I/O-bound entity filling up to
    // kCreditMaxNs takes it from them). If all of them are below zero, they
    // would all be OVER and run in plain round robin, which ignores weights,
    // until the lightest reaches kCreditMinNs and loses its debt. So lift
    // them together until the best is at zero.
    bool any_open = false;
    int64_t best = 0;
    for (SchedEntity* e = all_.head; e; e = e->state.all_.next) {
        const auto& s = e->state;
        if (!s.acct_open_) continue;
        if (!any_open || s.credit_ns_ > best) best = s.credit_ns_;
        any_open = true;
    }
    if (any_open && best < 0) {
        for (SchedEntity* e = all_.head; e; e = e->state.all_.next)
            if (e->state.acct_open_) e->state.credit_ns_ -= best;
    }

    period_start_ns_ = now_ns;
    weight_active_ = 0;
    vt_ = 0;
    vt_at_ns_ = now_ns;
    for (SchedEntity* e = all_.head; e; e = e->state.all_.next) {
        auto& s = e->state;
        s.acct_open_ = false;
        if (s.credit_ns_ > kCreditMaxNs) s.credit_ns_ = kCreditMaxNs;
        if (s.credit_ns_ < kCreditMinNs) s.credit_ns_ = kCreditMinNs;
        if (s.active_ && !s.runnable_ && s.ran_in_period_ns_ == 0) s.active_ = false;
        if (s.active_) {
            s.acct_weight_ = effective_weight(*e);   // the owner may have changed it
            s.vt_from_ = 0;
            weight_active_ += s.acct_weight_;
        }
        s.ran_in_period_ns_ = 0;
        update_prio(*e, now_ns);

        if (is_capped(*e)) {
            int64_t a = cap_allowance(*e);
            s.cap_budget_ns_ = s.cap_budget_ns_ + a < a ? s.cap_budget_ns_ + a : a;
        } else {
            s.cap_budget_ns_ = 0;
        }
        if (s.parked_ && (!is_capped(*e) || s.cap_budget_ns_ > 0)) {
            set_parked(*e, false);
            if (s.runnable_ && e != running_) enqueue(*e, false);
        }
    }
}

// ---- public interface -----------------------------------------------------

void CreditScheduler::add(SchedEntity& e) {
    if (e.state.known_) return;
    e.state = SchedState{};
    e.state.known_ = true;
    if (is_capped(e)) e.state.cap_budget_ns_ = cap_allowance(e);
    push_back(all_, &SchedState::all_, e);
}

void CreditScheduler::remove(SchedEntity& e) {
    if (!e.state.known_) return;
    dequeue(e);
    set_parked(e, false);
    if (e.state.active_) {
        // remove() has no clock: bring vt_ up to the last time we were told.
        // The stretch since then counts at the smaller weight, a slight gain
        // for the others.
        advance_vt(last_charge_ns_);
        weight_active_ -= e.state.acct_weight_;
    }
    unlink(all_, &SchedState::all_, e);
    if (running_ == &e) running_ = nullptr;
    e.state = SchedState{};
}

void CreditScheduler::wake(SchedEntity& e, uint64_t now_ns) {
    auto& s = e.state;
    if (!s.known_ || s.runnable_) return;
    if (!started_) maybe_account(now_ns);
    activate(e, now_ns);
    s.runnable_ = true;
    s.prio_ = !s.parked_ && score(e, now_ns) >= 0 ? SchedPrio::boost : SchedPrio::over;
    if (!s.parked_ && &e != running_) enqueue(e, false);
}

void CreditScheduler::block(SchedEntity& e, uint64_t now_ns) {
    auto& s = e.state;
    if (!s.known_ || !s.runnable_) return;
    if (&e == running_) charge(e, now_ns);
    dequeue(e);
    s.runnable_ = false;
    s.yielded_ = false;
    s.slice_left_ns_ = 0;
    if (s.prio_ == SchedPrio::boost) s.prio_ = SchedPrio::under;
    update_prio(e, now_ns);
}

void CreditScheduler::yield(SchedEntity& e) {
    auto& s = e.state;
    if (!s.known_ || !s.runnable_) return;
    if (&e == running_) {
        s.yielded_ = true;
    } else if (s.queued_) {
        dequeue(e);
        s.slice_left_ns_ = 0;
        enqueue(e, false);
    }
}

SchedEntity* CreditScheduler::pick(SchedEntity* current, uint64_t now_ns) {
    // `current` is only compared: running_ is the entity we handed out, and
    // is null if it was removed since.
    (void)current;
    SchedEntity* cur = running_;
    if (cur) charge(*cur, now_ns);
    maybe_account(now_ns);
    refresh_over(now_ns);

    if (cur && cur->state.runnable_ && !cur->state.parked_) {
        auto& s = cur->state;
        bool slice_over = now_ns >= slice_end_ns_;
        bool preempted = must_yield_to_waiting(*cur, now_ns);
        if (!s.yielded_ && !slice_over && !preempted) return cur;
        // Preempted by a BOOST: first in line, with the rest of its slice.
        // Otherwise (slice over, yielded, or now OVER with an UNDER waiting)
        // behind its peers, with a fresh slice.
        bool by_boost = preempted && s.prio_ != SchedPrio::boost && runq(SchedPrio::boost).head;
        bool keep_place = by_boost && !s.yielded_ && !slice_over;
        s.slice_left_ns_ = keep_place ? slice_end_ns_ - now_ns : 0;
        s.resumed_ = keep_place;
        s.yielded_ = false;
        enqueue(*cur, keep_place);
    } else if (cur) {
        cur->state.yielded_ = false;
        cur->state.slice_left_ns_ = 0;
    }

    running_ = dequeue_best(now_ns);
    if (running_) {
        auto& s = running_->state;
        slice_end_ns_ = now_ns + (s.slice_left_ns_ ? s.slice_left_ns_ : kSliceNs);
        s.slice_left_ns_ = 0;
        last_charge_ns_ = now_ns;
        // An entity resumed after a boosted one ran has had its minimum run
        // already: otherwise every wake-up of an I/O task would renew it.
        picked_at_ns_ = s.resumed_ && now_ns >= kMinRunNs ? now_ns - kMinRunNs : now_ns;
        s.resumed_ = false;
    }
    return running_;
}

bool CreditScheduler::tick(SchedEntity* current, uint64_t now_ns) {
    (void)current;
    if (running_) charge(*running_, now_ns);
    maybe_account(now_ns);

    if (!running_) return nr_queued_ > 0;
    auto& s = running_->state;
    if (!s.runnable_ || s.parked_ || s.yielded_) return true;
    if (s.prio_ == SchedPrio::over || now_ns >= slice_end_ns_) refresh_over(now_ns);
    if (must_yield_to_waiting(*running_, now_ns)) return true;
    if (now_ns >= slice_end_ns_) {
        if (waiting_at_least(s.prio_)) return true;
        slice_end_ns_ = now_ns + kSliceNs;   // alone at its priority: carry on
    }
    return false;
}

uint64_t CreditScheduler::next_event_ns(uint64_t now_ns) const {
    if (!running_ && nr_queued_ == 0 && nr_parked_ == 0) return kNoEvent;
    uint64_t t = started_ ? next_acct_ns_ : now_ns;
    if (running_) {
        const auto& s = running_->state;
        // Alone, it runs on past its slice (tick() renews it), so the slice
        // end and the score only matter with others waiting.
        if (nr_queued_ > 0) {
            t = min_u64(t, slice_end_ns_);
            if (s.prio_ == SchedPrio::boost) t = min_u64(t, last_charge_ns_ + kBoostNs);
            // UNDER -> OVER: the score falls at 1 - w/W ns per ns run. Round
            // the crossing down so that no tick before it sees it.
            int64_t sc = score(*running_, last_charge_ns_);
            uint64_t w = s.active_ ? s.acct_weight_ : 0;
            uint64_t min_run_end = picked_at_ns_ + kMinRunNs;
            if (s.prio_ != SchedPrio::over && sc >= 0 && weight_active_ > w) {
                uint64_t num = static_cast<uint64_t>(sc) * weight_active_;
                uint64_t cross = last_charge_ns_ + num / (weight_active_ - w) + 1;
                t = min_u64(t, cross > min_run_end ? cross : min_run_end);
            }
            if (waiting_above(s.prio_)) t = min_u64(t, min_run_end);
            // OVER with only OVER waiting: the first of those to get back to
            // its share (score 0) becomes UNDER and preempts (refresh_over).
            // O(queued OVER entities).
            if (s.prio_ == SchedPrio::over && !waiting_above(SchedPrio::over) && weight_active_ > 0) {
                for (const SchedEntity* q = runq_[0].head; q; q = q->state.rq_.next) {
                    int64_t qs = score(*q, now_ns);
                    uint64_t qw = q->state.active_ ? q->state.acct_weight_ : 0;
                    if (qw == 0) continue;
                    uint64_t need = qs >= 0 ? 0 : static_cast<uint64_t>(-qs);
                    // Rounded down (accrued() floors each time, so the score
                    // may reach zero a little early), but always ahead.
                    uint64_t back = now_ns + 1 + (need ? need - 1 : 0) * weight_active_ / qw;
                    t = min_u64(t, back > min_run_end ? back : min_run_end);
                }
            }
        }
        if (is_capped(*running_) && s.cap_budget_ns_ > 0)
            t = min_u64(t, last_charge_ns_ + static_cast<uint64_t>(s.cap_budget_ns_));
    }
    return t > now_ns ? t : now_ns;
}

}  // namespace core
