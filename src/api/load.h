// Loading manifests from files, directories and stdin, all-or-nothing.
//
//   LoadResult loaded = LoadManifests({"examples/wordpress", "-"}, DecodeOptions{});
//   for (const Diagnostic& d : loaded.diagnostics) std::cerr << d.ToString() << "\n";
//   if (!loaded.ok()) return 2;           // any invalid object rejects the whole input
//   Use(loaded.objects);
//
// Paths follow kubectl -f: a file, a directory (recursively, *.yaml, *.yml and
// *.json, in name order) or "-" for stdin. Every object is decoded and validated,
// every problem is reported, and duplicates (same kind, namespace and name) are
// errors.
#pragma once

#include <istream>
#include <map>
#include <string>
#include <vector>

#include "api/decode.h"
#include "api/diagnostic.h"
#include "api/objects.h"

namespace netpol::api {

struct LoadResult {
  std::vector<Object> objects;  // empty when there are errors
  Diagnostics diagnostics;      // errors and warnings, in input order
  std::map<std::string, int> ignored;
  int files = 0;

  bool ok() const { return !HasErrors(diagnostics); }
};

LoadResult LoadManifests(const std::vector<std::string>& paths, const DecodeOptions& options,
                         std::istream& stdin_stream);

// Decodes and validates one in-memory text (as LoadManifests does per file).
LoadResult LoadText(std::string_view text, std::string_view name, const DecodeOptions& options);
// The same for one parsed JSON object (from the API).
LoadResult LoadJson(const nlohmann::json& object, std::string_view name, const DecodeOptions& options);

}  // namespace netpol::api
