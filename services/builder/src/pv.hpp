#pragma once
// Building a Xen x86-64 PV domain from ring 3, as Xen's domain builder
// (libxenguest) does: the domain is created paused with domctl; its memory is
// populated with memory_op on its behalf; it is laid out as Xen lays it out
// (libs/pvboot); the image and ramdisk are streamed from their boot modules
// (domctl module_read) straight into its frames, and the P2M list,
// start_info, hypercall page and bootstrap page tables written, through
// foreign mappings (mmu_update naming the domain, allowed by our Domain
// capability with build); its L4 is pinned on its behalf, which validates
// every entry; and its vCPU gets its first context. Nothing here is trusted
// by the kernel: every step goes through the same checks as any domain's
// own updates.

#include <cstddef>
#include <cstdint>

#include <abi/moat.hpp>

namespace builder {

inline constexpr uint16_t kNoDomain = 0xFFFF;

// The largest domain the builder builds: its frame list is static (2 MiB).
inline constexpr uint64_t kMaxPages = 256 * 1024;   // 1 GiB

struct PvSpec {
    const char* name;
    uint32_t image_module;     // boot module holding its kernel (an ELF image), unless `image` is set
    // Or the image in our own memory (a live create's, copied out of the
    // toolstack's frames once): image_bytes bytes at `image`.
    const uint8_t* image = nullptr;
    uint64_t image_bytes = 0;
    uint32_t ramdisk_module;   // boot module holding its ramdisk; 0: none
    const char* cmdline;
    uint64_t nr_pages;       // all of its memory, the two ring pages included
    uint32_t weight, cpu_cap;
    uint32_t cspace_slots;
    uint16_t console_backend;   // kNoDomain: no console ring
    uint16_t store_backend;     // kNoDomain: no XenStore ring
};

struct PvDomain {
    uint16_t id = kNoDomain;
    uint32_t slot_domain = 0, slot_grant = 0, slot_event = 0;   // our root capabilities for it
    uint64_t console_mfn = 0, store_mfn = 0;
    uint32_t console_port = 0, store_port = 0;   // its ports (unbound, for the back-ends)
};

// Creates the domain (paused, nothing in it yet). False with a reason in err.
bool pv_create(const PvSpec& s, PvDomain& out, char* err, size_t err_len);

// Fills a created domain: memory, image, ramdisk, rings, grants 0 and 1,
// ports, start_info, page tables, vCPU context. It stays paused. Prints the
// layout it chose (two lines, "<name>: kernel ..."). False with a reason in
// err; the caller destroys the domain.
bool pv_build(const PvSpec& s, PvDomain& d, char* err, size_t err_len);

// Copies n frames of domain `dom` (mfns, each checked by the kernel to be
// dom's: our Domain capability with build names it) into dst, n * 4096
// bytes, through read-only foreign mappings. False if any is refused.
[[nodiscard]] bool copy_foreign(uint16_t dom, const uint64_t* mfns, uint64_t n, uint8_t* dst);

// A boot module's size and file name (module_info); negative errno on failure.
long module_size(uint32_t index, char* name, size_t name_len);
// Reads module bytes [off, off+len) into buf (any length: 64 KiB per call).
long module_read(uint32_t index, uint64_t off, void* buf, uint64_t len);

// domctl helpers.
long domctl(abi::MoatDomctl& op);   // sets the version
long domctl_simple(uint32_t cmd, uint16_t dom);
struct DomInfo {
    bool ok;
    uint32_t state, shutdown_reason, mapped_grants, paused;
    uint64_t cpu_time_ns;   // CPU time it received (under -icount shift=0: its instructions)
};
DomInfo domctl_info(uint16_t dom);
// The machine's frames (domctl physinfo; needs our Untyped capability).
struct PhysInfo {
    bool ok;
    uint64_t total_frames, free_frames, held_frames;
    uint32_t domains;   // domain slots (ids) in use
    uint64_t hv_domain_bytes;   // kernel memory held for all domains' per-domain state
    bool dma_confined;          // the kernel's IOMMU is on (abi::kPhysinfoDmaConfined)
};
PhysInfo domctl_physinfo();

}  // namespace builder
