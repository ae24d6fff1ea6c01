// The XenStore engine: node operations, error names, permissions, watches,
// domain management and malformed messages.

#include "harness.hpp"

#include <algorithm>

namespace {

using namespace xstest;
using std::string;

struct XsTest : ::testing::Test {
    Store s;
    void SetUp() override {
        s.introduce(1);
        s.introduce(2);
        s.events(kBuilder);
    }
};

TEST_F(XsTest, IntroduceCreatesPrivateHome) {
    EXPECT_EQ(s.get_perms(kBuilder, "/local/domain/1"), z("n1"));
    EXPECT_EQ(s.read(1, "/local/domain/1"), "");
    EXPECT_EQ(s.read(2, "/local/domain/1"), "EACCES");
    EXPECT_EQ(s.dir(kBuilder, "/local/domain"), z("1") + z("2"));
}

TEST_F(XsTest, WriteReadRelativeAndAbsolute) {
    EXPECT_EQ(s.write(1, "device/vif/0/state", "4"), "OK");
    EXPECT_EQ(s.read(1, "/local/domain/1/device/vif/0/state"), "4");
    EXPECT_EQ(s.read(1, "device/vif/0"), "");  // created parent, empty value
    EXPECT_EQ(s.write(1, "data", string("a\0b", 3)), "OK");  // values are bytes
    EXPECT_EQ(s.read(1, "data"), string("a\0b", 3));
    EXPECT_EQ(s.write(1, "data", ""), "OK");
    EXPECT_EQ(s.read(1, "data"), "");
    EXPECT_EQ(s.read(1, "nothere"), "ENOENT");
}

TEST_F(XsTest, CreatedNodesInheritPermsWithCreatorAsOwner) {
    EXPECT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1", "r2"}), "OK");
    EXPECT_EQ(s.write(1, "a/b", "x"), "OK");
    EXPECT_EQ(s.get_perms(1, "a/b"), z("n1") + z("r2"));
    // The builder creating below a domain's home keeps the domain as owner.
    EXPECT_EQ(s.write(kBuilder, "/local/domain/1/fromb", "x"), "OK");
    EXPECT_EQ(s.get_perms(1, "fromb"), z("n1") + z("r2"));
    // Domain 2 may read but not write or create there.
    EXPECT_EQ(s.read(2, "/local/domain/1/a/b"), "x");
    EXPECT_EQ(s.write(2, "/local/domain/1/a/b", "y"), "EACCES");
    EXPECT_EQ(s.write(2, "/local/domain/1/a/new", "y"), "EACCES");
}

TEST_F(XsTest, Mkdir) {
    EXPECT_EQ(s.mkdir(1, "x/y/z"), "OK");
    EXPECT_EQ(s.mkdir(1, "x/y/z"), "OK");  // existing: fine
    EXPECT_EQ(s.dir(1, "x"), z("y"));
    EXPECT_EQ(s.mkdir(1, "/toplevel"), "EACCES");  // "/" belongs to the builder
    EXPECT_EQ(s.mkdir(kBuilder, "/toplevel"), "OK");
    EXPECT_EQ(s.get_perms(kBuilder, "/toplevel"), z("n0"));
}

TEST_F(XsTest, RmIsRecursive) {
    EXPECT_EQ(s.write(1, "t/a/b", "1"), "OK");
    EXPECT_EQ(s.write(1, "t/c", "2"), "OK");
    EXPECT_EQ(s.rm(1, "t"), "OK");
    EXPECT_EQ(s.read(1, "t/a/b"), "ENOENT");
    EXPECT_EQ(s.read(1, "t"), "ENOENT");
    EXPECT_EQ(s.rm(1, "t"), "OK");  // missing, parent exists
    EXPECT_EQ(s.rm(1, "t/x/y"), "ENOENT");  // parent missing too
    EXPECT_EQ(s.rm(kBuilder, "/"), "EINVAL");
    EXPECT_EQ(s.rm(2, "/local/domain/1"), "EACCES");
}

TEST_F(XsTest, Directory) {
    EXPECT_EQ(s.dir(1, "/local/domain/1"), "");
    EXPECT_EQ(s.write(1, "b", ""), "OK");
    EXPECT_EQ(s.write(1, "a/x", ""), "OK");
    string d = s.dir(1, "");  // "" is not a valid name
    EXPECT_EQ(d, "EINVAL");
    d = s.dir(1, "/local/domain/1");
    EXPECT_TRUE(d == z("b") + z("a") || d == z("a") + z("b")) << d;
    EXPECT_EQ(s.dir(1, "nothere"), "ENOENT");
    EXPECT_EQ(s.dir(2, "/local/domain/1"), "EACCES");
}

TEST_F(XsTest, DirectoryTooBigForOneReplyIsE2big) {
    string v;
    for (int i = 0; i < 200; ++i)
        ASSERT_EQ(s.write(kBuilder, "/big/" + string(30, 'a') + std::to_string(i), ""), "OK");
    EXPECT_EQ(s.dir(kBuilder, "/big"), "E2BIG");
}

TEST_F(XsTest, PermissionsNoneReadWriteBoth) {
    ASSERT_EQ(s.write(1, "p", "v"), "OK");
    const char* p = "/local/domain/1/p";
    EXPECT_EQ(s.set_perms(1, "p", {"n1"}), "OK");
    EXPECT_EQ(s.read(2, p), "EACCES");
    EXPECT_EQ(s.write(2, p, "x"), "EACCES");
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "r2"}), "OK");
    EXPECT_EQ(s.read(2, p), "v");
    EXPECT_EQ(s.write(2, p, "x"), "EACCES");
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "w2"}), "OK");
    EXPECT_EQ(s.read(2, p), "EACCES");
    EXPECT_EQ(s.write(2, p, "w"), "OK");
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "b2"}), "OK");
    EXPECT_EQ(s.read(2, p), "w");
    EXPECT_EQ(s.write(2, p, "b"), "OK");
    // Default for others: entry 0's bits.
    EXPECT_EQ(s.set_perms(1, "p", {"r1"}), "OK");
    EXPECT_EQ(s.read(2, p), "b");
    // The owner always has everything; the builder passes every check.
    EXPECT_EQ(s.set_perms(1, "p", {"n1"}), "OK");
    EXPECT_EQ(s.read(1, p), "b");
    EXPECT_EQ(s.read(kBuilder, p), "b");
    EXPECT_EQ(s.get_perms(1, "p"), z("n1"));
    // Only the owner sets perms; write access is not enough.
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "b2"}), "OK");
    EXPECT_EQ(s.set_perms(2, p, {"b1"}), "EACCES");
    // An unprivileged owner cannot give the node away; the builder can.
    EXPECT_EQ(s.set_perms(1, "p", {"n2"}), "EPERM");
    EXPECT_EQ(s.set_perms(kBuilder, p, {"n2"}), "OK");
    EXPECT_EQ(s.read(1, p), "EACCES");
    EXPECT_EQ(s.read(2, p), "b");
}

