// Fuzz target: manifest decoding and validation. Any input must be decoded
// without crashing; JSON read in place must give what libyaml gives for the
// same text (objects and diagnostics alike); every object that validates must
// survive encode -> decode unchanged; a list page's continue token read
// alone (ReadListContinue) is the one DecodeListPage reads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/decode.h"
#include "api/encode.h"
#include "api/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netpol::api;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const DecodeResult decoded = Decode(text, "fuzz.yaml", {});
  const DecodeResult by_yaml = Decode(text, "fuzz.yaml", {.json_reader = false});
  if (!(decoded.objects == by_yaml.objects) || !(decoded.diagnostics == by_yaml.diagnostics) ||
      decoded.ignored != by_yaml.ignored) {
    std::abort();
  }
  // A list page's continue token read alone is the one the page decodes with.
  const auto page = DecodeListPage(text, 0, {"Pod", "v1"});
  const auto token = ReadListContinue(text, 0);
  if (page.ok() != token.ok() || (page.ok() && page->continue_token != *token)) std::abort();
  for (const Object& object : decoded.objects) {
    if (!Validate(object).empty()) continue;
    const DecodeResult again = Decode(Encode(object), "encoded.yaml", {});
    if (again.objects.size() != 1 || !(again.objects[0] == object)) std::abort();
  }
  return 0;
}
