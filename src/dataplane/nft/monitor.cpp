#include "dataplane/nft/monitor.h"

#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "base/netns.h"
#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {
namespace {

// What a transaction did to the table, one kind of change: "chain" +
// "deleted" with the chains' names; elements counted per set.
struct Notice {
  std::string kind;  // "table", "chain", "rule", "set", "element"
  std::string verb;  // "deleted", "added", ...
  std::vector<std::string> names;
  size_t count = 0;

  // "chain forward deleted", "12 chains deleted (forward, input, ...)",
  // "3 rules deleted (in chain input)", "2 elements deleted (set in_isolated_v4)".
  std::string Text() const {
    if (kind == "table") return "table inet netpol " + verb;
    std::string listed;
    for (size_t i = 0; i < names.size() && i < 4; ++i) listed += (i > 0 ? ", " : "") + names[i];
    if (names.size() > 4) listed += ", ...";
    if (kind == "rule") {
      return std::to_string(count) + (count == 1 ? " rule " : " rules ") + verb +
             (names.size() == 1 ? " (in chain " : " (in chains ") + listed + ")";
    }
    if (kind == "element") {
      return std::to_string(count) + (count == 1 ? " element " : " elements ") + verb + " (set " + listed +
             ")";
    }
    if (count == 1) return kind + " " + listed + " " + verb;
    return std::to_string(count) + " " + kind + "s " + verb + " (" + listed + ")";
  }
};

std::string Attribute(const nlattr* a) {
  return a == nullptr ? "" : std::string(mnl_attr_get_str(a));
}

// The attributes of an nf_tables message, by type (up to the largest any
// message here has).
struct Attributes {
  const nlattr* at[32] = {};
};

int CollectAttribute(const nlattr* attr, void* data) {
  auto* out = static_cast<Attributes*>(data);
  const uint16_t type = mnl_attr_get_type(attr);
  if (type < 32) out->at[type] = attr;
  return MNL_CB_OK;
}

int CountElement(const nlattr*, void* data) {
  ++*static_cast<size_t*>(data);
  return MNL_CB_OK;
}

}  // namespace

namespace {

// The ruleset's generation (it grows by one per committed transaction), read
// on `fd`, a netlink socket of the nftables subsystem; nullopt when it cannot be.
std::optional<uint32_t> ReadGeneration(int fd) {
  char buffer[8192];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  static std::atomic<uint32_t> seq{1};
  const uint32_t sent = seq++;
  nlh->nlmsg_seq = sent;
  auto* gen = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  gen->nfgen_family = AF_UNSPEC;
  gen->version = NFNETLINK_V0;
  gen->res_id = 0;
  if (::send(fd, nlh, nlh->nlmsg_len, 0) < 0) return std::nullopt;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) return std::nullopt;
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return std::nullopt;
    int left = static_cast<int>(n);
    for (const auto* m = reinterpret_cast<const nlmsghdr*>(buffer); mnl_nlmsg_ok(m, left);
         m = mnl_nlmsg_next(m, &left)) {
      if (m->nlmsg_seq != sent) continue;  // an answer to an earlier, abandoned read
      if (m->nlmsg_type == NLMSG_ERROR) return std::nullopt;
      if ((m->nlmsg_type & 0xff) != NFT_MSG_NEWGEN) continue;
      Attributes attrs;
      if (mnl_attr_parse(m, sizeof(nfgenmsg), CollectAttribute, &attrs) < 0 ||
          attrs.at[NFTA_GEN_ID] == nullptr) {
        return std::nullopt;
      }
      return be32toh(mnl_attr_get_u32(attrs.at[NFTA_GEN_ID]));
    }
  }
}

bool Listen(int fd, bool on) {
  int group = NFNLGRP_NFTABLES;
  return ::setsockopt(fd, SOL_NETLINK, on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group,
                      sizeof(group)) == 0;
}

}  // namespace

MonitorOwner::Window MonitorOwner::BeginCommit() {
  char name[17] = {};
  ::prctl(PR_GET_NAME, name, 0, 0, 0);
  std::lock_guard lock(mu);
  if (std::find(committers.begin(), committers.end(), name) == committers.end()) {
    committers.emplace_back(name);
  }
  if (listen_fd < 0 || query_fd < 0 || !Listen(listen_fd, false)) return {};
  const std::optional<uint32_t> generation = ReadGeneration(query_fd);
  if (!generation) {
    (void)Listen(listen_fd, true);
    return {};
  }
  return {true, *generation};
}