TEST_F(XsTest, HiddenParentGivesEaccesNotEnoent) {
    ASSERT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1", "r2"}), "OK");
    EXPECT_EQ(s.read(2, "/local/domain/1/nothere"), "ENOENT");
    EXPECT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1"}), "OK");
    EXPECT_EQ(s.read(2, "/local/domain/1/nothere"), "EACCES");
}

TEST_F(XsTest, SetPermsRejectsMalformed) {
    ASSERT_EQ(s.write(1, "p", "v"), "OK");
    EXPECT_EQ(s.set_perms(1, "p", {}), "EINVAL");
    EXPECT_EQ(s.set_perms(1, "p", {"x1"}), "EINVAL");
    EXPECT_EQ(s.set_perms(1, "p", {"r"}), "EINVAL");
    EXPECT_EQ(s.set_perms(1, "p", {"r1a"}), "EINVAL");
    EXPECT_EQ(s.set_perms(1, "p", {"r99999"}), "EINVAL");
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "r2", "r3", "r4", "r5", "r6"}), "EQUOTA");
    EXPECT_EQ(s.set_perms(1, "p", {"n1", "r2", "r3", "r4", "r5"}), "OK");
    EXPECT_EQ(s.op(1, XsType::set_perms, z("p") + "n1").error(), "EINVAL");  // unterminated
}

