#include "dataplane/nft/element_batch.h"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
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

namespace {

// Whether an interval set's elements are one each: a concatenation's are a
// key and its end (the kernel's pipapo sets). A single field's ranges are
// two elements, the second flagged as an interval's end, with the gaps
// between them encoded as nft does: never sent from here.
bool RangesAreElements(const NftSet& set) {
  return !set.interval || set.type.find(" . ") != std::string::npos;
}

}  // namespace

bool Batchable(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout) {
  // Edits come grouped by set: one lookup per run.
  std::optional<std::string_view> checked;
  bool verdicts = false;
  bool interval = false;
  for (const ElementEdit& e : edits) {
    if (checked != e.set) {
      const auto it = layout.find(std::string(e.set));
      // Of map values, only `goto chain` verdicts are encoded here.
      if (it == layout.end() || !RangesAreElements(it->second)) return false;
      const std::string& type = it->second.type;
      verdicts = type.ends_with(kVerdictMap);
      interval = it->second.interval;
      if (!verdicts && type.find(" : ") != std::string::npos) return false;
      checked = e.set;
    }
    if (verdicts && e.add && e.element->verdict() != Verdict::kGoto) return false;
    if (e.element->ranged() != interval) return false;
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
      if (it == layout.end() || !RangesAreElements(it->second))
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
    // An interval set's element (a pipapo set's) is its key and its end,
    // deleted by both as well.
    if (const std::string_view end = e.element->key_end(); !end.empty())
      nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY_END, end.data(), static_cast<uint32_t>(end.size()));
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
    bytes += 2 * key.size() + e.origin.size() + chain.size() + 64;
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

namespace {

struct DumpState {
  const std::vector<FieldKind>* kinds;
  std::map<Element, uint64_t>* out;
  Status error = Ok();
};

Verdict VerdictOf(int32_t code) {
  switch (code) {
    case NFT_GOTO:
      return Verdict::kGoto;
    case NFT_JUMP:
      return Verdict::kJump;
    case NF_ACCEPT:
      return Verdict::kAccept;
    case NF_DROP:
      return Verdict::kDrop;
    case NFT_RETURN:
      return Verdict::kReturn;
    default:
      return Verdict::kContinue;
  }
}

int CounterPackets(nftnl_expr* expr, void* data) {
  const char* name = nftnl_expr_get_str(expr, NFTNL_EXPR_NAME);
  if (name != nullptr && std::string_view(name) == "counter")
    *static_cast<uint64_t*>(data) = nftnl_expr_get_u64(expr, NFTNL_EXPR_CTR_PACKETS);
  return 0;
}

std::string_view Bytes(nftnl_set_elem* e, uint16_t attr) {
  if (!nftnl_set_elem_is_set(e, attr)) return {};
  uint32_t length = 0;
  const void* data = nftnl_set_elem_get(e, attr, &length);
  return {static_cast<const char*>(data), length};
}

// One element of a dump, into the state's map.
int AddElement(nftnl_set_elem* e, void* data) {
  auto& state = *static_cast<DumpState*>(data);
  if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
      (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) &
       (NFT_SET_ELEM_INTERVAL_END | NFT_SET_ELEM_CATCHALL)) != 0) {
    state.error = InvalidArgument("an interval end or catch-all element, which netpol never adds");
    return -1;
  }
  Verdict verdict = Verdict::kNone;
  std::string_view chain;
  if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)) {
    verdict = VerdictOf(static_cast<int32_t>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)));
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
      chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
  }
  Result<Element> element = Element::FromKernel(*state.kinds, Bytes(e, NFTNL_SET_ELEM_KEY),
                                                Bytes(e, NFTNL_SET_ELEM_KEY_END), verdict, chain);
  if (!element) {
    state.error = std::move(element).error();
    return -1;
  }
  uint64_t packets = 0;
  nftnl_set_elem_expr_foreach(e, CounterPackets, &packets);
  state.out->emplace(std::move(*element), packets);
  return 0;
}

