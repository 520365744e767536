// Fuzz target: IP address, prefix and port text parsing. Parsed values print
// to text that parses back to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/ip.h"
#include "policy/flow_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netpol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const Result<IpAddress> ip = IpAddress::Parse(text)) {
    const Result<IpAddress> again = IpAddress::Parse(ip->ToString());
    if (!again || !(*again == *ip)) std::abort();
  }
  if (const Result<IpPrefix> prefix = IpPrefix::Parse(text)) {
    const Result<IpPrefix> again = IpPrefix::Parse(prefix->ToString());
    if (!again || !(*again == *prefix) || !prefix->Contains(prefix->address())) std::abort();
  }
  (void)policy::ParsePortText(text);
  return 0;
}
