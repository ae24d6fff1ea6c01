#pragma once
// The start-of-day page a PV guest finds at %rsi on its first instruction
// (and again, partly refreshed, after resume).

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

// Magic a 64-bit PV guest checks before trusting the page.
inline constexpr char kStartInfoMagic[] = "xen-3.0-x86_64";
inline constexpr std::size_t kStartInfoMagicLen = 32;
inline constexpr std::size_t kMaxGuestCmdline = 1024;

// StartInfo::flags
inline constexpr uint32_t kSifPrivileged = 1u << 0;     // may use privileged ops
inline constexpr uint32_t kSifInitdomain = 1u << 1;     // the initial control domain
inline constexpr uint32_t kSifMultibootMod = 1u << 2;   // module is a multiboot package
inline constexpr uint32_t kSifModStartPfn = 1u << 3;    // mod_start is a PFN, not a VA
inline constexpr uint32_t kSifVirtP2m4Tools = 1u << 4;  // tools understand the linear P2M
inline constexpr uint32_t kSifPmMask = 0xFFu << 8;      // reserved for power management

struct StartInfo {
  // Filled on boot and on resume.
  char magic[kStartInfoMagicLen];  // "xen-<version>-<platform>", NUL padded
  XenUlong nr_pages;               // pages allocated to the domain
  XenUlong shared_info;            // machine address of the SharedInfo page
  uint32_t flags;                  // kSif*
  XenPfn store_mfn;                // xenstore ring frame
  uint32_t store_evtchn;           // xenstore event channel
  union {
    struct {
      XenPfn mfn;       // console ring frame
      uint32_t evtchn;  // console event channel
    } domU;
    struct {
      uint32_t info_off;   // offset of the VGA console info in this page
      uint32_t info_size;
    } dom0;
  } console;
  // Filled on boot only.
  XenUlong pt_base;       // virtual address of the bootstrap L4
  XenUlong nr_pt_frames;  // bootstrap page-table frames
  XenUlong mfn_list;      // virtual address of the P2M array
  XenUlong mod_start;     // initrd: virtual address (PFN with kSifModStartPfn)
  XenUlong mod_len;       // initrd size in bytes
  int8_t cmd_line[kMaxGuestCmdline];
  // Frames holding both the bootstrap page tables and the P2M.
  XenUlong first_p2m_pfn;
  XenUlong nr_p2m_frames;
};
static_assert(sizeof(StartInfo) == 1168);
static_assert(offsetof(StartInfo, magic) == 0);
static_assert(offsetof(StartInfo, nr_pages) == 32);
static_assert(offsetof(StartInfo, shared_info) == 40);
static_assert(offsetof(StartInfo, flags) == 48);
static_assert(offsetof(StartInfo, store_mfn) == 56);
static_assert(offsetof(StartInfo, store_evtchn) == 64);
static_assert(offsetof(StartInfo, console) == 72);
static_assert(offsetof(StartInfo, console.domU.mfn) == 72);
static_assert(offsetof(StartInfo, console.domU.evtchn) == 80);
static_assert(offsetof(StartInfo, console.dom0.info_off) == 72);
static_assert(offsetof(StartInfo, console.dom0.info_size) == 76);
static_assert(offsetof(StartInfo, pt_base) == 88);
static_assert(offsetof(StartInfo, nr_pt_frames) == 96);
static_assert(offsetof(StartInfo, mfn_list) == 104);
static_assert(offsetof(StartInfo, mod_start) == 112);
static_assert(offsetof(StartInfo, mod_len) == 120);
static_assert(offsetof(StartInfo, cmd_line) == 128);
static_assert(offsetof(StartInfo, first_p2m_pfn) == 1152);
static_assert(offsetof(StartInfo, nr_p2m_frames) == 1160);
static_assert(sizeof(StartInfo) <= kPageSize);

// Descriptor inside a kSifMultibootMod package; the list ends at mod_start 0.
struct MultibootModList {
  uint32_t mod_start;  // offset of the first byte, from the package start
  uint32_t mod_end;    // offset of the last byte (inclusive)
  uint32_t cmdline;    // offset of a NUL-terminated command line
  uint32_t pad;
};
static_assert(sizeof(MultibootModList) == 16);
static_assert(offsetof(MultibootModList, cmdline) == 8);

}  // namespace abi
