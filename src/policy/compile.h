// From the engine to the compiled form: the compiler a node runs on every
// change, and which pods are local.
//
//   std::map<std::string, std::string> local = LocalPodsByAddress(engine, HostRoutes(netns));
//   NodeProgram program = CompileNode(engine, local);
//
// Apart from policy/compiled.h so that a backend, which sees only the compiled
// form, never includes the engine.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/ip.h"
#include "policy/compiled.h"
#include "policy/engine.h"

namespace netpol::policy {

// Compiles the pods named in `local` (namespace/name -> host interface, "" when
// unknown). Pods without an IP are skipped: no packet can carry them.
NodeProgram CompileNode(const Engine& engine, const std::map<std::string, std::string>& local);

// CompileNode for a caller that compiles one engine again and again (the node
// agent, on every change): it keeps each rule's peer addresses between
// compiles and gathers them again only when the engine has changed a part
// they were read from (a member of a matched class, the classes a peer
// matches). The result equals CompileNode's on the same engine state
// (tests/policy/compile_test.cpp checks it over random changes).
//
//   NodeCompiler compiler;
//   for (;;) { apply changes to engine; backend.Apply(compiler.Compile(engine, local)); }
class NodeCompiler {
 public:
  NodeCompiler();
  ~NodeCompiler();
  NodeCompiler(NodeCompiler&&) noexcept;
  NodeCompiler& operator=(NodeCompiler&&) noexcept;

  NodeProgram Compile(const Engine& engine, const std::map<std::string, std::string>& local);

  struct Cache;

 private:
  std::unique_ptr<Cache> cache_;
};

// The engine's pods with an address in `interfaces` (address -> host-side
// interface, e.g. a node's host routes): "namespace/name" -> interface, the
// `local` CompileNode wants.
std::map<std::string, std::string> LocalPodsByAddress(const Engine& engine,
                                                      const std::map<IpAddress, std::string>& interfaces);

}  // namespace netpol::policy
