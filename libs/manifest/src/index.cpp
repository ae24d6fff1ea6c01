// manifest::Index (index.hpp): counting sorts, no comparisons, no heap.

#include <manifest/index.hpp>

namespace manifest {

void Index::build(const System& s) {
    const unsigned nd = s.n_domains;
    int builder = -1;
    for (unsigned i = 0; i < nd; ++i)
        if (s.domains[i].role == Role::builder) builder = int(i);

    // Each domain's connections, in manifest order.
    for (unsigned i = 0; i <= nd; ++i) conn_start_[i] = 0;
    for (unsigned k = 0; k < s.n_connections; ++k) {
        ++conn_start_[s.connections[k].frontend + 1];
        ++conn_start_[s.connections[k].backend + 1];
    }
    for (unsigned i = 0; i < nd; ++i) conn_start_[i + 1] += conn_start_[i];
    // seen_ counts how many each has placed so far.
    for (unsigned i = 0; i < nd; ++i) seen_[i] = 0;
    for (unsigned k = 0; k < s.n_connections; ++k) {
        const Connection& c = s.connections[k];
        conns_[conn_start_[c.frontend] + uint32_t(seen_[c.frontend]++)] = uint16_t(k);
        conns_[conn_start_[c.backend] + uint32_t(seen_[c.backend]++)] = uint16_t(k);
    }

    // Each holder's links, one per peer: seen_[p] is p's link of the holder
    // at hand (-1: none yet), cleared again after each holder.
    for (unsigned i = 0; i < nd; ++i) seen_[i] = -1;
    n_links_ = 0;
    auto add = [&](unsigned h, unsigned p, uint8_t grant, bool bind) {
        int32_t& at = seen_[p];
        if (at < 0) {
            at = int32_t(n_links_);
            links_[n_links_++] = Link{uint16_t(h), uint16_t(p), 0, false};
        }
        links_[at].grant |= grant;
        links_[at].bind |= bind;
    };
    for (unsigned h = 0; h < nd; ++h) {
        const Domain& d = s.domains[h];
        link_start_[h] = n_links_;
        for (unsigned k = 0; k < d.n_grants; ++k) add(h, d.grants[k].peer, d.grants[k].rights, false);
        for (unsigned k = 0; k < d.n_events; ++k) add(h, d.events[k], 0, true);
        unsigned nc;
        const uint16_t* cs = connections_of(h, &nc);
        for (unsigned k = 0; k < nc; ++k) {
            const Connection& c = s.connections[cs[k]];
            if (c.backend == h) {
                // Network and disk back-ends copy data to and from the
                // front-end's granted pages (the ring itself is mapped).
                bool data = c.kind == ConnKind::vif || c.kind == ConnKind::vbd;
                add(h, c.frontend, uint8_t(kGrantMapRw | (data ? kGrantCopy : 0)), true);
            } else {
                add(h, c.backend, 0, true);
            }
        }
        // The store domain serves the builder's own ring.
        if (d.role == Role::xenstore && builder >= 0) add(h, unsigned(builder), kGrantMapRw, true);
        for (uint32_t x = link_start_[h]; x < n_links_; ++x) seen_[links_[x].peer] = -1;
    }
    link_start_[nd] = n_links_;

    // The same links by peer.
    for (unsigned i = 0; i <= nd; ++i) naming_start_[i] = 0;
    for (uint32_t x = 0; x < n_links_; ++x) ++naming_start_[links_[x].peer + 1];
    for (unsigned i = 0; i < nd; ++i) naming_start_[i + 1] += naming_start_[i];
    for (unsigned i = 0; i < nd; ++i) seen_[i] = 0;
    for (uint32_t x = 0; x < n_links_; ++x) {
        unsigned p = links_[x].peer;
        naming_[naming_start_[p] + uint32_t(seen_[p]++)] = x;
    }

    for (unsigned i = 0; i < nd; ++i) device_backend_[i] = false;
    for (unsigned k = 0; k < s.n_connections; ++k) {
        const Connection& c = s.connections[k];
        if (c.kind == ConnKind::ring || c.kind == ConnKind::vif || c.kind == ConnKind::vbd)
            device_backend_[c.backend] = true;
    }
}

}  // namespace manifest
