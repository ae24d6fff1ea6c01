// `moat top`'s table (tools/moat/top_cli.cpp): rates from two list answers,
// a counter that went back (the domain re-created: 0, never a wrap), a
// domain that appeared (no rate yet) or disappeared (no row), and the
// header's free memory.
#include "top_cli.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace mc = moat::control;
namespace top = moat::cli::top;

mc::DomainInfo domain(const std::string& name, uint32_t id, uint64_t cpu_ns, uint64_t events, uint64_t grants,
                      uint64_t copied) {
  mc::DomainInfo d;
  d.set_name(name);
  d.set_id(id);
  d.set_memory_kib(8192);
  d.set_max_memory_kib(16384);
  d.set_vcpus(1);
  d.set_state(mc::RUNNING);
  d.set_cpu_time_ns(cpu_ns);
  d.set_events_sent(events);
  d.set_grant_ops(grants);
  d.set_grant_copy_bytes(copied);
  return d;
}

mc::Response answer(std::initializer_list<mc::DomainInfo> domains, uint64_t free_kib = 0) {
  mc::Response r;
  r.set_version(mc::V1);
  r.set_status(mc::OK);
  for (const auto& d : domains) *r.add_domains() = d;
  r.set_free_memory_kib(free_kib);
  return r;
}

// The table's lines, split; the row whose first word is `name`, as words.
std::vector<std::string> row(const std::string& table, const std::string& name) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream w(line);
    std::vector<std::string> words;
    for (std::string s; w >> s;) words.push_back(s);
    if (!words.empty() && words[0] == name) return words;
  }
  return {};
}

