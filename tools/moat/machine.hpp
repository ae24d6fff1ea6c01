// The machine's devices (manifest `machine { nic {...} disk {...} }`) as QEMU
// options, shared by `moat run` and moat-systest so both run the same
// machine. Checked by `moat check` (manifest_check.cpp) first. Which machine
// (PC, or q35 with the IOMMU) is qemu::BootSpec::iommu, set from iommu().
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "manifest.pb.h"

namespace moat::machine {

struct Options {
  // Picks the host port of every UDP forward instead of the manifest's
  // (the system tests: a free one each, so that tests run side by side);
  // null: as the manifest says.
  int (*pick_host_port)() = nullptr;
  // Recreate every disk image before the run, every byte this value
  // (the system tests); -1: keep existing images, create missing ones zeroed.
  int fresh_disk_fill = -1;
  // Overrides the manifest's `machine { iommu }` (`moat run --iommu on|off`,
  // the system tests' variants of one manifest on both machines); unset: as
  // the manifest says.
  std::optional<bool> iommu;
};

// Whether the machine is q35 with Intel's IOMMU: opts.iommu if set, else the
// manifest's machine.iommu.
[[nodiscard]] bool iommu(const moat::Machine& machine, const Options& opts);

// The QEMU arguments for the machine's NICs and disks, creating disk images
// that do not exist (relative paths against `base_dir`). With the IOMMU
// (iommu() above) each virtio function is modern-only with iommu_platform=on,
// so that its DMA goes through the IOMMU. The host port the first NIC's first
// UDP forward uses goes to *first_udp_port (0: none) if given. On failure
// returns false with the reason in *error.
[[nodiscard]] bool qemu_args(const moat::Machine& machine, const std::filesystem::path& base_dir, const Options& opts,
               std::vector<std::string>* args, std::string* error, int* first_udp_port = nullptr);

// A disk's image path, resolved as qemu_args resolves it.
std::filesystem::path disk_image(const moat::Disk& disk, const std::filesystem::path& base_dir);

// "HOSTPORT:GUESTIP:GUESTPORT" -> its parts; false if malformed (ports
// 1-65535, a dotted-quad IPv4 address).
bool parse_udp_forward(const std::string& rule, int* host_port, std::string* guest_ip, int* guest_port);

}  // namespace moat::machine
