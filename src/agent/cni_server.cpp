#include "agent/cni_server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>

namespace netpol::agent {
namespace {

using Clock = std::chrono::steady_clock;

// How often a blocked read looks at `stop`.
constexpr auto kSlice = std::chrono::milliseconds(200);

timeval TimevalOf(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

}  // namespace

std::optional<std::string> CniConnection::ReadLine() {
  const auto deadline = Clock::now() + options_.read_timeout;
  char buffer[4096];
  while (buffered_.find('\n') == std::string::npos) {
    if (stop_.load() || buffered_.size() > options_.max_line) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out_ = true;
      return std::nullopt;
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready =
        ::poll(&p, 1, static_cast<int>(std::min(left, std::chrono::milliseconds(kSlice)).count()));
    if (ready < 0 && errno != EINTR) return std::nullopt;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) return std::nullopt;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return std::nullopt;
    }
    buffered_.append(buffer, static_cast<size_t>(n));
  }
  const size_t end = buffered_.find('\n');
  std::string line = buffered_.substr(0, end);
  buffered_.erase(0, end + 1);
  return line;
}

bool CniConnection::Write(const std::string& text) {
  size_t sent = 0;
  while (sent < text.size()) {
    // SO_SNDTIMEO bounds each send.
    const ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

CniServer::~CniServer() {
  if (fd_ >= 0) ::close(fd_);
}

Status CniServer::Bind() {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(options_.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    return Unavailable("cannot listen on " + options_.path + ": " + parent.string() + ": " + ec.message());
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options_.path.size() >= sizeof(address.sun_path)) {
    return InvalidArgument("cannot listen on " + options_.path + ": the path is longer than " +
                           std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, options_.path.c_str(), options_.path.size() + 1);
  // A socket file left by an earlier run (a socket nobody listens on any more).
  struct stat st {};
  if (::lstat(options_.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(options_.path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable("cannot listen on " + options_.path + ": socket: " + std::strerror(errno));
  // Root's alone, whatever the umask (a CNI request attaches a pod to the
  // node's network): set between bind and listen, before anyone can connect.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::chmod(options_.path.c_str(), options_.mode) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    return Unavailable("cannot listen on " + options_.path + ": " + std::strerror(err));
  }
  fd_ = fd;
  return Ok();
}

void CniServer::Serve(const std::atomic<bool>& stop, const Handler& handler,
                      const std::function<void()>& beat) {
  bool saturated = false;
  while (!stop.load()) {
    beat();
    {
      std::unique_lock lock(mu_);
      // A worker for every connection taken: at the cap, leave the next ones
      // in the listen queue until one is free.
      if (stats_.open + queue_.size() >= options_.max_connections) {
        if (!saturated) {
          saturated = true;
          log_(true, "CNI connections at the cap (" + std::to_string(options_.max_connections) +
                         " served at once); new ones wait in the listen queue");
        }
        free_.wait_for(lock, kSlice);
        continue;
      }
      if (saturated) {
        saturated = false;
        log_(false, "CNI connections below the cap again");
      }
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kSlice.count())) <= 0) continue;
    const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const timeval send_timeout = TimevalOf(options_.write_timeout);
    ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    std::lock_guard lock(mu_);
    ++stats_.connections;
    queue_.push_back(client);
    // Start a worker when every one is busy (never more than the cap: a
    // connection is only taken when one is free or can be started).
    if (stats_.open + queue_.size() > workers_.size()) {
      workers_.emplace_back([this, &stop, &handler] { Work(stop, handler); });
      stats_.workers = workers_.size();
    }
    work_.notify_one();
  }
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    work_.notify_all();
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  for (const int client : queue_) ::close(client);
  queue_.clear();
  ::close(fd_);
  fd_ = -1;
  ::unlink(options_.path.c_str());
}

void CniServer::Work(const std::atomic<bool>& stop, const Handler& handler) {
  ::pthread_setname_np(::pthread_self(), "np-cni-request");
  std::unique_lock lock(mu_);
  while (true) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping
    const int client = queue_.front();
    queue_.pop_front();
    ++stats_.open;
    lock.unlock();
    CniConnection connection(client, options_, stop);
    bool failed = false;
    try {
      handler(connection);
    } catch (const std::exception& e) {
      failed = true;
      log_(true, std::string("a CNI request failed: ") + e.what());
    } catch (...) {
      failed = true;
      log_(true, "a CNI request failed");
    }
    ::close(client);
    if (connection.timed_out()) {
      log_(true, "a CNI client sent no whole line within " + std::to_string(options_.read_timeout.count()) +
                     " ms; its connection is closed");
    }
    lock.lock();
    --stats_.open;
    if (connection.timed_out()) ++stats_.timeouts;
    if (failed) ++stats_.failures;
    free_.notify_one();
  }
}

CniServerStats CniServer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace netpol::agent
