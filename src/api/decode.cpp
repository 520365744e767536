#include "api/decode.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <unordered_set>

#include "api/internal/json_reader.h"
#include "api/internal/yaml.h"
#include "api/validate.h"

namespace netpol::api {
namespace {

using internal::JsonNode;
using internal::YamlNode;

// Keys of one map, to find one given twice (YAML forbids it, JSON readers
// disagree on it; the API server refuses it). Few keys are compared in turn;
// a map with many (labels, annotations) is hashed.
class KeySet {
 public:
  // False when `key` was inserted before.
  bool Insert(std::string_view key) {
    if (hashed_.empty() && count_ < kLinear) {
      const auto end = keys_.begin() + static_cast<std::ptrdiff_t>(count_);
      if (std::find(keys_.begin(), end, key) != end) return false;
      keys_[count_++] = key;
      return true;
    }
    if (hashed_.empty()) hashed_.insert(keys_.begin(), keys_.end());
    return hashed_.insert(key).second;
  }

 private:
  static constexpr size_t kLinear = 16;
  std::array<std::string_view, kLinear> keys_;  // in place: a set per map the decoder reads
  size_t count_ = 0;
  std::unordered_set<std::string_view> hashed_;
};

using FieldList = std::initializer_list<std::string_view>;

// Field paths are written for every field decoded (its position is noted by
// path): each in one allocation.
std::string Child(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out;
  out.reserve(path.size() + 1 + key.size());
  out.append(path).append(1, '.').append(key);
  return out;
}

std::string Index(const std::string& path, size_t i) {
  char digits[24];
  char* end = std::to_chars(std::begin(digits), std::end(digits), i).ptr;
  std::string out;
  out.reserve(path.size() + 2 + static_cast<size_t>(end - digits));
  out.append(path).append(1, '[').append(digits, static_cast<size_t>(end - digits)).append(1, ']');
  return out;
}

// How the API server's YAML reader sees a plain (unquoted, untagged) scalar.
// kubectl and the API server turn YAML into JSON with sigs.k8s.io/yaml, which
// resolves plain scalars with go-yaml v2's YAML 1.1 rules (goyaml.v2/resolve.go):
// a word from its table (y/n/yes/on/null/.inf...); else, for text starting with
// a digit or a sign, the text with every '_' removed read by Go's
// strconv.ParseInt(s, 0, 64), then ParseUint(s, 0, 64) (base prefixes 0x, 0o,
// 0b in either case, a leading 0 alone for octal), then as a float when it
// matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$; text starting
// with '.' by ParseFloat. Anything else is a string. docs/SEMANTICS.md §18.
struct PlainScalar {
  enum class Kind { kString, kNull, kBool, kInt, kFloat };
  Kind kind = Kind::kString;
  bool bool_value = false;
  bool int_overflow = false;  // kInt beyond int64 (it still is a number, not a string)
  int64_t int_value = 0;
  double float_value = 0;
};

// Go's strconv.ParseUint(s, 0, 64) on text without '_': false on a syntax
// error; `range` set (and false) when the digits do not fit.
bool GoParseUint(std::string_view s, uint64_t& out, bool& range) {
  range = false;
  if (s.empty()) return false;
  unsigned base = 10;
  if (s[0] == '0') {
    const char prefix = s.size() >= 3 ? static_cast<char>(std::tolower(static_cast<unsigned char>(s[1]))) : 0;
    if (prefix == 'b' || prefix == 'o' || prefix == 'x') {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  uint64_t n = 0;
  for (const char c : s) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'z') {
      digit = static_cast<unsigned>(c - 'a') + 10;
    } else if (c >= 'A' && c <= 'Z') {
      digit = static_cast<unsigned>(c - 'A') + 10;
    } else {
      return false;
    }
    if (digit >= base) return false;
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / base) {
      range = true;  // Go stops at the first overflow
      return false;
    }
    n = n * base + digit;
  }
  out = n;
  return true;
}

// Go's strconv.ParseInt(s, 0, 64).
bool GoParseInt(std::string_view s, int64_t& out, bool& range) {
  range = false;
  if (s.empty()) return false;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t n = 0;
  if (!GoParseUint(s, n, range)) return false;
  constexpr uint64_t kCutoff = uint64_t{1} << 63;
  if ((!negative && n >= kCutoff) || (negative && n > kCutoff)) {
    range = true;
    return false;
  }
  out = negative ? static_cast<int64_t>(0 - n) : static_cast<int64_t>(n);
  return true;
}

// ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (go-yaml v2's yamlStyleFloat).
bool IsYamlStyleFloat(std::string_view s) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) ++i;
    return i - from;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// A finite double from decimal float text (strconv.ParseFloat's answer for the
// texts that reach it here); nullopt when it overflows (Go: ErrRange).
std::optional<double> ParseFiniteFloat(const std::string& s) {
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || std::isinf(value) || std::isnan(value)) return std::nullopt;
  return value;
}

PlainScalar ResolvePlain(const std::string& text) {
  using Kind = PlainScalar::Kind;
  static const std::set<std::string, std::less<>> kTrue = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                                           "True", "TRUE", "on",  "On",  "ON"};
  static const std::set<std::string, std::less<>> kFalse = {"n",     "N",     "no",  "No",  "NO", "false",
                                                            "False", "FALSE", "off", "Off", "OFF"};
  static const std::set<std::string, std::less<>> kNulls = {"", "~", "null", "Null", "NULL"};
  static const std::set<std::string, std::less<>> kSpecialFloats = {
      ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"};
  PlainScalar out;
  if (kNulls.contains(text)) {
    out.kind = Kind::kNull;
    return out;
  }
  if (kTrue.contains(text) || kFalse.contains(text)) {
    out.kind = Kind::kBool;
    out.bool_value = kTrue.contains(text);
    return out;
  }
  if (kSpecialFloats.contains(text)) {
    out.kind = Kind::kFloat;
    out.float_value = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const char first = text[0];
  if (first == '.') {
    // ParseFloat(text): '_' only between digits, as in Go's float literals.
    std::string plain;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '_') {
        plain += text[i];
        continue;
      }
      const bool between = i > 0 && i + 1 < text.size() &&
                           std::isdigit(static_cast<unsigned char>(text[i - 1])) != 0 &&
                           std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0;
      if (!between) return out;
    }
    if (IsYamlStyleFloat(plain)) {
      if (const auto value = ParseFiniteFloat(plain)) {
        out.kind = Kind::kFloat;
        out.float_value = *value;
      }
    }
    return out;
  }
  if (first != '+' && first != '-' && std::isdigit(static_cast<unsigned char>(first)) == 0) return out;
  std::string plain;
  for (const char c : text) {
    if (c != '_') plain += c;
  }
  bool range = false;
  if (int64_t value = 0; GoParseInt(plain, value, range)) {
    out.kind = Kind::kInt;
    out.int_value = value;
    return out;
  }
  if (uint64_t value = 0; GoParseUint(plain, value, range)) {
    out.kind = Kind::kInt;
    out.int_overflow = true;  // ParseInt refused it, so it is beyond int64
    return out;
  }
  if (IsYamlStyleFloat(plain)) {
    if (const auto value = ParseFiniteFloat(plain)) {
      out.kind = Kind::kFloat;
      out.float_value = *value;
      return out;
    }
  }
  if (range) {  // ParseUint's range error: go-yaml reads it as a big integer
    out.kind = Kind::kInt;
    out.int_overflow = true;
  }
  return out;
}

