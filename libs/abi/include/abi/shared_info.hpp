#pragma once
// The shared-info page: per-vCPU event and time state plus the 2-level
// event-channel bitmaps and wall-clock base, written by the hypervisor and
// read (and partly written) by the guest without hypercalls.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>
#include <abi/x86_64.hpp>

namespace abi {

// vCPUs whose VcpuInfo lives in the shared page; more need
// VcpuOp::register_vcpu_info.
inline constexpr std::size_t kLegacyMaxVcpus = 32;

// Scaled-TSC clock parameters (the pvclock layout). Readers retry while
// version is odd or changed across the read.
//   ns = system_time + (((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32
// (a negative tsc_shift shifts right).
struct VcpuTimeInfo {
  uint32_t version;
  uint32_t pad0;
  uint64_t tsc_timestamp;
  uint64_t system_time;  // ns since domain boot at tsc_timestamp
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;  // kPvclock*; was padding before interface 0x00040600
  uint8_t pad1[2];
};
static_assert(sizeof(VcpuTimeInfo) == 32);
static_assert(offsetof(VcpuTimeInfo, version) == 0);
static_assert(offsetof(VcpuTimeInfo, tsc_timestamp) == 8);
static_assert(offsetof(VcpuTimeInfo, system_time) == 16);
static_assert(offsetof(VcpuTimeInfo, tsc_to_system_mul) == 24);
static_assert(offsetof(VcpuTimeInfo, tsc_shift) == 28);
static_assert(offsetof(VcpuTimeInfo, flags) == 29);

inline constexpr uint8_t kPvclockTscStable = 1u << 0;
inline constexpr uint8_t kPvclockGuestStopped = 1u << 1;

struct VcpuInfo {
  // Set by the hypervisor when an event is pending; the guest clears it
  // before scanning so no event is lost.
  uint8_t evtchn_upcall_pending;
  // Non-zero: no upcall is delivered (the PV "interrupts disabled" flag).
  uint8_t evtchn_upcall_mask;
  // One bit per word of SharedInfo::evtchn_pending with something pending.
  XenUlong evtchn_pending_sel;
  ArchVcpuInfo arch;
  VcpuTimeInfo time;
};
static_assert(sizeof(VcpuInfo) == 64);
static_assert(offsetof(VcpuInfo, evtchn_upcall_pending) == 0);
static_assert(offsetof(VcpuInfo, evtchn_upcall_mask) == 1);
static_assert(offsetof(VcpuInfo, evtchn_pending_sel) == 8);
static_assert(offsetof(VcpuInfo, arch) == 16);
static_assert(offsetof(VcpuInfo, time) == 32);

// 2-level event channels: one bit per port in 64 words of 64 bits.
inline constexpr std::size_t kEvtchnWords = sizeof(XenUlong) * 8;
inline constexpr std::size_t kEvtchn2lNrChannels = kEvtchnWords * sizeof(XenUlong) * 8;
static_assert(kEvtchn2lNrChannels == 4096);

struct SharedInfo {
  VcpuInfo vcpu_info[kLegacyMaxVcpus];
  XenUlong evtchn_pending[kEvtchnWords];  // set by hypervisor, cleared by guest
  XenUlong evtchn_mask[kEvtchnWords];     // owned by the guest
  // Wall-clock time at system time 0; same version protocol as VcpuTimeInfo.
  uint32_t wc_version;
  uint32_t wc_sec;
  uint32_t wc_nsec;
  uint32_t wc_sec_hi;  // upper 32 bits of seconds
  ArchSharedInfo arch;
};
static_assert(sizeof(SharedInfo) == 3136);
static_assert(offsetof(SharedInfo, vcpu_info) == 0);
static_assert(offsetof(SharedInfo, evtchn_pending) == 2048);
static_assert(offsetof(SharedInfo, evtchn_mask) == 2560);
static_assert(offsetof(SharedInfo, wc_version) == 3072);
static_assert(offsetof(SharedInfo, wc_sec) == 3076);
static_assert(offsetof(SharedInfo, wc_nsec) == 3080);
static_assert(offsetof(SharedInfo, wc_sec_hi) == 3084);
static_assert(offsetof(SharedInfo, arch) == 3088);
static_assert(sizeof(SharedInfo) <= kPageSize);

}  // namespace abi
