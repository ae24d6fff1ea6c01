#include <abi/abi.hpp>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace {

template <typename T>
uint64_t read_u64(const T& obj, std::size_t off) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &obj, sizeof(T));
  uint64_t v;
  std::memcpy(&v, bytes + off, sizeof(v));
  return v;
}

template <typename T>
uint32_t read_u32(const T& obj, std::size_t off) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &obj, sizeof(T));
  uint32_t v;
  std::memcpy(&v, bytes + off, sizeof(v));
  return v;
}

template <typename T>
uint16_t read_u16(const T& obj, std::size_t off) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &obj, sizeof(T));
  uint16_t v;
  std::memcpy(&v, bytes + off, sizeof(v));
  return v;
}

TEST(AbiErrno, NamesRoundTrip) {
  std::set<std::string> seen;
  for (abi::Errno e : abi::kAllErrnos) {
    const char* name = abi::errno_name(e);
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(name[0], 'E');
    EXPECT_STRNE(name, "E?");
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_LT(abi::neg(e), 0);
  }
  EXPECT_STREQ(abi::errno_name(abi::Errno::einval), "EINVAL");
  EXPECT_STREQ(abi::errno_name(abi::Errno::enosys), "ENOSYS");
  EXPECT_STREQ(abi::errno_name(static_cast<abi::Errno>(200)), "E?");
  EXPECT_EQ(abi::neg(abi::Errno::eperm), -1);
  EXPECT_EQ(abi::neg(abi::Errno::enosys), -38);
  EXPECT_EQ(abi::neg(abi::Errno::etimedout), -110);
  EXPECT_EQ(abi::kEwouldblock, abi::Errno::eagain);
  // The table is strictly ascending, so no value was duplicated or lost.
  int prev = 0;
  for (abi::Errno e : abi::kAllErrnos) {
    EXPECT_GT(static_cast<int>(e), prev);
    prev = static_cast<int>(e);
  }
}

TEST(AbiErrno, XenstoreNamesMatchErrnoValues) {
  // Where an xenstore error name is also a Xen errno, the numbers agree.
  for (const auto& xe : abi::kXsdErrors) {
    for (abi::Errno e : abi::kAllErrnos) {
      if (std::string(abi::errno_name(e)) == xe.errstring) {
        EXPECT_EQ(static_cast<int>(e), xe.errnum) << xe.errstring;
      }
    }
  }
  EXPECT_STREQ(abi::kXsdErrors[0].errstring, "EINVAL");
}

TEST(AbiHypercall, PageGeometryCoversEveryNumber) {
  EXPECT_EQ(abi::kHypercallPageSize / abi::kHypercallEntrySize, 128u);
  for (uint32_t nr = 0; nr < abi::kHypercallLimit; ++nr) {
    if (abi::hypercall_name(nr) == nullptr) continue;
    auto h = static_cast<abi::Hypercall>(nr);
    EXPECT_LE(abi::hypercall_page_offset(h) + abi::kHypercallEntrySize,
              abi::kHypercallPageSize)
        << nr;
  }
  EXPECT_EQ(abi::hypercall_page_offset(abi::Hypercall::arch_7), 55u * 32u);
  EXPECT_EQ(static_cast<uint32_t>(abi::Hypercall::hypfs_op), 42u);
  EXPECT_EQ(static_cast<uint32_t>(abi::Hypercall::cap_op), 43u);
  EXPECT_STREQ(abi::hypercall_name(29), "sched_op");
  EXPECT_EQ(abi::hypercall_name(11), nullptr);
  EXPECT_EQ(abi::hypercall_name(44), nullptr);
  EXPECT_EQ(abi::hypercall_name(56), nullptr);
}