// The decoder walks the handles of either reader through these: the YAML
// tree's (internal/yaml.h) and JSON read in place (internal/json_reader.h),
// which reads JSON text as the YAML reader would.
std::pair<int, int> LineColumn(const YamlNode& node) {
  return {node.line(), node.column()};
}
std::pair<int, int> LineColumn(const JsonNode& node) {
  return node.LineColumn();
}
std::pair<int, int> LineColumn(const internal::JsonKey& key) {
  return key.LineColumn();
}

// How many items a sequence has, if it is known without walking it (0: not known).
size_t ItemCountHint(const YamlNode& node) {
  return node.IsSequence() ? node.size() : 0;
}
size_t ItemCountHint(const JsonNode& node) {
  return node.ItemCountHint();
}

template <typename F>
void ForEachItem(const YamlNode& node, F&& fn) {
  for (size_t i = 0; i < node.size(); ++i) fn(i, node[i]);
}
template <typename F>
void ForEachItem(const JsonNode& node, F&& fn) {
  node.ForEachItem(fn);
}
template <typename F>
void ForEachKey(const YamlNode& node, F&& fn) {
  for (const auto& entry : node.entries()) fn(entry.first);
}
template <typename F>
void ForEachKey(const JsonNode& node, F&& fn) {
  for (const internal::JsonKey& key : node.Keys()) fn(key);
}
template <typename F>
void ForEachEntry(const YamlNode& node, F&& fn) {
  for (const auto& entry : node.entries()) fn(entry.first, entry.second);
}
template <typename F>
void ForEachEntry(const JsonNode& node, F&& fn) {
  node.ForEachEntry(fn);
}

// sigs.k8s.io/yaml reads YAML 1.1 into JSON, so a plain (unquoted) scalar that
// looks like a number, boolean or null is not a string to the API server.
template <typename Handle>
bool IsPlainNonString(const Handle& node) {
  if (!node.IsScalar() || !node.IsPlain()) return false;
  return ResolvePlain(node.Scalar()).kind != PlainScalar::Kind::kString;
}

// Decodes one object. Records the position of every field it visits, reports type
// errors and unknown fields, and builds the value.
template <typename Handle>
class ObjectDecoder {
 public:
  ObjectDecoder(std::string file, const DecodeOptions& options, Diagnostics& diagnostics)
      : file_(std::move(file)), options_(options), diagnostics_(diagnostics), positions_() {}

  void set_object_ref(std::string ref) { object_ref_ = std::move(ref); }

  template <typename At>
  SourceLocation Where(const At& node) const {
    const auto [line, column] = LineColumn(node);
    return {file_, line, column};
  }

  void Record(const std::string& path, const Handle& node) {
    if (!path.empty() && options_.field_positions) {
      const auto [line, column] = LineColumn(node);
      positions_.Add(path, line, column);
    }
  }

  template <typename At>
  void Report(Severity severity, const At& node, const std::string& path, std::string detail) {
    diagnostics_.push_back({severity, Where(node), object_ref_, path, std::move(detail)});
  }
  template <typename At>
  void Error(const At& node, const std::string& path, std::string detail) {
    Report(Severity::kError, node, path, std::move(detail));
  }

  // Room for as many field positions as `before` (the object decoded before) took.
  void ReserveLike(const FieldPositions& before) {
    if (options_.field_positions) positions_.Reserve(before.paths(), before.bytes());
  }

  Provenance TakeProvenance(const Handle& root) {
    if (positions_.empty()) return Provenance{Where(root), nullptr};
    positions_.Seal();
    return Provenance{Where(root), std::make_shared<const FieldPositions>(std::move(positions_))};
  }

  // Every key of `map` must be in `known`; others are warnings (errors with --strict).
  void CheckFields(const Handle& map, const std::string& path, FieldList known) {
    ForEachKey(map, [&](const auto& k) {
      std::string_view key = "?";
      if (k.IsScalar()) key = k.Scalar();
      bool found = false;
      for (const std::string_view name : known) {
        // Most names differ in length or first letter: no call to compare them.
        if (name.size() == key.size() && (key.empty() || (name[0] == key[0] && name == key))) {
          found = true;
          break;
        }
      }
      if (!found) {
        Report(options_.strict ? Severity::kError : Severity::kWarning, k, "",
               "unknown field " + Quote(Child(path, key)));
      }
    });
  }

  // A mapping (or null, which reads as empty). False, with an error, otherwise.
  bool ExpectMap(const Handle& node, const std::string& path) {
    Record(path, node);
    if (node.IsMap()) {
      // YAML forbids a key twice in one mapping; the parser leaves the check to us.
      KeySet seen;
      ForEachKey(node, [&](const auto& k) {
        if (k.IsScalar() && !seen.Insert(k.Scalar())) {
          const std::string_view key = k.Scalar();
          Error(k, Child(path, key), "key " + Quote(std::string(key)) + " already set in map");
        }
      });
      return true;
    }
    if (node.IsNull()) return true;
    Error(node, path, "Invalid value: expected an object");
    return false;
  }

  bool ExpectSequence(const Handle& node, const std::string& path) {
    Record(path, node);
    if (node.IsSequence() || node.IsNull()) return true;
    Error(node, path, "Invalid value: expected a list");
    return false;
  }

  std::optional<std::string> String(const Handle& node, const std::string& path) {
    Record(path, node);
    if (node.IsNull()) return std::string();
    if (!node.IsScalar()) {
      Error(node, path, "Invalid value: expected a string");
      return std::nullopt;
    }
    if (IsPlainNonString(node)) {
      Error(node, path,
            InvalidValue(node.Scalar(), "expected a string; quote the value (\"" + node.Scalar() + "\")"));
      return std::nullopt;
    }
    return node.Scalar();
  }

  // A number field (int32): what JSON number the YAML scalar becomes, then
  // whether Go's encoding/json puts it in an int32. Floats reach JSON as Go
  // writes them (integral ones below 1e21 as integer text), so 8e1 and 80.0 are 80.
  std::optional<int32_t> Int32(const Handle& node, const std::string& path) {
    Record(path, node);
    if (!node.IsScalar() || !node.IsPlain()) {
      Error(node, path,
            "Invalid value: " + (node.IsScalar() ? Quote(node.Scalar()) : std::string("<")) +
                (node.IsScalar() ? "" : "object>") + ": expected an integer");
      return std::nullopt;
    }
    const std::string& text = node.Scalar();
    const PlainScalar value = ResolvePlain(text);
    constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
    constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
    if (value.kind == PlainScalar::Kind::kInt && !value.int_overflow && value.int_value >= kMin &&
        value.int_value <= kMax) {
      return static_cast<int32_t>(value.int_value);
    }
    if (value.kind == PlainScalar::Kind::kFloat && std::isfinite(value.float_value) &&
        value.float_value == std::trunc(value.float_value) && value.float_value >= kMin &&
        value.float_value <= kMax) {
      return static_cast<int32_t>(value.float_value);
    }
    Error(node, path, InvalidValue(text, "expected a 32-bit integer"));
    return std::nullopt;
  }

