// The CNI plugin's address allocator: one address per range per owner, never
// one address twice (also across concurrent allocators), release and GC.
#include "cni/ipam.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace netpol::cni {
namespace {

namespace fs = std::filesystem;

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/netpol-ipam-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }
  Ipam Open(std::vector<std::string> ranges) {
    std::vector<IpPrefix> prefixes;
    for (const auto& r : ranges) prefixes.push_back(*IpPrefix::Parse(r));
    Result<Ipam> ipam = Ipam::Open(dir_, prefixes);
    EXPECT_TRUE(ipam.ok());
    return std::move(*ipam);
  }
  std::string dir_;
};

TEST(AllocatableTest, SkipsNetworkAndBroadcast) {
  const IpPrefix v4 = *IpPrefix::Parse("198.18.1.0/30");
  EXPECT_FALSE(Allocatable(v4, *IpAddress::Parse("198.18.1.0")));
  EXPECT_TRUE(Allocatable(v4, *IpAddress::Parse("198.18.1.1")));
  EXPECT_TRUE(Allocatable(v4, *IpAddress::Parse("198.18.1.2")));
  EXPECT_FALSE(Allocatable(v4, *IpAddress::Parse("198.18.1.3")));
  EXPECT_FALSE(Allocatable(v4, *IpAddress::Parse("198.18.2.1")));
  const IpPrefix v6 = *IpPrefix::Parse("2001:2::/126");
  EXPECT_FALSE(Allocatable(v6, *IpAddress::Parse("2001:2::")));
  EXPECT_TRUE(Allocatable(v6, *IpAddress::Parse("2001:2::3")));
}

TEST_F(IpamTest, OneAddressPerRangeAndTheSameAgainForTheSameOwner) {
  Ipam ipam = Open({"198.18.1.0/24", "2001:2:0:1::/64"});
  const auto a = ipam.Allocate({"c1", "eth0"});
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].ToString(), "198.18.1.1");
  EXPECT_EQ((*a)[1].ToString(), "2001:2:0:1::1");
  EXPECT_EQ(*ipam.Allocate({"c1", "eth0"}), *a);
  const auto b = ipam.Allocate({"c1", "eth1"});
  EXPECT_EQ((*b)[0].ToString(), "198.18.1.2");
}

TEST_F(IpamTest, ReleasedAddressesAreNotReusedAtOnceAndExhaustionIsAnError) {
  Ipam ipam = Open({"198.18.1.0/29"});  // 6 usable
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ipam.Allocate({"c" + std::to_string(i), "eth0"}).ok());
  const auto full = ipam.Allocate({"late", "eth0"});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(ipam.Release({"c0", "eth0"}).ok());
  ASSERT_TRUE(ipam.Release({"c0", "eth0"}).ok());  // idempotent
  EXPECT_EQ((*ipam.Allocate({"late", "eth0"}))[0].ToString(), "198.18.1.1");
  ASSERT_TRUE(ipam.Release({"c2", "eth0"}).ok());
  ASSERT_TRUE(ipam.Release({"c3", "eth0"}).ok());
  // After the last handed out (.1), the next free one going round: .3, not .1 again.
  EXPECT_EQ((*ipam.Allocate({"next", "eth0"}))[0].ToString(), "198.18.1.3");
}

// The "last handed out" hint is overwritten in place, not replaced: whatever
// it holds (an older version's short record, a longer address before a
// shorter one, garbage) the next search starts after it, or at the range's
// start when it does not parse, and never hands out a taken address.
TEST_F(IpamTest, TheLastHandedOutHintIsReadWhateverItHolds) {
  Ipam ipam = Open({"198.18.1.0/24"});
  const std::string hint = dir_ + "/last_reserved.0";
  std::ofstream(hint) << "198.18.1.200\n";  // as an earlier version wrote it
  EXPECT_EQ((*ipam.Allocate({"a", "eth0"}))[0].ToString(), "198.18.1.201");
  EXPECT_EQ((*ipam.Allocate({"b", "eth0"}))[0].ToString(), "198.18.1.202");
  std::ofstream(hint) << "198.18.1.253\n";
  EXPECT_EQ((*ipam.Allocate({"c1", "eth0"}))[0].ToString(), "198.18.1.254");
  // Round to the start: the allocator writes a shorter address over a longer one.
  EXPECT_EQ((*ipam.Allocate({"c2", "eth0"}))[0].ToString(), "198.18.1.1");
  EXPECT_EQ((*ipam.Allocate({"c3", "eth0"}))[0].ToString(), "198.18.1.2");
  std::ofstream(hint) << "not an address";
  EXPECT_EQ((*ipam.Allocate({"d", "eth0"}))[0].ToString(), "198.18.1.3");
  std::ofstream(hint) << "198.18.1.200\n";  // the next one after it is taken
  EXPECT_EQ((*ipam.Allocate({"e", "eth0"}))[0].ToString(), "198.18.1.203");
}

