#pragma once
// Sizes of the engine's fixed pools and the per-domain quotas. Every pool can
// run out; the operation that finds it empty fails with ENOMEM/ENOSPC and
// changes nothing. The pools are shared by all domains: isolation between
// domains comes from the quotas, so the pools must cover (domains x quota)
// for the deployment.

#include <abi/types.hpp>
#include <abi/xs_wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

using abi::DomId;

inline constexpr DomId kNoDom = 0xffff;
// Xen's DOMID_FIRST_RESERVED: larger ids are never real domains.
inline constexpr uint32_t kDomIdLimit = 0x7ff0;

// Pools.
inline constexpr size_t kMaxNodes = 4096;         // store nodes, incl. transaction records
inline constexpr size_t kBlobBlockBytes = 60;     // payload bytes per byte-pool block
inline constexpr size_t kBlobBlocks = 32768;      // path/value/token/event bytes: ~2 MiB
inline constexpr size_t kMaxWatches = 1024;
inline constexpr size_t kMaxTransactions = 128;
inline constexpr size_t kMaxDomains = 160;        // accounting records (introduced or owning nodes)
inline constexpr size_t kMaxEvents = 2048;        // queued watch events, all domains
inline constexpr size_t kMaxPermEntries = 16;     // ACL entries a node can hold (owner included)

// Quotas for unprivileged domains: the C xenstored defaults.
inline constexpr uint32_t kQuotaNodes = 1000;
inline constexpr uint32_t kQuotaWatches = 128;
inline constexpr uint32_t kQuotaOutstanding = 20;
inline constexpr uint32_t kQuotaTransactions = 10;
inline constexpr uint32_t kQuotaValueSize = 2048;
inline constexpr uint32_t kQuotaPermsPerNode = 5;
inline constexpr uint32_t kQuotaTxRecords = 512;   // nodes one transaction may touch
inline constexpr uint32_t kQuotaPendingEvents = 256;  // beyond this, new events for a domain are dropped

// Wire limits.
inline constexpr size_t kPayloadMax = abi::kXenstorePayloadMax;
inline constexpr size_t kAbsPathMax = abi::kXenstoreAbsPathMax;
inline constexpr size_t kRelPathMax = abi::kXenstoreRelPathMax;
inline constexpr size_t kPathBuf = kAbsPathMax + 1;

}  // namespace xs