TEST_F(XsTest, SpecialPathPerms) {
    EXPECT_EQ(s.get_perms(1, "@releaseDomain"), z("n0"));
    EXPECT_EQ(s.set_perms(1, "@releaseDomain", {"r1"}), "EACCES");
    EXPECT_EQ(s.set_perms(kBuilder, "@releaseDomain", {"n0", "r1"}), "OK");
}

TEST_F(XsTest, BadPaths) {
    for (string p : std::vector<string>{"", "/local//domain", "/local/", "a b", "a\xff", "/x?", "@foo", string(3073, 'a'),
                     "/" + string(3072, 'a')})
        EXPECT_EQ(s.read(kBuilder, p), "EINVAL") << p.size();
    EXPECT_EQ(s.read(kBuilder, "/" + string(3071, 'a')), "ENOENT");
    // Unprivileged: at most 2048 bytes below the home.
    EXPECT_EQ(s.write(1, string(2048, 'a'), ""), "OK");
    EXPECT_EQ(s.write(1, string(2049, 'a'), ""), "EINVAL");
    EXPECT_EQ(s.read(1, "/" + string(2049, 'a')), "EINVAL");
    EXPECT_EQ(s.write(1, "ok-_@AZ09", ""), "OK");
}

TEST_F(XsTest, ValueSizeQuota) {
    EXPECT_EQ(s.write(1, "v", string(2048, 'x')), "OK");
    EXPECT_EQ(s.write(1, "v", string(2049, 'x')), "E2BIG");
    EXPECT_EQ(s.read(1, "v").size(), 2048u);
    EXPECT_EQ(s.write(kBuilder, "/v", string(4000, 'x')), "OK");  // privileged: no quota
}

TEST_F(XsTest, MalformedMessages) {
    // Short header: an error reply all the same, ids as far as readable.
    uint8_t shorty[10] = {2, 0, 0, 0, 9, 0, 0, 0, 0, 0};
    Rep r = s.raw(1, std::vector<uint8_t>(shorty, shorty + 10));
    EXPECT_EQ(r.error(), "EINVAL");
    EXPECT_EQ(r.req_id, 9u);
    EXPECT_EQ(s.raw(1, {}).error(), "EINVAL");
    // Length mismatch, both ways.
    auto m = msg(XsType::read, z("a"));
    m.push_back(0);
    EXPECT_EQ(s.raw(1, m).error(), "EINVAL");
    m.resize(m.size() - 2);
    EXPECT_EQ(s.raw(1, m).error(), "EINVAL");
    // Huge len.
    auto h = msg(XsType::read, "");
    uint32_t big = 0xffffffff;
    memcpy(h.data() + 12, &big, 4);
    EXPECT_EQ(s.raw(1, h).error(), "E2BIG");
    big = 4097;
    memcpy(h.data() + 12, &big, 4);
    EXPECT_EQ(s.raw(1, h).error(), "E2BIG");
    // Missing NULs, extra strings.
    EXPECT_EQ(s.op(1, XsType::read, "abc").error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::read, "").error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::read, z("a") + z("b")).error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::write, "abc").error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::watch, z("a") + "tok").error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::watch, z("a")).error(), "EINVAL");
    EXPECT_EQ(s.op(1, XsType::rm, string("a\0b\0", 4)).error(), "EINVAL");
    // Unknown and reply-only types.
    EXPECT_EQ(s.op(1, XsType::watch_event, "").error(), "ENOSYS");
    EXPECT_EQ(s.op(1, XsType::error, "").error(), "ENOSYS");
    EXPECT_EQ(s.op(1, XsType::control, z("print")).error(), "ENOSYS");
    EXPECT_EQ(s.op(1, static_cast<XsType>(999), "").error(), "ENOSYS");
    // A transaction id that is not open.
    EXPECT_EQ(s.op(1, XsType::read, z("a"), 77).error(), "ENOENT");
    // Not introduced: no connection.
    EXPECT_EQ(s.op(9, XsType::read, z("a")).error(), "EACCES");
}

