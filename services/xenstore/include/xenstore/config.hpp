#pragma once
// Sizes of the engine's pools, the per-domain quotas and reserves.
//
// Every pool a domain can make the store consume is accounted per domain
// (the ledger, domains.hpp): node records (nodes and transaction records),
// byte-pool blocks (paths, values, watch paths and tokens, queued events),
// watches, queued events and transactions. The pools are sized when the
// engine is made (a Sizing: kStandard, or Engine::sizing_for from the
// memory the store domain has and the number of domains it serves), and
// each is divided, once and for all, into
//   * the privileged domain's reserve (Sizing::priv_reserve),
//   * one reserve (Sizing::reserve) for each of the Sizing::domains
//     accounting records an unprivileged domain can hold (introduced, or
//     owning a node the privileged domain gave it before introducing it),
//   * the shared remainder, which every domain may draw from once it has
//     used its reserve, up to its quota (kQuota; the privileged domain has
//     none).
// A domain can always use its whole reserve whatever the others do: the
// shared remainder never grows into a reserve, whether that reserve is in
// use or waiting for the next domain (so a domain restarted after a release
// always finds one). Running out of either is EQUOTA for the domain that
// asked, and changes nothing. Sizing::adds_up says why the numbers add up
// (checked for every sizing an engine is made with); Engine::check_invariants
// checks them at run time.

#include <abi/types.hpp>
#include <abi/xs_wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

using abi::DomId;

inline constexpr DomId kNoDom = 0xffff;
// Xen's DOMID_FIRST_RESERVED: larger ids are never real domains.
inline constexpr uint32_t kDomIdLimit = 0x7ff0;

// What a domain can make the store hold, one counter each.
enum class Res : uint8_t {
    records,       // node-table records: its nodes and its transactions' records
    blocks,        // byte-pool blocks of its strings (each rounded up to kBlobBlockBytes)
    watches,
    events,        // watch events queued for it and not yet taken
    transactions,  // open transactions
};
inline constexpr size_t kResCount = 5;

// One amount per resource.
struct Amounts {
    uint32_t v[kResCount];

    constexpr uint32_t& operator[](Res r) { return v[static_cast<size_t>(r)]; }
    constexpr uint32_t operator[](Res r) const { return v[static_cast<size_t>(r)]; }
};

// The standard pools (kStandard, below: what the hosted tests and a store
// with no more memory than it needs for 128 domains use).
inline constexpr size_t kBlobBlockBytes = 60;     // payload bytes per byte-pool block
inline constexpr size_t kMaxNodes = 10240;        // node records, incl. transaction records
inline constexpr size_t kBlobBlocks = 32768;      // path/value/token/event bytes: 1.9 MiB of payload
inline constexpr size_t kMaxWatches = 4096;
inline constexpr size_t kMaxEvents = 4096;        // queued watch events, all domains
inline constexpr size_t kMaxTransactions = 512;
inline constexpr size_t kMaxPermEntries = 16;     // ACL entries a node can hold (owner included)
inline constexpr Amounts kPool = {{kMaxNodes, kBlobBlocks, kMaxWatches, kMaxEvents, kMaxTransactions}};

// Accounting records of the standard sizing: the privileged domain's and
// kDomainSlots more, one for every unprivileged domain that is introduced
// or owns something. Each record holds a reserve, so this also says how
// many reserves the pools set aside.
inline constexpr size_t kDomainSlots = 128;
inline constexpr size_t kMaxDomains = kDomainSlots + 1;
// The most unprivileged domains any sizing serves (record indices are 16-bit).
inline constexpr size_t kDomainSlotsMax = 16384;
// Pool limits of any sizing: a transaction's layer is a uint16_t above 0,
// records and blocks are indexed by uint32_t below kNil.
inline constexpr uint32_t kMaxTransactionsLimit = 0xfffe;