TEST_F(IpamTest, RetainReleasesEveryOwnerNotListed) {
  Ipam ipam = Open({"198.18.1.0/24"});
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(ipam.Allocate({id, "eth0"}).ok());
  const auto released = ipam.Retain({{"b", "eth0"}});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->size(), 2u);
  const auto left = ipam.List();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].owner.container_id, "b");
}

// Each owner's index file lets an ADD skip reading every allocation; the
// allocations stay the truth: an index that disagrees with them is ignored,
// and allocations without one (a plugin killed before writing it) are still
// found by a repeated ADD's fallback, DEL and GC.
TEST_F(IpamTest, TheOwnerIndexIsCheckedAgainstTheAllocations) {
  Ipam ipam = Open({"198.18.1.0/24"});
  const auto a = ipam.Allocate({"a", "eth0"});
  const auto b = ipam.Allocate({"b", "eth0"});
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::string> indexes;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("owner.")) indexes.push_back(entry.path().string());
  }
  ASSERT_EQ(indexes.size(), 2u);
  // Point a's index at b's address: a does not get b's address.
  for (const std::string& index : indexes) {
    std::ifstream in(index);
    std::string line;
    std::getline(in, line);
    if (line == (*a)[0].ToString()) {
      in.close();
      std::ofstream(index) << (*b)[0].ToString() << "\n";
    }
  }
  EXPECT_EQ(*ipam.Allocate({"a", "eth0"}), *a) << "found by reading the allocations";
  // Release removes the owner's index with its addresses; GC every index but the valid owners'.
  ASSERT_TRUE(ipam.Release({"a", "eth0"}).ok());
  std::ofstream(dir_ + "/owner.6767.657468") << "198.18.1.77\n";  // a leftover for owner "gg"
  ASSERT_TRUE(ipam.Retain({{"b", "eth0"}}).ok());
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("owner.")) left.push_back(entry.path().string());
  }
  EXPECT_EQ(left.size(), 1u) << "only b's index is left";
  EXPECT_EQ(*ipam.Allocate({"b", "eth0"}), *b);
}

TEST_F(IpamTest, AllocationsWithoutTheirIndexAreStillReleased) {
  Ipam ipam = Open({"198.18.1.0/24", "2001:2:0:1::/64"});
  ASSERT_TRUE(ipam.Allocate({"killed", "eth0"}).ok());
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("owner.")) fs::remove(entry.path());
  }
  ASSERT_TRUE(ipam.Release({"killed", "eth0"}).ok());
  EXPECT_TRUE(ipam.List()->empty());
  ASSERT_TRUE(ipam.Allocate({"killed", "eth1"}).ok());
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("owner.")) fs::remove(entry.path());
  }
  const auto released = ipam.Retain({});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->size(), 2u);
  EXPECT_TRUE(ipam.List()->empty());
}