void MonitorOwner::EndCommit(const Window& window, uint32_t commits) {
  if (!window.open) return;
  std::lock_guard lock(mu);
  if (listen_fd < 0 || query_fd < 0) return;
  const bool listening = Listen(listen_fd, true);
  const std::optional<uint32_t> generation = ReadGeneration(query_fd);
  // One more per transaction of ours (none for one that failed); anything
  // else was someone else's.
  if (!listening || !generation || *generation - window.generation > commits) {
    unseen = true;
  }
}

bool MonitorOwner::IsCommitter(const std::string& name) {
  std::lock_guard lock(mu);
  return std::find(committers.begin(), committers.end(), name) != committers.end();
}

struct TableMonitor::State {
  mnl_socket* socket = nullptr;
  std::shared_ptr<MonitorOwner> owner;
  std::vector<char> buffer = std::vector<char>(1 << 16);
  // The transaction under way: what it did to the table, in order, merged by kind.
  std::map<std::string, Notice> pending;
  std::vector<std::string> order;
  bool rules = false;
  std::vector<std::string> out;
  mnl_socket* query = nullptr;  // for the generation
  ~State() {
    if (owner) {
      std::lock_guard lock(owner->mu);
      owner->listen_fd = -1;
      owner->query_fd = -1;
    }
    if (socket != nullptr) mnl_socket_close(socket);
    if (query != nullptr) mnl_socket_close(query);
  }

  // Whether the process `pid` named `name` that committed a transaction is this one.
  bool Ours(uint32_t pid, const std::string& name) const {
    const std::string task = "/proc/self/task/" + std::to_string(pid);
    struct stat st {};
    if (::stat(task.c_str(), &st) == 0) return true;
    // Not one of our threads as this PID namespace numbers them. A process
    // this namespace cannot see at all (we run in another PID namespace than
    // the kernel reports in) is ours when it has the name of a thread that
    // committed through the backend.
    if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0) return false;
    return owner->IsCommitter(name);
  }

  void Note(const std::string& kind, const std::string& verb, const std::string& name, size_t count = 1) {
    // Elements are told apart by set; anything else by kind.
    const std::string key = kind + " " + verb + (kind == "element" ? " " + name : "");
    auto [it, inserted] = pending.try_emplace(key, Notice{kind, verb, {}, 0});
    if (inserted) order.push_back(key);
    Notice& n = it->second;
    n.count += count;
    if (!name.empty() && std::find(n.names.begin(), n.names.end(), name) == n.names.end())
      n.names.push_back(name);
  }

  void OnMessage(const nlmsghdr* nlh) {
    if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) return;
    const int type = nlh->nlmsg_type & 0xff;
    const auto* gen = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    Attributes attrs;
    if (mnl_attr_parse(nlh, sizeof(nfgenmsg), CollectAttribute, &attrs) < 0) return;
    if (type == NFT_MSG_NEWGEN) {
      const uint32_t pid =
          attrs.at[NFTA_GEN_PROC_PID] != nullptr ? be32toh(mnl_attr_get_u32(attrs.at[NFTA_GEN_PROC_PID])) : 0;
      const std::string name = Attribute(attrs.at[NFTA_GEN_PROC_NAME]);
      if (!pending.empty() && !Ours(pid, name)) {
        const std::string by =
            " by " + (name.empty() ? std::string("a process") : name) + " (pid " + std::to_string(pid) + ")";
        for (const std::string& key : order) out.push_back(pending.at(key).Text() + by);
        if (rules) owner->rules_touched = true;
      }
      pending.clear();
      order.clear();
      rules = false;
      return;
    }
    // Every object message names its table in attribute 1 (NFTA_TABLE_NAME,
    // NFTA_CHAIN_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_RULE_TABLE, ...).
    if (gen->nfgen_family != NFPROTO_INET || Attribute(attrs.at[1]) != kTableName) return;
    const auto name = [&](int attribute) { return Attribute(attrs.at[attribute]); };
    switch (type) {
      case NFT_MSG_NEWTABLE:
        Note("table", "created or changed", "");
        break;
      case NFT_MSG_DELTABLE:
        Note("table", "deleted", "");
        break;
      case NFT_MSG_NEWCHAIN:
        Note("chain", "created or changed", name(NFTA_CHAIN_NAME));
        break;
      case NFT_MSG_DELCHAIN:
        Note("chain", "deleted", name(NFTA_CHAIN_NAME));
        break;
      case NFT_MSG_NEWRULE:
      case NFT_MSG_DELRULE:
        Note("rule", type == NFT_MSG_NEWRULE ? "added" : "deleted", name(NFTA_RULE_CHAIN));
        rules = true;
        break;
      case NFT_MSG_NEWSET:
      case NFT_MSG_DELSET:
        // Anonymous sets ("__set0") are parts of rules, which are told already.
        if (!name(NFTA_SET_NAME).starts_with("__"))
          Note("set", type == NFT_MSG_NEWSET ? "created" : "deleted", name(NFTA_SET_NAME));
        break;
      case NFT_MSG_NEWSETELEM:
      case NFT_MSG_DELSETELEM: {
        if (name(NFTA_SET_ELEM_LIST_SET).starts_with("__")) break;
        size_t count = 0;
        if (const nlattr* list = attrs.at[NFTA_SET_ELEM_LIST_ELEMENTS]; list != nullptr)
          mnl_attr_parse_nested(list, CountElement, &count);
        Note("element", type == NFT_MSG_NEWSETELEM ? "added" : "deleted", name(NFTA_SET_ELEM_LIST_SET),
             std::max<size_t>(count, 1));
        break;
      }
      default:
        if (type != NFT_MSG_GETTABLE && type != NFT_MSG_GETCHAIN && type != NFT_MSG_GETRULE &&
            type != NFT_MSG_GETSET && type != NFT_MSG_GETSETELEM && type != NFT_MSG_GETGEN &&
            type != NFT_MSG_TRACE) {
          Note("object", "changed", "message " + std::to_string(type));
        }
    }
  }
};

