// libs/grant: v1 grant-table helpers and the reference allocator.
#include <grant/grant.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <set>

namespace {

using grant::GrantRef;

struct TableFixture : ::testing::Test {
  // Exactly sized: ASan catches a reference that escapes the range check.
  std::unique_ptr<abi::GrantEntryV1[]> entries{new abi::GrantEntryV1[16]()};
  grant::Table table{entries.get(), 16};
};

TEST_F(TableFixture, GrantWritesDomidFrameAndFlags) {
  ASSERT_TRUE(table.grant_access(9, 7, 0xABCDE, false));
  EXPECT_EQ(entries[9].domid, 7);
  EXPECT_EQ(entries[9].frame, 0xABCDEu);
  EXPECT_EQ(entries[9].flags, abi::kGtfPermitAccess);
  ASSERT_TRUE(table.grant_access(10, 3, 42, true));
  EXPECT_EQ(entries[10].flags, abi::kGtfPermitAccess | abi::kGtfReadonly);
  EXPECT_EQ(table.flags(10), abi::kGtfPermitAccess | abi::kGtfReadonly);
}

TEST_F(TableFixture, GrantRefusesBusyOrOutOfRangeEntries) {
  ASSERT_TRUE(table.grant_access(1, 7, 1, false));
  EXPECT_FALSE(table.grant_access(1, 8, 2, false));  // still granted
  EXPECT_EQ(entries[1].domid, 7);
  EXPECT_FALSE(table.grant_access(16, 7, 1, false));
  EXPECT_FALSE(table.grant_access(0xFFFFFFFFu, 7, 1, false));
  EXPECT_FALSE(table.end_access(16));
  EXPECT_FALSE(table.is_in_use(16));
}

TEST_F(TableFixture, EndAccessFailsWhileInUse) {
  ASSERT_TRUE(table.grant_access(3, 1, 100, false));
  EXPECT_FALSE(table.is_in_use(3));
  entries[3].flags |= abi::kGtfReading;  // the hypervisor maps it
  EXPECT_TRUE(table.is_in_use(3));
  EXPECT_FALSE(table.end_access(3));
  EXPECT_EQ(entries[3].flags, abi::kGtfPermitAccess | abi::kGtfReading);
  entries[3].flags |= abi::kGtfWriting;
  EXPECT_FALSE(table.end_access(3));
  entries[3].flags &= static_cast<uint16_t>(~abi::kGtfReading);
  EXPECT_TRUE(table.is_in_use(3));
  EXPECT_FALSE(table.end_access(3));
  entries[3].flags &= static_cast<uint16_t>(~abi::kGtfWriting);  // unmapped
  EXPECT_TRUE(table.end_access(3));
  EXPECT_EQ(entries[3].flags, 0);
  EXPECT_TRUE(table.end_access(3));  // already free
  EXPECT_TRUE(table.grant_access(3, 2, 200, true));  // reusable
}

TEST(RefAllocator, AllocatesEveryReferenceOnceThenRunsOut) {
  uint32_t links[20];
  grant::RefAllocator a(links, 20);
  EXPECT_EQ(a.first(), grant::kNrReservedEntries);
  EXPECT_EQ(a.free_count(), 20u);
  std::set<GrantRef> got;
  for (int i = 0; i < 20; ++i) {
    GrantRef r = a.alloc();
    ASSERT_NE(r, grant::RefAllocator::kInvalid);
    EXPECT_GE(r, 8u);
    EXPECT_LT(r, 28u);
    EXPECT_TRUE(got.insert(r).second);
  }
  EXPECT_EQ(a.alloc(), grant::RefAllocator::kInvalid);
  EXPECT_EQ(a.free_count(), 0u);
  EXPECT_TRUE(a.free(15));
  EXPECT_EQ(a.alloc(), 15u);
}

TEST(RefAllocator, RefusesDoubleAndForeignFrees) {
  uint32_t links[4];
  grant::RefAllocator a(links, 4, 100);
  GrantRef r = a.alloc();
  EXPECT_EQ(r, 100u);
  EXPECT_TRUE(a.free(r));
  EXPECT_FALSE(a.free(r));
  EXPECT_FALSE(a.free(99));
  EXPECT_FALSE(a.free(104));
  EXPECT_FALSE(a.free(101));  // never allocated
  EXPECT_EQ(a.free_count(), 4u);
  uint32_t none[1];
  grant::RefAllocator empty(none, 0);
  EXPECT_EQ(empty.alloc(), grant::RefAllocator::kInvalid);
}

TEST(RefAllocator, WithTableRoundTrip) {
  std::unique_ptr<abi::GrantEntryV1[]> entries(new abi::GrantEntryV1[32]());
  grant::Table t(entries.get(), 32);
  uint32_t links[24];
  grant::RefAllocator a(links, 24);
  for (int round = 0; round < 3; ++round) {
    GrantRef refs[24];
    for (auto& r : refs) {
      r = a.alloc();
      ASSERT_TRUE(t.grant_access(r, 1, r * 3, round & 1));
    }
    for (auto r : refs) {
      ASSERT_TRUE(t.end_access(r));
      ASSERT_TRUE(a.free(r));
    }
  }
  EXPECT_EQ(a.free_count(), 24u);
}

}  // namespace
