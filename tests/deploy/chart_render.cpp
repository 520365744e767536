#include "deploy/chart_render.h"

#include <cctype>
#include <memory>
#include <optional>
#include <vector>

namespace netpol::testing_chart {
namespace {

using Json = nlohmann::json;

// One piece of a template: text, an action to print, or an if/else.
struct Node {
  enum Kind { kText, kPrint, kIf } kind = kText;
  std::string text;  // kText: the text; kPrint, kIf: the pipeline
  int line = 1;
  std::vector<Node> then_nodes;
  std::vector<Node> else_nodes;
};

struct Token {
  bool action = false;
  std::string text;
  int line = 1;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LineAt(const std::string& s, size_t pos) {
  int line = 1;
  for (size_t i = 0; i < pos && i < s.size(); ++i) line += s[i] == '\n';
  return line;
}

Result<std::vector<Token>> Tokenize(const std::string& s) {
  std::vector<Token> out;
  size_t at = 0;
  bool trim_next = false;
  while (at <= s.size()) {
    const size_t open = s.find("{{", at);
    std::string text = s.substr(at, open == std::string::npos ? std::string::npos : open - at);
    if (trim_next)
      text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos
                        ? text.size()
                        : text.find_first_not_of(" \t\r\n"));
    if (open == std::string::npos) {
      out.push_back({false, text, LineAt(s, at)});
      break;
    }
    std::string inner;
    const size_t close = s.find("}}", open);
    if (close == std::string::npos)
      return InvalidArgument("line " + std::to_string(LineAt(s, open)) + ": unclosed {{");
    inner = s.substr(open + 2, close - open - 2);
    if (inner.size() >= 2 && inner[0] == '-' && IsSpace(inner[1])) {
      while (!text.empty() && IsSpace(text.back())) text.pop_back();
      inner.erase(0, 1);
    }
    trim_next = inner.size() >= 2 && inner.back() == '-' && IsSpace(inner[inner.size() - 2]);
    if (trim_next) inner.pop_back();
    const size_t first = inner.find_first_not_of(" \t\r\n");
    inner =
        first == std::string::npos ? "" : inner.substr(first, inner.find_last_not_of(" \t\r\n") - first + 1);
    out.push_back({false, text, LineAt(s, at)});
    out.push_back({true, inner, LineAt(s, open)});
    at = close + 2;
  }
  return out;
}

// Parses tokens[i...] into nodes until `else` or `end` (returned in *stop).
Status Parse(const std::vector<Token>& tokens, size_t& i, std::vector<Node>& out, std::string* stop) {
  for (; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (!t.action) {
      if (!t.text.empty()) out.push_back({Node::kText, t.text, t.line, {}, {}});
      continue;
    }
    if (t.text.rfind("/*", 0) == 0) continue;  // a comment
    if (t.text == "end" || t.text == "else" || t.text.rfind("else if ", 0) == 0) {
      if (stop == nullptr)
        return InvalidArgument("line " + std::to_string(t.line) + ": " + t.text + " without if");
      *stop = t.text;
      return Ok();
    }
    if (t.text.rfind("if ", 0) == 0) {
      Node node{Node::kIf, t.text.substr(3), t.line, {}, {}};
      std::string ended;
      ++i;
      NETPOL_RETURN_IF_ERROR(Parse(tokens, i, node.then_nodes, &ended), "");
      // `else if C` is an else holding an if that the same `end` closes.
      Node* current = &node;
      while (ended.rfind("else if ", 0) == 0) {
        Node nested{Node::kIf, ended.substr(8), tokens[i].line, {}, {}};
        ++i;
        NETPOL_RETURN_IF_ERROR(Parse(tokens, i, nested.then_nodes, &ended), "");
        current->else_nodes.push_back(std::move(nested));
        current = &current->else_nodes.back();
      }
      if (ended == "else") {
        ++i;
        NETPOL_RETURN_IF_ERROR(Parse(tokens, i, current->else_nodes, &ended), "");
      }
      if (ended != "end") return InvalidArgument("line " + std::to_string(t.line) + ": if without end");
      out.push_back(std::move(node));
      continue;
    }
    for (const char* keyword : {"range ", "with ", "define ", "template ", "include ", "block ", "tpl "}) {
      if (t.text.rfind(keyword, 0) == 0) {
        return InvalidArgument("line " + std::to_string(t.line) + ": \"" + keyword +
                               "\" is beyond what this renderer supports");
      }
    }
    out.push_back({Node::kPrint, t.text, t.line, {}, {}});
  }
  if (stop != nullptr) return InvalidArgument("missing end");
  return Ok();
}

// Splits a command into words, keeping "quoted strings" whole.
Result<std::vector<std::string>> Words(const std::string& command) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < command.size()) {
    if (IsSpace(command[i])) {
      ++i;
      continue;
    }
    if (command[i] == '"') {
      size_t end = i + 1;
      while (end < command.size() && command[end] != '"') end += command[end] == '\\' ? 2u : 1u;
      if (end >= command.size()) return InvalidArgument("unterminated string in \"" + command + "\"");
      out.push_back(command.substr(i, end - i + 1));
      i = end + 1;
      continue;
    }
    size_t end = i;
    while (end < command.size() && !IsSpace(command[end])) ++end;
    out.push_back(command.substr(i, end - i));
    i = end;
  }
  return out;
}