  // YAML 1.1 booleans (yes/no, on/off, y/n, true/false in three cases) are
  // JSON booleans to the API server.
  std::optional<bool> Bool(const Handle& node, const std::string& path) {
    Record(path, node);
    if (node.IsScalar() && node.IsPlain()) {
      if (const PlainScalar value = ResolvePlain(node.Scalar()); value.kind == PlainScalar::Kind::kBool) {
        return value.bool_value;
      }
    }
    Error(node, path, "Invalid value: expected a boolean (true or false)");
    return std::nullopt;
  }

  std::vector<std::string> StringList(const Handle& node, const std::string& path) {
    std::vector<std::string> out;
    if (!ExpectSequence(node, path)) return out;
    ForEachItem(node, [&](size_t i, const Handle& item) {
      if (auto s = String(item, Index(path, i))) out.push_back(std::move(*s));
    });
    return out;
  }

  Labels StringMap(const Handle& node, const std::string& path) {
    Labels out;
    if (!ExpectMap(node, path)) return out;
    ForEachEntry(node, [&](const auto& k, const Handle& v) {
      const std::string key = k.IsScalar() ? std::string(k.Scalar()) : std::string();
      if (auto value = String(v, Child(path, key))) out[key] = std::move(*value);
    });
    return out;
  }