// The agent reserves a pod's addresses before its ADD; the ADD naming the pod
// takes them over, once: the reservation ends, the addresses are the
// attachment's (released by its DEL), and GC leaves reservations alone.
TEST_F(IpamTest, AnAddTakesOverThePodsReservation) {
  Ipam ipam = Open({"198.18.1.0/24", "2001:2:0:1::/64"});
  const Owner reservation = ReservationOwner("shop", "db-0");
  EXPECT_EQ(ReservedPod(reservation), "shop/db-0");
  EXPECT_EQ(ReservedPod({"c1", "eth0"}), std::nullopt);
  ASSERT_TRUE(ipam.Allocate({"other", "eth0"}).ok());
  const auto reserved = ipam.Allocate(reservation);
  ASSERT_TRUE(reserved.ok());
  EXPECT_EQ(*ipam.Allocate(reservation), *reserved) << "reserving twice holds the same addresses";
  EXPECT_TRUE(ipam.Retain({{"other", "eth0"}})->empty()) << "GC keeps reservations";

  const auto taken = ipam.Allocate({"c1", "eth0"}, reservation);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, *reserved);
  const Result<std::vector<Allocation>> after_add = ipam.List();
  for (const Allocation& a : *after_add) EXPECT_FALSE(ReservedPod(a.owner)) << a.address.ToString();
  EXPECT_EQ(*ipam.Allocate({"c1", "eth0"}, reservation), *reserved) << "a repeated ADD";
  // A second sandbox of the pod finds no reservation left: new addresses.
  const auto second = ipam.Allocate({"c2", "eth0"}, reservation);
  ASSERT_TRUE(second.ok());
  EXPECT_NE((*second)[0], (*reserved)[0]);
  ASSERT_TRUE(ipam.Release({"c1", "eth0"}).ok());
  const Result<std::vector<Allocation>> after_del = ipam.List();
  for (const Allocation& a : *after_del) EXPECT_NE(a.address, (*reserved)[0]);
}

// An ADD that fails after taking the reservation over gives the addresses
// back to it (the pod is still scheduled; the agent's rules for them stay
// right), and the next ADD takes them over again; one that allocated fresh
// addresses releases them.
TEST_F(IpamTest, AFailedAddGivesTheReservationBack) {
  Ipam ipam = Open({"198.18.1.0/24", "2001:2:0:1::/64"});
  const Owner reservation = ReservationOwner("shop", "db-0");
  const auto reserved = ipam.Allocate(reservation);
  ASSERT_TRUE(reserved.ok());
  bool took_over = false;
  ASSERT_EQ(*ipam.Allocate({"c1", "eth0"}, reservation, &took_over), *reserved);
  EXPECT_TRUE(took_over);
  ASSERT_TRUE(ipam.Release({"c1", "eth0"}, reservation).ok());
  EXPECT_EQ(*ipam.Allocate(reservation), *reserved) << "held by the reservation again";
  ASSERT_EQ(*ipam.Allocate({"c2", "eth0"}, reservation, &took_over), *reserved);
  EXPECT_TRUE(took_over);

  const auto fresh = ipam.Allocate({"c3", "eth0"}, ReservationOwner("shop", "web-0"), &took_over);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(took_over);
  ASSERT_TRUE(ipam.Release({"c3", "eth0"}).ok());
  const Result<std::vector<Allocation>> left = ipam.List();
  for (const Allocation& a : *left) EXPECT_NE(a.address, (*fresh)[0]);
}

// A reservation whose allocations are gone (released while its index was
// left behind) or belong to someone else is not taken over.
TEST_F(IpamTest, AStaleReservationIsNotTakenOver) {
  Ipam ipam = Open({"198.18.1.0/24"});
  const Owner reservation = ReservationOwner("shop", "db-0");
  const auto reserved = ipam.Allocate(reservation);
  ASSERT_TRUE(reserved.ok());
  fs::remove(dir_ + "/" + (*reserved)[0].ToString());
  ASSERT_TRUE(ipam.Allocate({"thief", "eth0"}).ok());
  std::ofstream(dir_ + "/" + (*reserved)[0].ToString()) << "thief\neth1\n";
  const auto got = ipam.Allocate({"c1", "eth0"}, reservation);
  ASSERT_TRUE(got.ok());
  EXPECT_NE((*got)[0], (*reserved)[0]);
  EXPECT_EQ(ipam.List()->size(), 3u);
}

TEST_F(IpamTest, ConcurrentAllocatorsNeverShareAnAddress) {
  constexpr int kThreads = 8;
  constexpr int kEach = 25;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread its own allocator, as each plugin process has.
      Result<Ipam> ipam = Ipam::Open(dir_, {*IpPrefix::Parse("198.18.1.0/24")});
      for (int i = 0; i < kEach; ++i) {
        const auto a = ipam->Allocate({"t" + std::to_string(t) + "-" + std::to_string(i), "eth0"});
        if (a.ok()) got[static_cast<size_t>(t)].push_back((*a)[0].ToString());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(all.size(), total) << "an address was handed out twice";
}

}  // namespace
}  // namespace netpol::cni
