// netload: a small, time-bounded load tool for the dataplane benchmark.
//
//   netload serve PORT SECONDS            accept; answer 1 byte per connection, or sink a stream
//   netload crr IP PORT SECONDS [CONC]    connect-request-response-close rate (like netperf TCP_CRR)
//   netload stream IP PORT SECONDS        one TCP stream's throughput
//   netload until IP PORT open|closed SECONDS
//                                         a new connection every 2 ms (each given 50 ms)
//                                         until one sees the wanted state; prints the wall-clock
//                                         time (s since the epoch) that connection started
//
// Prints one number (connections/s, Gbit/s, or a time). Every loop stops at its deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in Address(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

int Serve(int port, int seconds) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in any = Address("0.0.0.0", port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 || listen(fd, 1024) != 0) {
    std::perror("netload serve");
    return 2;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) != 1) continue;
    const int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    // First byte decides: 'r' = request/response, anything else = stream sink.
    char first = 0;
    timeval tv{2, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (recv(conn, &first, 1, 0) != 1) {
      close(conn);
      continue;
    }
    if (first == 'r') {
      (void)send(conn, "a", 1, MSG_NOSIGNAL);
      close(conn);
      continue;
    }
    workers.emplace_back([conn, deadline] {
      std::vector<char> buffer(1 << 16);
      while (Clock::now() < deadline && recv(conn, buffer.data(), buffer.size(), 0) > 0) {
      }
      close(conn);
    });
  }
  close(fd);
  for (auto& w : workers) w.join();
  return 0;
}

int Crr(const char* ip, int port, int seconds, int concurrency) {
  const sockaddr_in target = Address(ip, port);
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  long done = 0;
  const auto start_one = [&] {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target));
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);  // low bits: fd; bit 32: request sent
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  for (int i = 0; i < concurrency; ++i) start_one();
  const auto begin = Clock::now();
  epoll_event events[64];
  while (Clock::now() < deadline) {
    const int n = epoll_wait(ep, events, 64, 100);
    for (int i = 0; i < n; ++i) {
      const int fd = static_cast<int>(events[i].data.u64 & 0xffffffff);
      const bool sent = (events[i].data.u64 >> 32) != 0;
      if ((events[i].events & (EPOLLERR | EPOLLHUP)) != 0 && !sent) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        start_one();
        continue;
      }
      if (!sent && (events[i].events & EPOLLOUT) != 0) {
        (void)send(fd, "r", 1, MSG_NOSIGNAL);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<uint64_t>(fd) | (uint64_t{1} << 32);
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        continue;
      }
      if (sent && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        char b;
        if (recv(fd, &b, 1, 0) == 1) ++done;
        // Close with RST so no TIME_WAIT piles up in a short benchmark.
        linger l{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        start_one();
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  std::printf("%.0f\n", static_cast<double>(done) / elapsed);
  return 0;
}

int Stream(const char* ip, int port, int seconds) {
  const sockaddr_in target = Address(ip, port);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
    std::perror("netload stream");
    return 2;
  }
  std::vector<char> buffer(1 << 16, 's');
  const auto begin = Clock::now();
  const auto deadline = begin + std::chrono::seconds(seconds);
  double bytes = 0;
  while (Clock::now() < deadline) {
    const ssize_t n = send(fd, buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    bytes += static_cast<double>(n);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  close(fd);
  std::printf("%.2f\n", bytes * 8 / elapsed / 1e9);
  return 0;
}

double WallSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// How long policy takes to reach packets: attempts overlap, so the answer's resolution is
// the 2 ms between attempts, not one attempt's timeout. A first SYN that passes means the
// rule was in force when it was sent: its start time is the one printed.
int Until(const char* ip, int port, bool want_open, int seconds) {
  const sockaddr_in target = Address(ip, port);
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  struct Attempt {
    double started;
    Clock::time_point expires;
  };
  std::vector<Attempt> attempts(65536);
  std::vector<int> open_fds;
  auto next = Clock::now();
  const auto finish = [&](int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    open_fds.erase(std::remove(open_fds.begin(), open_fds.end(), fd), open_fds.end());
  };
  const auto done = [&](double started) {
    std::printf("%.6f\n", started);
    for (const int fd : std::vector<int>(open_fds)) finish(fd);
    close(ep);
    return 0;
  };
  epoll_event events[64];
  while (Clock::now() < deadline) {
    if (Clock::now() >= next) {
      next += std::chrono::milliseconds(2);
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd >= 0 && static_cast<size_t>(fd) < attempts.size()) {
        attempts[static_cast<size_t>(fd)] = {WallSeconds(), Clock::now() + std::chrono::milliseconds(50)};
        (void)connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target));
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        open_fds.push_back(fd);
      } else if (fd >= 0) {
        close(fd);
      }
    }
    const int n = epoll_wait(ep, events, 64, 1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      const double started = attempts[static_cast<size_t>(fd)].started;
      finish(fd);
      if ((error == 0) == want_open) return done(started);
    }
    // Attempts without an answer in 50 ms count as closed (a dropped SYN).
    const auto now = Clock::now();
    for (const int fd : std::vector<int>(open_fds)) {
      if (attempts[static_cast<size_t>(fd)].expires > now) continue;
      const double started = attempts[static_cast<size_t>(fd)].started;
      finish(fd);
      if (!want_open) return done(started);
    }
  }
  for (const int fd : std::vector<int>(open_fds)) finish(fd);
  close(ep);
  std::fprintf(stderr, "netload until: %s:%d never %s in %d s\n", ip, port, want_open ? "opened" : "closed",
               seconds);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "serve") return Serve(std::atoi(a[1].c_str()), std::atoi(a[2].c_str()));
  if ((a.size() == 4 || a.size() == 5) && a[0] == "crr") {
    return Crr(a[1].c_str(), std::atoi(a[2].c_str()), std::atoi(a[3].c_str()),
               a.size() == 5 ? std::atoi(a[4].c_str()) : 8);
  }
  if (a.size() == 4 && a[0] == "stream")
    return Stream(a[1].c_str(), std::atoi(a[2].c_str()), std::atoi(a[3].c_str()));
  if (a.size() == 5 && a[0] == "until" && (a[3] == "open" || a[3] == "closed"))
    return Until(a[1].c_str(), std::atoi(a[2].c_str()), a[3] == "open", std::atoi(a[4].c_str()));
  std::fprintf(stderr,
               "usage: netload serve PORT SECONDS | crr IP PORT SECONDS [CONC] | stream IP PORT SECONDS |\n"
               "       until IP PORT open|closed SECONDS\n");
  return 2;
}
