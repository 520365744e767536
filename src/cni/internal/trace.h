// When ADD's time goes: with NETPOL_CNI_TRACE=<file> in its environment, the
// plugin appends one line per step it reaches, "<container id> <step>
// <CLOCK_MONOTONIC ns>", so a benchmark (or an operator chasing a slow pod
// start) can line the steps up against its own clock and the agent's.
//
//   TraceStep(call.container_id, "allocated");   // nothing at all without the variable
//
// One write(2) per step, O_APPEND, so concurrent plugins' lines do not mix.
#pragma once

#include <string>

namespace netpol::cni::internal {

void TraceStep(const std::string& container_id, const char* step);

}  // namespace netpol::cni::internal
