#include "machine.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace moat::machine {

namespace {

// "00:04.0" -> "04.0" (QEMU's addr= on bus 0: slot.function).
std::string qemu_addr(const std::string& pci) { return pci.size() == 7 ? pci.substr(3) : pci; }

bool make_image(const std::filesystem::path& path, uint64_t bytes, int fill, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    *error = "cannot create disk image " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  bool ok = true;
  if (fill == 0) {
    ok = ::ftruncate(fd, off_t(bytes)) == 0;
  } else {
    std::vector<char> chunk(1 << 20, char(fill));
    for (uint64_t done = 0; ok && done < bytes; done += chunk.size()) {
      size_t n = size_t(std::min<uint64_t>(chunk.size(), bytes - done));
      ok = ::write(fd, chunk.data(), n) == ssize_t(n);
    }
  }
  if (!ok) *error = "cannot write disk image " + path.string() + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

// What each virtio function gets on the machine with the IOMMU. QEMU's virtio
// bypasses the IOMMU (its DMA goes straight to guest memory) unless the device
// is iommu_platform=on, which offers VIRTIO_F_ACCESS_PLATFORM (rt's virtio
// driver accepts it); QEMU refuses that on a transitional device, which q35's
// root bus would make, so the legacy interface (unused: the driver is
// virtio 1.x) goes.
constexpr const char* kIommuVirtio = ",disable-legacy=on,iommu_platform=on";

}  // namespace

bool iommu(const moat::Machine& machine, const Options& opts) { return opts.iommu.value_or(machine.iommu()); }

std::filesystem::path disk_image(const moat::Disk& disk, const std::filesystem::path& base_dir) {
  std::filesystem::path p(disk.image());
  return (p.is_absolute() ? p : base_dir / p).lexically_normal();
}

bool parse_udp_forward(const std::string& rule, int* host_port, std::string* guest_ip, int* guest_port) {
  auto port = [](const std::string& s, int* out) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoi(s);
    return *out >= 1 && *out <= 65535;
  };
  size_t a = rule.find(':'), b = rule.rfind(':');
  if (a == std::string::npos || a == b) return false;
  std::string ip = rule.substr(a + 1, b - a - 1);
  int dots = 0, parts_ok = 1;
  size_t start = 0;
  for (size_t i = 0; i <= ip.size(); ++i) {
    if (i == ip.size() || ip[i] == '.') {
      std::string part = ip.substr(start, i - start);
      // No leading zeros: some readers take "010" as octal.
      parts_ok &= !part.empty() && part.size() <= 3 && part.find_first_not_of("0123456789") == std::string::npos &&
                  std::stoi(part) <= 255 && (part.size() == 1 || part[0] != '0');
      dots += i < ip.size();
      start = i + 1;
    }
  }
  if (dots != 3 || !parts_ok) return false;
  *guest_ip = ip;
  return port(rule.substr(0, a), host_port) && port(rule.substr(b + 1), guest_port);
}

bool qemu_args(const moat::Machine& machine, const std::filesystem::path& base_dir, const Options& opts,
               std::vector<std::string>* args, std::string* error, int* first_udp_port) {
  if (first_udp_port) *first_udp_port = 0;
  const std::string virtio_extra = iommu(machine, opts) ? kIommuVirtio : "";
  for (int i = 0; i < machine.nics_size(); ++i) {
    const moat::Nic& nic = machine.nics(i);
    std::string id = "net" + std::to_string(i);
    std::string netdev = "user,id=" + id;
    for (int k = 0; k < nic.udp_forward_size(); ++k) {
      int host = 0, guest = 0;
      std::string ip;
      if (!parse_udp_forward(nic.udp_forward(k), &host, &ip, &guest)) {
        *error = "malformed udp_forward \"" + nic.udp_forward(k) + "\"";
        return false;
      }
      if (opts.pick_host_port) host = opts.pick_host_port();
      if (host <= 0) {
        *error = "no free host port for udp_forward \"" + nic.udp_forward(k) + "\"";
        return false;
      }
      if (i == 0 && k == 0 && first_udp_port) *first_udp_port = host;
      netdev += ",hostfwd=udp:127.0.0.1:" + std::to_string(host) + "-" + ip + ":" + std::to_string(guest);
    }
    args->insert(args->end(), {"-netdev", netdev, "-device", "virtio-net-pci,netdev=" + id + ",addr=" + qemu_addr(nic.pci()) + virtio_extra});
  }
  for (int i = 0; i < machine.disks_size(); ++i) {
    const moat::Disk& disk = machine.disks(i);
    auto path = disk_image(disk, base_dir);
    uint64_t bytes = uint64_t(disk.size_mib() ? disk.size_mib() : 64) << 20;
    std::error_code ec;
    if (opts.fresh_disk_fill >= 0 || !std::filesystem::exists(path, ec)) {
      if (!make_image(path, bytes, opts.fresh_disk_fill < 0 ? 0 : opts.fresh_disk_fill, error)) return false;
    }
    std::string id = "disk" + std::to_string(i);
    // Commas in a path would split QEMU's option: doubled, as QEMU wants.
    std::string file;
    for (char ch : path.string()) file += ch == ',' ? std::string(",,") : std::string(1, ch);
    args->insert(args->end(), {"-drive", "file=" + file + ",format=raw,if=none,id=" + id + ",cache=writeback,discard=unmap",
                               "-device", "virtio-blk-pci,drive=" + id + ",addr=" + qemu_addr(disk.pci()) + virtio_extra});
  }
  return true;
}

}  // namespace moat::machine
