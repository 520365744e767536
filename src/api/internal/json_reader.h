// JSON text read in place (checked whole with simdjson's On-Demand API, then
// read directly), as handles the manifest decoder walks like the YAML tree
// (internal/yaml.h). Internal to src/api: only decode.cpp uses it.
//
//   JsonText text(bytes, bytes.capacity() - bytes.size());
//   JsonNode root = text.Root();
//   if (root && root.IsMap()) {
//     root.ForEachItem(...);             // (sequences)
//     if (JsonNode kind = root["kind"]; kind && kind.IsScalar()) Use(kind.Scalar());
//   }
//   if (text.failed()) ...;              // read it with the YAML reader instead
//
// No tree is built: a handle is a position in the text. Root() walks the
// whole text once with simdjson, checking every value and noting where each
// collection ends; after that the handles read the checked text themselves:
// a map's keys and where each value starts in one scan (for the duplicate
// and unknown-field checks and for lookups), collections skipped by their
// noted ends, so nothing is walked twice. Handles into an item of a sequence
// live until the item's callback returns; a value handle lives until the
// next lookup in its map.
//
// The reader is exact or gives up: scalars are what the YAML reader makes of
// the same text (strings quoted, numbers, booleans and null plain, with their
// text), positions are libyaml's (line breaks and columns in characters), and
// Root() walks the whole text once (the root's keys, every value checked:
// internal/json_check.h) before anything is read: what the YAML reader would
// read differently or reject (invalid JSON, YAML-only or surrogate escapes,
// control characters, nesting past the YAML reader's limit, long or
// multi-line keys, tabs around the object, trailing text) sets failed(), after
// which every handle is undefined. The caller then decodes the text with the
// YAML reader, which reports the problem as it always has.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace netpol::api::internal {

class JsonText;

// A map's key: always a (quoted) string scalar.
struct JsonKey {
  std::string_view text;  // unescaped
  size_t offset = 0;      // of its opening quote
  const JsonText* doc = nullptr;

  bool IsScalar() const { return true; }
  std::string_view Scalar() const { return text; }
  std::pair<int, int> LineColumn() const;
};

// A callable reference that does not own (nor allocate for) what it calls.
template <typename Signature>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  // Refers to `f`, which must outlive the call it is passed to (a lambda
  // written in the call does). Implicit, so lambdas are passed as they are;
  // never chosen over copying (the constraint).
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>>>
  // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
  FunctionRef(F&& f)
      : object_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(args...);
        }) {}
  R operator()(Args... args) const { return call_(object_, args...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

class JsonNode {
 public:
  JsonNode() = default;

  explicit operator bool() const { return kind_ != Kind::kUndefined; }
  bool IsNull() const { return kind_ == Kind::kNull; }
  bool IsScalar() const { return kind_ == Kind::kString || kind_ == Kind::kPlain || kind_ == Kind::kNull; }
  bool IsSequence() const { return kind_ == Kind::kSequence; }
  bool IsMap() const { return kind_ == Kind::kMap; }
  // Scalar text ("" for non-scalars): a string's unescaped value, or a
  // number's, boolean's or null's JSON text.
  const std::string& Scalar() const;
  // Numbers, booleans and null, as the YAML reader sees them (plain scalars).
  bool IsPlain() const { return kind_ == Kind::kPlain || kind_ == Kind::kNull; }
  std::pair<int, int> LineColumn() const;  // 1-based, where the value starts

  // The value of `key` in a map (the first, if given twice), or undefined.
  JsonNode operator[](std::string_view key) const;
  // A map's keys, in document order (none for other values).
  const std::vector<JsonKey>& Keys() const;
  // A sequence's count of items when known before it is walked (the root's
  // values: the check of the whole text counted them), else 0.
  size_t ItemCountHint() const { return item_count_hint_; }
  // Each item of a sequence, in order.
  void ForEachItem(FunctionRef<void(size_t, const JsonNode&)> fn) const;
  // Each entry of a map, in order.
  void ForEachEntry(FunctionRef<void(const JsonKey&, const JsonNode&)> fn) const;

 private:
  friend class JsonText;
  enum class Kind { kUndefined, kNull, kString, kPlain, kSequence, kMap };

  JsonText* doc_ = nullptr;
  Kind kind_ = Kind::kUndefined;
  size_t offset_ = 0;
  size_t item_count_hint_ = 0;
  void* state_ = nullptr;  // the map's, sequence's or scalar's reading state (JsonText's)
};

// Nesting deeper than the YAML reader takes (internal/yaml.h) is left to it.
inline constexpr size_t kJsonMaxDepth = 100;

class JsonText {
 public:
  // `text` must stay valid while the JsonText lives; `readable_after` bytes
  // past its end may be read (not written). `index_lines`: the positions of
  // most values will be asked for (the decoder's field positions), so the
  // lines are found while the check walks the text, still in the cache.
  JsonText(std::string_view text, size_t readable_after, bool index_lines = false);
  ~JsonText();
  JsonText(const JsonText&) = delete;
  JsonText& operator=(const JsonText&) = delete;

  // Whether `text` may be JSON for this reader: it starts (after whitespace)
  // with '{'. Anything else goes to the YAML reader directly.
  static bool LooksLikeJsonObject(std::string_view text);

  // The document's root (a map), or undefined with failed() set.
  JsonNode Root();
  bool failed() const;

 private:
  friend class JsonNode;
  friend struct JsonKey;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netpol::api::internal