bool Truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  return !v.empty();
}

// A plain YAML scalar where it reads back as the same string, else JSON quoting.
std::string YamlScalar(const Json& v) {
  if (!v.is_string()) return v.dump();
  const std::string s = v.get<std::string>();
  const bool plain = !s.empty() && s.find(": ") == std::string::npos && s.find(" #") == std::string::npos &&
                     std::string("-?:,[]{}#&*!|>'\"%@`").find(s[0]) == std::string::npos &&
                     !IsSpace(s.front()) && !IsSpace(s.back()) && s != "true" && s != "false" &&
                     s != "null" && s != "~" && std::isdigit(static_cast<unsigned char>(s[0])) == 0;
  return plain ? s : v.dump();
}

void ToYaml(const Json& v, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (const auto& [key, item] : v.items()) {
      out += pad + key + ":";
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out += "\n";
        ToYaml(item, indent + (item.is_array() ? 0 : 2), out);
      } else {
        out += " " +
               (item.is_object()  ? std::string("{}")
                : item.is_array() ? "[]"
                                  : YamlScalar(item)) +
               "\n";
      }
    }
  } else if (v.is_array()) {
    for (const Json& item : v) {
      if (item.is_object() && !item.empty()) {
        std::string nested;
        ToYaml(item, indent + 2, nested);
        out += pad + "- " + nested.substr(pad.size() + 2);
      } else {
        out += pad + "- " + YamlScalar(item) + "\n";
      }
    }
  } else {
    out += pad + YamlScalar(v) + "\n";
  }
}

std::string Indent(const std::string& s, int n) {
  const std::string pad(static_cast<size_t>(n), ' ');
  std::string out = pad;
  for (const char c : s) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}

class Evaluator {
 public:
  explicit Evaluator(const ChartRender& r) {
    root_["Values"] = r.values;
    root_["Release"] = {{"Name", r.release_name}, {"Namespace", r.release_namespace}};
    const Json chart = r.chart.is_object() ? r.chart : Json::object();
    root_["Chart"] = {{"Name", chart.value("name", "")},
                      {"Version", chart.value("version", "")},
                      {"AppVersion", chart.value("appVersion", "")}};
  }

  Result<Json> Pipeline(const std::string& pipeline) const {
    std::optional<Json> carried;
    size_t start = 0;
    while (start <= pipeline.size()) {
      size_t bar = start;
      bool quoted = false;
      for (; bar < pipeline.size(); ++bar) {
        if (pipeline[bar] == '"' && (bar == 0 || pipeline[bar - 1] != '\\')) quoted = !quoted;
        if (pipeline[bar] == '|' && !quoted) break;
      }
      NETPOL_ASSIGN_OR_RETURN(std::vector<std::string> words, Words(pipeline.substr(start, bar - start)), "");
      if (words.empty()) return InvalidArgument("empty command in \"" + pipeline + "\"");
      NETPOL_ASSIGN_OR_RETURN(Json value, Command(words, carried), "in \"" + pipeline + "\"");
      carried = std::move(value);
      start = bar + 1;
      if (bar >= pipeline.size()) break;
    }
    return *carried;
  }

 private:
  Result<Json> Operand(const std::string& word) const {
    if (word.front() == '"') return Json::parse(word);
    if (std::isdigit(static_cast<unsigned char>(word.front())) != 0) return Json(std::stoll(word));
    if (word == "true" || word == "false") return Json(word == "true");
    if (word.front() != '.') return InvalidArgument("unknown function or value \"" + word + "\"");
    const Json* at = &root_;
    size_t i = 1;
    while (i < word.size()) {
      const size_t dot = word.find('.', i);
      const std::string key = word.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
      if (!at->is_object() || !at->contains(key)) return Json();  // missing: null
      at = &(*at)[key];
      i = dot == std::string::npos ? word.size() : dot + 1;
    }
    return *at;
  }

