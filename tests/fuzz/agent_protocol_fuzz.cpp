// Fuzz target: the agent's side of the CNI protocol (cni/protocol.h), which
// reads whatever a local client writes to its socket. Decoding never crashes
// or throws; what decodes encodes to text that decodes to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cni/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netpol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const Result<cni::AgentRequest> request = cni::DecodeRequest(text)) {
    const Result<cni::AgentRequest> again = cni::DecodeRequest(cni::EncodeRequest(*request));
    if (!again || !(*again == *request)) std::abort();
  }
  if (const Result<cni::AgentReply> reply = cni::DecodeReply(text)) {
    const Result<cni::AgentReply> again = cni::DecodeReply(cni::EncodeReply(*reply));
    if (!again || !(*again == *reply)) std::abort();
  }
  return 0;
}
