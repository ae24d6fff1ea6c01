#pragma once
// ELF notes a PV kernel image carries (owner "Xen", PT_NOTE / .note.Xen) so
// the domain builder knows how to load and enter it, and the feature bits
// reported by xen_version(get_features) and named in the FEATURES note.

#include <cstddef>
#include <cstdint>

namespace abi {

// Note owner name (n_namesz == 4 including the NUL).
inline constexpr char kXenElfNoteName[] = "Xen";
inline constexpr std::size_t kXenElfNoteNameSize = sizeof(kXenElfNoteName);

enum class XenElfNote : uint32_t {
  info = 0,                 // legacy: unused
  entry = 1,                // virtual entry point (address-sized value)
  hypercall_page = 2,       // virtual address the hypercall page goes to
  virt_base = 3,            // virtual address the image is linked at
  paddr_offset = 4,         // VIRT_BASE minus the physical load base
  xen_version = 5,          // string: required hypervisor version ("xen-3.0")
  guest_os = 6,             // string: "linux", "NetBSD", ...
  guest_version = 7,        // string
  loader = 8,               // string: "generic"
  pae_mode = 9,             // string: "yes", "no", "bimodal"
  features = 10,            // string: '|'-separated XenFeature names, '!' = required
  bsd_symtab = 11,          // string: "yes" to get the symbol table loaded
  hv_start_low = 12,        // 32-bit guests: lowest hypervisor address
  l1_mfn_valid = 13,        // mask/value pairs for L1 entries holding MFNs
  suspend_cancel = 14,      // guest copes with a cancelled suspend
  init_p2m = 15,            // virtual address to map the initial P2M at
  mod_start_pfn = 16,       // guest accepts mod_start as a PFN
  supported_features = 17,  // 32-bit words of XenFeature bits (bitmap)
  phys32_entry = 18,        // PVH 32-bit physical entry point
  phys32_reloc = 19,        // PVH relocation: alignment, min, max (newer Xen)
};
inline constexpr uint32_t kXenElfNoteMax = 19;

// Notes a crashed or dumped hypervisor writes (not loader input).
inline constexpr uint32_t kXenElfNoteCrashInfo = 0x1000001;
inline constexpr uint32_t kXenElfNoteCrashRegs = 0x1000002;
inline constexpr uint32_t kXenElfNoteDumpcoreNone = 0x2000000;
inline constexpr uint32_t kXenElfNoteDumpcoreHeader = 0x2000001;
inline constexpr uint32_t kXenElfNoteDumpcoreXenVersion = 0x2000002;
inline constexpr uint32_t kXenElfNoteDumpcoreFormatVersion = 0x2000003;

// Bit numbers in the feature bitmap (word = bit / 32).
enum class XenFeature : uint32_t {
  writable_page_tables = 0,        // guest may write its page tables directly
  writable_descriptor_tables = 1,  // ... and its GDT/LDT
  auto_translated_physmap = 2,     // hypervisor does P2M translation (not PV)
  supervisor_mode_kernel = 3,      // kernel runs in ring 0 (32-bit only)
  pae_pgdir_above_4gb = 4,         // PAE L3 may live above 4 GiB
  mmu_pt_update_preserve_ad = 5,   // kMmuPtUpdatePreserveAd is available
  highmem_assist = 6,
  gnttab_map_avail_bits = 7,       // GNTMAP guest-available bits honoured
  hvm_callback_vector = 8,
  hvm_safe_pvclock = 9,
  hvm_pirqs = 10,
  dom0 = 11,                       // domain may act as dom0
  grant_map_identity = 12,         // retired
  memory_op_vnode_supported = 13,
  arm_smccc_supported = 14,
  linux_rsdp_unrestricted = 15,
  not_direct_mapped = 16,
  direct_mapped = 17,
  runstate_phys_area = 18,         // VcpuOp::register_runstate_phys_area usable
  vcpu_time_phys_area = 19,        // VcpuOp::register_vcpu_time_phys_area usable
  dm_msix_all_writes = 20,         // newer Xen
};
// Words of feature bitmap Xen defines (XenFeatureInfo::submap_idx < this).
inline constexpr uint32_t kXenFeatureNrSubmaps = 1;

constexpr uint32_t xen_feature_bit(XenFeature f) { return 1u << (static_cast<uint32_t>(f) % 32); }
constexpr uint32_t xen_feature_submap(XenFeature f) { return static_cast<uint32_t>(f) / 32; }

}  // namespace abi