  Result<Json> Command(const std::vector<std::string>& words, const std::optional<Json>& carried) const {
    const std::string& name = words[0];
    std::vector<Json> args;
    for (size_t i = 1; i < words.size(); ++i) {
      NETPOL_ASSIGN_OR_RETURN(Json v, Operand(words[i]), "");
      args.push_back(std::move(v));
    }
    if (carried) args.push_back(*carried);
    const auto want = [&](size_t n) -> Status {
      if (args.size() != n) {
        return InvalidArgument(name + " takes " + std::to_string(n) + " arguments, got " +
                               std::to_string(args.size()));
      }
      return Ok();
    };
    if (name == "quote") {
      NETPOL_RETURN_IF_ERROR(want(1), "");
      NETPOL_ASSIGN_OR_RETURN(std::string s, Text(args[0]), "");
      return Json(Json(s).dump());
    }
    if (name == "eq") {
      NETPOL_RETURN_IF_ERROR(want(2), "");
      return Json(args[0] == args[1]);
    }
    if (name == "not") {
      NETPOL_RETURN_IF_ERROR(want(1), "");
      return Json(!Truthy(args[0]));
    }
    if (name == "default") {
      NETPOL_RETURN_IF_ERROR(want(2), "");
      return Truthy(args[1]) ? args[1] : args[0];
    }
    if (name == "join") {
      NETPOL_RETURN_IF_ERROR(want(2), "");
      if (!args[1].is_array()) return InvalidArgument("join needs a list");
      std::string out;
      for (const Json& item : args[1]) {
        NETPOL_ASSIGN_OR_RETURN(std::string s, Text(item), "");
        out += (out.empty() ? "" : args[0].get<std::string>()) + s;
      }
      return Json(out);
    }
    if (name == "toYaml") {
      NETPOL_RETURN_IF_ERROR(want(1), "");
      std::string out;
      ToYaml(args[0], 0, out);
      while (!out.empty() && out.back() == '\n') out.pop_back();
      return Json(out);
    }
    if (name == "indent" || name == "nindent") {
      NETPOL_RETURN_IF_ERROR(want(2), "");
      if (!args[0].is_number_integer()) return InvalidArgument(name + " needs a width");
      NETPOL_ASSIGN_OR_RETURN(std::string s, Text(args[1]), "");
      return Json((name == "nindent" ? "\n" : "") + Indent(s, args[0].get<int>()));
    }
    if (words.size() == 1 && !carried) return Operand(name);
    return InvalidArgument("unknown function \"" + name + "\"");
  }

 public:
  static Result<std::string> Text(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return InvalidArgument("no value");
    if (v.is_object() || v.is_array())
      return InvalidArgument("a map or list where text is written (use toYaml)");
    return v.dump();
  }

 private:
  Json root_;
};

Status Emit(const std::vector<Node>& nodes, const Evaluator& eval, std::string& out) {
  for (const Node& node : nodes) {
    const std::string where = "line " + std::to_string(node.line);
    if (node.kind == Node::kText) {
      out += node.text;
    } else if (node.kind == Node::kPrint) {
      NETPOL_ASSIGN_OR_RETURN(Json v, eval.Pipeline(node.text), where);
      NETPOL_ASSIGN_OR_RETURN(std::string s, Evaluator::Text(v), where + ": {{ " + node.text + " }}");
      out += s;
    } else {
      NETPOL_ASSIGN_OR_RETURN(Json v, eval.Pipeline(node.text), where);
      NETPOL_RETURN_IF_ERROR(Emit(Truthy(v) ? node.then_nodes : node.else_nodes, eval, out), "");
    }
  }
  return Ok();
}

}  // namespace

Result<std::string> ChartRender::Render(const std::string& text, const std::string& template_name) const {
  NETPOL_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text), template_name);
  std::vector<Node> nodes;
  size_t i = 0;
  NETPOL_RETURN_IF_ERROR(Parse(tokens, i, nodes, nullptr), template_name);
  std::string out;
  const Evaluator eval(*this);
  NETPOL_RETURN_IF_ERROR(Emit(nodes, eval, out), template_name);
  return out;
}

Json MergeValues(Json base, const Json& overrides) {
  if (!base.is_object() || !overrides.is_object()) return overrides;
  for (const auto& [key, value] : overrides.items()) {
    base[key] = base.contains(key) ? MergeValues(base[key], value) : value;
  }
  return base;
}

}  // namespace netpol::testing_chart
