// A small netlink client on the kernel's own headers (<linux/netlink.h>), so the
// CNI plugin needs no libmnl and links fully static (it runs on any node's libc).
//
// A request is built as one message: the netlink header, the family's fixed
// header (ifinfomsg, ifaddrmsg, rtmsg, ...), then type-length-value attributes,
// possibly nested. A Socket sends it and reads the replies until the exchange
// ends: the kernel's acknowledgement, the end of a dump, or an error.
//
//   ifinfomsg link{};
//   link.ifi_family = AF_UNSPEC;
//   netlink::Message request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
//   request.Append(link);
//   request.PutString(IFLA_IFNAME, "eth0");
//   const size_t info = request.BeginNest(IFLA_LINKINFO);
//   request.PutString(IFLA_INFO_KIND, "veth");
//   request.EndNest(info);
//   NETPOL_ASSIGN_OR_RETURN(netlink::Socket socket, netlink::Socket::Open(NETLINK_ROUTE), "netlink");
//   NETPOL_RETURN_IF_ERROR(socket.Exchange(request, nullptr), "creating eth0");   // waits for the ack
//
// Replies are handed over one message at a time (`Reply`: its type and the bytes
// after the netlink header); `FixedHeader<T>` and `Attributes` read them. The
// kernel's errors come back as values (errno mapped onto netpol's codes by
// `ErrnoError`); nothing here throws.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/result.h"

namespace netpol::cni::internal::netlink {

// A request under construction. Positions are offsets into one growing buffer,
// so nothing handed out dangles when the buffer grows.
class Message {
 public:
  // NLM_F_REQUEST is always set; `flags` adds NLM_F_CREATE, NLM_F_DUMP, ...
  Message(uint16_t type, uint16_t flags);

  // Appends `header` (a family's fixed header, e.g. ifinfomsg) padded to 4 bytes.
  template <typename T>
  void Append(const T& header) {
    static_assert(std::is_trivially_copyable_v<T>);
    AppendBytes(&header, sizeof(T));
  }
  // Appends an attribute: a nlattr header, then `size` bytes of `data`, padded.
  void Put(uint16_t type, const void* data, size_t size);
  void PutU32(uint16_t type, uint32_t value) { Put(type, &value, sizeof(value)); }
  // A NUL-terminated string, as the kernel expects names (IFLA_IFNAME).
  void PutString(uint16_t type, std::string_view value);
  // A nested attribute: everything put between BeginNest and EndNest(offset) is
  // inside it. Nests may nest.
  size_t BeginNest(uint16_t type);
  void EndNest(size_t offset);

  uint16_t flags() const;
  void AddFlags(uint16_t flags);
  void set_sequence(uint32_t sequence);
  // The whole message, its length field up to date.
  std::span<const std::byte> bytes() const { return {buffer_.data(), buffer_.size()}; }

 private:
  void AppendBytes(const void* data, size_t size);
  // Copies `value` over the bytes at `offset` (the buffer is bytes, so fields are
  // written and read by copy, never through a cast pointer).
  template <typename T>
  void Write(size_t offset, const T& value) {
    std::memcpy(buffer_.data() + offset, &value, sizeof(T));
  }

  std::vector<std::byte> buffer_;
};

// One message of a reply: its type (RTM_NEWLINK, ...) and what follows the netlink
// header. Valid only during the callback it is passed to.
struct Reply {
  uint16_t type = 0;
  uint16_t flags = 0;
  std::span<const std::byte> payload;
};

// The fixed header at the start of a reply's payload; nullopt when it is too short.
template <typename T>
std::optional<T> FixedHeader(const Reply& reply) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (reply.payload.size() < sizeof(T)) return std::nullopt;
  T out;
  std::memcpy(&out, reply.payload.data(), sizeof(T));
  return out;
}

struct Attribute {
  uint16_t type = 0;  // without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits
  std::span<const std::byte> payload;

  // The payload as a string, without its terminating NUL.
  std::string_view AsString() const;
};

// The attributes of a reply after its fixed header of `header_size` bytes (e.g.
// sizeof(ifinfomsg)), or of a nested attribute's payload (header_size 0). A
// malformed attribute ends the list: what comes before it is returned.
std::vector<Attribute> Attributes(std::span<const std::byte> payload, size_t header_size);
inline std::vector<Attribute> Attributes(const Reply& reply, size_t header_size) {
  return Attributes(reply.payload, header_size);
}

// `what: strerror(err)` with the code that fits: ENOENT/ENODEV/ESRCH are kNotFound,
// EEXIST kAlreadyExists, EPERM/EACCES kPermissionDenied, anything else
// kFailedPrecondition.
Error ErrnoError(const std::string& what, int err);

// A netlink socket of one protocol, bound to a port the kernel picks, in the
// network namespace of the thread that opened it (for good: a socket stays in
// its namespace). Move-only; closes on destruction.
class Socket {
 public:
  [[nodiscard]] static Result<Socket> Open(int protocol);
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  // Sends `request` with the next sequence number and reads until the exchange
  // ends. With `on_reply` null the request asks for an acknowledgement (NLM_F_ACK)
  // and succeeds when it is positive. Otherwise every data message is passed to
  // `on_reply` until NLMSG_DONE (a dump) or an acknowledgement (set NLM_F_ACK on
  // a request for one object, which is answered by the object alone). Messages
  // of other sequence numbers or senders (leftovers of an exchange that failed)
  // are skipped. Errors: the kernel's (NLMSG_ERROR, via ErrnoError), a send or
  // receive failure, a truncated datagram, an interrupted dump (kUnavailable:
  // the set changed while it was read; try again).
  Status Exchange(Message& request, const std::function<void(const Reply&)>* on_reply);

 private:
  Socket(int fd, uint32_t port) : fd_(fd), port_(port) {}

  int fd_ = -1;
  uint32_t port_ = 0;  // our address, which the kernel puts in its replies
  uint32_t sequence_ = 0;
};

}  // namespace netpol::cni::internal::netlink
