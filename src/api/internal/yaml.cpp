#include "api/internal/yaml.h"

#include <yaml.h>

#include <cstdint>
#include <deque>
#include <map>

namespace netpol::api::internal {

struct YamlData {
  enum class Kind { kScalar, kSequence, kMapping };
  Kind kind = Kind::kScalar;
  std::string value;
  bool plain = true;
  int line = 0;
  int column = 0;
  size_t weight = 1;                   // nodes in the subtree, aliases expanded (saturating)
  std::vector<const YamlData*> items;  // sequence
  std::vector<std::pair<const YamlData*, const YamlData*>> entries;  // mapping
};

namespace {

const std::string kEmpty;

bool IsNullText(const std::string& v) {
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

class TreeBuilder {
 public:
  TreeBuilder(std::string_view text, const YamlLimits& limits) : text_(text), limits_(limits) {}

  YamlStream Build() {
    YamlStream out;
    auto nodes = std::make_shared<std::deque<YamlData>>();
    nodes_ = nodes.get();
    out.storage = nodes;
    yaml_parser_t parser;
    if (yaml_parser_initialize(&parser) == 0) {
      out.error = YamlError{"cannot initialise the YAML parser", 0, 0};
      return out;
    }
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text_.data()), text_.size());
    std::vector<const YamlData*> docs;
    Parse(parser, docs, out);
    yaml_parser_delete(&parser);
    if (!out.error) {
      for (const YamlData* d : docs) out.documents.emplace_back(d);
    }
    return out;
  }

 private:
  struct Frame {
    YamlData* node;
    const YamlData* pending_key = nullptr;  // mapping: key waiting for its value
    std::string anchor;
  };

  void Fail(YamlStream& out, std::string message, const yaml_mark_t& mark) {
    if (!out.error) {
      out.error =
          YamlError{std::move(message), static_cast<int>(mark.line) + 1, static_cast<int>(mark.column) + 1};
    }
  }

  YamlData* New(YamlData::Kind kind, const yaml_mark_t& mark) {
    YamlData& node = nodes_->emplace_back();
    node.kind = kind;
    node.line = static_cast<int>(mark.line) + 1;
    node.column = static_cast<int>(mark.column) + 1;
    return &node;
  }

