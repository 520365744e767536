#include "api/load.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>

#include "api/validate.h"

namespace netpol::api {
namespace {

namespace fs = std::filesystem;

bool IsManifestFile(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

void FileError(LoadResult& result, const std::string& file, std::string detail) {
  result.diagnostics.push_back({Severity::kError, {file, 0, 0}, "", "", std::move(detail)});
}

void Absorb(LoadResult& result, DecodeResult decoded) {
  ++result.files;
  Diagnostics found = std::move(decoded.diagnostics);
  for (const auto& [kind, count] : decoded.ignored) result.ignored[kind] += count;
  for (auto& object : decoded.objects) {
    for (auto& d : Validate(object)) found.push_back(std::move(d));
    result.objects.push_back(std::move(object));
  }
  // Report in file order, as a reader goes through the file.
  std::stable_sort(found.begin(), found.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
  });
  for (auto& d : found) result.diagnostics.push_back(std::move(d));
}

void ReadFile(LoadResult& result, const fs::path& path, const DecodeOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    FileError(result, path.string(), "cannot read file");
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  Absorb(result, Decode(text.str(), path.string(), options));
}

void RejectDuplicates(LoadResult& result) {
  std::map<std::string, SourceLocation> seen;
  for (const Object& object : result.objects) {
    const std::string ref = ObjectRef(object);
    const SourceLocation& where = MetaOf(object).source.where;
    if (const auto [it, inserted] = seen.emplace(ref, where); !inserted) {
      result.diagnostics.push_back({Severity::kError, where, ref, "",
                                    "defined more than once (first at " + it->second.ToString() + ")"});
    }
  }
}

void Finish(LoadResult& result) {
  RejectDuplicates(result);
  if (!result.ok()) result.objects.clear();
}

}  // namespace

LoadResult LoadText(std::string_view text, std::string_view name, const DecodeOptions& options) {
  LoadResult result;
  Absorb(result, Decode(text, name, options));
  Finish(result);
  return result;
}

LoadResult LoadJson(const nlohmann::json& object, std::string_view name, const DecodeOptions& options) {
  LoadResult result;
  Absorb(result, DecodeJson(object, name, options));
  Finish(result);
  return result;
}

LoadResult LoadManifests(const std::vector<std::string>& paths, const DecodeOptions& options,
                         std::istream& stdin_stream) {
  LoadResult result;
  for (const std::string& path : paths) {
    if (path == "-") {
      std::ostringstream text;
      text << stdin_stream.rdbuf();
      Absorb(result, Decode(text.str(), "<stdin>", options));
      continue;
    }
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      FileError(result, path, "the path \"" + path + "\" does not exist");
      continue;
    }
    if (!fs::is_directory(status)) {
      ReadFile(result, path, options);
      continue;
    }
    std::vector<fs::path> files;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file() && IsManifestFile(it->path())) files.push_back(it->path());
    }
    if (ec) FileError(result, path, "cannot list directory: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) ReadFile(result, file, options);
  }
  Finish(result);
  return result;
}

}  // namespace netpol::api
