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

// Fields of a concatenation, "a . b . c" -> {a, b, c}, as views into `text`.
size_t SplitFields(std::string_view text, std::string_view* out, size_t max) {
  size_t n = 0;
  while (n < max) {
    const size_t at = text.find(" . ");
    out[n++] = text.substr(0, at);
    if (at == std::string_view::npos) return n;
    text.remove_prefix(at + 3);
  }
  return max + 1;  // more fields than any set has
}

// Dotted-quad IPv4 by hand: this runs for every element of a batch.
bool ParseV4(std::string_view text, uint32_t& out) {
  uint32_t value = 0;
  int octets = 0;
  size_t i = 0;
  while (octets < 4) {
    uint32_t octet = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 3) {
      octet = octet * 10 + static_cast<uint32_t>(text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || octet > 255 || (digits > 1 && text[i - digits] == '0')) return false;
    value = value << 8 | octet;
    ++octets;
    if (octets < 4) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
  }
  out = value;
  return i == text.size();
}

// Appends one field; `pad` rounds it up to 4 bytes (inside a concatenation).
Status AppendField(std::string_view type, std::string_view text, bool pad, std::vector<uint8_t>& out) {
  const size_t start = out.size();
  if (uint32_t v4 = 0; type == "ipv4_addr" && ParseV4(text, v4)) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v4 >> (8 * i)));
  } else if (type == "ipv4_addr" || type == "ipv6_addr") {
    const Result<IpAddress> ip = IpAddress::Parse(text);
    if (!ip || ip->is_v4() != (type == "ipv4_addr")) {
      return InvalidArgument("not an " + std::string(type) + ": " + std::string(text));
    }
    if (ip->is_v4()) {
      for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(ip->v4() >> (8 * i)));
    } else {
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(ip->high() >> (8 * i)));
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(ip->low() >> (8 * i)));
    }
  } else if (type == "inet_proto") {
    int proto = -1;
    if (text == "tcp") proto = 6;
    if (text == "udp") proto = 17;
    if (text == "sctp") proto = 132;
    if (proto < 0) return InvalidArgument("unknown protocol " + std::string(text));
    out.push_back(static_cast<uint8_t>(proto));
  } else if (type == "inet_service") {
    uint64_t port = 0;
    for (const char c : text) {
      if (c < '0' || c > '9' || port > 65535) return InvalidArgument("not a port: " + std::string(text));
      port = port * 10 + static_cast<uint64_t>(c - '0');
    }
    if (text.empty() || port > 65535) return InvalidArgument("not a port: " + std::string(text));
    out.push_back(static_cast<uint8_t>(port >> 8));
    out.push_back(static_cast<uint8_t>(port & 0xff));
  } else if (type == "ifname") {
    if (text.size() < 2 || text.front() != '"' || text.back() != '"' || text.size() - 2 >= 16) {
      return InvalidArgument("not an interface name: " + std::string(text));
    }
    const std::string_view name = text.substr(1, text.size() - 2);
    out.insert(out.end(), name.begin(), name.end());
    out.resize(start + 16, 0);  // IFNAMSIZ, zero-padded
  } else {
    return Error(ErrorCode::kUnimplemented, "no key encoding for " + std::string(type));
  }
  if (pad) out.resize(start + (out.size() - start + 3) / 4 * 4, 0);
  return Ok();
}

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};

}  // namespace

Status EncodeKeyInto(std::string_view type, std::string_view element, std::vector<uint8_t>& key) {
  constexpr size_t kMaxFields = 8;
  std::string_view types[kMaxFields];
  std::string_view fields[kMaxFields];
  const size_t n = SplitFields(type, types, kMaxFields);
  if (n > kMaxFields || SplitFields(element, fields, kMaxFields) != n) {
    return InvalidArgument("element " + std::string(element) + " does not fit " + std::string(type));
  }
  key.clear();
  for (size_t i = 0; i < n; ++i) {
    NETPOL_RETURN_IF_ERROR(AppendField(types[i], fields[i], n > 1, key), "encoding " + std::string(element));
  }
  return Ok();
}

Result<std::vector<uint8_t>> EncodeKey(const std::string& type, const std::string& element) {
  std::vector<uint8_t> key;
  key.reserve(64);
  NETPOL_RETURN_IF_ERROR(EncodeKeyInto(type, element, key), "encoding a key");
  return key;
}

namespace {

constexpr std::string_view kVerdictMap = " : verdict";
constexpr std::string_view kGoto = " : goto ";

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
    if (verdicts && e.add && e.element.find(kGoto) == std::string_view::npos) return false;
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
  std::vector<uint8_t> key;
  key.reserve(64);
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
    std::string_view type = current_layout->type;
    std::string_view element = e.element;
    std::string chain;
    if (verdict) {
      type.remove_suffix(kVerdictMap.size());
      const size_t go = element.find(kGoto);
      if (go != std::string_view::npos) {
        chain = std::string(element.substr(go + kGoto.size()));
        element = element.substr(0, go);
      } else if (e.add) {
        return Internal("map element " + std::string(e.element) + " is no goto");
      } else {
        element = ElementKey(element);
      }
    }
    NETPOL_RETURN_IF_ERROR(EncodeKeyInto(type, element, key), "batch");
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