TEST(AbiStartInfo, FieldsLandAtXenOffsets) {
  abi::StartInfo si{};
  std::memcpy(si.magic, abi::kStartInfoMagic, sizeof(abi::kStartInfoMagic));
  si.nr_pages = 0x1111;
  si.shared_info = 0x2222000;
  si.flags = abi::kSifPrivileged | abi::kSifInitdomain;
  si.store_mfn = 0x3333;
  si.store_evtchn = 7;
  si.console.domU.mfn = 0x4444;
  si.console.domU.evtchn = 9;
  si.pt_base = 0xffffffff80400000ull;
  si.nr_pt_frames = 6;
  si.mfn_list = 0xffffffff80200000ull;
  si.mod_start = 0x5555;
  si.mod_len = 0x6666;
  si.cmd_line[0] = 'x';
  si.first_p2m_pfn = 0x7777;
  si.nr_p2m_frames = 0x8888;

  unsigned char bytes[sizeof(si)];
  std::memcpy(bytes, &si, sizeof(si));
  EXPECT_EQ(std::memcmp(bytes, "xen-3.0-x86_64", 15), 0);
  EXPECT_EQ(read_u64(si, 32), 0x1111u);
  EXPECT_EQ(read_u64(si, 40), 0x2222000u);
  EXPECT_EQ(read_u32(si, 48), 3u);
  EXPECT_EQ(read_u64(si, 56), 0x3333u);
  EXPECT_EQ(read_u32(si, 64), 7u);
  EXPECT_EQ(read_u64(si, 72), 0x4444u);
  EXPECT_EQ(read_u32(si, 80), 9u);
  EXPECT_EQ(read_u64(si, 88), 0xffffffff80400000ull);
  EXPECT_EQ(read_u64(si, 96), 6u);
  EXPECT_EQ(read_u64(si, 104), 0xffffffff80200000ull);
  EXPECT_EQ(read_u64(si, 112), 0x5555u);
  EXPECT_EQ(read_u64(si, 120), 0x6666u);
  EXPECT_EQ(bytes[128], 'x');
  EXPECT_EQ(read_u64(si, 1152), 0x7777u);
  EXPECT_EQ(read_u64(si, 1160), 0x8888u);
  // dom0 view of the console union overlays the domU one.
  EXPECT_EQ(si.console.dom0.info_off, 0x4444u);
}

TEST(AbiSharedInfo, VcpuAndEventFieldsLandAtXenOffsets) {
  static abi::SharedInfo sh{};
  sh.vcpu_info[1].evtchn_upcall_pending = 1;
  sh.vcpu_info[1].evtchn_upcall_mask = 1;
  sh.vcpu_info[1].evtchn_pending_sel = 0x8000000000000001ull;
  sh.vcpu_info[1].arch.cr2 = 0xdead000;
  sh.vcpu_info[1].time.version = 2;
  sh.vcpu_info[1].time.system_time = 123456789;
  sh.evtchn_pending[3] = 0xf0;
  sh.evtchn_mask[63] = ~0ull;
  sh.wc_sec = 1700000000;
  sh.wc_sec_hi = 1;
  sh.arch.max_pfn = 0x40000;
  sh.arch.p2m_generation = 5;

  unsigned char bytes[sizeof(sh)];
  std::memcpy(bytes, &sh, sizeof(sh));
  EXPECT_EQ(bytes[64 + 0], 1);
  EXPECT_EQ(bytes[64 + 1], 1);
  EXPECT_EQ(read_u64(sh, 64 + 8), 0x8000000000000001ull);
  EXPECT_EQ(read_u64(sh, 64 + 16), 0xdead000u);
  EXPECT_EQ(read_u32(sh, 64 + 32), 2u);
  EXPECT_EQ(read_u64(sh, 64 + 32 + 16), 123456789u);
  EXPECT_EQ(read_u64(sh, 2048 + 3 * 8), 0xf0u);
  EXPECT_EQ(read_u64(sh, 2560 + 63 * 8), ~0ull);
  EXPECT_EQ(read_u32(sh, 3076), 1700000000u);
  EXPECT_EQ(read_u32(sh, 3084), 1u);
  EXPECT_EQ(read_u64(sh, 3088), 0x40000u);
  EXPECT_EQ(read_u64(sh, 3088 + 40), 5u);
}