// Quotas for unprivileged domains: the C xenstored defaults where it has them.
inline constexpr uint32_t kQuotaNodes = 1000;      // nodes a domain owns (Xen's entry quota)
inline constexpr uint32_t kQuotaWatches = 128;
inline constexpr uint32_t kQuotaOutstanding = 20;  // requests in flight (the ring layer's; no pool)
inline constexpr uint32_t kQuotaTransactions = 10;
inline constexpr uint32_t kQuotaValueSize = 2048;
inline constexpr uint32_t kQuotaPermsPerNode = 5;
inline constexpr uint32_t kQuotaTxRecords = 512;   // records one transaction may hold
inline constexpr uint32_t kQuotaPendingEvents = 256;  // beyond this, new events for a domain are dropped
// Bytes of the byte pool one domain may hold, as stored (every string rounded
// up to whole blocks): 4,096 blocks, 240 KiB. A domain filling its 1,000
// nodes with 2,048-byte values reaches this first, and stops at an eighth of
// the pool.
inline constexpr uint32_t kQuotaBytes = 4096 * kBlobBlockBytes;
// Records: its nodes and what its open transactions hold on top.
inline constexpr Amounts kQuota = {{kQuotaNodes + kQuotaTxRecords, kQuotaBytes / kBlobBlockBytes, kQuotaWatches,
                                    kQuotaPendingEvents, kQuotaTransactions}};

// The full reserve of every unprivileged domain, measured on the demo
// (tests/system/manifests/demo.textproto; docs/system.md gives the figures)
// with room to spare: the busiest domain there, ping (a ring, a vif and a
// vbd, what the builder wrote and what its front-ends wrote), peaks at 34
// records and 59 blocks, the console at 8 watches (two special ones and one
// per domain it serves), and nobody has more than one transaction open.
// Events are taken as fast as they come there; 16 cover a burst.
inline constexpr Amounts kReserve = {{48, 128, 16, 16, 2}};
// The privileged domain's (the builder): what it writes and keeps for itself
// for every domain it can build (the demo: 43 records and 75 blocks for 7
// domains, about 6 and 11 each; a restart adds moat/boot-tsc), and a little
// for its own watches and transactions.
inline constexpr uint32_t kPrivRecordsPerDomain = 10;
inline constexpr uint32_t kPrivBlocksPerDomain = 20;
inline constexpr Amounts kPrivReserve = {{16 + kDomainSlots * kPrivRecordsPerDomain,
                                          64 + kDomainSlots * kPrivBlocksPerDomain, 32, 64, 4}};

// The least reserve a sizing gives a domain (Engine::sizing_for scales the
// reserve down from kReserve towards this as domains outgrow the memory):
// enough for a small guest's home, the nodes the builder hands it, a
// couple of watches and one transaction.
inline constexpr Amounts kMinReserve = {{12, 24, 4, 4, 1}};

// What an engine's pools hold and how they are divided.
struct Sizing {
    uint32_t domains;      // accounting records for unprivileged domains, one reserve each
    Amounts pool;          // each pool's size
    Amounts reserve;       // every unprivileged domain's reserve
    Amounts priv_reserve;  // the privileged domain's

    // The shared remainder of each pool.
    constexpr uint32_t shared_of(Res r) const { return pool[r] - priv_reserve[r] - domains * reserve[r]; }
    // The reserves fit the pools, and what is left lets any one domain
    // reach its quota while everybody else stays within their reserves.
    constexpr bool adds_up() const {
        if (domains == 0 || domains > kDomainSlotsMax || pool[Res::transactions] > kMaxTransactionsLimit)
            return false;
        for (size_t i = 0; i < kResCount; ++i) {
            Res r = static_cast<Res>(i);
            if (priv_reserve[r] + uint64_t(domains) * reserve[r] > pool[r]) return false;
            if (reserve[r] > kQuota[r] || shared_of(r) < kQuota[r] - reserve[r]) return false;
        }
        return true;
    }
};

inline constexpr Sizing kStandard = {static_cast<uint32_t>(kDomainSlots), kPool, kReserve, kPrivReserve};
static_assert(kStandard.adds_up(), "reserves must fit the pools, leaving one quota's worth shared");
static_assert(kDomainSlotsMax < 0xffff, "domain records are indexed in 16 bits");
static_assert(kQuota[Res::records] >= kQuotaNodes, "a domain's nodes are records");
static_assert(kQuotaBytes / kBlobBlockBytes * kBlobBlockBytes == kQuotaBytes, "whole blocks");
static_assert(kMaxTransactions <= kMaxTransactionsLimit, "a transaction's layer is a uint16_t above 0");

// Wire limits.
inline constexpr size_t kPayloadMax = abi::kXenstorePayloadMax;
inline constexpr size_t kAbsPathMax = abi::kXenstoreAbsPathMax;
inline constexpr size_t kRelPathMax = abi::kXenstoreRelPathMax;
inline constexpr size_t kPathBuf = kAbsPathMax + 1;

}  // namespace xs