TEST_F(XsTest, ErrorNamesMatchXen) {
    for (const auto& e : abi::kXsdErrors) {
        bool found = false;
        for (int i = 0; i <= static_cast<int>(xs::Error::quota); ++i)
            found |= string(xs::error_name(static_cast<xs::Error>(i))) == e.errstring;
        EXPECT_TRUE(found) << e.errstring;
    }
    EXPECT_STREQ(xs::error_name(xs::Error::quota), "EQUOTA");
}

TEST_F(XsTest, WatchFiresOnRegistrationAndChanges) {
    EXPECT_EQ(s.watch(1, "w", "tok"), "OK");
    EXPECT_EQ(s.events(1), std::vector<string>{"w|tok"});  // relative, and fired at once
    EXPECT_EQ(s.write(1, "w/a", "1"), "OK");
    EXPECT_EQ(s.write(1, "wx", "1"), "OK");  // not below w
    EXPECT_EQ(s.events(1), std::vector<string>{"w/a|tok"});
    EXPECT_EQ(s.watch(1, "/local/domain/1/w", "abs"), "OK");
    EXPECT_EQ(s.events(1), std::vector<string>{"/local/domain/1/w|abs"});
    EXPECT_EQ(s.watch(1, "w", "tok"), "EEXIST");
    EXPECT_EQ(s.unwatch(1, "w", "tok"), "OK");
    EXPECT_EQ(s.unwatch(1, "w", "tok"), "ENOENT");
    EXPECT_EQ(s.rm(1, "w"), "OK");
    EXPECT_EQ(s.events(1), std::vector<string>{"/local/domain/1/w|abs"});
}

TEST_F(XsTest, WatchOnRemovedSubtree) {
    ASSERT_EQ(s.write(1, "r/a/b", "1"), "OK");
    EXPECT_EQ(s.watch(1, "r", "top"), "OK");
    EXPECT_EQ(s.watch(1, "r/a/b", "leaf"), "OK");
    EXPECT_EQ(s.watch(1, "r/a/b/c", "deeper"), "OK");
    s.events(1);
    EXPECT_EQ(s.rm(1, "r/a"), "OK");
    auto ev = s.events(1);
    std::sort(ev.begin(), ev.end());
    EXPECT_EQ(ev, (std::vector<string>{"r/a/b|leaf", "r/a|top"}));
}

TEST_F(XsTest, WatchEventsArePermissionFiltered) {
    ASSERT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1", "r2"}), "OK");
    ASSERT_EQ(s.write(1, "pub", "1"), "OK");
    ASSERT_EQ(s.write(1, "priv", "1"), "OK");
    ASSERT_EQ(s.set_perms(1, "priv", {"n1"}), "OK");
    EXPECT_EQ(s.watch(2, "/local/domain/1", "t"), "OK");
    EXPECT_EQ(s.events(2), std::vector<string>{"/local/domain/1|t"});
    EXPECT_EQ(s.write(1, "pub", "2"), "OK");
    EXPECT_EQ(s.write(1, "priv", "2"), "OK");
    EXPECT_EQ(s.rm(1, "priv"), "OK");
    EXPECT_EQ(s.events(2), std::vector<string>{"/local/domain/1/pub|t"});
    // No initial event for a node the watcher cannot see.
    EXPECT_EQ(s.watch(2, "/local/domain/1/hidden", "h"), "OK");
    EXPECT_EQ(s.events(2).size(), 1u);  // parent readable: ENOENT is visible
    ASSERT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1"}), "OK");
    s.events(2);
    EXPECT_EQ(s.watch(2, "/local/domain/1/hidden2", "h"), "OK");
    EXPECT_TRUE(s.events(2).empty());
    // The builder sees everything.
    EXPECT_EQ(s.watch(kBuilder, "/local/domain/1", "b"), "OK");
    s.events(kBuilder);
    EXPECT_EQ(s.write(1, "priv2", "x"), "OK");
    EXPECT_EQ(s.events(kBuilder), std::vector<string>{"/local/domain/1/priv2|b"});
}

