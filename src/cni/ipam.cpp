#include "cni/ipam.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>

namespace netpol::cni {
namespace {

namespace fs = std::filesystem;

// Holds the directory's lock for a scope. flock locks belong to the open file
// description, so threads (each opening the file) exclude each other as
// processes do, and the kernel drops the lock when a killed plugin exits.
class DirectoryLock {
 public:
  static Result<DirectoryLock> Acquire(const std::string& directory) {
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec) return PermissionDenied("cannot create IPAM directory " + directory + ": " + ec.message());
    const std::string path = directory + "/lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return PermissionDenied("cannot open " + path + ": " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Internal("cannot lock " + path + ": " + std::strerror(err));
    }
    return DirectoryLock(fd);
  }
  DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&&) = delete;
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_;
};

// Writes `content` to `path` atomically: a reader (or a crash) sees the old
// file or the new one, never half of it.
Status WriteAtomically(const std::string& path, const std::string& content) {
  const std::string temp =
      fs::path(path).parent_path().string() + "/.tmp-" + fs::path(path).filename().string();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return PermissionDenied("cannot create " + temp + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, content.data(), content.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size()))
    return PermissionDenied("cannot write " + temp + ": " + std::strerror(n < 0 ? err : EIO));
  if (::rename(temp.c_str(), path.c_str()) != 0)
    return PermissionDenied("cannot rename " + temp + " to " + path + ": " + std::strerror(errno));
  return Ok();
}

// Overwrites the hint file `path` in place, as one fixed-size record. Not
// WriteAtomically: replacing an existing file by rename (or truncating it)
// makes ext4 (auto_da_alloc) write the new data out before the rename, and an
// ADD was measured waiting 26 ms on that. A hint needs no atomicity: a record
// that does not parse is ignored (the search starts at the range's start).
Status OverwriteHint(const std::string& path, const std::string& text) {
  std::string record = text + "\n";
  record.resize(std::max<size_t>(record.size(), 63), ' ');
  record += "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return PermissionDenied("cannot open " + path + ": " + std::strerror(errno));
  const ssize_t n = ::pwrite(fd, record.data(), record.size(), 0);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(record.size()))
    return PermissionDenied("cannot write " + path + ": " + std::strerror(n < 0 ? err : EIO));
  return Ok();
}

IpAddress Next(const IpAddress& ip) {
  if (ip.is_v4()) return IpAddress::V4(ip.v4() + 1);
  const uint64_t low = ip.low() + 1;
  return IpAddress::V6(low == 0 ? ip.high() + 1 : ip.high(), low);
}

std::string LastFile(size_t range) {
  return "last_reserved." + std::to_string(range);
}

// The owner's index file: the addresses it holds, one per line, so that a
// repeated ADD finds them without reading every allocation. Named by the
// owner's bytes in hex (a container id or interface name may hold any byte
// but NUL); "" when that name would be too long for the filesystem, and the
// allocator then reads every allocation instead.
std::string OwnerFile(const Owner& owner) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "owner.";
  const auto put = [&](const std::string& bytes) {
    for (const char c : bytes) {
      const auto b = static_cast<unsigned char>(c);
      name += kHex[b >> 4];
      name += kHex[b & 15];
    }
  };
  put(owner.container_id);
  name += '.';
  put(owner.ifname);
  return name.size() <= 250 ? name : "";
}

// The whole content of a small file; nullopt when it cannot be read.
std::optional<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[4096];
  const ssize_t n = ::read(fd, buffer, sizeof(buffer));
  ::close(fd);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<size_t>(n));
}

// What an allocation file holds: its owner, one field per line.
std::string AllocationRecord(const Owner& owner) {
  return owner.container_id + "\n" + owner.ifname + "\n";
}

// What an owner's index file holds: its addresses, one per line.
std::string IndexRecord(const std::vector<IpAddress>& addresses) {
  std::string out;
  for (const IpAddress& ip : addresses) out += ip.ToString() + "\n";
  return out;
}

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

constexpr std::string_view kReservationPrefix = "reserved:";

}  // namespace

Owner ReservationOwner(std::string_view pod_namespace, std::string_view pod_name) {
  return {std::string(kReservationPrefix) + std::string(pod_namespace) + "/" + std::string(pod_name), ""};
}

std::optional<std::string> ReservedPod(const Owner& owner) {
  if (!owner.container_id.starts_with(kReservationPrefix)) return std::nullopt;
  return owner.container_id.substr(kReservationPrefix.size());
}

bool Allocatable(const IpPrefix& range, const IpAddress& ip) {
  if (!range.Contains(ip) || ip == range.address()) return false;
  if (ip.is_v4() && range.length() < 31) {
    const uint32_t host = ~uint32_t{0} >> range.length();
    return (ip.v4() & host) != host;
  }
  return true;
}

Result<Ipam> Ipam::Open(std::string directory, std::vector<IpPrefix> ranges) {
  if (directory.empty()) return InvalidArgument("IPAM needs a state directory");
  for (const IpPrefix& r : ranges) {
    const int host_bits = (r.address().is_v4() ? 32 : 128) - r.length();
    if (host_bits < 2) return InvalidArgument("range " + r.ToString() + " has no addresses to hand out");
  }
  return Ipam(std::move(directory), std::move(ranges));
}

