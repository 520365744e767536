#include "base/exec_args.h"

#include <unistd.h>

namespace netpol {

ExecArgs::ExecArgs(std::vector<std::string> argv, std::vector<std::string> env)
    : argv_(std::move(argv)), env_(std::move(env)) {
  if (env_.empty()) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_.emplace_back(*e);
  }
  for (std::string& a : argv_) argv_pointers_.push_back(a.data());
  argv_pointers_.push_back(nullptr);
  for (std::string& e : env_) env_pointers_.push_back(e.data());
  env_pointers_.push_back(nullptr);
}

}  // namespace netpol
