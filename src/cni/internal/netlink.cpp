#include "cni/internal/netlink.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <utility>

namespace netpol::cni::internal::netlink {
namespace {

// Large enough for any datagram the kernel sends: a dump fills at most 32 KiB
// per datagram (it sizes them by the reader's largest buffer, up to that).
constexpr size_t kReceiveBuffer = 32768;

// Messages and attributes start on 4-byte boundaries (NLMSG_ALIGN and NLA_ALIGN,
// without the kernel macros' int arithmetic).
constexpr size_t Align(size_t size) {
  return (size + 3) & ~size_t{3};
}
constexpr size_t kMessageHeader = Align(sizeof(nlmsghdr));
constexpr size_t kAttributeHeader = Align(sizeof(nlattr));

template <typename T>
T Read(std::span<const std::byte> bytes, size_t offset) {
  T out;
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return out;
}

// The kernel's own words for an error (extended acknowledgement), when it gave them.
std::string ExtendedMessage(uint16_t flags, std::span<const std::byte> payload) {
  if ((flags & NLM_F_ACK_TLVS) == 0 || payload.size() < sizeof(nlmsgerr)) return "";
  // The attributes follow the error and, unless capped, the request it echoes.
  size_t offset = sizeof(nlmsgerr);
  if ((flags & NLM_F_CAPPED) == 0) {
    const auto echoed = Read<nlmsgerr>(payload, 0).msg;
    offset = Align(sizeof(int)) + Align(echoed.nlmsg_len);
  }
  if (offset > payload.size()) return "";
  for (const Attribute& attr : Attributes(payload.subspan(offset), 0)) {
    if (attr.type == NLMSGERR_ATTR_MSG) return std::string(attr.AsString());
  }
  return "";
}

}  // namespace

Message::Message(uint16_t type, uint16_t flags) : buffer_(kMessageHeader) {
  nlmsghdr header{};
  header.nlmsg_len = kMessageHeader;
  header.nlmsg_type = type;
  header.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  Write(0, header);
}

void Message::AppendBytes(const void* data, size_t size) {
  const size_t offset = buffer_.size();
  buffer_.resize(offset + Align(size));  // the padding is zeros
  if (size > 0) std::memcpy(buffer_.data() + offset, data, size);
  Write(offsetof(nlmsghdr, nlmsg_len), static_cast<uint32_t>(buffer_.size()));
}

void Message::Put(uint16_t type, const void* data, size_t size) {
  nlattr attr{};
  attr.nla_len = static_cast<uint16_t>(kAttributeHeader + size);  // the padding is not counted
  attr.nla_type = type;
  AppendBytes(&attr, sizeof(attr));
  AppendBytes(data, size);
}

void Message::PutString(uint16_t type, std::string_view value) {
  const std::string with_nul(value);  // c_str() ends in the NUL the kernel wants
  Put(type, with_nul.c_str(), with_nul.size() + 1);
}

size_t Message::BeginNest(uint16_t type) {
  const size_t offset = buffer_.size();
  Put(type, nullptr, 0);
  return offset;
}

void Message::EndNest(size_t offset) {
  // The nest's length covers everything put since BeginNest.
  Write(offset + offsetof(nlattr, nla_len), static_cast<uint16_t>(buffer_.size() - offset));
}

uint16_t Message::flags() const {
  return Read<uint16_t>(bytes(), offsetof(nlmsghdr, nlmsg_flags));
}

void Message::AddFlags(uint16_t flags) {
  Write(offsetof(nlmsghdr, nlmsg_flags), static_cast<uint16_t>(this->flags() | flags));
}

void Message::set_sequence(uint32_t sequence) {
  Write(offsetof(nlmsghdr, nlmsg_seq), sequence);
}

std::string_view Attribute::AsString() const {
  const auto* text = reinterpret_cast<const char*>(payload.data());
  return {text, strnlen(text, payload.size())};
}

std::vector<Attribute> Attributes(std::span<const std::byte> payload, size_t header_size) {
  std::vector<Attribute> out;
  size_t offset = Align(header_size);
  while (offset + kAttributeHeader <= payload.size()) {
    const auto attr = Read<nlattr>(payload, offset);
    if (attr.nla_len < kAttributeHeader || offset + attr.nla_len > payload.size()) break;
    out.push_back({static_cast<uint16_t>(attr.nla_type & NLA_TYPE_MASK),
                   payload.subspan(offset + kAttributeHeader, attr.nla_len - kAttributeHeader)});
    offset += Align(attr.nla_len);
  }
  return out;
}

Error ErrnoError(const std::string& what, int err) {
  const std::string message = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENODEV || err == ESRCH) return NotFound(message);
  if (err == EEXIST) return {ErrorCode::kAlreadyExists, message};
  if (err == EPERM || err == EACCES) return PermissionDenied(message + " (needs CAP_NET_ADMIN)");
  return FailedPrecondition(message);
}