  ObjectMeta Meta(const Handle& node, bool namespaced) {
    ObjectMeta meta;
    if (namespaced) meta.namespace_ = options_.default_namespace;
    if (!node || !ExpectMap(node, "metadata")) return meta;
    CheckFields(node, "metadata",
                {"name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion",
                 "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "ownerReferences", "finalizers", "managedFields", "selfLink"});
    if (node["name"]) meta.name = String(node["name"], "metadata.name").value_or("");
    if (namespaced && node["namespace"]) {
      meta.namespace_ = String(node["namespace"], "metadata.namespace").value_or("");
      if (meta.namespace_.empty()) meta.namespace_ = options_.default_namespace;
    }
    if (node["labels"]) meta.labels = StringMap(node["labels"], "metadata.labels");
    return meta;
  }

  LabelSelector Selector(const Handle& node, const std::string& path) {
    LabelSelector selector;
    if (!ExpectMap(node, path)) return selector;
    CheckFields(node, path, {"matchLabels", "matchExpressions"});
    if (node["matchLabels"]) {
      selector.match_labels = StringMap(node["matchLabels"], Child(path, "matchLabels"));
    }
    if (const Handle exprs = node["matchExpressions"]) {
      const std::string exprs_path = Child(path, "matchExpressions");
      if (!ExpectSequence(exprs, exprs_path)) return selector;
      // Every item keeps its index, also one in error (validation names the
      // items by their index in the decoded list): an item that is not an
      // object becomes a placeholder validation passes, one with an invalid
      // operator keeps its key and values, which the API server validates too.
      ForEachItem(exprs, [&](size_t i, const Handle& expr) {
        const std::string expr_path = Index(exprs_path, i);
        LabelSelectorRequirement& req = selector.match_expressions.emplace_back();
        if (!ExpectMap(expr, expr_path)) {
          req.key = "not-an-object";
          return;
        }
        CheckFields(expr, expr_path, {"key", "operator", "values"});
        if (expr["key"]) req.key = String(expr["key"], Child(expr_path, "key")).value_or("");
        if (expr["values"]) req.values = StringList(expr["values"], Child(expr_path, "values"));
        const std::string op_path = Child(expr_path, "operator");
        const std::string op = expr["operator"] ? String(expr["operator"], op_path).value_or("") : "";
        if (op == "In") {
          req.op = SelectorOperator::kIn;
        } else if (op == "NotIn") {
          req.op = SelectorOperator::kNotIn;
        } else if (op == "Exists") {
          req.op = SelectorOperator::kExists;
        } else if (op == "DoesNotExist") {
          req.op = SelectorOperator::kDoesNotExist;
        } else {
          Error(expr["operator"] ? expr["operator"] : expr, op_path,
                InvalidValue(Quote(op), "not a valid selector operator"));
          // The server checks the values' count only for a valid operator.
          req.op = req.values.empty() ? SelectorOperator::kExists : SelectorOperator::kIn;
        }
      });
    }
    return selector;
  }

  Protocol ProtocolField(const Handle& node, const std::string& path) {
    const std::optional<std::string> text = String(node, path);
    if (!text) return Protocol::kTCP;
    if (text->empty()) return Protocol::kTCP;  // defaulted, as the API server does
    if (const auto protocol = ParseProtocol(*text)) return *protocol;
    Error(node, path, UnsupportedValue(Quote(*text), {"TCP", "UDP", "SCTP"}));
    return Protocol::kTCP;
  }

  PodSpec Spec(const Handle& node, const std::string& path) {
    PodSpec spec;
    if (!ExpectMap(node, path)) return spec;
    CheckFields(node, path,
                {"volumes",
                 "initContainers",
                 "containers",
                 "ephemeralContainers",
                 "restartPolicy",
                 "terminationGracePeriodSeconds",
                 "activeDeadlineSeconds",
                 "dnsPolicy",
                 "nodeSelector",
                 "serviceAccountName",
                 "serviceAccount",
                 "automountServiceAccountToken",
                 "nodeName",
                 "hostNetwork",
                 "hostPID",
                 "hostIPC",
                 "shareProcessNamespace",
                 "securityContext",
                 "imagePullSecrets",
                 "hostname",
                 "subdomain",
                 "affinity",
                 "schedulerName",
                 "tolerations",
                 "hostAliases",
                 "priorityClassName",
                 "priority",
                 "dnsConfig",
                 "readinessGates",
                 "runtimeClassName",
                 "enableServiceLinks",
                 "preemptionPolicy",
                 "overhead",
                 "topologySpreadConstraints",
                 "setHostnameAsFQDN",
                 "os",
                 "hostUsers",
                 "schedulingGates",
                 "resourceClaims",
                 "resources"});
    if (node["nodeName"]) spec.node_name = String(node["nodeName"], Child(path, "nodeName")).value_or("");
    if (node["hostNetwork"] && !node["hostNetwork"].IsNull()) {
      spec.host_network = Bool(node["hostNetwork"], Child(path, "hostNetwork")).value_or(false);
    }
    const std::string containers_path = Child(path, "containers");
    const Handle containers = node["containers"];
    if (!containers || !ExpectSequence(containers, containers_path)) return spec;
    ForEachItem(containers, [&](size_t i, const Handle& container) {
      spec.containers.push_back(ContainerField(container, Index(containers_path, i)));
    });
    return spec;
  }

  Container ContainerField(const Handle& node, const std::string& path) {
    Container c;
    if (!ExpectMap(node, path)) return c;
    CheckFields(node, path,
                {"name",
                 "image",
                 "command",
                 "args",
                 "workingDir",
                 "ports",
                 "envFrom",
                 "env",
                 "resources",
                 "resizePolicy",
                 "restartPolicy",
                 "volumeMounts",
                 "volumeDevices",
                 "livenessProbe",
                 "readinessProbe",
                 "startupProbe",
                 "lifecycle",
                 "terminationMessagePath",
                 "terminationMessagePolicy",
                 "imagePullPolicy",
                 "securityContext",
                 "stdin",
                 "stdinOnce",
                 "tty"});
    if (node["name"]) c.name = String(node["name"], Child(path, "name")).value_or("");
    if (node["image"]) c.image = String(node["image"], Child(path, "image")).value_or("");
    if (node["command"]) c.command = StringList(node["command"], Child(path, "command"));
    if (node["args"]) c.args = StringList(node["args"], Child(path, "args"));
    if (const Handle env = node["env"]; env && ExpectSequence(env, Child(path, "env"))) {
      ForEachItem(env, [&](size_t i, const Handle& e) {
        const std::string env_path = Index(Child(path, "env"), i);
        if (!ExpectMap(e, env_path)) return;
        CheckFields(e, env_path, {"name", "value", "valueFrom"});
        EnvVar var;
        if (const Handle name = e["name"]) var.name = String(name, Child(env_path, "name")).value_or("");
        if (const Handle value = e["value"]) var.value = String(value, Child(env_path, "value")).value_or("");
        c.env.push_back(std::move(var));
      });
    }
    if (const Handle ports = node["ports"]; ports && ExpectSequence(ports, Child(path, "ports"))) {
      ForEachItem(ports, [&](size_t i, const Handle& p) {
        const std::string port_path = Index(Child(path, "ports"), i);
        if (!ExpectMap(p, port_path)) {
          // Keeps the index of the ports after it (a placeholder validation passes).
          c.ports.push_back({.name = "", .container_port = 1, .protocol = Protocol::kTCP});
          return;
        }
        CheckFields(p, port_path, {"name", "hostPort", "containerPort", "protocol", "hostIP"});
        ContainerPort port;
        if (const Handle name = p["name"]) port.name = String(name, Child(port_path, "name")).value_or("");
        if (const Handle number = p["containerPort"]) {
          port.container_port = Int32(number, Child(port_path, "containerPort")).value_or(0);
        }
        if (const Handle protocol = p["protocol"]) {
          port.protocol = ProtocolField(protocol, Child(port_path, "protocol"));
        }
        c.ports.push_back(std::move(port));
      });
    }
    return c;
  }

  PodTemplate Template(const Handle& node, const std::string& path) {
    PodTemplate t;
    if (!ExpectMap(node, path)) return t;
    CheckFields(node, path, {"metadata", "spec"});
    if (const Handle meta = node["metadata"]; meta && ExpectMap(meta, Child(path, "metadata"))) {
      if (meta["labels"]) t.labels = StringMap(meta["labels"], Child(path, "metadata.labels"));
    }
    if (node["spec"]) t.spec = Spec(node["spec"], Child(path, "spec"));
    return t;
  }

  Pod DecodePod(const Handle& root) {
    Pod pod;
    pod.metadata = Meta(root["metadata"], true);
    if (root["spec"]) pod.spec = Spec(root["spec"], "spec");
    if (const Handle status = root["status"]; status && ExpectMap(status, "status")) {
      if (status["phase"]) pod.phase = String(status["phase"], "status.phase").value_or("");
      if (status["podIP"]) {
        const std::string ip = String(status["podIP"], "status.podIP").value_or("");
        if (!ip.empty()) pod.pod_ips.push_back(ip);
      }
      if (const Handle ips = status["podIPs"]; ips && ExpectSequence(ips, "status.podIPs")) {
        ForEachItem(ips, [&](size_t i, const Handle& entry) {
          const std::string path = Index("status.podIPs", i);
          if (!ExpectMap(entry, path)) return;
          const Handle ip_node = entry["ip"];
          if (!ip_node) return;
          std::string ip = String(ip_node, Child(path, "ip")).value_or("");
          // podIPs[0] repeats podIP; keep each address once, in order.
          if (!ip.empty() && std::find(pod.pod_ips.begin(), pod.pod_ips.end(), ip) == pod.pod_ips.end()) {
            pod.pod_ips.push_back(std::move(ip));
          }
        });
      }
    }
    return pod;
  }

  Workload DecodeWorkload(const Handle& root, WorkloadKind kind) {
    Workload w;
    w.kind = kind;
    w.metadata = Meta(root["metadata"], true);
    const Handle spec_node = root["spec"];
    if (!spec_node || !ExpectMap(spec_node, "spec")) return w;
    const Handle spec = spec_node;
    std::string spec_path = "spec";
    switch (kind) {
      case WorkloadKind::kDeployment:
        CheckFields(spec, "spec",
                    {"replicas", "selector", "template", "strategy", "minReadySeconds",
                     "revisionHistoryLimit", "paused", "progressDeadlineSeconds"});
        break;
      case WorkloadKind::kStatefulSet:
        CheckFields(spec, "spec",
                    {"replicas", "selector", "template", "volumeClaimTemplates", "serviceName",
                     "podManagementPolicy", "updateStrategy", "revisionHistoryLimit", "minReadySeconds",
                     "persistentVolumeClaimRetentionPolicy", "ordinals"});
        break;
      case WorkloadKind::kDaemonSet:
        CheckFields(spec, "spec",
                    {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"});
        break;
      case WorkloadKind::kReplicaSet:
      case WorkloadKind::kReplicationController:
        CheckFields(spec, "spec", {"replicas", "minReadySeconds", "selector", "template"});
        break;
      case WorkloadKind::kJob:
        CheckFields(spec, "spec",
                    {"parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy",
                     "successPolicy", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "selector",
                     "manualSelector", "template", "ttlSecondsAfterFinished", "completionMode", "suspend",
                     "podReplacementPolicy", "managedBy"});
        break;
      case WorkloadKind::kCronJob:
        CheckFields(spec, "spec",
                    {"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
                     "jobTemplate", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"});
        break;
    }
    if (kind == WorkloadKind::kCronJob) {
      // A CronJob's pods come from spec.jobTemplate.spec (a JobSpec).
      const Handle job = spec["jobTemplate"];
      if (!job || !ExpectMap(job, "spec.jobTemplate")) return w;
      CheckFields(job, "spec.jobTemplate", {"metadata", "spec"});
      if (!job["spec"] || !ExpectMap(job["spec"], "spec.jobTemplate.spec")) return w;
      spec_path = "spec.jobTemplate.spec";
    }
    const Handle body = kind == WorkloadKind::kCronJob ? spec["jobTemplate"]["spec"] : spec;
    const char* count_field =
        (kind == WorkloadKind::kJob || kind == WorkloadKind::kCronJob) ? "parallelism" : "replicas";
    if (kind != WorkloadKind::kDaemonSet && body[count_field] && !body[count_field].IsNull()) {
      w.replicas = Int32(body[count_field], Child(spec_path, count_field)).value_or(1);
    }
    // A Job never runs more pods at once than it has completions left.
    if ((kind == WorkloadKind::kJob || kind == WorkloadKind::kCronJob) && body["completions"] &&
        !body["completions"].IsNull()) {
      if (const auto completions = Int32(body["completions"], Child(spec_path, "completions"))) {
        w.replicas = std::min(w.replicas, std::max(*completions, 0));
      }
    }
    if (const Handle sel = body["selector"]; sel && !sel.IsNull()) {
      if (kind == WorkloadKind::kReplicationController) {
        // ReplicationController's selector is a plain label map.
        LabelSelector s;
        s.match_labels = StringMap(sel, Child(spec_path, "selector"));
        w.selector = std::move(s);
      } else {
        w.selector = Selector(sel, Child(spec_path, "selector"));
      }
    }
    if (body["template"]) w.pod_template = Template(body["template"], Child(spec_path, "template"));
    return w;
  }

  NetworkPolicyPeer Peer(const Handle& node, const std::string& path) {
    NetworkPolicyPeer peer;
    if (!ExpectMap(node, path)) return peer;
    CheckFields(node, path, {"podSelector", "namespaceSelector", "ipBlock"});
    // A null selector is an absent one (a nil pointer to the API server).
    if (node["podSelector"] && !node["podSelector"].IsNull()) {
      peer.pod_selector = Selector(node["podSelector"], Child(path, "podSelector"));
    }
    if (node["namespaceSelector"] && !node["namespaceSelector"].IsNull()) {
      peer.namespace_selector = Selector(node["namespaceSelector"], Child(path, "namespaceSelector"));
    }
    if (const Handle block = node["ipBlock"]; block && !block.IsNull()) {
      const std::string block_path = Child(path, "ipBlock");
      IpBlock ip_block;
      if (ExpectMap(block, block_path)) {
        CheckFields(block, block_path, {"cidr", "except"});
        if (block["cidr"]) ip_block.cidr = String(block["cidr"], Child(block_path, "cidr")).value_or("");
        if (block["except"]) ip_block.except = StringList(block["except"], Child(block_path, "except"));
      }
      peer.ip_block = std::move(ip_block);
    }
    return peer;
  }

  NetworkPolicyPort PolicyPort(const Handle& node, const std::string& path) {
    NetworkPolicyPort port;
    if (!ExpectMap(node, path)) return port;
    CheckFields(node, path, {"protocol", "port", "endPort"});
    if (node["protocol"] && !node["protocol"].IsNull()) {
      port.protocol = ProtocolField(node["protocol"], Child(path, "protocol"));
    }
    if (const Handle value = node["port"]; value && !value.IsNull()) {
      const std::string port_path = Child(path, "port");
      Record(port_path, value);
      if (value.IsScalar() && value.IsPlain() && IsPlainNonString(value)) {
        if (auto number = Int32(value, port_path)) port.port = *number;
      } else if (value.IsScalar()) {
        port.port = value.Scalar();  // quoted: a named port, even if it looks numeric
      } else {
        Error(value, port_path, "Invalid value: expected a port number or name");
      }
    }
    if (node["endPort"] && !node["endPort"].IsNull()) {
      port.end_port = Int32(node["endPort"], Child(path, "endPort"));
    }
    return port;
  }

  std::vector<NetworkPolicyRule> Rules(const Handle& node, const std::string& path, const char* peers_field) {
    std::vector<NetworkPolicyRule> rules;
    if (!ExpectSequence(node, path)) return rules;
    ForEachItem(node, [&](size_t i, const Handle& r) {
      const std::string rule_path = Index(path, i);
      NetworkPolicyRule rule;
      if (ExpectMap(r, rule_path)) {
        CheckFields(r, rule_path, {"ports", peers_field});
        if (const Handle ports = r["ports"]; ports && ExpectSequence(ports, Child(rule_path, "ports"))) {
          ForEachItem(ports, [&](size_t j, const Handle& port) {
            rule.ports.push_back(PolicyPort(port, Index(Child(rule_path, "ports"), j)));
          });
        }
        const std::string peers_path = Child(rule_path, peers_field);
        if (const Handle peers = r[peers_field]; peers && ExpectSequence(peers, peers_path)) {
          ForEachItem(peers, [&](size_t j, const Handle& peer) {
            rule.peers.push_back(Peer(peer, Index(peers_path, j)));
          });
        }
      }
      rules.push_back(std::move(rule));
    });
    return rules;
  }

  NetworkPolicy DecodePolicy(const Handle& root) {
    NetworkPolicy policy;
    policy.metadata = Meta(root["metadata"], true);
    const Handle spec = root["spec"];
    if (!spec || !ExpectMap(spec, "spec")) return policy;
    CheckFields(spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"});
    if (spec["podSelector"]) policy.pod_selector = Selector(spec["podSelector"], "spec.podSelector");
    if (const Handle types = spec["policyTypes"]; types && ExpectSequence(types, "spec.policyTypes")) {
      ForEachItem(types, [&](size_t i, const Handle& type) {
        const std::string path = Index("spec.policyTypes", i);
        const std::optional<std::string> text = String(type, path);
        if (!text) return;
        if (*text == "Ingress") {
          policy.policy_types.push_back(PolicyType::kIngress);
        } else if (*text == "Egress") {
          policy.policy_types.push_back(PolicyType::kEgress);
        } else {
          Error(type, path, UnsupportedValue(Quote(*text), {"Ingress", "Egress"}));
        }
      });
    }
    if (spec["ingress"]) policy.ingress = Rules(spec["ingress"], "spec.ingress", "from");
    if (spec["egress"]) policy.egress = Rules(spec["egress"], "spec.egress", "to");
    return policy;
  }

  // ---- Node ------------------------------------------------------------------

  Node DecodeNode(const Handle& root) {
    Node node;
    node.metadata = Meta(root["metadata"], false);
    const Handle status = root["status"];
    if (!status || !ExpectMap(status, "status")) return node;
    const Handle addresses = status["addresses"];
    if (!addresses || !ExpectSequence(addresses, "status.addresses")) return node;
    ForEachItem(addresses, [&](size_t i, const Handle& a) {
      const std::string path = Index("status.addresses", i);
      if (!ExpectMap(a, path)) return;
      CheckFields(a, path, {"type", "address"});
      NodeAddress address;
      if (const Handle type = a["type"]) address.type = String(type, Child(path, "type")).value_or("");
      if (const Handle value = a["address"]) {
        address.address = String(value, Child(path, "address")).value_or("");
      }
      node.addresses.push_back(std::move(address));
    });
    return node;
  }

  // ---- ClusterNetworkPolicy ---------------------------------------------------

  // An enum field of the CRD: the value, or an error in the schema's words.
  template <typename Enum>
  std::optional<Enum> EnumField(const Handle& node, const std::string& path,
                                std::initializer_list<std::pair<std::string_view, Enum>> values) {
    const std::optional<std::string> text = String(node, path);
    if (!text) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      if (name == *text) return value;
      names.emplace_back(name);
    }
    Error(node, path, UnsupportedValue(Quote(*text), names));
    return std::nullopt;
  }

  NamespacedPod NamespacedPodField(const Handle& node, const std::string& path) {
    NamespacedPod pods;
    if (!ExpectMap(node, path)) return pods;
    CheckFields(node, path, {"namespaceSelector", "podSelector"});
    if (node["namespaceSelector"] && !node["namespaceSelector"].IsNull()) {
      pods.namespace_selector = Selector(node["namespaceSelector"], Child(path, "namespaceSelector"));
    }
    if (node["podSelector"]) pods.pod_selector = Selector(node["podSelector"], Child(path, "podSelector"));
    return pods;
  }

  ClusterPeer ClusterPeerField(const Handle& node, const std::string& path, bool egress) {
    ClusterPeer peer;
    if (!ExpectMap(node, path)) return peer;
    if (egress) {
      CheckFields(node, path, {"namespaces", "pods", "nodes", "networks", "domainNames"});
    } else {
      CheckFields(node, path, {"namespaces", "pods"});
    }
    if (node["namespaces"]) peer.namespaces = Selector(node["namespaces"], Child(path, "namespaces"));
    if (node["pods"]) peer.pods = NamespacedPodField(node["pods"], Child(path, "pods"));
    if (!egress) return peer;
    if (node["nodes"]) peer.nodes = Selector(node["nodes"], Child(path, "nodes"));
    if (node["networks"]) peer.networks = StringList(node["networks"], Child(path, "networks"));
    if (node["domainNames"]) peer.domain_names = StringList(node["domainNames"], Child(path, "domainNames"));
    return peer;
  }

  ClusterProtocolMatch ProtocolMatch(const Handle& node, const std::string& path) {
    ClusterProtocolMatch match;
    if (!ExpectMap(node, path)) return match;
    CheckFields(node, path, {"destinationPort"});
    const Handle port = node["destinationPort"];
    const std::string port_path = Child(path, "destinationPort");
    if (!port || !ExpectMap(port, port_path)) return match;
    CheckFields(port, port_path, {"number", "range"});
    ClusterPort value;
    if (port["number"]) value.number = Int32(port["number"], Child(port_path, "number")).value_or(0);
    if (const Handle range = port["range"]; range && ExpectMap(range, Child(port_path, "range"))) {
      const std::string range_path = Child(port_path, "range");
      CheckFields(range, range_path, {"start", "end"});
      PortRange r;
      if (range["start"]) r.start = Int32(range["start"], Child(range_path, "start")).value_or(0);
      if (range["end"]) r.end = Int32(range["end"], Child(range_path, "end")).value_or(0);
      value.range = r;
    }
    match.destination_port = value;
    return match;
  }

  ClusterProtocol ClusterProtocolField(const Handle& node, const std::string& path) {
    ClusterProtocol protocol;
    if (!ExpectMap(node, path)) return protocol;
    CheckFields(node, path, {"tcp", "udp", "sctp", "destinationNamedPort"});
    if (node["tcp"]) protocol.tcp = ProtocolMatch(node["tcp"], Child(path, "tcp"));
    if (node["udp"]) protocol.udp = ProtocolMatch(node["udp"], Child(path, "udp"));
    if (node["sctp"]) protocol.sctp = ProtocolMatch(node["sctp"], Child(path, "sctp"));
    if (node["destinationNamedPort"]) {
      protocol.destination_named_port =
          String(node["destinationNamedPort"], Child(path, "destinationNamedPort")).value_or("");
    }
    return protocol;
  }

  std::vector<ClusterRule> ClusterRules(const Handle& node, const std::string& path, bool egress) {
    std::vector<ClusterRule> rules;
    if (!ExpectSequence(node, path)) return rules;
    const char* peers_field = egress ? "to" : "from";
    ForEachItem(node, [&](size_t i, const Handle& r) {
      const std::string rule_path = Index(path, i);
      ClusterRule rule;
      if (ExpectMap(r, rule_path)) {
        CheckFields(r, rule_path, {"name", "action", peers_field, "protocols"});
        if (r["name"]) rule.name = String(r["name"], Child(rule_path, "name")).value_or("");
        if (r["action"] && !r["action"].IsNull()) {
          // An unsupported value is reported here; the placeholder keeps
          // validation from calling the field missing.
          rule.action =
              EnumField<RuleAction>(
                  r["action"], Child(rule_path, "action"),
                  {{"Accept", RuleAction::kAccept}, {"Deny", RuleAction::kDeny}, {"Pass", RuleAction::kPass}})
                  .value_or(RuleAction::kDeny);
        }
        const std::string peers_path = Child(rule_path, peers_field);
        if (const Handle peers = r[peers_field]; peers && ExpectSequence(peers, peers_path)) {
          rule.peers.emplace();
          ForEachItem(peers, [&](size_t j, const Handle& peer) {
            rule.peers->push_back(ClusterPeerField(peer, Index(peers_path, j), egress));
          });
        }
        const std::string protocols_path = Child(rule_path, "protocols");
        if (const Handle protocols = r["protocols"]; protocols && ExpectSequence(protocols, protocols_path)) {
          rule.protocols.emplace();
          ForEachItem(protocols, [&](size_t j, const Handle& protocol) {
            rule.protocols->push_back(ClusterProtocolField(protocol, Index(protocols_path, j)));
          });
        }
      }
      rules.push_back(std::move(rule));
    });
    return rules;
  }

  ClusterNetworkPolicy DecodeClusterPolicy(const Handle& root) {
    ClusterNetworkPolicy policy;
    policy.metadata = Meta(root["metadata"], false);
    const Handle spec = root["spec"];
    if (!spec || !ExpectMap(spec, "spec")) return policy;
    CheckFields(spec, "spec", {"tier", "priority", "subject", "ingress", "egress"});
    if (spec["tier"] && !spec["tier"].IsNull()) {
      policy.tier =
          EnumField<Tier>(spec["tier"], "spec.tier", {{"Admin", Tier::kAdmin}, {"Baseline", Tier::kBaseline}})
              .value_or(Tier::kAdmin);  // a placeholder after an error, as for action
    }
    if (spec["priority"] && !spec["priority"].IsNull()) {
      policy.priority = Int32(spec["priority"], "spec.priority").value_or(0);
    }
    if (const Handle subject = spec["subject"]; subject && ExpectMap(subject, "spec.subject")) {
      ClusterSubject s;
      CheckFields(subject, "spec.subject", {"namespaces", "pods"});
      if (subject["namespaces"]) s.namespaces = Selector(subject["namespaces"], "spec.subject.namespaces");
      if (subject["pods"]) s.pods = NamespacedPodField(subject["pods"], "spec.subject.pods");
      policy.subject = std::move(s);
    }
    if (spec["ingress"]) policy.ingress = ClusterRules(spec["ingress"], "spec.ingress", false);
    if (spec["egress"]) policy.egress = ClusterRules(spec["egress"], "spec.egress", true);
    return policy;
  }

 private:
  std::string file_;
  const DecodeOptions& options_;
  Diagnostics& diagnostics_;
  std::string object_ref_;
  FieldPositions positions_;
};

// Offset of the first byte that is not part of a valid UTF-8 sequence.
std::optional<size_t> FirstInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return i;
    i += len;
  }
  return std::nullopt;
}

struct KindInfo {
  std::string_view kind;
  std::string_view api_version;  // the one version netpol reads
};

constexpr KindInfo kKinds[] = {
    {"Namespace", "v1"},
    {"Pod", "v1"},
    {"ReplicationController", "v1"},
    {"NetworkPolicy", "networking.k8s.io/v1"},
    {"Node", "v1"},
    {"ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2"},
    {"Deployment", "apps/v1"},
    {"StatefulSet", "apps/v1"},
    {"DaemonSet", "apps/v1"},
    {"ReplicaSet", "apps/v1"},
    {"Job", "batch/v1"},
    {"CronJob", "batch/v1"},
};

class Decoder {
 public:
  Decoder(std::string_view file, const DecodeOptions& options) : file_(file), options_(options) {}

  DecodeResult Run(std::string_view text, size_t readable_after) {
    // JSON (what kubectl -o json and the API write) is read in place; the
    // JSON reader gives up on anything the YAML reader would read otherwise,
    // which then reads it as before.
    if (options_.json_reader && internal::JsonText::LooksLikeJsonObject(text)) {
      internal::JsonText json(text, readable_after, options_.field_positions);
      if (const JsonNode root = json.Root()) Document(root, 0);
      if (!json.failed()) return std::move(result_);
      result_ = DecodeResult();
    }
    // YAML and JSON are Unicode text. libyaml checks too, but this names the
    // exact line and column of the bad byte.
    if (const std::optional<size_t> bad = FirstInvalidUtf8(text)) {
      const std::string_view before = text.substr(0, *bad);
      const int line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
      const size_t line_start = before.rfind('\n');
      const int column =
          static_cast<int>(*bad - (line_start == std::string_view::npos ? 0 : line_start + 1)) + 1;
      result_.diagnostics.push_back(
          {Severity::kError, {file_, line, column}, "", "", "invalid UTF-8: manifests must be UTF-8 text"});
      return std::move(result_);
    }
    const internal::YamlStream stream = internal::ParseYaml(text);
    if (stream.error) {
      result_.diagnostics.push_back({Severity::kError,
                                     {file_, stream.error->line, stream.error->column},
                                     "",
                                     "",
                                     "invalid YAML or JSON: " + stream.error->message});
      return std::move(result_);
    }
    for (const YamlNode& doc : stream.documents) Document(doc, 0);
    return std::move(result_);
  }

  // Reads `text` (one JSON object) with the in-place reader, or the YAML
  // reader when that gives up, handing its root to `fn` (a generic lambda,
  // which must start afresh when called twice). False: not an object.
  template <typename F>
  static bool ReadRoot(std::string_view text, size_t readable_after, F&& fn) {
    if (internal::JsonText::LooksLikeJsonObject(text)) {
      internal::JsonText json(text, readable_after);
      if (const JsonNode root = json.Root()) fn(root);
      if (!json.failed()) return true;
    }
    if (!FirstInvalidUtf8(text)) {
      const internal::YamlStream stream = internal::ParseYaml(text);
      if (!stream.error && stream.documents.size() == 1 && stream.documents[0].IsMap()) {
        fn(stream.documents[0]);
        return true;
      }
    }
    // JSON neither reader takes (surrogate escapes, which Go's encoder never
    // writes but another server might): one bad object must not stop a whole
    // list, so it is read as a JSON value, as before the in-place reader.
    const nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!value.is_object()) return false;
    const internal::YamlStream stream = internal::TreeFromJson(value);
    if (stream.documents.size() != 1 || !stream.documents[0].IsMap()) return false;
    fn(stream.documents[0]);
    return true;
  }

  // One object as the API serves it, decoded and validated on its own.
  template <typename Handle>
  ApiItem Item(const Handle& object, const ApiKind& kind) {
    ApiItem item;
    if (!object || !object.IsMap()) {
      item.problem = "not an object";
      return item;
    }
    if (const Handle meta = object["metadata"]; meta && meta.IsMap()) {
      if (const Handle name = meta["name"]; name && name.IsScalar()) item.name = name.Scalar();
      if (const Handle ns = meta["namespace"]; ns && ns.IsScalar()) item.namespace_ = ns.Scalar();
      if (const Handle rv = meta["resourceVersion"]; rv && rv.IsScalar()) item.resource_version = rv.Scalar();
    }
    result_ = DecodeResult();
    Document(object, 1, &kind);
    for (const Object& decoded : result_.objects) {
      for (Diagnostic& d : Validate(decoded)) result_.diagnostics.push_back(std::move(d));
    }
    for (const Diagnostic& d : result_.diagnostics) {
      if (d.severity == Severity::kError) item.problem += (item.problem.empty() ? "" : "; ") + d.ToString();
    }
    if (item.problem.empty() && result_.objects.size() != 1) item.problem = "not an object netpol reads";
    if (item.problem.empty()) item.object = std::move(result_.objects.front());
    result_ = DecodeResult();
    return item;
  }

  template <typename Handle>
  void Page(const Handle& root, const ApiKind& kind, ApiListPage& page) {
    page = ApiListPage();
    if (const Handle meta = root["metadata"]; meta && meta.IsMap()) {
      if (const Handle rv = meta["resourceVersion"]; rv && rv.IsScalar()) page.resource_version = rv.Scalar();
      if (const Handle next = meta["continue"]; next && next.IsScalar()) page.continue_token = next.Scalar();
    }
    if (const Handle items = root["items"]; items && items.IsSequence()) {
      ForEachItem(items, [&](size_t, const Handle& item) { page.items.push_back(Item(item, kind)); });
    }
  }

  template <typename Handle>
  void Event(const Handle& root, const ApiKind& kind, ApiWatchEvent& event) {
    event = ApiWatchEvent();
    if (const Handle type = root["type"]; type && type.IsScalar()) event.type = type.Scalar();
    const Handle object = root["object"];
    if (event.type == "ERROR") {
      if (!object || !object.IsMap()) return;
      if (const Handle code = object["code"]; code && code.IsScalar())
        event.status_code = std::atoi(code.Scalar().c_str());
      if (const Handle message = object["message"]; message && message.IsScalar())
        event.status_message = message.Scalar();
      return;
    }
    if (event.type == "BOOKMARK") {
      if (!object || !object.IsMap()) return;
      if (const Handle meta = object["metadata"]; meta && meta.IsMap()) {
        if (const Handle rv = meta["resourceVersion"]; rv && rv.IsScalar())
          event.item.resource_version = rv.Scalar();
      }
      return;
    }
    event.item = Item(object, kind);
  }

  DecodeResult RunJson(const nlohmann::json& object) {
    const internal::YamlStream stream = internal::TreeFromJson(object);
    for (const YamlNode& doc : stream.documents) Document(doc, 0);
    return std::move(result_);
  }

 private:
  template <typename At>
  void FileError(const At& node, std::string detail) {
    const auto [line, column] = LineColumn(node);
    result_.diagnostics.push_back({Severity::kError, {file_, line, column}, "", "", std::move(detail)});
  }

  // `given`: the kind and apiVersion of an object that names none (a list's
  // item as the API serves it).
  template <typename Handle>
  void Document(const Handle& doc, int depth, const ApiKind* given = nullptr) {
    if (!doc || doc.IsNull()) return;  // empty document ("---" alone)
    if (!doc.IsMap()) {
      FileError(doc, "expected a Kubernetes object (a mapping with apiVersion and kind)");
      return;
    }
    const Handle kind_node = doc["kind"];
    const bool kind_given = given != nullptr && !kind_node;
    if (!kind_given && (!kind_node || !kind_node.IsScalar() || kind_node.Scalar().empty())) {
      FileError(doc, "Object 'Kind' is missing");
      return;
    }
    const std::string kind = kind_given ? std::string(given->kind) : kind_node.Scalar();
    if (kind == "List" || (kind.size() > 4 && kind.ends_with("List") && doc["items"])) {
      KeySet seen;
      ForEachKey(doc, [&](const auto& key) {
        if (key.IsScalar() && !seen.Insert(key.Scalar())) {
          const auto [line, column] = LineColumn(key);
          const std::string_view text = key.Scalar();
          const std::string name(text);
          result_.diagnostics.push_back({Severity::kError,
                                         {file_, line, column},
                                         "",
                                         name,
                                         "key " + Quote(name) + " already set in map"});
        }
      });
      const Handle items = doc["items"];
      if (items && !items.IsNull() && !items.IsSequence()) {
        FileError(items, "items: expected a list");
        return;
      }
      if (depth > 0) {
        FileError(doc, "a List may not contain another List");
        return;
      }
      if (items) {
        result_.objects.reserve(result_.objects.size() + ItemCountHint(items));
        ForEachItem(items, [&](size_t, const Handle& item) { Document(item, depth + 1); });
      }
      return;
    }
    const KindInfo* info = nullptr;
    for (const KindInfo& k : kKinds) {
      if (k.kind == kind) info = &k;
    }
    if (info == nullptr) {
      ++result_.ignored[kind];
      return;
    }
    const Handle version_node = doc["apiVersion"];
    const std::string version = kind_given && !version_node               ? std::string(given->api_version)
                                : version_node && version_node.IsScalar() ? version_node.Scalar()
                                                                          : std::string();
    if (version.empty()) {
      FileError(doc, "Object 'apiVersion' is missing for kind " + Quote(kind));
      return;
    }
    if (version != info->api_version) {
      FileError(version_node, "no matches for kind " + Quote(kind) + " in version " + Quote(version) +
                                  " (netpol reads " + std::string(info->api_version) + ")");
      return;
    }

    ObjectDecoder<Handle> d(file_, options_, result_.diagnostics);
    if (last_positions_ != nullptr) d.ReserveLike(*last_positions_);
    // The object reference in diagnostics needs name and namespace, which are
    // read first without recording anything.
    std::string ref = kind + " ";
    if (const Handle meta = doc["metadata"]; meta && meta.IsMap()) {
      // The name before the namespace: the order the API writes them in,
      // which the JSON reader walks fastest.
      const Handle name = meta["name"];
      const std::string name_text = name && name.IsScalar() ? name.Scalar() : "<unnamed>";
      if (!IsClusterScoped(kind)) {
        const Handle ns = meta["namespace"];
        ref += (ns && ns.IsScalar() && !ns.Scalar().empty() ? ns.Scalar() : options_.default_namespace) + "/";
      }
      ref += name_text;
    } else {
      ref += "<unnamed>";
    }
    d.set_object_ref(ref);
    d.ExpectMap(doc, "");  // its own keys given twice; its fields' are checked as they are decoded
    d.CheckFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"});

    Object object = DecodeKind(d, doc, kind);
    MetaOf(object).source = d.TakeProvenance(doc);
    if (MetaOf(object).source.fields != nullptr) last_positions_ = MetaOf(object).source.fields;
    result_.objects.push_back(std::move(object));
  }

  template <typename Handle>
  static Object DecodeKind(ObjectDecoder<Handle>& d, const Handle& doc, const std::string& kind) {
    Object object;
    if (kind == "Namespace") {
      Namespace ns;
      ns.metadata = d.Meta(doc["metadata"], false);
      object = std::move(ns);
    } else if (kind == "Pod") {
      object = d.DecodePod(doc);
    } else if (kind == "NetworkPolicy") {
      object = d.DecodePolicy(doc);
    } else if (kind == "Node") {
      object = d.DecodeNode(doc);
    } else if (kind == "ClusterNetworkPolicy") {
      object = d.DecodeClusterPolicy(doc);
    } else {
      object = d.DecodeWorkload(doc, *ParseWorkloadKind(kind));
    }
    return object;
  }

  std::string file_;
  const DecodeOptions& options_;
  DecodeResult result_;
  std::shared_ptr<const FieldPositions> last_positions_;  // of the object decoded last
};

}  // namespace

DecodeResult Decode(std::string_view text, std::string_view file, const DecodeOptions& options) {
  return Decoder(file, options).Run(text, 0);
}

DecodeResult DecodePadded(std::string_view text, std::string_view file, const DecodeOptions& options) {
  return Decoder(file, options).Run(text, kDecodePadding);
}

DecodeResult DecodeJson(const nlohmann::json& object, std::string_view name, const DecodeOptions& options) {
  return Decoder(name, options).RunJson(object);
}

namespace {

// Objects from the API server: nobody reads their fields' positions.
DecodeOptions ApiOptions() {
  DecodeOptions options;
  options.field_positions = false;
  return options;
}

}  // namespace

Result<ApiListPage> DecodeListPage(std::string_view text, size_t readable_after, ApiKind items) {
  const DecodeOptions options = ApiOptions();
  Decoder decoder("list", options);
  ApiListPage page;
  if (!Decoder::ReadRoot(text, readable_after, [&](const auto& root) { decoder.Page(root, items, page); })) {
    return InvalidArgument("unreadable list: not a JSON object");
  }
  return page;
}

Result<std::string> ReadListContinue(std::string_view text, size_t readable_after) {
  std::string token;
  const bool read = Decoder::ReadRoot(text, readable_after, [&](const auto& root) {
    token.clear();
    if (const auto meta = root["metadata"]; meta && meta.IsMap()) {
      if (const auto next = meta["continue"]; next && next.IsScalar()) token = next.Scalar();
    }
  });
  if (!read) return InvalidArgument("unreadable list: not a JSON object");
  return token;
}

Result<ApiWatchEvent> DecodeWatchEvent(std::string_view text, size_t readable_after, ApiKind kind) {
  const DecodeOptions options = ApiOptions();
  Decoder decoder("watch", options);
  ApiWatchEvent event;
  if (!Decoder::ReadRoot(text, readable_after, [&](const auto& root) { decoder.Event(root, kind, event); })) {
    return InvalidArgument("unreadable watch event: not a JSON object");
  }
  return event;
}

}  // namespace netpol::api
