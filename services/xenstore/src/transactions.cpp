#include <xenstore/transactions.hpp>

namespace xs {

void Transactions::reset() {
    high_ = 0;
    next_id_ = 1;
}

Result<size_t> Transactions::open(DomId dom) {
    for (size_t s = 0; s < cap_; ++s) {
        if (s < high_ && tx_[s].in_use) continue;
        uint32_t id;
        bool taken;
        do {
            id = next_id_++;
            if (next_id_ == 0) next_id_ = 1;
            taken = false;
            for (size_t k = 0; k < high_; ++k)
                if (tx_[k].in_use && tx_[k].id == id) taken = true;
        } while (id == 0 || taken);
        tx_[s] = Transaction{true, dom, id, 0};
        if (s == high_) high_++;
        return s;
    }
    return Err{Error::nomem};
}

Result<size_t> Transactions::find(DomId dom, uint32_t id) const {
    for (size_t s = 0; s < high_; ++s)
        if (tx_[s].in_use && tx_[s].dom == dom && tx_[s].id == id && id != 0) return s;
    return Err{Error::noent};
}

}  // namespace xs