Result<Socket> Socket::Open(int protocol) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ErrnoError("cannot open a netlink socket", errno);
  Socket out(fd, 0);  // closes the fd on every return below
  sockaddr_nl address{};
  address.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks our port
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) < 0) {
    return ErrnoError("cannot bind a netlink socket", errno);
  }
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0) {
    return ErrnoError("cannot read a netlink socket's address", errno);
  }
  out.port_ = address.nl_pid;
  // Best effort (kernels since 4.12): errors carry the kernel's explanation, and
  // do not echo the whole request back.
  const int on = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  return out;
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(other.port_), sequence_(other.sequence_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  std::swap(fd_, other.fd_);
  std::swap(port_, other.port_);
  std::swap(sequence_, other.sequence_);
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) close(fd_);
}

Status Socket::Exchange(Message& request, const std::function<void(const Reply&)>* on_reply) {
  const uint32_t sequence = ++sequence_;
  request.set_sequence(sequence);
  if (on_reply == nullptr) request.AddFlags(NLM_F_ACK);
  const std::span<const std::byte> out = request.bytes();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const ssize_t sent =
      sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  if (sent < 0) return ErrnoError("netlink send", errno);
  if (static_cast<size_t>(sent) != out.size()) return FailedPrecondition("netlink send: short write");

  std::vector<std::byte> buffer(kReceiveBuffer);
  while (true) {
    sockaddr_nl from{};
    iovec io{buffer.data(), buffer.size()};
    msghdr header{};
    header.msg_name = &from;
    header.msg_namelen = sizeof(from);
    header.msg_iov = &io;
    header.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd_, &header, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("netlink receive", errno);
    if ((header.msg_flags & MSG_TRUNC) != 0) return FailedPrecondition("netlink receive: reply truncated");
    if (from.nl_pid != 0) continue;  // not from the kernel
    const std::span<const std::byte> datagram(buffer.data(), static_cast<size_t>(n));
    // A datagram holds one or more messages, each aligned to 4 bytes.
    for (size_t offset = 0; offset + kMessageHeader <= datagram.size();) {
      const auto message = Read<nlmsghdr>(datagram, offset);
      if (message.nlmsg_len < kMessageHeader || offset + message.nlmsg_len > datagram.size()) {
        return FailedPrecondition("netlink receive: malformed reply");
      }
      const std::span<const std::byte> payload =
          datagram.subspan(offset + kMessageHeader, message.nlmsg_len - kMessageHeader);
      offset += Align(message.nlmsg_len);
      if (message.nlmsg_seq != sequence || message.nlmsg_pid != port_) continue;  // not this exchange's
      if ((message.nlmsg_flags & NLM_F_DUMP_INTR) != 0) {
        return Unavailable("netlink dump interrupted (changed while read); try again");
      }
      switch (message.nlmsg_type) {
        case NLMSG_NOOP:
          break;
        case NLMSG_OVERRUN:
          return FailedPrecondition("netlink receive: overrun");
        case NLMSG_DONE: {  // a dump's end, which may carry an error of its own
          const int error = payload.size() >= sizeof(int) ? Read<int>(payload, 0) : 0;
          if (error < 0) return ErrnoError("netlink dump", -error);
          return Ok();
        }
        case NLMSG_ERROR: {  // an acknowledgement: error 0 is success
          if (payload.size() < sizeof(int)) return FailedPrecondition("netlink receive: short error");
          const int error = Read<int>(payload, 0);
          if (error == 0) return Ok();
          const std::string detail = ExtendedMessage(message.nlmsg_flags, payload);
          return ErrnoError(detail.empty() ? "netlink request" : "netlink request (" + detail + ")", -error);
        }
        default:
          if (on_reply != nullptr) (*on_reply)(Reply{message.nlmsg_type, message.nlmsg_flags, payload});
      }
    }
  }
}

}  // namespace netpol::cni::internal::netlink