TEST_F(XsTest, IntroduceAndReleaseDomainWatches) {
    EXPECT_EQ(s.watch(kBuilder, "@introduceDomain", "i"), "OK");
    EXPECT_EQ(s.watch(kBuilder, "@releaseDomain", "r"), "OK");
    EXPECT_EQ(s.watch(1, "@releaseDomain", "r1"), "OK");
    EXPECT_EQ(s.events(kBuilder), (std::vector<string>{"@introduceDomain|i", "@releaseDomain|r"}));
    EXPECT_EQ(s.events(1), std::vector<string>{"@releaseDomain|r1"});
    s.introduce(3);
    EXPECT_EQ(s.events(kBuilder), std::vector<string>{"@introduceDomain|i"});
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::release, z("3"))), "OK");
    EXPECT_EQ(s.events(kBuilder), std::vector<string>{"@releaseDomain|r"});
    EXPECT_TRUE(s.events(1).empty());  // not permitted by the special node's perms
    ASSERT_EQ(s.set_perms(kBuilder, "@releaseDomain", {"n0", "r1"}), "OK");
    s.introduce(3);
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::release, z("3"))), "OK");
    EXPECT_EQ(s.events(1), std::vector<string>{"@releaseDomain|r1"});
}

TEST_F(XsTest, ReleaseDropsWatchesTransactionsAndConnection) {
    EXPECT_EQ(s.watch(2, "x", "t"), "OK");
    uint32_t tx = s.tx_start(2);
    ASSERT_NE(tx, 0u);
    EXPECT_EQ(s.write(2, "y", "1", tx), "OK");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::release, z("2"))), "OK");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::release, z("2"))), "ENOENT");
    EXPECT_EQ(s.read(2, "x"), "EACCES");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::is_domain_introduced, z("2"))), z("F"));
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::is_domain_introduced, z("1"))), z("T"));
    s.introduce(2);
    EXPECT_EQ(s.read(2, "y"), "ENOENT");  // the transaction died with the release
    EXPECT_EQ(s.tx_end(2, tx, true), "ENOENT");
}

TEST_F(XsTest, OnlyTheBuilderIntroduces) {
    EXPECT_EQ(s.res(s.op(1, XsType::introduce, z("5") + z("1") + z("1"))), "EACCES");
    EXPECT_EQ(s.res(s.op(1, XsType::release, z("2"))), "EACCES");
    EXPECT_EQ(s.res(s.op(1, XsType::is_domain_introduced, z("2"))), "EACCES");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::introduce, z("5") + z("1"))), "EINVAL");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::introduce, z("x") + z("1") + z("1"))), "EINVAL");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::introduce, z("99999") + z("1") + z("1"))), "EINVAL");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::release, z("7"))), "ENOENT");
}

TEST_F(XsTest, GetDomainPath) {
    EXPECT_EQ(s.res(s.op(1, XsType::get_domain_path, z("5"))), z("/local/domain/5"));
    EXPECT_EQ(s.res(s.op(1, XsType::get_domain_path, z("05"))), "EINVAL");
    EXPECT_EQ(s.res(s.op(1, XsType::get_domain_path, "5")), "EINVAL");
}

TEST_F(XsTest, ResetWatches) {
    EXPECT_EQ(s.watch(1, "a", "t"), "OK");
    EXPECT_EQ(s.write(1, "a", "1"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.res(s.op(1, XsType::reset_watches, z(""))), "OK");
    EXPECT_TRUE(s.events(1).empty());
    EXPECT_EQ(s.write(1, "a", "2"), "OK");
    EXPECT_TRUE(s.events(1).empty());
    EXPECT_EQ(s.tx_end(1, tx, true), "ENOENT");
    EXPECT_EQ(s.e->domains().find(1)->used[xs::Res::watches], 0u);
}

}  // namespace