Result<std::vector<Allocation>> Ipam::ListLocked() {
  std::vector<Allocation> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    const Result<IpAddress> ip = IpAddress::Parse(name);
    if (!ip) continue;  // the lock, last_reserved.*, temporary files
    const std::string content = ReadSmallFile(entry.path().string()).value_or("");
    const std::string_view text(content);
    const size_t first = text.find('\n');
    const size_t second = first == std::string_view::npos ? first : text.find('\n', first + 1);
    Allocation a{*ip, {}};
    a.owner.container_id = std::string(text.substr(0, first));
    if (first != std::string_view::npos)
      a.owner.ifname = std::string(text.substr(first + 1, second - first - 1));
    out.push_back(std::move(a));
  }
  if (ec) return PermissionDenied("cannot read IPAM directory " + directory_ + ": " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const Allocation& a, const Allocation& b) { return a.address < b.address; });
  return out;
}

Result<std::vector<Allocation>> Ipam::List() {
  NETPOL_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(directory_), "listing allocations");
  return ListLocked();
}

std::optional<std::vector<IpAddress>> Ipam::HeldLocked(const Owner& owner, const std::string& owner_file) {
  const std::optional<std::string> index = ReadSmallFile(directory_ + "/" + owner_file);
  if (!index) return std::nullopt;
  std::vector<std::optional<IpAddress>> per_range(ranges_.size());
  std::string_view rest(*index);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string line(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const Result<IpAddress> ip = IpAddress::Parse(line);
    if (!ip) continue;
    // Still the owner's? (A release killed half way leaves the index behind.)
    const std::optional<std::string> held = ReadSmallFile(directory_ + "/" + ip->ToString());
    if (!held || *held != AllocationRecord(owner)) return std::nullopt;
    for (size_t r = 0; r < ranges_.size(); ++r) {
      if (ranges_[r].Contains(*ip) && !per_range[r]) per_range[r] = *ip;
    }
  }
  std::vector<IpAddress> out;
  for (const std::optional<IpAddress>& ip : per_range) {
    if (!ip) return std::nullopt;
    out.push_back(*ip);
  }
  return out;
}

Result<std::vector<IpAddress>> Ipam::Allocate(const Owner& owner, const std::optional<Owner>& reserved,
                                              bool* took_over) {
  if (took_over != nullptr) *took_over = false;
  NETPOL_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(directory_), "allocating");
  const std::string owner_file = OwnerFile(owner);
  if (reserved && !owner_file.empty() && !Exists(directory_ + "/" + owner_file)) {
    const std::string reserved_file = OwnerFile(*reserved);
    if (std::optional<std::vector<IpAddress>> held =
            reserved_file.empty() ? std::nullopt : HeldLocked(*reserved, reserved_file)) {
      // Taken over: the allocations first, then the owner's index, then the
      // reservation's. Killed in between, the allocations are the owner's
      // (DEL and GC find them by reading every allocation) and the
      // reservation's index names addresses no longer its own (ignored).
      // Reported before the first write, so a caller undoing a failed ADD
      // gives back what was taken even if a write fails half way.
      if (took_over != nullptr) *took_over = true;
      for (const IpAddress& ip : *held) {
        NETPOL_RETURN_IF_ERROR(WriteAtomically(directory_ + "/" + ip.ToString(), AllocationRecord(owner)),
                               "taking over a reservation");
      }
      NETPOL_RETURN_IF_ERROR(WriteAtomically(directory_ + "/" + owner_file, IndexRecord(*held)),
                             "taking over a reservation");
      std::error_code ignored;  // a leftover names addresses that are not the reservation's
      fs::remove(directory_ + "/" + reserved_file, ignored);
      return *held;
    }
  }
  // The owner's index answers a repeated ADD, and its absence a new owner,
  // without reading every allocation. An index that does not match the
  // allocations (a plugin killed half way) sends this to reading them all.
  std::optional<std::vector<Allocation>> taken;
  if (owner_file.empty() || Exists(directory_ + "/" + owner_file)) {
    if (!owner_file.empty()) {
      if (std::optional<std::vector<IpAddress>> held = HeldLocked(owner, owner_file)) return *held;
    }
    NETPOL_ASSIGN_OR_RETURN(taken, ListLocked(), "allocating");
  }
  std::vector<IpAddress> out;
  for (size_t r = 0; r < ranges_.size(); ++r) {
    const IpPrefix& range = ranges_[r];
    if (taken) {
      const auto mine = std::find_if(taken->begin(), taken->end(), [&](const Allocation& a) {
        return a.owner == owner && range.Contains(a.address);
      });
      if (mine != taken->end()) {
        out.push_back(mine->address);
        continue;
      }
    }
    // Start after the last address handed out; wrap once around the range.
    IpAddress start = Next(range.address());
    if (const std::optional<std::string> hint = ReadSmallFile(directory_ + "/" + LastFile(r))) {
      const std::string text = hint->substr(0, hint->find_first_of(" \n"));
      if (const Result<IpAddress> last = IpAddress::Parse(text); last && range.Contains(*last))
        start = Next(*last);
    }
    if (!range.Contains(start)) start = Next(range.address());
    std::optional<IpAddress> found;
    if (!taken && Allocatable(range, start) && !Exists(directory_ + "/" + start.ToString())) {
      found = start;  // the usual case: the one after the last handed out is free
    } else {
      if (!taken) {
        NETPOL_ASSIGN_OR_RETURN(taken, ListLocked(), "allocating");
      }
      IpAddress candidate = start;
      // Bounded: at most the whole range (capped, so a /64 cannot spin forever).
      constexpr uint64_t kMaxProbes = uint64_t{1} << 24;
      for (uint64_t probe = 0; probe < kMaxProbes; ++probe) {
        if (Allocatable(range, candidate) &&
            std::none_of(taken->begin(), taken->end(),
                         [&](const Allocation& a) { return a.address == candidate; })) {
          found = candidate;
          break;
        }
        candidate = Next(candidate);
        if (!range.Contains(candidate)) candidate = Next(range.address());
        if (candidate == start) break;
      }
    }
    if (!found) return Unavailable("no free address left in " + range.ToString());
    NETPOL_RETURN_IF_ERROR(WriteAtomically(directory_ + "/" + found->ToString(), AllocationRecord(owner)),
                           "recording allocation");
    NETPOL_RETURN_IF_ERROR(OverwriteHint(directory_ + "/" + LastFile(r), found->ToString()),
                           "recording allocation");
    if (taken) taken->push_back({*found, owner});
    out.push_back(*found);
  }
  // The index after the allocations it names: a plugin killed in between
  // leaves allocations without an index, which DEL and GC find by reading
  // every allocation.
  if (!owner_file.empty()) {
    NETPOL_RETURN_IF_ERROR(WriteAtomically(directory_ + "/" + owner_file, IndexRecord(out)),
                           "recording allocation");
  }
  return out;
}

