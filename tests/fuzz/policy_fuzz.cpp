// Fuzz target: differential testing of the engine. The input bytes choose a
// small cluster (namespaces, pods, policies); the engine's verdicts, its
// explanations and its matrix must all agree with the plain reference evaluator
// on every pod pair and port.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "policy/engine.h"
#include "testutil/generator.h"
#include "testutil/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  netpol::testing::ByteChoices choices({data, size});
  const auto objects = netpol::testing::GenerateSmallCluster(choices);
  netpol::policy::Engine engine;
  for (const auto& o : objects) engine.Apply(o);
  const std::string mismatch = netpol::testing::CompareEngineWithReference(engine, objects);
  if (!mismatch.empty()) {
    std::fprintf(stderr, "engine and reference disagree: %s\n", mismatch.c_str());
    std::abort();
  }
  return 0;
}