// One message of a dump: its elements decoded at once, so a big set never
// sits in libnftnl's structures whole.
int DumpMessage(const nlmsghdr* nlh, void* data) {
  auto& state = *static_cast<DumpState*>(data);
  std::unique_ptr<nftnl_set, SetDeleter> set(nftnl_set_alloc());
  if (nftnl_set_elems_nlmsg_parse(nlh, set.get()) < 0) {
    state.error = Internal("cannot read a set element message");
    return MNL_CB_ERROR;
  }
  return nftnl_set_elem_foreach(set.get(), AddElement, &state) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

}  // namespace

Result<std::map<Element, uint64_t>> ElementBatcher::Elements(const std::string& set,
                                                             const std::vector<FieldKind>& kinds) {
  std::vector<char> buffer(size_t{1} << 16);
  const uint32_t seq = sequence_++;
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buffer.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, uint16_t{NLM_F_DUMP}, seq);
  {
    std::unique_ptr<nftnl_set, SetDeleter> request(nftnl_set_alloc());
    nftnl_set_set_str(request.get(), NFTNL_SET_TABLE, kTableName);
    nftnl_set_set_str(request.get(), NFTNL_SET_NAME, set.c_str());
    nftnl_set_elems_nlmsg_build_payload(nlh, request.get());
  }
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0)
    return Unavailable("asking for set " + set + ": " + std::strerror(errno));
  std::map<Element, uint64_t> out;
  DumpState state{&kinds, &out};
  const unsigned port = mnl_socket_get_portid(socket_);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Unavailable("reading set " + set + ": " + std::strerror(errno));
    const int rc = mnl_cb_run(buffer.data(), static_cast<size_t>(n), seq, port, DumpMessage, &state);
    if (rc == MNL_CB_STOP) break;
    if (rc == MNL_CB_ERROR) {
      const int err = errno;
      if (state.error.ok() && err == ENOENT)
        return NotFound("no set " + set + " in table " + std::string(kTableName));
      if (!state.error.ok()) {
        // The kernel goes on with the dump: read the rest off, so that the
        // socket's next answer is its own.
        for (;;) {
          const ssize_t more = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
          if (more <= 0 ||
              mnl_cb_run(buffer.data(), static_cast<size_t>(more), seq, port, nullptr, nullptr) <= 0)
            break;
        }
        return std::move(state.error).error().WithContext("reading set " + set);
      }
      return Unavailable("reading set " + set + ": " + std::strerror(err));
    }
  }
  return out;
}

Result<uint32_t> ElementBatcher::Generation() {
  std::vector<char> buffer(static_cast<size_t>(MNL_SOCKET_BUFFER_SIZE));
  const uint32_t seq = sequence_++;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, seq);
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0)
    return Unavailable(std::string("asking for the ruleset's generation: ") + std::strerror(errno));
  std::unique_ptr<nftnl_gen, void (*)(const nftnl_gen*)> gen(nftnl_gen_alloc(), nftnl_gen_free);
  const auto parse = [](const nlmsghdr* reply, void* data) {
    return nftnl_gen_nlmsg_parse(reply, static_cast<nftnl_gen*>(data)) < 0 ? MNL_CB_ERROR : MNL_CB_STOP;
  };
  const unsigned port = mnl_socket_get_portid(socket_);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Unavailable(std::string("reading the ruleset's generation: ") + std::strerror(errno));
    const int rc = mnl_cb_run(buffer.data(), static_cast<size_t>(n), seq, port, parse, gen.get());
    if (rc == MNL_CB_ERROR)
      return Unavailable(std::string("reading the ruleset's generation: ") + std::strerror(errno));
    if (rc == MNL_CB_STOP) break;
  }
  if (!nftnl_gen_is_set(gen.get(), NFTNL_GEN_ID)) return Internal("the kernel gave no ruleset generation");
  return nftnl_gen_get_u32(gen.get(), NFTNL_GEN_ID);
}

}  // namespace netpol::dataplane::nft