TEST(AbiX86, TrapInfoAndBounceHelpers) {
  abi::TrapInfo t{};
  t.vector = 14;
  t.flags = abi::trap_info_flags(3, true);
  t.cs = abi::kFlatKernelCs;
  t.address = 0xffffffff81000000ull;
  EXPECT_EQ(abi::trap_info_dpl(t), 3u);
  EXPECT_TRUE(abi::trap_info_masks_events(t));
  EXPECT_EQ(read_u16(t, 0), 14u | (7u << 8));
  EXPECT_EQ(read_u16(t, 2), 0xe033u);
  EXPECT_EQ(read_u64(t, 8), 0xffffffff81000000ull);

  EXPECT_EQ(abi::bounce_cs(0xe033, 1), 0x10000e033ull);
  EXPECT_EQ(abi::bounce_rflags(0x202, 1), 0x002u);
  EXPECT_EQ(abi::bounce_rflags(0x002, 0), 0x202u);
  EXPECT_EQ(abi::kVgcfInSyscall, 0x100u);
}

TEST(AbiMemory, MmuextAndReservationLayout) {
  abi::MmuextOp op{};
  op.cmd = static_cast<uint32_t>(abi::MmuextCmd::copy_page);
  op.arg1.mfn = 0x1234;
  op.arg2.src_mfn = 0x5678;
  EXPECT_EQ(read_u32(op, 0), 17u);
  EXPECT_EQ(read_u64(op, 8), 0x1234u);
  EXPECT_EQ(read_u64(op, 16), 0x5678u);

  abi::MmuUpdate u{0x1000 | abi::kMmuPtUpdatePreserveAd, 0x67};
  EXPECT_EQ(abi::mmu_update_cmd(u), 2u);
  EXPECT_EQ(abi::mmu_update_addr(u), 0x1000u);

  abi::XenMemoryReservation r{};
  r.extent_start = 0xabc000;
  r.nr_extents = 3;
  r.extent_order = 9;
  r.mem_flags = abi::xenmemf_node(0);
  r.domid = abi::kDomidSelf;
  EXPECT_EQ(read_u64(r, 0), 0xabc000u);
  EXPECT_EQ(read_u64(r, 8), 3u);
  EXPECT_EQ(read_u32(r, 16), 9u);
  EXPECT_EQ(read_u32(r, 20), 0x100u);
  EXPECT_EQ(read_u16(r, 24), 0x7FF0u);
}

TEST(AbiGrant, MapGrantRefLayout) {
  abi::GnttabMapGrantRef m{};
  m.host_addr = 0x7000;
  m.flags = abi::kGntmapHostMap | abi::kGntmapReadonly;
  m.ref = 8;
  m.dom = 0;
  m.status = static_cast<int16_t>(abi::GntStatus::no_space);
  m.handle = 0x55;
  EXPECT_EQ(read_u64(m, 0), 0x7000u);
  EXPECT_EQ(read_u32(m, 8), 6u);
  EXPECT_EQ(read_u32(m, 12), 8u);
  EXPECT_EQ(read_u16(m, 18), static_cast<uint16_t>(-13));
  EXPECT_EQ(read_u32(m, 20), 0x55u);
}

TEST(AbiRings, RingHelpers) {
  EXPECT_EQ(abi::sring_entries(4096, 112), 32u);
  EXPECT_EQ(abi::sring_entries(64, 8), 0u);
  EXPECT_TRUE(abi::sring_needs_notify(5, 4, 6));
  EXPECT_FALSE(abi::sring_needs_notify(10, 4, 6));
  // Index arithmetic survives wrap-around.
  EXPECT_TRUE(abi::sring_needs_notify(0, 0xffffffffu, 1));
  EXPECT_EQ(abi::xencons_out_slot(2048 + 5), 5u);
  EXPECT_EQ(abi::xenstore_ring_slot(1024 * 3 + 1), 1u);
}

}  // namespace
