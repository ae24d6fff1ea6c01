// The machine's devices (manifest `machine { nic {...} disk {...} }`) as QEMU
// options, shared by `moat run` and moat-systest so both run the same
// machine. Checked by `moat check` (manifest_check.cpp) first.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "manifest.pb.h"

namespace moat::machine {

struct Options {
  // Replace the host port of the first UDP forward of the first NIC (the
  // system tests pick a free one); 0: as the manifest says.
  int udp_host_port = 0;
  // Recreate every disk image before the run, every byte this value
  // (the system tests); -1: keep existing images, create missing ones zeroed.
  int fresh_disk_fill = -1;
};

// The QEMU arguments for the machine's NICs and disks, creating disk images
// that do not exist (relative paths against `base_dir`). On failure returns
// false with the reason in *error.
bool qemu_args(const moat::Machine& machine, const std::filesystem::path& base_dir, const Options& opts,
               std::vector<std::string>* args, std::string* error);

// A disk's image path, resolved as qemu_args resolves it.
std::filesystem::path disk_image(const moat::Disk& disk, const std::filesystem::path& base_dir);

// "HOSTPORT:GUESTIP:GUESTPORT" -> its parts; false if malformed (ports
// 1-65535, a dotted-quad IPv4 address).
bool parse_udp_forward(const std::string& rule, int* host_port, std::string* guest_ip, int* guest_port);

}  // namespace moat::machine
