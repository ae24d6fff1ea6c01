// The machine's devices as QEMU options (tools/moat/machine.cpp): what
// `moat run` and moat-systest add for a manifest's NICs and disks.
#include "machine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace {

TEST(UdpForward, ParsesWellFormedRules) {
  int host = 0, guest = 0;
  std::string ip;
  ASSERT_TRUE(moat::machine::parse_udp_forward("5555:10.0.2.15:7", &host, &ip, &guest));
  EXPECT_EQ(host, 5555);
  EXPECT_EQ(ip, "10.0.2.15");
  EXPECT_EQ(guest, 7);
}

TEST(UdpForward, RefusesMalformedRules) {
  int host = 0, guest = 0;
  std::string ip;
  for (const char* bad : {"", "5555", "5555:10.0.2.15", "0:10.0.2.15:7", "70000:10.0.2.15:7", "5555:10.0.2:7",
                          "5555:10.0.2.256:7", "5555:10.0.2.15:0", "5555:10.0.2.015:7", "x:10.0.2.15:7", "5555:10..2.15:7", "5555:a.b.c.d:7"})
    EXPECT_FALSE(moat::machine::parse_udp_forward(bad, &host, &ip, &guest)) << bad;
}

TEST(MachineArgs, NicsAndDisksBecomeQemuDevices) {
  auto dir = std::filesystem::temp_directory_path() / ("moat-machine-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  moat::Machine m;
  auto* nic = m.add_nics();
  nic->set_pci("00:04.0");
  nic->add_udp_forward("5555:10.0.2.15:7");
  auto* disk = m.add_disks();
  disk->set_pci("00:05.0");
  disk->set_image("d,1.img");
  disk->set_size_mib(1);
  moat::machine::Options opts;
  opts.pick_host_port = [] { return 40000; };
  opts.fresh_disk_fill = 0xEE;
  std::vector<std::string> args;
  std::string error;
  int first = 0;
  ASSERT_TRUE(moat::machine::qemu_args(m, dir, opts, &args, &error, &first)) << error;
  EXPECT_EQ(first, 40000);
  ASSERT_EQ(args.size(), 8u);
  EXPECT_EQ(args[1], "user,id=net0,hostfwd=udp:127.0.0.1:40000-10.0.2.15:7") << "the test's port replaces 5555";
  EXPECT_EQ(args[3], "virtio-net-pci,netdev=net0,addr=04.0");
  EXPECT_EQ(args[5], "file=" + (dir / "d,,1.img").string() + ",format=raw,if=none,id=disk0,cache=writeback,discard=unmap")
      << "commas doubled";
  EXPECT_EQ(args[7], "virtio-blk-pci,drive=disk0,addr=05.0");
  // The image exists, 1 MiB of the fill byte.
  std::ifstream img(dir / "d,1.img", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(img)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), 1u << 20);
  EXPECT_EQ(bytes.find_first_not_of(char(0xEE)), std::string::npos);
  // Without fresh_disk_fill an existing image is kept as it is.
  {
    std::fstream f(dir / "d,1.img", std::ios::binary | std::ios::in | std::ios::out);
    f.write("kept", 4);
  }
  args.clear();
  ASSERT_TRUE(moat::machine::qemu_args(m, dir, {}, &args, &error)) << error;
  EXPECT_EQ(args[1], "user,id=net0,hostfwd=udp:127.0.0.1:5555-10.0.2.15:7");
  std::ifstream again(dir / "d,1.img", std::ios::binary);
  char head[4];
  again.read(head, 4);
  EXPECT_EQ(std::string(head, 4), "kept");
  std::filesystem::remove_all(dir);
}

// The same devices on the machine with the IOMMU: modern-only virtio with
// iommu_platform=on (without it QEMU's virtio DMA bypasses the IOMMU; QEMU
// refuses it on a transitional device). The manifest's machine.iommu decides
// unless Options::iommu overrides it, either way.
TEST(MachineArgs, VirtioGoesThroughTheIommuOnlyOnTheIommuMachine) {
  auto dir = std::filesystem::temp_directory_path() / ("moat-machine-iommu-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  moat::Machine m;
  m.add_nics()->set_pci("00:04.0");
  auto* disk = m.add_disks();
  disk->set_pci("00:05.0");
  disk->set_image("d.img");
  disk->set_size_mib(1);
  auto devices = [&](const moat::machine::Options& opts) {
    std::vector<std::string> args;
    std::string error;
    EXPECT_TRUE(moat::machine::qemu_args(m, dir, opts, &args, &error)) << error;
    std::vector<std::string> out;
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "-device") out.push_back(args[i + 1]);
    return out;
  };
  const std::vector<std::string> pc = {"virtio-net-pci,netdev=net0,addr=04.0", "virtio-blk-pci,drive=disk0,addr=05.0"};
  const std::vector<std::string> q35 = {
      "virtio-net-pci,netdev=net0,addr=04.0,disable-legacy=on,iommu_platform=on",
      "virtio-blk-pci,drive=disk0,addr=05.0,disable-legacy=on,iommu_platform=on"};

  moat::machine::Options as_manifest, on, off;
  on.iommu = true;
  off.iommu = false;
  EXPECT_FALSE(moat::machine::iommu(m, as_manifest));
  EXPECT_EQ(devices(as_manifest), pc);
  EXPECT_TRUE(moat::machine::iommu(m, on));
  EXPECT_EQ(devices(on), q35);

  m.set_iommu(true);
  EXPECT_TRUE(moat::machine::iommu(m, as_manifest));
  EXPECT_EQ(devices(as_manifest), q35);
  EXPECT_FALSE(moat::machine::iommu(m, off));
  EXPECT_EQ(devices(off), pc);
  std::filesystem::remove_all(dir);
}

}  // namespace