TEST(TopRates, GrowthOverTheHostsTimeBetweenTwoAnswers) {
  mc::DomainInfo a = domain("ping", 4, 1'000'000'000, 100, 10, 4096);
  mc::DomainInfo b = domain("ping", 4, 1'500'000'000, 300, 16, 4096 + 10 * 1024);
  auto r = top::rates(b, &a, 2.0);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->cpu_pct, 25.0);        // 0.5 s of CPU in 2 s
  EXPECT_DOUBLE_EQ(r->events_per_s, 100.0);  // 200 in 2 s
  EXPECT_DOUBLE_EQ(r->grants_per_s, 3.0);
  EXPECT_DOUBLE_EQ(r->copy_kib_per_s, 5.0);  // 10 KiB in 2 s
}

TEST(TopRates, ACounterThatWentBackIsZeroNotAWrap) {
  EXPECT_EQ(top::grew(5, 7), 0u);
  EXPECT_EQ(top::grew(7, 5), 2u);
  EXPECT_EQ(top::grew(0, ~0ull), 0u);
  EXPECT_EQ(top::grew(~0ull, 0), ~0ull);
  // Re-created under the same name and id: every counter restarted.
  mc::DomainInfo old = domain("pong", 5, 9'000'000'000, 1'000'000, 5000, 1ull << 40);
  mc::DomainInfo fresh = domain("pong", 5, 100'000'000, 3, 1, 100);
  auto r = top::rates(fresh, &old, 1.0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cpu_pct, 0.0);
  EXPECT_EQ(r->events_per_s, 0.0);
  EXPECT_EQ(r->grants_per_s, 0.0);
  EXPECT_EQ(r->copy_kib_per_s, 0.0);
  const mc::Response earlier = answer({old});
  std::string t2 = top::format_table(answer({fresh}), &earlier, 1.0, "12:00:01", "s");
  auto w = row(t2, "pong");
  ASSERT_EQ(w.size(), 14u) << t2;
  EXPECT_EQ(w[4], "0.0");    // CPU(%)
  EXPECT_EQ(w[9], "0.0");    // EVENTS/s
  EXPECT_EQ(w[11], "0.0");   // GRANTS/s
  EXPECT_EQ(w[13], "0.0");   // COPY(KB/s)
  EXPECT_EQ(t2.find("e+"), std::string::npos) << "no wrapped huge rate: " << t2;
}

TEST(TopRates, NothingToCompareWithIsNoRate) {
  mc::DomainInfo a = domain("ping", 4, 1, 1, 1, 1);
  EXPECT_FALSE(top::rates(a, nullptr, 1.0));
  EXPECT_FALSE(top::rates(a, &a, 0.0)) << "no time between the answers";
  EXPECT_FALSE(top::rates(a, &a, -1.0));
  EXPECT_FALSE(top::rates(a, &a, std::nan("")));
}

TEST(TopTable, DomainsThatCameAndWent) {
  mc::Response first = answer({domain("ping", 4, 0, 10, 0, 0), domain("gone", 6, 0, 50, 0, 0),
                               domain("pong", 5, 0, 20, 0, 0)}, 1000);
  // gone is gone; newcomer appeared; pong came back as a new domain (another id).
  mc::Response second = answer({domain("ping", 4, 500'000'000, 40, 2, 2048), domain("pong", 7, 0, 1, 0, 0),
                                domain("newcomer", 9, 0, 5, 0, 0)}, 0);
  std::string t = top::format_table(second, &first, 1.0, "10:20:30", "control");
  EXPECT_NE(t.find("moat top - 10:20:30  system control  3 domains  free memory -\n"), std::string::npos) << t;
  EXPECT_TRUE(row(t, "gone").empty()) << "a domain no longer listed has no row";
  auto ping = row(t, "ping");
  ASSERT_EQ(ping.size(), 14u) << t;
  EXPECT_EQ(ping[1], "4");
  EXPECT_EQ(ping[2], "r-----");
  EXPECT_EQ(ping[4], "50.0");   // CPU(%)
  EXPECT_EQ(ping[8], "40");     // EVENTS
  EXPECT_EQ(ping[9], "30.0");   // EVENTS/s
  EXPECT_EQ(ping[10], "2");     // GRANTS
  EXPECT_EQ(ping[11], "2.0");
  EXPECT_EQ(ping[12], "2");     // COPY(KB)
  EXPECT_EQ(ping[13], "2.0");   // COPY(KB/s)
  for (const char* fresh : {"newcomer", "pong"}) {
    auto w = row(t, fresh);
    ASSERT_EQ(w.size(), 14u) << t;
    EXPECT_EQ(w[4], "-") << fresh << ": no earlier answer to compare with";
    EXPECT_EQ(w[9], "-");
    EXPECT_EQ(w[11], "-");
    EXPECT_EQ(w[13], "-");
  }
  EXPECT_EQ(row(t, "pong")[8], "1") << "the new pong's own total";
  // Sorted by id: ping (4), pong (7), newcomer (9).
  EXPECT_LT(t.find(" ping "), t.find(" pong "));
  EXPECT_LT(t.find(" pong "), t.find(" newcomer "));
  // The first answer alone: totals, no rates; its free memory in the header.
  std::string t0 = top::format_table(first, nullptr, 0, "10:20:29", "control");
  EXPECT_NE(t0.find("3 domains  free memory 1000 KiB\n"), std::string::npos) << t0;
  EXPECT_EQ(row(t0, "ping")[9], "-");
  EXPECT_EQ(row(t0, "ping")[8], "10");
  EXPECT_NE(t0.find("NAME    ID  STATE  CPU(sec) CPU(%)    MEM(k) MAXMEM(k) VCPUS     EVENTS  EVENTS/s     GRANTS "
                    " GRANTS/s  COPY(KB) COPY(KB/s)"),
            std::string::npos)
      << t0;
}

TEST(TopTable, ANoteAndLongNamesKeepTheColumns) {
  mc::Response r = answer({domain(std::string(32, 'n'), 1, 0, 0, 0, 0), domain("a", 2, 0, 0, 0, 0)});
  r.set_error("2 more domains not listed");
  std::string t = top::format_table(r, nullptr, 0, "t", "s");
  EXPECT_NE(t.find("\nnote: 2 more domains not listed\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  2 domains  free memory -\n"), std::string::npos) << t;
  // Every row as long as the title line: the columns stay aligned.
  std::istringstream lines(t);
  std::string line;
  std::vector<size_t> lengths;
  while (std::getline(lines, line))
    if (line.find("NAME") != std::string::npos || line.find(" r-----") != std::string::npos)
      lengths.push_back(line.size());
  ASSERT_EQ(lengths.size(), 3u) << t;
  EXPECT_EQ(lengths[0], lengths[1]) << t;
  EXPECT_EQ(lengths[0], lengths[2]) << t;
}

}  // namespace
