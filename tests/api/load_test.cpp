#include "api/load.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace netpol::api
