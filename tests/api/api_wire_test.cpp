// api::DecodeListPage and DecodeWatchEvent: the envelope of what the API
// server sends a watcher (list metadata, event types, Status errors) and its
// items decoded one by one, an undecodable one kept with its name.
#include <gtest/gtest.h>

#include <string>

#include "api/decode.h"

namespace netpol::api {
namespace {

constexpr ApiKind kPod{"Pod", "v1"};

// Decodes from a padded copy, as the client does (and the unpadded text, which
// must give the same).
Result<ApiListPage> Page(const std::string& text) {
  std::string padded;
  padded.reserve(text.size() + kDecodePadding);
  padded = text;
  Result<ApiListPage> in_place = DecodeListPage(padded, padded.capacity() - padded.size(), kPod);
  Result<ApiListPage> copied = DecodeListPage(text, 0, kPod);
  EXPECT_EQ(in_place.ok(), copied.ok());
  if (in_place.ok() && copied.ok()) {
    EXPECT_EQ(in_place->items.size(), copied->items.size());
  }
  // The token read ahead of the page (the client's fetcher) is the page's.
  const Result<std::string> token = ReadListContinue(padded, padded.capacity() - padded.size());
  EXPECT_EQ(token.ok(), in_place.ok());
  if (token.ok() && in_place.ok()) {
    EXPECT_EQ(*token, in_place->continue_token);
  }
  return in_place;
}

std::string PodJson(const std::string& name, const std::string& rv, const std::string& spec) {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"shop","resourceVersion":")" + rv +
         R"(","labels":{"app":"web"}},"spec":)" + spec +
         R"(,"status":{"phase":"Running","podIPs":[{"ip":"198.18.0.7"}]}})";
}

const std::string kSpec = R"({"nodeName":"node-1","containers":[{"name":"app","image":"nginx"}]})";

TEST(ApiWireTest, ReadsAPageWithItsContinueTokenAndResourceVersion) {
  const Result<ApiListPage> page = Page(
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"812","continue":"eyJ2IjoxfQ"},"items":[)" +
      PodJson("web-0", "800", kSpec) + "," + PodJson("web-1", "801", kSpec) + "]}");
  ASSERT_TRUE(page.ok()) << page.error().message();
  EXPECT_EQ(page->resource_version, "812");
  EXPECT_EQ(page->continue_token, "eyJ2IjoxfQ");
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[1].name, "web-1");
  EXPECT_EQ(page->items[1].namespace_, "shop");
  EXPECT_EQ(page->items[1].resource_version, "801");
  ASSERT_TRUE(page->items[1].object) << page->items[1].problem;
  const auto* pod = std::get_if<Pod>(&*page->items[1].object);
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->metadata.name, "web-1");
  EXPECT_EQ(pod->spec.node_name, "node-1");
  EXPECT_EQ(pod->metadata.labels.at("app"), "web");
  EXPECT_EQ(pod->pod_ips, std::vector<std::string>{"198.18.0.7"});
}

TEST(ApiWireTest, TheLastPageHasNoContinueToken) {
  const Result<ApiListPage> page =
      Page(R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[]})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->resource_version, "9");
  EXPECT_EQ(page->continue_token, "");
  EXPECT_TRUE(page->items.empty());
}

TEST(ApiWireTest, AnUndecodableItemIsKeptWithItsNameAndWhyNotTheObject) {
  const Result<ApiListPage> page =
      Page(R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[)" +
           PodJson("bad", "3", R"({"containers":"not a list"})") + "," + PodJson("good", "4", kSpec) + "]}");
  ASSERT_TRUE(page.ok()) << page.error().message();
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].name, "bad");
  EXPECT_EQ(page->items[0].namespace_, "shop");
  EXPECT_FALSE(page->items[0].object);
  EXPECT_NE(page->items[0].problem.find("containers"), std::string::npos) << page->items[0].problem;
  ASSERT_TRUE(page->items[1].object) << page->items[1].problem;
  EXPECT_EQ(page->items[1].problem, "");
}

TEST(ApiWireTest, AnItemThatFailsValidationIsUndecodable) {
  // A label value the API server would refuse (too long, spaces).
  const Result<ApiListPage> page = Page(
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"p","namespace":"shop","labels":{"app":"not a valid value"}},"spec":)" +
      kSpec + "}]}");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_FALSE(page->items[0].object);
  EXPECT_NE(page->items[0].problem, "");
}

TEST(ApiWireTest, TextTheInPlaceReaderGivesUpOnIsReadByTheYamlReader) {
  // A surrogate pair escape: the in-place reader leaves it to the YAML reader.
  const Result<ApiListPage> page = Page(
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"p","namespace":"shop","annotations":{"note":"\ud83d\ude00"}},"spec":)" +
      kSpec + "}]}");
  ASSERT_TRUE(page.ok()) << page.error().message();
  EXPECT_EQ(page->resource_version, "5");
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_TRUE(page->items[0].object) << page->items[0].problem;
}

TEST(ApiWireTest, TextThatIsNotAnObjectIsAnError) {
  EXPECT_EQ(DecodeListPage("[1,2]", 0, kPod).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadListContinue("[1,2]", 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadListContinue("{\"items\": [", 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeListPage("{\"items\": [", 0, kPod).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeWatchEvent("not json", 0, kPod).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ApiWireTest, ReadsAnEventsObjectWithItsOwnKind) {
  const Result<ApiWatchEvent> event = DecodeWatchEvent(
      R"({"type":"MODIFIED","object":{"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":"deny","namespace":"shop","resourceVersion":"77"},"spec":{"podSelector":{}}}})",
      0, kPod);
  ASSERT_TRUE(event.ok()) << event.error().message();
  EXPECT_EQ(event->type, "MODIFIED");
  EXPECT_EQ(event->item.name, "deny");
  EXPECT_EQ(event->item.resource_version, "77");
  ASSERT_TRUE(event->item.object) << event->item.problem;
  EXPECT_NE(std::get_if<NetworkPolicy>(&*event->item.object), nullptr);
}

TEST(ApiWireTest, ABookmarkCarriesOnlyItsResourceVersion) {
  const Result<ApiWatchEvent> event = DecodeWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"9182","annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":null}}})",
      0, kPod);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->type, "BOOKMARK");
  EXPECT_EQ(event->item.resource_version, "9182");
  EXPECT_FALSE(event->item.object);
}

TEST(ApiWireTest, AnErrorEventCarriesTheStatusCodeAndMessage) {
  const Result<ApiWatchEvent> event = DecodeWatchEvent(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (14659)","reason":"Expired","code":410}})json",
      0, kPod);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->type, "ERROR");
  EXPECT_EQ(event->status_code, 410);
  EXPECT_EQ(event->status_message, "too old resource version: 1 (14659)");
}

TEST(ApiWireTest, AnUndecodableEventObjectKeepsItsName) {
  const Result<ApiWatchEvent> event = DecodeWatchEvent(
      R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"shop","resourceVersion":"3"},"spec":{"containers":7}}})",
      0, kPod);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->item.name, "p");
  EXPECT_EQ(event->item.resource_version, "3");
  EXPECT_FALSE(event->item.object);
  EXPECT_NE(event->item.problem, "");
}

}  // namespace
}  // namespace netpol::api
