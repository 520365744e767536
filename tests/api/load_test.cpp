#include "api/load.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace netpol::api {
namespace {

namespace fs = std::filesystem;

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("netpol-load-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "sub");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  fs::path dir_;
};

const char* kPolicy =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s}\nspec: {podSelector: {}}\n";

std::string PolicyNamed(const std::string& name) {
  std::string text = kPolicy;
  text.replace(text.find("%s"), 2, name);
  return text;
}

TEST_F(LoadTest, DirectoriesRecursivelyInNameOrderSkippingOtherFiles) {
  Write("b.yaml", PolicyNamed("b"));
  Write("a.json", R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})");
  Write("sub/c.yml", PolicyNamed("c"));
  Write("notes.txt", "not yaml: [");
  std::istringstream no_stdin;
  const LoadResult r = LoadManifests({dir_.string()}, {}, no_stdin);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.files, 3);
  ASSERT_EQ(r.objects.size(), 3u);
  EXPECT_EQ(ObjectRef(r.objects[0]), "Namespace a");
  EXPECT_EQ(ObjectRef(r.objects[1]), "NetworkPolicy default/b");
  EXPECT_EQ(ObjectRef(r.objects[2]), "NetworkPolicy default/c");
}

TEST_F(LoadTest, StdinAndFilesTogether) {
  Write("a.yaml", PolicyNamed("a"));
  std::istringstream in(PolicyNamed("from-stdin"));
  const LoadResult r = LoadManifests({(dir_ / "a.yaml").string(), "-"}, {}, in);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(MetaOf(r.objects[1]).source.where.file, "<stdin>");
}

TEST_F(LoadTest, OneBadObjectRejectsEverything) {
  Write("good.yaml", PolicyNamed("good"));
  Write("bad.yaml", PolicyNamed("Bad"));
  std::istringstream no_stdin;
  const LoadResult r = LoadManifests({dir_.string()}, {}, no_stdin);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.objects.empty());
  ASSERT_EQ(CountErrors(r.diagnostics), 1u);
  EXPECT_THAT(r.diagnostics[0].ToString(),
              ::testing::HasSubstr("bad.yaml:3:18: error: NetworkPolicy default/Bad"));
}

TEST_F(LoadTest, DuplicatesAndMissingPathsAreErrors) {
  Write("a.yaml", PolicyNamed("same"));
  Write("b.yaml", PolicyNamed("same"));
  std::istringstream no_stdin;
  const LoadResult r = LoadManifests({dir_.string(), (dir_ / "missing.yaml").string()}, {}, no_stdin);
  EXPECT_FALSE(r.ok());
  std::string all;
  for (const auto& d : r.diagnostics) all += d.ToString() + "\n";
  EXPECT_THAT(all, ::testing::HasSubstr("NetworkPolicy default/same: defined more than once (first at "));
  EXPECT_THAT(all, ::testing::HasSubstr("missing.yaml: error: the path"));
}

// Loads `paths` as a user who is not root (root reads any directory), in a
// child process when this one is root; the diagnostics, one a line.
std::string LoadUnprivileged(const std::vector<std::string>& paths) {
  const auto load = [&] {
    std::istringstream no_stdin;
    std::string out;
    for (const Diagnostic& d : LoadManifests(paths, {}, no_stdin).diagnostics) out += d.ToString() + "\n";
    return out;
  };
  if (::geteuid() != 0) return load();
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(1);
    const std::string out = load();
    const ssize_t written = ::write(fds[1], out.data(), out.size());
    ::_exit(written == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof(buffer))) > 0;)
    out.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return out;
}

// Nothing throws, and each problem names the entry it is about and why (the
// errno's text), as kubectl does: a symlink loop, a dangling link, a
// subdirectory that cannot be read, a given path that cannot be resolved.
TEST_F(LoadTest, UnreadableEntriesAreErrorsNamingThemAndWhy) {
  Write("a.yaml", PolicyNamed("a"));
  fs::create_symlink("loop.yaml", dir_ / "loop.yaml");
  fs::create_symlink("nowhere.yaml", dir_ / "dangling.yaml");
  fs::create_symlink("..", dir_ / "sub" / "up");  // a link to a directory: not followed
  fs::create_directories(dir_ / "sub" / "locked");
  Write("sub/locked/x.yaml", PolicyNamed("x"));
  fs::permissions(dir_ / "sub" / "locked", fs::perms::none);
  const std::string d = dir_.string();
  const std::string all = LoadUnprivileged({d, d + "/loop.yaml"});
  fs::permissions(dir_ / "sub" / "locked", fs::perms::owner_all);
  std::vector<std::string> lines;
  std::istringstream in(all);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre(
                         d + "/dangling.yaml: error: cannot read file: No such file or directory",
                         d + "/loop.yaml: error: cannot read file: Too many levels of symbolic links",
                         d + "/sub/locked: error: cannot read directory: Permission denied",
                         d + "/loop.yaml: error: cannot read \"" + d +
                             "/loop.yaml\": Too many levels of symbolic links"))
      << all;
}

// A large file is mapped rather than read (src/api/load.cpp), with the bytes
// the decoder may read past its end mapped too: it loads as the same text
// does from memory (objects, diagnostics, positions up to its last line),
// also when it ends at a page's end or just before.
TEST_F(LoadTest, LargeFilesLoadAsTheirTextDoes) {
  std::string body = R"({"apiVersion": "v1", "kind": "List", "items": [)";
  for (int i = 0; body.size() < (size_t{1} << 20) + 5000; ++i) {
    body += R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-)" + std::to_string(i) +
            "\"}},\n";
  }
  body +=
      R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "last", "labels": {"a": "b c"}}}])";
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  for (const size_t short_of_page : {size_t{0}, size_t{1}, size_t{30}, page - 1}) {
    SCOPED_TRACE(short_of_page);
    // Spaces before the closing brace bring the size to a page's end, less `short_of_page`.
    const size_t size = (body.size() + 65 + short_of_page + page - 1) / page * page - short_of_page;
    const std::string text = body + std::string(size - body.size() - 1, ' ') + "}";
    ASSERT_EQ((text.size() + short_of_page) % page, 0u);
    Write("large.json", text);
    std::istringstream no_stdin;
    const std::string file = (dir_ / "large.json").string();
    const LoadResult from_file = LoadManifests({file}, {}, no_stdin);
    const LoadResult from_text = LoadText(text, file, {});
    ASSERT_EQ(from_file.diagnostics.size(), 1u);  // the label value
    EXPECT_EQ(from_file.diagnostics, from_text.diagnostics);
    EXPECT_EQ(from_file.diagnostics[0].where.line,
              static_cast<int>(std::count(body.begin(), body.end(), '\n')) + 1);
    // Without the error, every object.
    std::string valid = text;
    valid.replace(valid.find("b c"), 3, "b-c");
    Write("large.json", valid);
    const LoadResult objects = LoadManifests({file}, {}, no_stdin);
    ASSERT_TRUE(objects.ok());
    EXPECT_EQ(objects.objects, LoadText(valid, file, {}).objects);
    EXPECT_GT(objects.objects.size(), 10000u);
  }
}

}  // namespace
}  // namespace netpol::api
