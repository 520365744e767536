#include "dataplane/nft/element_batch.h"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>

#include "base/netns.h"

namespace netpol::dataplane::nft {
namespace {

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};

constexpr std::string_view kVerdictMap = " : verdict";

}  // namespace

bool Batchable(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout) {
  // Edits come grouped by set: one lookup per run.
  std::optional<std::string_view> checked;
  bool verdicts = false;
  for (const ElementEdit& e : edits) {
    if (checked != e.set) {
      const auto it = layout.find(std::string(e.set));
      // Interval elements need libnftables' range encoding; of map values,
      // only `goto chain` verdicts are encoded here.
      if (it == layout.end() || it->second.interval) return false;
      const std::string& type = it->second.type;
      verdicts = type.ends_with(kVerdictMap);
      if (!verdicts && type.find(" : ") != std::string::npos) return false;
      checked = e.set;
    }
    if (verdicts && e.add && e.element->verdict() != Verdict::kGoto) return false;
  }
  return true;
}

Result<ElementBatcher> ElementBatcher::Open(const std::string& netns) {
  // A socket belongs to the namespace it was opened in.
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "opening a netfilter socket");
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr)
    return FailedPrecondition(std::string("cannot open a netfilter socket: ") + std::strerror(errno));
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(nl);
    return FailedPrecondition(std::string("cannot bind a netfilter socket: ") + std::strerror(err));
  }
  timeval timeout{5, 0};
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ElementBatcher batcher(nl);
  batcher.sequence_ = static_cast<uint32_t>(std::time(nullptr));
  return batcher;
}

ElementBatcher::ElementBatcher(ElementBatcher&& other) noexcept
    : socket_(other.socket_), sequence_(other.sequence_) {
  other.socket_ = nullptr;
}

ElementBatcher& ElementBatcher::operator=(ElementBatcher&& other) noexcept {
  std::swap(socket_, other.socket_);
  std::swap(sequence_, other.sequence_);
  return *this;
}

ElementBatcher::~ElementBatcher() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Status ElementBatcher::Send(const std::vector<ElementEdit>& edits,
                            const std::map<std::string, NftSet>& layout) {
  if (edits.empty()) return Ok();
  // One nftnl_set per (set, operation), in edit order (deletes first).
  std::vector<std::pair<std::unique_ptr<nftnl_set, SetDeleter>, bool>> groups;
  size_t bytes = size_t{64} * 1024;
  size_t per_message = 0;
  // Edits come grouped by set: the set's layout is looked up once per run.
  std::optional<std::string_view> current_set;
  const NftSet* current_layout = nullptr;
  const std::string* current_name = nullptr;
  std::optional<std::string_view> udata_origin;
  std::string udata_bytes;
  for (const ElementEdit& e : edits) {
    const bool new_set = !current_set || *current_set != e.set;
    if (new_set) {
      const auto it = layout.find(std::string(e.set));
      if (it == layout.end() || it->second.interval)
        return Internal("set " + std::string(e.set) + " cannot be sent as a batch");
      current_set = e.set;
      current_layout = &it->second;
      current_name = &it->first;
    }
    // A verdict map's element: its key, and (added) the chain its value goes to.
    const bool verdict = current_layout->type.ends_with(kVerdictMap);
    if (verdict && e.add && e.element->verdict() != Verdict::kGoto)
      return Internal("map element " + e.element->Text() + " is no goto");
    const std::string_view key = e.element->key();
    const std::string chain(verdict && e.add ? e.element->chain() : std::string_view{});
    // A new message per set and operation, and every kMaxPerMessage elements.
    constexpr size_t kMaxPerMessage = 512;
    if (groups.empty() || groups.back().second != e.add || per_message == kMaxPerMessage || new_set) {
      per_message = 0;
      std::unique_ptr<nftnl_set, SetDeleter> set(nftnl_set_alloc());
      nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, kTableName);
      nftnl_set_set_str(set.get(), NFTNL_SET_NAME, current_name->c_str());
      groups.emplace_back(std::move(set), e.add);
    }
    nftnl_set_elem* elem = nftnl_set_elem_alloc();
    nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY, key.data(), static_cast<uint32_t>(key.size()));
    if (e.add) {
      // The comment, as nft stores it: a udata TLV on the element (built once
      // per run of elements from one rule; libnftnl copies it).
      if (!udata_origin || *udata_origin != e.origin) {
        nftnl_udata_buf* udata = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
        nftnl_udata_put_strz(udata, NFTNL_UDATA_SET_ELEM_COMMENT, CommentText(std::string(e.origin)).c_str());
        udata_bytes.assign(static_cast<const char*>(nftnl_udata_buf_data(udata)), nftnl_udata_buf_len(udata));
        nftnl_udata_buf_free(udata);
        udata_origin = e.origin;
      }
      nftnl_set_elem_set(elem, NFTNL_SET_ELEM_USERDATA, udata_bytes.data(),
                         static_cast<uint32_t>(udata_bytes.size()));
      if (verdict) {
        nftnl_set_elem_set_u32(elem, NFTNL_SET_ELEM_VERDICT, static_cast<uint32_t>(NFT_GOTO));
        nftnl_set_elem_set_str(elem, NFTNL_SET_ELEM_CHAIN, chain.c_str());
      }
    }
    nftnl_set_elem_add(groups.back().first.get(), elem);
    ++per_message;
    bytes += key.size() + e.origin.size() + chain.size() + 64;
  }
  mnl_socket* nl = socket_;
  // The whole batch goes in one send: the socket must take it (as nft does).
  const int send_buffer = static_cast<int>(bytes);
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &send_buffer, sizeof(send_buffer));
  std::vector<char> buffer(bytes);
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buffer.data(), buffer.size());
  uint32_t& seq = sequence_;
  nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq++);
  mnl_nlmsg_batch_next(batch);
  size_t acks = 0;
  for (const auto& [set, add] : groups) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)),
                                          add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, NFPROTO_INET,
                                          static_cast<uint16_t>((add ? NLM_F_CREATE : 0) | NLM_F_ACK), seq++);
    nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
    mnl_nlmsg_batch_next(batch);
    ++acks;
  }
  nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq++);
  mnl_nlmsg_batch_next(batch);
  const ssize_t sent = mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
  mnl_nlmsg_batch_stop(batch);
  if (sent < 0) return FailedPrecondition(std::string("sending the element batch: ") + std::strerror(errno));
  // One acknowledgement per message; an error in any aborts the whole batch.
  std::string error;
  std::vector<char> reply(static_cast<size_t>(MNL_SOCKET_BUFFER_SIZE));
  while (acks > 0) {
    const ssize_t n = mnl_socket_recvfrom(nl, reply.data(), reply.size());
    if (n < 0) return Unavailable(std::string("reading the batch's answer: ") + std::strerror(errno));
    auto* nlh = reinterpret_cast<nlmsghdr*>(reply.data());
    int left = static_cast<int>(n);
    while (mnl_nlmsg_ok(nlh, left)) {
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error != 0 && error.empty()) error = std::strerror(-err->error);
        --acks;
      }
      nlh = mnl_nlmsg_next(nlh, &left);
    }
    if (!error.empty()) break;  // the transaction was aborted: nothing changed
  }
  if (!error.empty())
    return FailedPrecondition("nftables rejected the element batch; nothing was changed: " + error);
  return Ok();
}

}  // namespace netpol::dataplane::nft
