// Arguments and environment for execve, prepared before fork.
//
//   ExecArgs args({"ip", "netns", "exec", "pod-1", "sleep", "60"}, {"PATH=/usr/bin:/bin"});
//   pid_t pid = fork();
//   if (pid == 0) { dup2(log, 1); execvpe(args.file(), args.argv(), args.envp()); _exit(127); }
//
// After fork in a multi-threaded process the child may only make system calls:
// another thread may have held the allocator's lock at the fork, so building
// argument vectors in the child can deadlock it. Build them here, before.
#pragma once

#include <string>
#include <vector>

namespace netpol {

class ExecArgs {
 public:
  // `env` empty: the calling process's environment.
  explicit ExecArgs(std::vector<std::string> argv, std::vector<std::string> env = {});
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;

  const char* file() const { return argv_.front().c_str(); }
  char* const* argv() const { return argv_pointers_.data(); }
  char* const* envp() const { return env_pointers_.data(); }

 private:
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::vector<char*> argv_pointers_;
  std::vector<char*> env_pointers_;
};

}  // namespace netpol
