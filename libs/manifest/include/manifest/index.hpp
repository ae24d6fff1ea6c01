#pragma once
// Who holds what naming whom, and which connections each domain has, from a
// decoded System: built once (one pass over the domains' capabilities and
// the connections), so that the builder's work for each domain it sizes,
// builds or restarts is that domain's own lists, never a pass over every
// domain or connection. Portable: compiled for the builder, tested hosted.

#include <manifest/manifest.hpp>

namespace manifest {

// The capabilities `holder` holds naming `peer`: its manifest's grants and
// events, what its connections imply (docs: proto/manifest.proto,
// Connection), and for the XENSTORE domain a ring of the BUILDER's own.
struct Link {
    uint16_t holder, peer;   // indices into System::domains, never equal
    uint8_t grant;           // kGrant* bits; 0: no Grant capability
    bool bind;               // an Event capability
};

class Index {
public:
    // The most links a System within the limits of manifest.hpp has: one per
    // grant, per event, two per connection, the store's one of the builder.
    static constexpr unsigned kMaxLinks = 2 * kMaxGrants + 2 * kMaxConnections + 1;

    // Fills the index from a System manifest::decode accepted. O(domains +
    // grants + events + connections).
    void build(const System& s);

    // The links `holder` holds, one per peer, in no particular order.
    const Link* links_of(unsigned holder, unsigned* n) const {
        *n = link_start_[holder + 1] - link_start_[holder];
        return links_ + link_start_[holder];
    }
    // Positions (into the array links_of returns for each holder, as
    // Index::position) of the links naming `peer`.
    const uint32_t* naming(unsigned peer, unsigned* n) const {
        *n = naming_start_[peer + 1] - naming_start_[peer];
        return naming_ + naming_start_[peer];
    }
    // A link by its position (0 to links() - 1): holders' links one after
    // the other, each holder's from links_of's pointer on.
    const Link& at(uint32_t position) const { return links_[position]; }
    uint32_t position(const Link& l) const { return uint32_t(&l - links_); }
    uint32_t links() const { return n_links_; }

    // Indices into System::connections of those `domain` is an end of
    // (front-end or back-end), in manifest order.
    const uint16_t* connections_of(unsigned domain, unsigned* n) const {
        *n = conn_start_[domain + 1] - conn_start_[domain];
        return conns_ + conn_start_[domain];
    }
    // Whether `domain` is the back-end of a RING, VIF or VBD connection
    // (the back-ends that watch @releaseDomain).
    bool is_device_backend(unsigned domain) const { return device_backend_[domain]; }

private:
    uint32_t n_links_ = 0;
    Link links_[kMaxLinks];                  // grouped by holder, one per (holder, peer)
    uint32_t link_start_[kMaxDomains + 1];   // holder h's are [link_start_[h], link_start_[h + 1])
    uint32_t naming_[kMaxLinks];             // positions of links, grouped by peer
    uint32_t naming_start_[kMaxDomains + 1];
    uint16_t conns_[2 * kMaxConnections];    // grouped by domain
    uint32_t conn_start_[kMaxDomains + 1];
    bool device_backend_[kMaxDomains];
    int32_t seen_[kMaxDomains];              // build()'s: peer's link of the current holder, or -1
};

}  // namespace manifest