TableMonitor::TableMonitor(std::unique_ptr<State> state) : state_(std::move(state)) {}
TableMonitor::TableMonitor(TableMonitor&& other) noexcept = default;
TableMonitor::~TableMonitor() = default;

Result<TableMonitor> TableMonitor::Open(const std::string& netns, std::shared_ptr<MonitorOwner> owner) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "watching nftables changes");
  auto state = std::make_unique<State>();
  state->owner = std::move(owner);
  state->socket = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (state->socket == nullptr) return Unavailable(std::string("netlink socket: ") + std::strerror(errno));
  if (mnl_socket_bind(state->socket, 0, MNL_SOCKET_AUTOPID) < 0)
    return Unavailable(std::string("netlink bind: ") + std::strerror(errno));
  int group = NFNLGRP_NFTABLES;
  if (mnl_socket_setsockopt(state->socket, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
    return Unavailable(std::string("joining the nftables notification group: ") + std::strerror(errno));
  }
  // Our own commits are announced too, an element at a time: room for a big
  // one (root may exceed rmem_max; without CAP_NET_ADMIN the default stays).
  const int size = 16 << 20;
  if (::setsockopt(mnl_socket_get_fd(state->socket), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    (void)::setsockopt(mnl_socket_get_fd(state->socket), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  state->query = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (state->query == nullptr || mnl_socket_bind(state->query, 0, MNL_SOCKET_AUTOPID) < 0)
    return Unavailable(std::string("netlink socket: ") + std::strerror(errno));
  {
    std::lock_guard lock(state->owner->mu);
    state->owner->listen_fd = mnl_socket_get_fd(state->socket);
    state->owner->query_fd = mnl_socket_get_fd(state->query);
  }
  return TableMonitor(std::move(state));
}

Result<std::vector<std::string>> TableMonitor::Next(std::chrono::milliseconds timeout) {
  State& s = *state_;
  const int fd = mnl_socket_get_fd(s.socket);
  int wait = static_cast<int>(timeout.count());
  while (true) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, wait);
    if (ready < 0 && errno != EINTR) return Unavailable(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) break;
    const ssize_t n = ::recv(fd, s.buffer.data(), s.buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (errno == ENOBUFS) {
        // Lost notifications: whose they were is unknown.
        s.pending.clear();
        s.order.clear();
        s.rules = false;
        s.out.push_back("nftables change notifications lost (the socket's buffer overflowed)");
        continue;
      }
      return Unavailable(std::string("reading nftables notifications: ") + std::strerror(errno));
    }
    int left = static_cast<int>(n);
    for (const auto* nlh = reinterpret_cast<const nlmsghdr*>(s.buffer.data()); mnl_nlmsg_ok(nlh, left);
         nlh = mnl_nlmsg_next(nlh, &left)) {
      s.OnMessage(nlh);
    }
    wait = 0;  // drain what is there, then answer
  }
  if (s.owner->unseen.exchange(false)) {
    s.out.push_back("another process committed to nftables while the agent did (what it changed is unseen)");
  }
  return std::exchange(s.out, {});
}

}  // namespace netpol::dataplane::nft
