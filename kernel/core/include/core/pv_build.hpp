#pragma once
// Builds a Xen x86-64 PV domain from an ELF image in machine memory, as Xen's
// domain builder does: frames, P2M, the image, start_info, shared_info, the
// hypercall page, bootstrap page tables and stack, and a vCPU ready to enter
// the image at its entry point in ring 3 with %rsi = start_info.

#include <cstddef>
#include <cstdint>

#include <base/result.hpp>
#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/pv_layout.hpp>
#include <elf/elf.hpp>

namespace core {

struct BuildSpec {
    const char* name;
    const uint8_t* image;
    size_t image_size;
    const char* cmdline;     // to start_info.cmd_line (truncated to fit)
    uint64_t nr_pages;
    uint32_t weight = 256;   // scheduler share
    uint32_t cspace_slots = caps::kDefaultSlots;
};

enum class BuildStage : uint8_t { elf, layout, features, no_domain_slot, out_of_memory, too_large, page_tables };

struct BuildError {
    BuildStage stage;
    elf::Error elf;           // when stage == elf
    LayoutError layout;       // when stage == layout
    uint32_t features;        // when stage == features: required bits we lack
};

// Fills `buf` with a one-line explanation of `e`.
void describe(const BuildError& e, char* buf, size_t cap);

// XENFEAT bits a guest may not require (its FEATURES note): what Xen's
// toolstack refuses, auto_translated_physmap (pvboot).
constexpr uint32_t kRefusedFeatures = pvboot::kRefusedRequiredFeatures;

// The largest domain the builder handles (its P2M bookkeeping is static).
constexpr uint64_t kMaxDomainPages = 1ull << 20;   // 4 GiB

[[nodiscard]] base::Result<Domain*, BuildError> build_pv_domain(const BuildSpec& spec);

}  // namespace core
