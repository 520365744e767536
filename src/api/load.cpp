#include "api/load.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <optional>
#include <sstream>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "api/validate.h"
#include "base/result.h"

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
  // The first file's objects are taken whole (a 10k-pod list is not moved
  // object by object into a vector grown 14 times).
  const size_t first = result.objects.size();
  if (first == 0) {
    result.objects = std::move(decoded.objects);
  } else {
    result.objects.reserve(first + decoded.objects.size());
    std::move(decoded.objects.begin(), decoded.objects.end(), std::back_inserter(result.objects));
  }
  for (size_t i = first; i < result.objects.size(); ++i) {
    for (auto& d : Validate(result.objects[i])) found.push_back(std::move(d));
  }
  // Report in file order, as a reader goes through the file.
  std::stable_sort(found.begin(), found.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
  });
  for (auto& d : found) result.diagnostics.push_back(std::move(d));
}

// Large pages for a large buffer, where the kernel leaves them to be asked
// for: a 50 MB list then takes 25 page faults instead of 12,000 (a fifth of
// reading it). Only the aligned middle; a refusal changes nothing.
void AskForHugePages(char* data, size_t size) {
  constexpr size_t kHuge = size_t{2} << 20;
  if (size < 4 * kHuge) return;
  const size_t skip = (kHuge - reinterpret_cast<uintptr_t>(data) % kHuge) % kHuge;  // to the first boundary
  const size_t length = (size - skip) / kHuge * kHuge;
  (void)::madvise(data + skip, length, MADV_HUGEPAGE);
}

// The whole file, or why not (strerror, as kubectl's "open x: permission
// denied"), with kDecodePadding bytes of capacity to spare (DecodePadded).
// Read straight into the string (a 50 MB list is not copied through a buffer);
// a file that is not regular or grows meanwhile is read on in steps.
Result<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable(std::error_code(errno, std::generic_category()).message());
  size_t expected = 0;
  if (struct stat st{}; ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    expected = static_cast<size_t>(st.st_size);
  }
  std::string text;
  text.reserve(expected + kDecodePadding);
  AskForHugePages(text.data(), text.capacity());
  text.resize(expected);
  size_t size = 0;
  char probe[1 << 12];  // read into when the string is full: at the end, or the file grew
  while (true) {
    const bool full = size == text.size();
    const ssize_t n =
        full ? ::read(fd, probe, sizeof(probe)) : ::read(fd, text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::error_code error(errno, std::generic_category());
      ::close(fd);
      return Unavailable(error.message());
    }
    if (n == 0) break;
    if (full) text.append(probe, static_cast<size_t>(n));
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(size);
  if (text.capacity() - text.size() < kDecodePadding) text.reserve(text.size() + kDecodePadding);
  return text;
}

// A large regular file's text mapped (as long as it is when opened), with
// kDecodePadding readable bytes after it (zeros), or nullopt when that cannot
// be (then it is read). Mapped, its pages come straight from the page cache:
// reading a 60 MB list into memory of its own cost the kernel's copy and
// clearing that memory first, a tenth of loading it. (A file truncated while
// it is mapped would kill the process with SIGBUS, as it would grep's;
// manifests are not rewritten under the tool that reads them.)
class MappedFile {
 public:
  static std::optional<MappedFile> Map(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::optional<MappedFile> mapped;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) >= kMinSize) {
      const auto size = static_cast<size_t>(st.st_size);
      const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      const size_t total = (size + kDecodePadding + page - 1) / page * page;
      // Zeros for the whole span, the file over its start: the pages past
      // the file's last stay zeros, the padding.
      void* base = ::mmap(nullptr, total, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base != MAP_FAILED) {
        if (::mmap(base, size, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0) != MAP_FAILED) {
          mapped.emplace(MappedFile(static_cast<const char*>(base), size, total));
        } else {
          ::munmap(base, total);
        }
      }
    }
    ::close(fd);
    return mapped;
  }
  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(other.size_), mapped_(other.mapped_) {}
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), mapped_);
  }
  std::string_view text() const { return {data_, size_}; }

 private:
  static constexpr size_t kMinSize = size_t{1} << 20;  // smaller ones are read at once
  MappedFile(const char* data, size_t size, size_t mapped) : data_(data), size_(size), mapped_(mapped) {}
  const char* data_;
  size_t size_;
  size_t mapped_;
};

void ReadFile(LoadResult& result, const std::string& path, const DecodeOptions& options) {
  if (const std::optional<MappedFile> mapped = MappedFile::Map(path)) {
    Absorb(result, DecodePadded(mapped->text(), path, options));
    return;
  }
  Result<std::string> text = ReadWholeFile(path);
  if (!text) {
    FileError(result, path, "cannot read file: " + text.error().message());
    return;
  }
  Absorb(result, DecodePadded(*text, path, options));
}

// The manifests under `dir`, as kubectl -f finds them (filepath.Walk): every
// entry with a manifest extension that is not itself a directory, symbolic
// links included (a dangling one is an error when it is read, as in kubectl);
// directories are entered, links to directories are not. A directory that
// cannot be listed is an error naming that directory.
void ListManifests(LoadResult& result, const fs::path& dir, std::vector<std::string>& files) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  const fs::directory_iterator end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    std::error_code type_ec;
    const fs::file_status status = it->symlink_status(type_ec);  // the entry itself, not its target
    if (type_ec) {
      FileError(result, path.string(), "cannot read file: " + type_ec.message());
      continue;
    }
    if (fs::is_directory(status)) {
      ListManifests(result, path, files);
    } else if (IsManifestFile(path)) {
      files.push_back(path.string());
    }
  }
  if (ec) FileError(result, dir.string(), "cannot read directory: " + ec.message());
}

void RejectDuplicates(LoadResult& result) {
  std::unordered_map<std::string, const SourceLocation*> seen;  // the objects stay put meanwhile
  seen.reserve(result.objects.size());
  for (const Object& object : result.objects) {
    std::string ref = ObjectRef(object);
    const SourceLocation& where = MetaOf(object).source.where;
    if (const auto [it, inserted] = seen.emplace(std::move(ref), &where); !inserted) {
      result.diagnostics.push_back({Severity::kError, where, it->first, "",
                                    "defined more than once (first at " + it->second->ToString() + ")"});
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
    if (ec && ec != std::errc::no_such_file_or_directory) {
      // A symlink loop, a directory on the way that cannot be searched, ...
      FileError(result, path, "cannot read \"" + path + "\": " + ec.message());
      continue;
    }
    if (ec || !fs::exists(status)) {
      FileError(result, path, "the path \"" + path + "\" does not exist");
      continue;
    }
    if (!fs::is_directory(status)) {
      ReadFile(result, path, options);
      continue;
    }
    std::vector<std::string> files;
    ListManifests(result, path, files);
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) ReadFile(result, file, options);
  }
  Finish(result);
  return result;
}

}  // namespace netpol::api