Status Ipam::Release(const Owner& owner, const std::optional<Owner>& give_back_to) {
  NETPOL_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(directory_), "releasing");
  NETPOL_ASSIGN_OR_RETURN(const std::vector<Allocation> taken, ListLocked(), "releasing");
  std::vector<IpAddress> given_back;  // with what the reservation still holds
  for (const Allocation& a : taken) {
    if (give_back_to && a.owner == *give_back_to) given_back.push_back(a.address);
    if (!(a.owner == owner)) continue;
    if (give_back_to) {
      NETPOL_RETURN_IF_ERROR(
          WriteAtomically(directory_ + "/" + a.address.ToString(), AllocationRecord(*give_back_to)),
          "giving addresses back to a reservation");
      given_back.push_back(a.address);
      continue;
    }
    std::error_code ec;
    fs::remove(directory_ + "/" + a.address.ToString(), ec);
    if (ec) return PermissionDenied("cannot release " + a.address.ToString() + ": " + ec.message());
  }
  if (!given_back.empty()) {
    if (const std::string reserved_file = OwnerFile(*give_back_to); !reserved_file.empty()) {
      NETPOL_RETURN_IF_ERROR(WriteAtomically(directory_ + "/" + reserved_file, IndexRecord(given_back)),
                             "giving addresses back to a reservation");
    }
  }
  // The index last: one left by a release killed half way names addresses
  // that are no longer the owner's, which Allocate checks.
  if (const std::string owner_file = OwnerFile(owner); !owner_file.empty()) {
    std::error_code ec;
    fs::remove(directory_ + "/" + owner_file, ec);
    if (ec) return PermissionDenied("cannot remove " + owner_file + ": " + ec.message());
  }
  return Ok();
}

Result<std::vector<Allocation>> Ipam::Retain(const std::vector<Owner>& valid) {
  NETPOL_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(directory_), "collecting garbage");
  NETPOL_ASSIGN_OR_RETURN(const std::vector<Allocation> taken, ListLocked(), "collecting garbage");
  std::vector<Allocation> released;
  for (const Allocation& a : taken) {
    if (ReservedPod(a.owner) || std::find(valid.begin(), valid.end(), a.owner) != valid.end()) continue;
    std::error_code ec;
    fs::remove(directory_ + "/" + a.address.ToString(), ec);
    if (ec) return PermissionDenied("cannot release " + a.address.ToString() + ": " + ec.message());
    released.push_back(a);
  }
  // Every index but the valid owners' and the reservations' (also those a
  // killed release left).
  std::set<std::string> keep;
  for (const Owner& owner : valid) keep.insert(OwnerFile(owner));
  for (const Allocation& a : taken) {
    if (ReservedPod(a.owner)) keep.insert(OwnerFile(a.owner));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("owner.") || keep.contains(name)) continue;
    std::error_code removed;
    fs::remove(entry.path(), removed);
    if (removed) return PermissionDenied("cannot remove " + name + ": " + removed.message());
  }
  if (ec) return PermissionDenied("cannot read IPAM directory " + directory_ + ": " + ec.message());
  return released;
}

}  // namespace netpol::cni