  static size_t SaturatingAdd(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

  // Attaches a finished node to its parent (or makes it a document root).
  void Attach(const YamlData* node, std::vector<Frame>& stack, std::vector<const YamlData*>& docs) {
    if (stack.empty()) {
      docs.push_back(node);
      return;
    }
    Frame& parent = stack.back();
    parent.node->weight = SaturatingAdd(parent.node->weight, node->weight);
    if (parent.node->kind == YamlData::Kind::kSequence) {
      parent.node->items.push_back(node);
    } else if (parent.pending_key == nullptr) {
      parent.pending_key = node;
    } else {
      parent.node->entries.emplace_back(parent.pending_key, node);
      parent.pending_key = nullptr;
    }
  }

  void Parse(yaml_parser_t& parser, std::vector<const YamlData*>& docs, YamlStream& out) {
    std::vector<Frame> stack;
    std::map<std::string, const YamlData*> anchors;
    size_t budget = limits_.max_alias_nodes;  // nodes aliases may still add
    while (true) {
      yaml_event_t event;
      if (yaml_parser_parse(&parser, &event) == 0) {
        const std::string problem = parser.problem != nullptr ? parser.problem : "syntax error";
        const std::string context = parser.context != nullptr ? std::string(parser.context) + ": " : "";
        Fail(out, context + problem, parser.problem_mark);
        return;
      }
      const yaml_event_type_t type = event.type;
      const yaml_mark_t mark = event.start_mark;
      bool stop = type == YAML_STREAM_END_EVENT;
      switch (type) {
        case YAML_DOCUMENT_START_EVENT:
          anchors.clear();
          break;
        case YAML_SCALAR_EVENT: {
          YamlData* node = New(YamlData::Kind::kScalar, mark);
          node->value.assign(reinterpret_cast<const char*>(event.data.scalar.value),
                             event.data.scalar.length);
          const char* tag = reinterpret_cast<const char*>(event.data.scalar.tag);
          const bool str_tag = tag != nullptr && std::string_view(tag) == "tag:yaml.org,2002:str";
          node->plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !str_tag;
          if (event.data.scalar.anchor != nullptr)
            anchors[reinterpret_cast<const char*>(event.data.scalar.anchor)] = node;
          Attach(node, stack, docs);
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
          if (stack.size() >= limits_.max_depth) {
            Fail(out,
                 "nesting deeper than " + std::to_string(limits_.max_depth) +
                     " levels (netpol's limit against hostile input; Kubernetes objects nest far less)",
                 mark);
            stop = true;
            break;
          }
          const bool seq = type == YAML_SEQUENCE_START_EVENT;
          YamlData* node = New(seq ? YamlData::Kind::kSequence : YamlData::Kind::kMapping, mark);
          const unsigned char* anchor =
              seq ? event.data.sequence_start.anchor : event.data.mapping_start.anchor;
          stack.push_back({node, nullptr, anchor != nullptr ? reinterpret_cast<const char*>(anchor) : ""});
          break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          const Frame done = stack.back();
          stack.pop_back();
          if (!done.anchor.empty()) anchors[done.anchor] = done.node;
          Attach(done.node, stack, docs);
          break;
        }
        case YAML_ALIAS_EVENT: {
          const auto it = anchors.find(reinterpret_cast<const char*>(event.data.alias.anchor));
          if (it == anchors.end()) {
            Fail(out, "unknown alias", mark);
            stop = true;
            break;
          }
          // Aliases share the anchored subtree; charge its size so that nested
          // aliases ("billion laughs") hit the budget instead of the memory.
          const size_t weight = it->second->weight;
          if (weight > budget) {
            Fail(out,
                 "aliases expand to more than " + std::to_string(limits_.max_alias_nodes) +
                     " nodes (netpol's limit against alias bombs); write the aliased parts out in full",
                 mark);
            stop = true;
            break;
          }
          budget -= weight;
          Attach(it->second, stack, docs);
          break;
        }
        default:
          break;
      }
      yaml_event_delete(&event);
      if (stop) return;
    }
  }

  std::string_view text_;
  YamlLimits limits_;
  std::deque<YamlData>* nodes_ = nullptr;
};

}  // namespace

bool YamlNode::IsNull() const {
  return data_ != nullptr && data_->kind == YamlData::Kind::kScalar && data_->plain &&
         IsNullText(data_->value);
}
bool YamlNode::IsScalar() const {
  return data_ != nullptr && data_->kind == YamlData::Kind::kScalar;
}
bool YamlNode::IsSequence() const {
  return data_ != nullptr && data_->kind == YamlData::Kind::kSequence;
}
bool YamlNode::IsMap() const {
  return data_ != nullptr && data_->kind == YamlData::Kind::kMapping;
}
const std::string& YamlNode::Scalar() const {
  return IsScalar() ? data_->value : kEmpty;
}
bool YamlNode::IsPlain() const {
  return IsScalar() && data_->plain;
}
int YamlNode::line() const {
  return data_ != nullptr ? data_->line : 0;
}
int YamlNode::column() const {
  return data_ != nullptr ? data_->column : 0;
}

size_t YamlNode::size() const {
  if (IsSequence()) return data_->items.size();
  if (IsMap()) return data_->entries.size();
  return 0;
}

YamlNode YamlNode::operator[](size_t index) const {
  if (!IsSequence() || index >= data_->items.size()) return YamlNode();
  return YamlNode(data_->items[index]);
}

YamlNode YamlNode::operator[](std::string_view key) const {
  if (!IsMap()) return YamlNode();
  for (const auto& [k, v] : data_->entries) {
    if (k->kind == YamlData::Kind::kScalar && k->value == key) return YamlNode(v);
  }
  return YamlNode();
}

std::vector<std::pair<YamlNode, YamlNode>> YamlNode::entries() const {
  std::vector<std::pair<YamlNode, YamlNode>> out;
  if (!IsMap()) return out;
  out.reserve(data_->entries.size());
  for (const auto& [k, v] : data_->entries) out.emplace_back(YamlNode(k), YamlNode(v));
  return out;
}

YamlStream ParseYaml(std::string_view text, const YamlLimits& limits) {
  return TreeBuilder(text, limits).Build();
}

namespace {

const YamlData* FromJson(const nlohmann::json& v, std::deque<YamlData>& nodes) {
  YamlData& node = nodes.emplace_back();
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      node.kind = YamlData::Kind::kMapping;
      for (const auto& [key, value] : v.items()) {
        YamlData& k = nodes.emplace_back();
        k.value = key;
        k.plain = false;
        const YamlData* child = FromJson(value, nodes);
        node.entries.emplace_back(&k, child);
        node.weight += 1 + child->weight;
      }
      break;
    case nlohmann::json::value_t::array:
      node.kind = YamlData::Kind::kSequence;
      for (const nlohmann::json& item : v) {
        const YamlData* child = FromJson(item, nodes);
        node.items.push_back(child);
        node.weight += child->weight;
      }
      break;
    case nlohmann::json::value_t::string:
      node.value = v.get<std::string>();
      node.plain = false;
      break;
    case nlohmann::json::value_t::null:
      node.value = "null";
      break;
    default:  // numbers and booleans: their JSON text, plain
      node.value = v.dump();
      break;
  }
  return &node;
}

}  // namespace

YamlStream TreeFromJson(const nlohmann::json& value) {
  YamlStream out;
  auto nodes = std::make_shared<std::deque<YamlData>>();
  out.documents.emplace_back(FromJson(value, *nodes));
  out.storage = nodes;
  return out;
}

}  // namespace netpol::api::internal
