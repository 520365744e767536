// Decoding what the API returns: a 10,000-pod LIST (one JSON document, pods
// shaped as a real API server returns them: managedFields, status conditions,
// container statuses), into api objects. Against a baseline measured in the
// same run: writing each item back to text and decoding that (the path the
// agent took before DecodeJson), and nlohmann's parse alone.
//
//   build/release/bench/decode_benchmark
#include <benchmark/benchmark.h>

#include <string>

#include <nlohmann/json.hpp>

#include "api/load.h"
#include "realistic_pod.h"

namespace netpol {
namespace {

using Json = nlohmann::json;

const std::string& PodList() {
  static const std::string* text = [] {
    using Ordered = nlohmann::ordered_json;
    Ordered list = {{"apiVersion", "v1"}, {"kind", "PodList"}, {"metadata", {{"resourceVersion", "200000"}}}};
    Ordered items = Ordered::array();
    for (int i = 0; i < 10000; ++i) items.push_back(bench::RealisticPod(i));
    list["items"] = std::move(items);
    return new std::string(list.dump());
  }();
  return *text;
}

// The agent's path: parse the list, decode every item from its JSON value.
void BM_DecodePodList(benchmark::State& state) {
  const std::string& text = PodList();
  size_t decoded = 0;
  for (auto _ : state) {
    Json list = Json::parse(text);
    decoded = 0;
    for (Json& item : list["items"]) {
      item["kind"] = "Pod";
      item["apiVersion"] = "v1";
      decoded += api::LoadJson(item, "list", {.field_positions = false}).objects.size();
    }
  }
  if (decoded != 10000) state.SkipWithError("not every pod decoded");
  state.counters["list_MiB"] = static_cast<double>(text.size()) / (1 << 20);
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_DecodePodList)->Unit(benchmark::kMillisecond);

// Baseline: every item written back to text and decoded from it.
void BM_DecodePodListThroughText(benchmark::State& state) {
  const std::string& text = PodList();
  for (auto _ : state) {
    Json list = Json::parse(text);
    for (Json& item : list["items"]) {
      item["kind"] = "Pod";
      item["apiVersion"] = "v1";
      benchmark::DoNotOptimize(api::LoadText(item.dump(), "list", {.field_positions = false}));
    }
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_DecodePodListThroughText)->Unit(benchmark::kMillisecond);

// Baseline: nlohmann's parse of the list alone.
void BM_ParseOnly(benchmark::State& state) {
  const std::string& text = PodList();
  for (auto _ : state) benchmark::DoNotOptimize(Json::parse(text));
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_ParseOnly)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace netpol

BENCHMARK_MAIN();
