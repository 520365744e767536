#include "lab/apiserver.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "api/labels.h"
#include "api/load.h"
#include "lab/internal/body.h"
#include "lab/internal/clock.h"
#include "lab/internal/defaults.h"
#include "lab/internal/patch.h"
#include "lab/internal/store.h"

namespace netpol::lab {
namespace {

using internal::Event;
using internal::Json;
using internal::Store;
using Clock = std::chrono::steady_clock;

struct Resource {
  std::string group;
  std::string version;
  std::string plural;
  std::string singular;
  std::string kind;
  bool namespaced;
  std::vector<std::string> short_names;
  bool has_status;
  bool user_writable;
  bool validated;  // decoded and validated by src/api

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
  std::string qualified_kind() const { return group.empty() ? kind : kind + "." + group; }
};

const std::vector<Resource>& Resources() {
  static const std::vector<Resource> kResources = {
      {"", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}, true, true, true},
      {"", "v1", "nodes", "node", "Node", false, {"no"}, true, false, false},
      {"", "v1", "pods", "pod", "Pod", true, {"po"}, true, true, true},
      {"", "v1", "services", "service", "Service", true, {"svc"}, true, true, false},
      {"apps", "v1", "deployments", "deployment", "Deployment", true, {"deploy"}, true, true, true},
      {"networking.k8s.io",
       "v1",
       "networkpolicies",
       "networkpolicy",
       "NetworkPolicy",
       true,
       {"netpol"},
       false,
       true,
       true},
      // The CRD of sigs.k8s.io/network-policy-api v0.3.0, in the version src/api
      // decodes (the CRD serves v1beta1 too; the lab does not).
      {"policy.networking.k8s.io",
       "v1alpha2",
       "clusternetworkpolicies",
       "clusternetworkpolicy",
       "ClusterNetworkPolicy",
       false,
       {"cnp"},
       true,
       true,
       true},
  };
  return kResources;
}

const Resource* FindResource(const std::string& group, const std::string& version,
                             const std::string& plural) {
  for (const Resource& r : Resources()) {
    if (r.group == group && r.version == version && r.plural == plural) return &r;
  }
  return nullptr;
}

struct Route {
  const Resource* resource = nullptr;
  std::string ns;
  std::string name;
  std::string subresource;
};

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// /api/v1/..., /apis/GROUP/VERSION/...: [namespaces/NS/]PLURAL[/NAME[/SUB]]
std::optional<Route> ParseRoute(const std::string& path) {
  const std::vector<std::string> parts = Split(path);
  std::string group;
  std::string version;
  size_t i = 0;
  if (parts.size() >= 2 && parts[0] == "api") {
    version = parts[1];
    i = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis") {
    group = parts[1];
    version = parts[2];
    i = 3;
  } else {
    return std::nullopt;
  }
  Route route;
  if (parts.size() >= i + 3 && parts[i] == "namespaces" &&
      FindResource(group, version, parts[i + 2]) != nullptr) {
    route.ns = parts[i + 1];
    i += 2;
  }
  if (parts.size() <= i) return std::nullopt;
  route.resource = FindResource(group, version, parts[i]);
  if (route.resource == nullptr) return std::nullopt;
  if (parts.size() > i + 1) route.name = parts[i + 1];
  if (parts.size() > i + 2) route.subresource = parts[i + 2];
  if (parts.size() > i + 3) return std::nullopt;
  return route;
}

using internal::Rfc3339Now;

// kubectl's short ages: 42s, 5m, 3h, 2d.
std::string Age(const std::string& timestamp) {
  std::tm tm{};
  if (strptime(timestamp.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return "<unknown>";
  const auto seconds = static_cast<int64_t>(std::difftime(std::time(nullptr), timegm(&tm)));
  if (seconds < 120) return std::to_string(std::max<int64_t>(0, seconds)) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < int64_t{2} * 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string RandomName(size_t n) {
  // The alphabet Kubernetes uses for generated names (no vowels, no 0/1/3).
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (size_t i = 0; i < n; ++i) out += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return out;
}

std::string Uid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[40];
  const uint64_t a = rng();
  const uint64_t b = rng();
  std::snprintf(buffer, sizeof(buffer), "%08llx-%04llx-4%03llx-a%03llx-%012llx",
                static_cast<unsigned long long>(a >> 32), static_cast<unsigned long long>((a >> 16) & 0xffff),
                static_cast<unsigned long long>(a & 0xfff), static_cast<unsigned long long>(b >> 52),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buffer;
}

Json StatusJson(int code, const std::string& reason, const std::string& message,
                Json details = Json::object()) {
  return {{"kind", "Status"},   {"apiVersion", "v1"}, {"metadata", Json::object()}, {"status", "Failure"},
          {"message", message}, {"reason", reason},   {"details", details},         {"code", code}};
}

void Reply(httplib::Response& res, int code, const Json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

// A list as Reply writes it (nlohmann writes an object's keys sorted), its
// items spliced in as the store keeps their text: a list of 100k pods is
// not parsed and written again.
void ReplyList(httplib::Response& res, const std::string& api_version, const std::string& kind,
               const Json& metadata, const std::vector<std::string>& items) {
  size_t size = 128;
  for (const std::string& item : items) size += item.size() + 1;
  std::string body;
  body.reserve(size);
  body += "{\"apiVersion\":" + Json(api_version).dump() + ",\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) body += ',';
    body += items[i];
  }
  body += "],\"kind\":" + Json(kind).dump() + ",\"metadata\":" + metadata.dump() + "}";
  res.status = 200;
  res.body = std::move(body);  // set_content would copy it
  res.set_header("Content-Type", "application/json");
}

void ReplyStatus(httplib::Response& res, int code, const std::string& reason, const std::string& message,
                 Json details = Json::object()) {
  Reply(res, code, StatusJson(code, reason, message, std::move(details)));
}

// A query parameter read as Go's strconv.ParseInt(s, 10, 64) / ParseUint(s, 10,
// 64) read it in the API server, with strconv's error text on failure.
Result<int64_t> ParseInt64(const std::string& text) {
  const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t value = 0;
  const auto [at, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range && at == end) {
    return InvalidArgument("strconv.ParseInt: parsing " + api::Quote(text) + ": value out of range");
  }
  if (ec != std::errc() || at != end || text.empty() || begin == end) {
    return InvalidArgument("strconv.ParseInt: parsing " + api::Quote(text) + ": invalid syntax");
  }
  return value;
}

Result<uint64_t> ParseUint64(const std::string& text) {
  uint64_t value = 0;
  const auto [at, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range && at == text.data() + text.size()) {
    return InvalidArgument("strconv.ParseUint: parsing " + api::Quote(text) + ": value out of range");
  }
  if (ec != std::errc() || at != text.data() + text.size() || text.empty()) {
    return InvalidArgument("strconv.ParseUint: parsing " + api::Quote(text) + ": invalid syntax");
  }
  return value;
}

// The fieldValidation query parameter of a create, update or patch
// (metav1.CreateOptions, ...): none is Warn, as in the API server since 1.27.
enum class FieldValidation { kIgnore, kWarn, kStrict };

// The field path an "unknown field" diagnostic names (src/api quotes it as
// Go's %q does), or "" for any other diagnostic.
std::string UnknownFieldPath(const std::string& detail) {
  static constexpr std::string_view kPrefix = "unknown field \"";
  if (!detail.starts_with(kPrefix) || !detail.ends_with('"')) return "";
  std::string out;
  for (size_t i = kPrefix.size(); i + 1 < detail.size(); ++i) {
    if (detail[i] == '\\' && i + 2 < detail.size()) ++i;
    out += detail[i];
  }
  return out;
}

// Constant time in the length of `expected`: a token is not guessed a byte at a time.
bool SameToken(const std::string& given, const std::string& expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

api::Labels LabelsOf(const Json& object) {
  api::Labels out;
  if (object.contains("metadata") && object["metadata"].contains("labels")) {
    for (auto it = object["metadata"]["labels"].begin(); it != object["metadata"]["labels"].end(); ++it) {
      if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
    }
  }
  return out;
}

// A field of the object by dotted path, as text ("" when absent).
std::string FieldText(const Json& object, const std::string& path) {
  const Json* at = &object;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('.', start), path.size());
    const std::string key = path.substr(start, end - start);
    if (!at->is_object() || !at->contains(key)) return "";
    at = &(*at)[key];
    start = end + 1;
  }
  return at->is_string() ? at->get<std::string>() : at->dump();
}

// fieldSelector: "a.b=c,d!=e" over the few fields the API supports.
bool MatchesFields(const Json& object, const std::string& selector) {
  size_t start = 0;
  while (start < selector.size()) {
    const size_t end = std::min(selector.find(',', start), selector.size());
    const std::string term = selector.substr(start, end - start);
    start = end + 1;
    const size_t ne = term.find("!=");
    const size_t eq = term.find('=');
    if (eq == std::string::npos) continue;
    const bool negate = ne != std::string::npos;
    const std::string field = term.substr(0, negate ? ne : eq);
    std::string value = term.substr(negate ? ne + 2 : (term.substr(eq + 1, 1) == "=" ? eq + 2 : eq + 1));
    if ((FieldText(object, field) == value) == negate) return false;
  }
  return true;
}

// --- Table responses (what `kubectl get` prints) ----------------------------

struct Column {
  std::string name;
  std::string type;
  int priority;
};

std::vector<Column> ColumnsFor(const Resource& r) {
  if (r.plural == "pods") {
    return {{"Name", "string", 0},
            {"Ready", "string", 0},
            {"Status", "string", 0},
            {"Restarts", "string", 0},
            {"Age", "string", 0},
            {"IP", "string", 1},
            {"Node", "string", 1},
            {"Nominated Node", "string", 1},
            {"Readiness Gates", "string", 1}};
  }
  if (r.plural == "deployments") {
    return {{"Name", "string", 0},
            {"Ready", "string", 0},
            {"Up-to-date", "string", 0},
            {"Available", "string", 0},
            {"Age", "string", 0}};
  }
  if (r.plural == "services") {
    return {{"Name", "string", 0},        {"Type", "string", 0},    {"Cluster-IP", "string", 0},
            {"External-IP", "string", 0}, {"Port(s)", "string", 0}, {"Age", "string", 0}};
  }
  if (r.plural == "networkpolicies")
    return {{"Name", "string", 0}, {"Pod-Selector", "string", 0}, {"Age", "string", 0}};
  if (r.plural == "namespaces") return {{"Name", "string", 0}, {"Status", "string", 0}, {"Age", "string", 0}};
  // The CRD's additionalPrinterColumns (.spec.tier, .spec.priority, age).
  if (r.plural == "clusternetworkpolicies")
    return {{"Name", "string", 0}, {"Tier", "string", 0}, {"Priority", "integer", 0}, {"Age", "date", 0}};
  if (r.plural == "nodes") {
    return {{"Name", "string", 0},
            {"Status", "string", 0},
            {"Roles", "string", 0},
            {"Age", "string", 0},
            {"Version", "string", 0}};
  }
  return {{"Name", "string", 0}, {"Age", "string", 0}};
}

Json CellsFor(const Resource& r, const Json& o) {
  const Json& meta = o["metadata"];
  const std::string name = meta.value("name", "");
  const std::string age = Age(meta.value("creationTimestamp", ""));
  const Json status = o.value("status", Json::object());
  const Json spec = o.value("spec", Json::object());
  if (r.plural == "pods") {
    int ready = 0;
    int restarts = 0;
    const Json statuses = status.value("containerStatuses", Json::array());
    std::string reason = status.value("phase", "Pending");
    for (const Json& c : statuses) {
      ready += c.value("ready", false) ? 1 : 0;
      restarts += c.value("restartCount", 0);
      if (c.contains("state") && c["state"].contains("waiting")) {
        reason = c["state"]["waiting"].value("reason", reason);
      }
    }
    if (meta.contains("deletionTimestamp")) reason = "Terminating";
    const size_t total = spec.value("containers", Json::array()).size();
    return {name,
            std::to_string(ready) + "/" + std::to_string(total),
            reason,
            std::to_string(restarts),
            age,
            status.value("podIP", "<none>"),
            spec.value("nodeName", "<none>"),
            "<none>",
            "<none>"};
  }
  if (r.plural == "deployments") {
    const int replicas = spec.value("replicas", 1);
    return {name, std::to_string(status.value("readyReplicas", 0)) + "/" + std::to_string(replicas),
            status.value("updatedReplicas", 0), status.value("availableReplicas", 0), age};
  }
  if (r.plural == "services") {
    std::string ports;
    for (const Json& p : spec.value("ports", Json::array())) {
      ports +=
          (ports.empty() ? "" : ",") + std::to_string(p.value("port", 0)) + "/" + p.value("protocol", "TCP");
    }
    return {name,     spec.value("type", "ClusterIP"),  spec.value("clusterIP", "<none>"),
            "<none>", ports.empty() ? "<none>" : ports, age};
  }
  if (r.plural == "networkpolicies") {
    std::string selector = "<none>";
    if (spec.contains("podSelector") && spec["podSelector"].contains("matchLabels")) {
      selector.clear();
      for (auto it = spec["podSelector"]["matchLabels"].begin();
           it != spec["podSelector"]["matchLabels"].end(); ++it) {
        selector += (selector.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
      }
    }
    return {name, selector, age};
  }
  if (r.plural == "namespaces") return {name, status.value("phase", "Active"), age};
  if (r.plural == "clusternetworkpolicies") {
    // A column whose path is absent is an empty cell (null), as for any CRD.
    return {name, spec.contains("tier") ? spec["tier"] : Json(),
            spec.contains("priority") ? spec["priority"] : Json(), age};
  }
  if (r.plural == "nodes") return {name, "Ready", "<none>", age, "netpol-lab"};
  return {name, age};
}

Json TableOf(const Resource& r, const std::vector<Json>& objects, const std::string& rv, bool with_columns) {
  Json columns = Json::array();
  if (with_columns) {
    for (const Column& c : ColumnsFor(r)) {
      columns.push_back({{"name", c.name},
                         {"type", c.type},
                         {"format", c.name == "Name" ? "name" : ""},
                         {"description", c.name},
                         {"priority", c.priority}});
    }
  }
  Json rows = Json::array();
  for (const Json& o : objects) {
    rows.push_back({{"cells", CellsFor(r, o)},
                    {"object",
                     {{"kind", "PartialObjectMetadata"},
                      {"apiVersion", "meta.k8s.io/v1"},
                      {"metadata", o.value("metadata", Json::object())}}}});
  }
  Json table = {{"kind", "Table"},
                {"apiVersion", "meta.k8s.io/v1"},
                {"metadata", {{"resourceVersion", rv}}},
                {"rows", rows}};
  // Watch events after the first leave the columns out: kubectl keeps the last
  // ones (an empty list would mean no columns).
  if (with_columns) table["columnDefinitions"] = columns;
  return table;
}

bool WantsTable(const httplib::Request& req) {
  return req.get_header_value("Accept").find("as=Table") != std::string::npos;
}

}  // namespace

struct ApiServer::Impl {
  ApiServerOptions options;
  std::unique_ptr<Store> store;
  std::unique_ptr<httplib::Server> http;  // an SSLServer with TLS
  std::thread thread;
  int port = 0;
  std::atomic<bool> stopping{false};

  // --- discovery ------------------------------------------------------------

  Json ResourceList(const std::string& group_version) const {
    Json resources = Json::array();
    for (const Resource& r : Resources()) {
      if (r.api_version() != group_version) continue;
      Json verbs = r.user_writable ? Json{"create", "delete", "get", "list", "patch", "update", "watch"}
                                   : Json{"get", "list", "watch"};
      Json resource = {
          {"name", r.plural}, {"singularName", r.singular}, {"namespaced", r.namespaced}, {"kind", r.kind},
          {"verbs", verbs},   {"shortNames", r.short_names}};
      if (r.plural == "pods" || r.plural == "services" || r.plural == "deployments")
        resource["categories"] = {"all"};
      resources.push_back(resource);
      if (r.has_status) {
        resources.push_back({{"name", r.plural + "/status"},
                             {"singularName", ""},
                             {"namespaced", r.namespaced},
                             {"kind", r.kind},
                             {"verbs", {"get", "patch", "update"}}});
      }
    }
    return {{"kind", "APIResourceList"},
            {"apiVersion", "v1"},
            {"groupVersion", group_version},
            {"resources", resources}};
  }

  void Discovery() {
    http->Get("/version", [](const httplib::Request&, httplib::Response& res) {
      // A 1.32 version: kubectl wrappers that pick a client by the server's
      // minor version then pick the common one.
      Reply(res, 200,
            {{"major", "1"},
             {"minor", "32"},
             {"gitVersion", "v1.32.0"},
             {"gitCommit", "netpol-lab"},
             {"gitTreeState", "clean"},
             {"buildDate", "2026-01-01T00:00:00Z"},
             {"goVersion", "go1.23"},
             {"compiler", "gc"},
             {"platform", "linux/amd64"}});
    });
    http->Get("/api", [this](const httplib::Request&, httplib::Response& res) {
      Reply(res, 200,
            {{"kind", "APIVersions"},
             {"versions", {"v1"}},
             {"serverAddressByClientCIDRs",
              {{{"clientCIDR", "0.0.0.0/0"},
                {"serverAddress", options.address + ":" + std::to_string(port)}}}}});
    });
    http->Get("/apis", [](const httplib::Request&, httplib::Response& res) {
      Json groups = Json::array();
      std::set<std::string> seen;
      for (const Resource& r : Resources()) {
        if (r.group.empty() || !seen.insert(r.api_version()).second) continue;
        const Json version = {{"groupVersion", r.api_version()}, {"version", r.version}};
        groups.push_back({{"name", r.group}, {"versions", {version}}, {"preferredVersion", version}});
      }
      Reply(res, 200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
    });
    // OpenAPI v3, only as much as kubectl reads to decide that the server
    // validates fields itself (a patch operation per kind with the
    // fieldValidation query parameter): it then sends fieldValidation=Strict
    // and the server's own validation (src/api) answers.
    // OpenAPI v2 for older kubectl (1.20, Debian's): an empty protobuf
    // Document, which gives their client-side validation no schema to hold
    // objects against; the server's own validation still answers.
    http->Get("/openapi/v2", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content("", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    });
    http->Get("/openapi/v3", [](const httplib::Request&, httplib::Response& res) {
      Json paths = Json::object();
      std::set<std::string> versions;
      for (const Resource& r : Resources()) versions.insert(r.api_version());
      for (const std::string& gv : versions) {
        const std::string key = gv == "v1" ? "api/v1" : "apis/" + gv;
        paths[key] = {{"serverRelativeURL", "/openapi/v3/" + key}};
      }
      Reply(res, 200, {{"paths", paths}});
    });
    http->Get(R"(/openapi/v3/(api/v1|apis/[a-z0-9.-]+/v[0-9a-z]+))", [](const httplib::Request& req,
                                                                        httplib::Response& res) {
      const std::string key = req.matches[1].str();
      const std::string gv = key == "api/v1" ? "v1" : key.substr(5);
      Json paths = Json::object();
      for (const Resource& r : Resources()) {
        if (r.api_version() != gv) continue;
        const std::string path =
            "/" + key + (r.namespaced ? "/namespaces/{namespace}/" : "/") + r.plural + "/{name}";
        Json patch = Json::object();
        patch["x-kubernetes-group-version-kind"] = {
            {"group", r.group}, {"version", r.version}, {"kind", r.kind}};
        patch["parameters"] = Json::array({Json{{"name", "fieldValidation"}, {"in", "query"}}});
        paths[path]["patch"] = patch;
      }
      if (paths.empty())
        return ReplyStatus(res, 404, "NotFound", "the server could not find the requested resource");
      Reply(res, 200,
            {{"openapi", "3.0.0"},
             {"info", {{"title", "netpol lab"}, {"version", "v1.32.0"}}},
             {"paths", paths}});
    });
    http->Get("/api/v1", [this](const httplib::Request&, httplib::Response& res) {
      Reply(res, 200, ResourceList("v1"));
    });
    http->Get(
        R"(/apis/([a-z0-9.-]+/v[0-9a-z]+))", [this](const httplib::Request& req, httplib::Response& res) {
          const Json list = ResourceList(req.matches[1].str());
          if (list["resources"].empty())
            return ReplyStatus(res, 404, "NotFound", "the server could not find the requested resource");
          Reply(res, 200, list);
        });
  }

  // --- objects --------------------------------------------------------------

  static std::string NotFoundMessage(const Resource& r, const std::string& name) {
    return r.qualified() + " \"" + name + "\" not found";
  }

  static Json Details(const Resource& r, const std::string& name) {
    Json d = {{"name", name}, {"kind", r.plural}};
    if (!r.group.empty()) d["group"] = r.group;
    return d;
  }

  // Decodes and validates with src/api; the Status kubectl prints, or nullopt.
  static std::optional<Json> Invalid(const Resource& r, const Json& object) {
    if (!r.validated) return std::nullopt;
    const api::LoadResult loaded = api::LoadJson(object, "request", {});
    if (loaded.ok()) return std::nullopt;
    const std::string name = object["metadata"].value("name", "");
    Json causes = Json::array();
    std::string joined;
    int n = 0;
    for (const api::Diagnostic& d : loaded.diagnostics) {
      if (d.severity != api::Severity::kError) continue;
      causes.push_back({{"reason", "FieldValueInvalid"}, {"message", d.detail}, {"field", d.field}});
      joined += (n++ ? ", " : "") + (d.field.empty() ? d.detail : d.field + ": " + d.detail);
    }
    Json details = Details(r, name);
    details["kind"] = r.kind;
    details["causes"] = causes;
    const std::string message =
        r.qualified_kind() + " \"" + name + "\" is invalid: " + (n > 1 ? "[" + joined + "]" : joined);
    return StatusJson(422, "Invalid", message, details);
  }

  // The fieldValidation parameter as the API server reads it into
  // `options_kind` (CreateOptions, UpdateOptions, PatchOptions); nullopt, with
  // its 422 written, for a value it does not know.
  static std::optional<FieldValidation> ReadFieldValidation(const httplib::Request& req,
                                                            const std::string& options_kind,
                                                            httplib::Response& res) {
    const std::string value = req.get_param_value("fieldValidation");
    if (value.empty() || value == "Warn") return FieldValidation::kWarn;
    if (value == "Ignore") return FieldValidation::kIgnore;
    if (value == "Strict") return FieldValidation::kStrict;
    const std::string unsupported = "Unsupported value: " + api::Quote(value) +
                                    ": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"";
    const Json cause = {
        {"reason", "FieldValueNotSupported"}, {"message", unsupported}, {"field", "fieldValidation"}};
    Reply(res, 422,
          StatusJson(422, "Invalid",
                     options_kind + ".meta.k8s.io \"\" is invalid: fieldValidation: " + unsupported,
                     {{"group", "meta.k8s.io"}, {"kind", options_kind}, {"causes", Json::array({cause})}}));
    return std::nullopt;
  }

  // What a body's decoding found that fieldValidation judges besides the
  // kind's unknown fields: the fields a create's or an update's body gives
  // twice (with where the decoder meets each field, which places the unknown
  // ones among them), or a patch's own strict errors, which come first.
  struct Strictness {
    const internal::Body* body = nullptr;
    std::vector<std::string> patch_errors;
  };

  // The 422 of errors.NewInvalid for the kind.
  static Json InvalidStatus(const Resource& r, const std::string& name,
                            const std::vector<internal::FieldError>& errors) {
    Json causes = Json::array();
    std::string joined;
    for (const internal::FieldError& e : errors) {
      causes.push_back({{"reason", e.reason}, {"message", e.detail}, {"field", e.field}});
      joined += (joined.empty() ? "" : ", ") + e.field + ": " + e.detail;
    }
    Json details = Details(r, name);
    details["kind"] = r.kind;
    details["causes"] = causes;
    return StatusJson(422, "Invalid",
                      r.qualified_kind() + " \"" + name +
                          "\" is invalid: " + (errors.size() > 1 ? "[" + joined + "]" : joined),
                      details);
  }

  // What the API server does to a body between reading and validating it:
  // fields the kind does not have and fields given twice are a 400 (Strict)
  // or a Warning header each (Warn), and unknown fields are dropped; then the
  // kind's defaults are filled. False, with the answer written, when the body
  // is rejected.
  static bool Decoded(const Resource& r, Json& object, FieldValidation mode, bool create,
                      const Strictness& strictness, httplib::Response& res) {
    std::set<std::string> unknown;
    if (r.validated) {
      const api::LoadResult loaded = api::LoadJson(object, "request", {.field_positions = false});
      for (const api::Diagnostic& d : loaded.diagnostics) {
        if (std::string path = UnknownFieldPath(d.detail); !path.empty()) unknown.insert(std::move(path));
      }
    } else if (r.plural == "services") {
      for (std::string& path : internal::UnknownServiceFields(object)) unknown.insert(std::move(path));
    }
    std::vector<std::string> found;
    if (!unknown.empty()) {
      found = internal::DropFields(object, unknown);
      for (const std::string& path : unknown) {
        if (std::find(found.begin(), found.end(), path) == found.end()) found.push_back(path);
      }
    }
    // In the order the decoder meets them: the body's (a patched object's are
    // placed as its keys sort, as kubectl sends them). Nothing inside an
    // unknown field is decoded, so nothing there is given twice.
    constexpr size_t kUnplaced = std::numeric_limits<size_t>::max() / 2;
    std::vector<std::pair<size_t, std::string>> placed;
    for (size_t i = 0; i < found.size(); ++i) {
      std::optional<size_t> at;
      if (strictness.body != nullptr) at = strictness.body->FirstPosition(found[i]);
      placed.emplace_back(at.value_or(kUnplaced + i), "unknown field " + api::Quote(found[i]));
    }
    if (strictness.body != nullptr) {
      for (const internal::Body::Field& repeated : strictness.body->duplicates) {
        const bool inside_unknown = std::any_of(unknown.begin(), unknown.end(), [&](const std::string& u) {
          return repeated.path == u || repeated.path.starts_with(u + ".") ||
                 repeated.path.starts_with(u + "[");
        });
        if (!inside_unknown)
          placed.emplace_back(repeated.position, "duplicate field " + api::Quote(repeated.path));
      }
    }
    std::stable_sort(placed.begin(), placed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> errors = strictness.patch_errors;
    for (auto& [at, error] : placed) errors.push_back(std::move(error));
    if (errors.size() > 100) errors.resize(100);  // as many as the decoder keeps
    if (mode == FieldValidation::kStrict && !errors.empty()) {
      std::string joined;
      for (const std::string& error : errors) joined += (joined.empty() ? "" : ", ") + error;
      Reply(res, 400,
            StatusJson(400, "BadRequest",
                       r.kind + " in version \"" + r.version + "\" cannot be handled as a " + r.kind +
                           ": strict decoding error: " + joined));
      return false;
    }
    if (mode == FieldValidation::kWarn) {
      for (const std::string& error : errors) res.set_header("Warning", "299 - " + api::Quote(error));
    }
    internal::ApplyDefaults(r.plural, object, create);
    return true;
  }

  // What the API server's JSON decoding answers for a field of the wrong type:
  // 400, "Pod in version "v1" cannot be handled as a Pod: json: cannot
  // unmarshal number into Go struct field ObjectMeta.metadata.name of type string".
  // `offender`: the value (or the element of it) that does not decode, or null.
  static std::optional<Json> WrongType(const Resource& r, const Json& object, const std::string& go_field,
                                       const std::string& go_type, const Json* (*offender)(const Json&)) {
    const size_t dot = go_field.find('.');
    const std::string path = go_field.substr(dot + 1);  // "metadata.name"
    const Json* value = &object;
    for (size_t from = 0; value != nullptr;) {
      const size_t to = path.find('.', from);
      const std::string key = path.substr(from, to == std::string::npos ? std::string::npos : to - from);
      value = value->is_object() && value->contains(key) ? &(*value)[key] : nullptr;
      if (to == std::string::npos) break;
      from = to + 1;
    }
    if (value == nullptr || value->is_null()) return std::nullopt;
    const Json* bad = offender(*value);
    if (bad == nullptr) return std::nullopt;
    const std::string type = bad->is_number()    ? "number"
                             : bad->is_boolean() ? "bool"
                             : bad->is_string()  ? "string"
                             : bad->is_array()   ? "array"
                                                 : "object";
    return StatusJson(400, "BadRequest",
                      r.kind + " in version \"" + r.version + "\" cannot be handled as a " + r.kind +
                          ": json: cannot unmarshal " + type + " into Go struct field " + go_field +
                          " of type " + go_type);
  }

  // Fills what the API server sets on create.
  std::optional<Json> Prepare(const Resource& r, const std::string& ns, Json& object) {
    if (!object.is_object()) return StatusJson(400, "BadRequest", "the body is not a JSON object");
    // The fields read below, with the types the API server's decoding demands
    // (a value of another type is a 400 there, not something to read here).
    const auto is_string = [](const Json& v) -> const Json* { return v.is_string() ? nullptr : &v; };
    const auto is_object = [](const Json& v) -> const Json* { return v.is_object() ? nullptr : &v; };
    const auto is_string_map = [](const Json& v) -> const Json* {
      if (!v.is_object()) return &v;
      for (const Json& e : v) {
        if (!e.is_string() && !e.is_null()) return &e;
      }
      return nullptr;
    };
    for (const char* field : {"name", "generateName", "namespace"}) {
      if (auto bad = WrongType(r, object, std::string("ObjectMeta.metadata.") + field, "string", is_string))
        return bad;
    }
    for (const char* field : {"labels", "annotations"}) {
      if (auto bad =
              WrongType(r, object, std::string("ObjectMeta.metadata.") + field, "string", is_string_map)) {
        return bad;
      }
    }
    if (auto bad = WrongType(r, object, r.kind + ".metadata", "v1.ObjectMeta", is_object)) return bad;
    if (auto bad = WrongType(r, object, r.kind + ".spec", "v1." + r.kind + "Spec", is_object)) return bad;
    if (auto bad = WrongType(r, object, r.kind + ".status", "v1." + r.kind + "Status", is_object)) return bad;
    if (r.plural == "services") {
      if (auto bad = WrongType(r, object, "ServiceSpec.spec.selector", "string", is_string_map)) return bad;
    }
    object["apiVersion"] = r.api_version();
    object["kind"] = r.kind;
    Json& meta = object["metadata"];
    if (!meta.is_object()) meta = Json::object();
    if (r.namespaced) {
      const std::string given = meta.value("namespace", "");
      if (!given.empty() && given != ns) {
        return StatusJson(
            400, "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request");
      }
      meta["namespace"] = ns;
    }
    if (meta.value("name", "").empty() && !meta.value("generateName", "").empty()) {
      meta["name"] = meta["generateName"].get<std::string>() + RandomName(5);
    }
    if (meta.value("name", "").empty()) {
      return StatusJson(
          422, "Invalid",
          r.qualified_kind() +
              " \"\" is invalid: metadata.name: Required value: name or generateName is required");
    }
    meta["uid"] = Uid();
    meta["creationTimestamp"] = Rfc3339Now();
    meta.erase("resourceVersion");
    if (r.plural == "namespaces") {
      meta["labels"]["kubernetes.io/metadata.name"] = meta["name"];
      object["status"] = {{"phase", "Active"}};
    }
    if (r.plural == "pods") {
      if (!object.contains("status")) object["status"] = {{"phase", "Pending"}};
      if (object["spec"].value("nodeName", "").empty()) object["spec"]["nodeName"] = Schedule();
    }
    if (r.plural == "services") {
      if (!object["spec"].contains("type")) object["spec"]["type"] = "ClusterIP";
      // Names only: no virtual IPs in the lab. ExternalName Services have no cluster IP.
      if (object["spec"]["type"] != "ExternalName") object["spec"]["clusterIP"] = "None";
    }
    if (r.plural == "deployments" || r.plural == "networkpolicies" || r.plural == "clusternetworkpolicies")
      meta["generation"] = 1;
    return std::nullopt;
  }

  // The node with the fewest pods (the lab's whole scheduler).
  std::string Schedule() {
    if (options.nodes.empty()) return "";
    std::map<std::string, int> load;
    for (const std::string& n : options.nodes) load[n] = 0;
    for (const Json& pod : store->List("pods", "").first) {
      const std::string node = pod["spec"].value("nodeName", "");
      if (load.contains(node)) ++load[node];
    }
    std::string best = options.nodes.front();
    for (const std::string& n : options.nodes) {
      if (load[n] < load[best]) best = n;
    }
    return best;
  }

  void Fail(httplib::Response& res, const Resource& r, const std::string& name, const Error& e) {
    switch (e.code()) {
      case ErrorCode::kNotFound:
        return ReplyStatus(res, 404, "NotFound", NotFoundMessage(r, name), Details(r, name));
      case ErrorCode::kAlreadyExists:
        return ReplyStatus(res, 409, "AlreadyExists", r.qualified() + " \"" + name + "\" already exists",
                           Details(r, name));
      case ErrorCode::kFailedPrecondition:
        return ReplyStatus(
            res, 409, "Conflict",
            "Operation cannot be fulfilled on " + r.qualified() + " \"" + name + "\": " + e.message(),
            Details(r, name));
      default:
        return ReplyStatus(res, 500, "InternalError", e.message());
    }
  }

  void Create(const Route& route, const httplib::Request& req, httplib::Response& res) {
    const Resource& r = *route.resource;
    if (!r.user_writable)
      return ReplyStatus(res, 405, "MethodNotAllowed", r.plural + " are read-only in the lab");
    const std::optional<FieldValidation> mode = ReadFieldValidation(req, "CreateOptions", res);
    if (!mode) return;
    Result<internal::Body> body = internal::DecodeBody(req.body, internal::Repeats::kDecodeInto);
    if (!body) {
      return ReplyStatus(res, 400, "BadRequest", "cannot decode the request body: " + body.error().message());
    }
    Json object = std::move(body->value);
    if (r.namespaced) {
      if (!store->Get("namespaces", "", route.ns).ok()) {
        return ReplyStatus(res, 404, "NotFound", "namespaces \"" + route.ns + "\" not found",
                           {{"name", route.ns}, {"kind", "namespaces"}});
      }
    }
    if (auto bad = Prepare(r, route.ns, object)) return Reply(res, (*bad)["code"].get<int>(), *bad);
    if (!Decoded(r, object, *mode, true, {.body = &*body, .patch_errors = {}}, res)) return;
    if (r.plural == "services") {
      const std::vector<internal::FieldError> errors =
          internal::SettleServiceIpFamilies(object, nullptr, options.service_ip_families);
      if (!errors.empty()) return Reply(res, 422, InvalidStatus(r, object["metadata"]["name"], errors));
    }
    if (auto invalid = Invalid(r, object)) return Reply(res, 422, *invalid);
    if (req.has_param("dryRun")) return Reply(res, 201, object);
    const std::string name = object["metadata"]["name"];
    Result<Json> created = store->Create(r.plural, r.namespaced ? route.ns : "", name, object);
    if (!created) return Fail(res, r, name, created.error());
    Reply(res, 201, *created);
  }

  void Get(const Route& route, const httplib::Request& req, httplib::Response& res) {
    const Resource& r = *route.resource;
    Result<Json> got = store->Get(r.plural, route.ns, route.name);
    if (!got) return Fail(res, r, route.name, got.error());
    if (WantsTable(req))
      return Reply(res, 200, TableOf(r, {*got}, (*got)["metadata"].value("resourceVersion", ""), true));
    Reply(res, 200, *got);
  }

  std::optional<api::LabelSelector> Selector(const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("labelSelector")) return api::LabelSelector{};
    std::string error;
    auto selector = api::ParseLabelSelector(req.get_param_value("labelSelector"), &error);
    if (!selector) ReplyStatus(res, 400, "BadRequest", error);
    return selector;
  }

  void List(const Route& route, const httplib::Request& req, httplib::Response& res) {
    const Resource& r = *route.resource;
    const auto selector = Selector(req, res);
    if (!selector) return;
    const std::string fields = req.get_param_value("fieldSelector");
    // limit/continue: the continue token is the namespace and name of the
    // page's last object (the next page starts after it) and, after another
    // slash, how many objects followed it (names have no slash).
    std::pair<std::string, std::string> after;
    std::optional<size_t> known_remaining;
    if (req.has_param("continue")) {
      const std::string token = req.get_param_value("continue");
      const size_t slash = token.find('/');
      const size_t count_at = slash == std::string::npos ? slash : token.find('/', slash + 1);
      const Result<int64_t> count =
          count_at == std::string::npos ? Result<int64_t>(0) : ParseInt64(token.substr(count_at + 1));
      if (slash == std::string::npos || !count || *count < 0) {
        return ReplyStatus(res, 410, "Expired",
                           "the continue token \"" + token + "\" is not one of this server's");
      }
      after = {token.substr(0, slash), token.substr(slash + 1, count_at - slash - 1)};
      if (count_at != std::string::npos) known_remaining = static_cast<size_t>(*count);
    }
    size_t limit = 0;  // none (as for a limit of 0 or less)
    if (req.has_param("limit")) {
      // The API server's parameter decoding: 400 with strconv's words.
      const Result<int64_t> value = ParseInt64(req.get_param_value("limit"));
      if (!value) return ReplyStatus(res, 400, "BadRequest", value.error().message());
      limit = *value > 0 ? static_cast<size_t>(*value) : 0;
    }
    std::vector<Json> page;
    size_t remaining = 0;
    uint64_t rv = 0;
    const auto key_of = [](const Json& o) {
      return std::pair<std::string, std::string>{o["metadata"].value("namespace", ""),
                                                 o["metadata"].value("name", "")};
    };
    if (req.get_param_value("labelSelector").empty() && fields.empty()) {
      // Nothing to filter: read only the page from the store.
      Store::Page read = store->ListPage(r.plural, route.ns, after, limit, known_remaining);
      if (!WantsTable(req)) {
        Json list_meta = {{"resourceVersion", std::to_string(read.rv)}};
        if (read.more) {
          list_meta["continue"] =
              read.last.first + "/" + read.last.second + "/" + std::to_string(read.remaining);
          list_meta["remainingItemCount"] = read.remaining;
        }
        return ReplyList(res, r.api_version(), r.kind + "List", list_meta, read.items);
      }
      for (const std::string& item : read.items) page.push_back(Json::parse(item));
      remaining = read.more ? read.remaining : 0;
      rv = read.rv;
    } else {
      auto [all, at] = store->List(r.plural, route.ns);
      rv = at;
      for (Json& o : all) {
        if (key_of(o) <= after || !selector->Matches(LabelsOf(o)) || !MatchesFields(o, fields)) continue;
        if (limit == 0 || page.size() < limit) {
          page.push_back(std::move(o));
        } else {
          ++remaining;
        }
      }
    }
    Json list_meta = {{"resourceVersion", std::to_string(rv)}};
    if (remaining > 0 && !page.empty()) {
      const auto [ns, name] = key_of(page.back());
      list_meta["continue"] = ns + "/" + name + "/" + std::to_string(remaining);
      list_meta["remainingItemCount"] = remaining;
    }
    if (WantsTable(req)) {
      Json table = TableOf(r, page, std::to_string(rv), true);
      table["metadata"] = list_meta;
      return Reply(res, 200, table);
    }
    Reply(res, 200,
          {{"kind", r.kind + "List"},
           {"apiVersion", r.api_version()},
           {"metadata", list_meta},
           {"items", page}});
  }

  struct WatchState {
    uint64_t since = 0;
    std::vector<Json> initial;  // synthetic ADDED events for a watch from "now"
    Clock::time_point deadline;
    Clock::time_point last_sent;
    bool first = true;
  };

  void Watch(const Route& route, const httplib::Request& req, httplib::Response& res) {
    const Resource& r = *route.resource;
    const auto selector = Selector(req, res);
    if (!selector) return;
    const std::string fields = req.get_param_value("fieldSelector");
    const bool table = WantsTable(req);
    const bool bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
    auto state = std::make_shared<WatchState>();
    const std::string rv_param = req.get_param_value("resourceVersion");
    int timeout = 1800;
    if (req.has_param("timeoutSeconds")) {
      const Result<int64_t> value = ParseInt64(req.get_param_value("timeoutSeconds"));
      if (!value) return ReplyStatus(res, 400, "BadRequest", value.error().message());
      timeout = static_cast<int>(std::clamp<int64_t>(*value, 1, int64_t{24} * 3600));
    }
    const auto matches = [selector = *selector, fields, ns = route.ns, name = route.name](const Json& o) {
      const Json& meta = o["metadata"];
      if (!ns.empty() && meta.value("namespace", "") != ns) return false;
      if (!name.empty() && meta.value("name", "") != name) return false;
      return selector.Matches(LabelsOf(o)) && MatchesFields(o, fields);
    };
    if (rv_param.empty() || rv_param == "0") {
      auto [all, rv] = store->List(r.plural, route.ns);
      state->since = rv;
      for (Json& o : all) {
        if (matches(o)) state->initial.push_back(std::move(o));
      }
    } else {
      const Result<uint64_t> rv = ParseUint64(rv_param);
      if (!rv) {
        // What the API server's storage answers (a 500 without a reason, as
        // kubernetes/kubernetes#113939 shows it).
        return ReplyStatus(
            res, 500, "",
            "resourceVersion: Invalid value: " + api::Quote(rv_param) + ": " + rv.error().message());
      }
      state->since = *rv;
    }
    state->deadline = Clock::now() + std::chrono::seconds(timeout);
    state->last_sent = Clock::now();
    const Resource* resource = &r;
    // Not plain "application/json": the HTTP library gzips that when the
    // client accepts it (kubectl does), and a compressor holds back the events
    // of a stream. Clients read the media type and ignore the parameter.
    res.set_chunked_content_provider(
        "application/json;stream=watch",
        [this, state, resource, matches, table, bookmarks](size_t, httplib::DataSink& sink) {
          const auto send = [&](const std::string& type, const Json& object) {
            Json body = object;
            if (table && type != "BOOKMARK" && type != "ERROR") {
              body =
                  TableOf(*resource, {object}, object["metadata"].value("resourceVersion", ""), state->first);
              state->first = false;
            }
            const std::string line = Json{{"type", type}, {"object", body}}.dump() + "\n";
            state->last_sent = Clock::now();
            return sink.write(line.data(), line.size());
          };
          for (const Json& o : state->initial) {
            if (!send("ADDED", o)) return false;
          }
          state->initial.clear();
          if (stopping || Clock::now() >= state->deadline) {
            sink.done();
            return true;
          }
          std::vector<Event> events;
          const auto slice = std::min(state->deadline, Clock::now() + std::chrono::seconds(1));
          if (!store->WaitEvents(resource->plural, state->since, slice, events)) {
            send("ERROR",
                 StatusJson(410, "Expired", "too old resource version: " + std::to_string(state->since)));
            sink.done();
            return true;
          }
          if (!events.empty() && options.watch_delay.count() > 0)
            std::this_thread::sleep_for(options.watch_delay);
          for (const Event& e : events) {
            state->since = std::max(state->since, e.rv);
            if (matches(e.object) && !send(e.type, e.object)) return false;
          }
          if (bookmarks && Clock::now() - state->last_sent > std::chrono::seconds(10)) {
            const Json mark = {{"kind", resource->kind},
                               {"apiVersion", resource->api_version()},
                               {"metadata", {{"resourceVersion", std::to_string(state->since)}}}};
            if (!send("BOOKMARK", mark)) return false;
          }
          return true;
        });
  }

  void Replace(const Route& route, Json object, FieldValidation mode, const Strictness& strictness,
               httplib::Response& res) {
    const Resource& r = *route.resource;
    Result<Json> current = store->Get(r.plural, route.ns, route.name);
    if (!current) return Fail(res, r, route.name, current.error());
    if (!object.is_object()) return ReplyStatus(res, 400, "BadRequest", "the body is not a JSON object");
    // What the caller may not change.
    Json& meta = object["metadata"];
    for (const char* key : {"uid", "creationTimestamp", "namespace", "name", "generateName"}) {
      if ((*current)["metadata"].contains(key)) meta[key] = (*current)["metadata"][key];
    }
    object["apiVersion"] = r.api_version();
    object["kind"] = r.kind;
    if (route.subresource == "status") {
      // Only the status moves; everything else stays.
      Json updated = *current;
      updated["status"] = object.value("status", Json::object());
      // Set at create and immutable: a kubelet's status carries it, ours need not.
      if (r.plural == "pods" && updated["status"].is_object() && !updated["status"].contains("qosClass") &&
          (*current)["status"].contains("qosClass")) {
        updated["status"]["qosClass"] = (*current)["status"]["qosClass"];
      }
      updated["metadata"]["resourceVersion"] = meta.value("resourceVersion", "");
      object = updated;
    } else if (!Decoded(r, object, mode, false, strictness, res)) {
      return;
    } else {
      if (r.plural == "services") {
        const std::vector<internal::FieldError> errors =
            internal::SettleServiceIpFamilies(object, &*current, options.service_ip_families);
        if (!errors.empty()) return Reply(res, 422, InvalidStatus(r, route.name, errors));
      }
      if (r.has_status) {
        object["status"] = current->value("status", Json::object());
        if (r.plural == "pods") object["spec"]["nodeName"] = (*current)["spec"].value("nodeName", "");
        if (object.value("spec", Json()) != current->value("spec", Json())) {
          meta["generation"] = (*current)["metadata"].value("generation", 1) + 1;
        }
      }
    }
    if (auto invalid = Invalid(r, object)) return Reply(res, 422, *invalid);
    Result<Json> updated = store->Update(r.plural, route.ns, route.name, object);
    if (!updated) return Fail(res, r, route.name, updated.error());
    Reply(res, 200, *updated);
  }

  void Update(const Route& route, const httplib::Request& req, httplib::Response& res) {
    if (!route.resource->user_writable && route.subresource != "status") {
      return ReplyStatus(res, 405, "MethodNotAllowed", route.resource->plural + " are read-only in the lab");
    }
    const std::optional<FieldValidation> mode = ReadFieldValidation(req, "UpdateOptions", res);
    if (!mode) return;
    Result<internal::Body> body = internal::DecodeBody(req.body, internal::Repeats::kDecodeInto);
    if (!body) {
      return ReplyStatus(res, 400, "BadRequest", "cannot decode the request body: " + body.error().message());
    }
    try {
      Replace(route, std::move(body->value), *mode, {.body = &*body, .patch_errors = {}}, res);
    } catch (const Json::exception& e) {
      ReplyStatus(res, 400, "BadRequest", std::string("cannot decode the request body: ") + e.what());
    }
  }

  void Patch(const Route& route, const httplib::Request& req, httplib::Response& res) {
    const Resource& r = *route.resource;
    const std::optional<FieldValidation> mode = ReadFieldValidation(req, "PatchOptions", res);
    if (!mode) return;
    Result<Json> current = store->Get(r.plural, route.ns, route.name);
    // Decoded into a map (a list of operations for a JSON patch): a field
    // given twice is the patch's strict error, and the last value wins.
    Result<internal::Body> body = internal::DecodeBody(req.body, internal::Repeats::kLastWins);
    if (!body)
      return ReplyStatus(res, 400, "BadRequest", "cannot decode the patch: " + body.error().message());
    Json patch = std::move(body->value);
    const std::string type = req.get_header_value("Content-Type");
    Strictness strictness;
    for (const internal::Body::Field& repeated : body->duplicates) {
      strictness.patch_errors.push_back(
          (type.find("json-patch+json") != std::string::npos ? "json patch " : "") +
          std::string("duplicate field ") + api::Quote(repeated.path));
    }
    if (type.find("apply-patch") != std::string::npos && !current) {
      // Server-side apply creates what is missing.
      httplib::Request create = req;
      create.body = patch.dump();
      return Create(route, create, res);
    }
    if (!current) return Fail(res, r, route.name, current.error());
    Json merged;
    if (type.find("strategic-merge-patch") != std::string::npos && r.kind == "ClusterNetworkPolicy") {
      // Custom resources have no strategic merge patch (kubectl uses a merge patch for them).
      return ReplyStatus(res, 415, "UnsupportedMediaType",
                         "the body of the request was in an unknown format - accepted media types include: "
                         "application/json-patch+json, application/merge-patch+json, "
                         "application/apply-patch+yaml");
    } else if (type.find("strategic-merge-patch") != std::string::npos) {
      merged = internal::StrategicMerge(*current, patch, r.kind);
    } else if (type.find("merge-patch") != std::string::npos ||
               type.find("apply-patch") != std::string::npos) {
      // Server-side apply, approximated: the applied fields win (no field
      // ownership is tracked in the lab).
      merged = internal::MergePatch(*current, patch);
    } else if (type.find("json-patch+json") != std::string::npos) {
      // RFC 6902, as the API server applies it (evanphx/json-patch): a body
      // that is not a list of operations is a 400, an operation that fails
      // (a test that does not hold, a path that is not there) a 422.
      if (!patch.is_array()) {
        return ReplyStatus(res, 400, "BadRequest",
                           "error decoding patch: json: cannot unmarshal " +
                               std::string(patch.is_object() ? "object" : patch.type_name()) +
                               " into Go value of type []handlers.jsonPatchOp");
      }
      try {
        merged = current->patch(patch);
      } catch (const Json::exception&) {
        return ReplyStatus(res, 422, "Invalid",
                           "the server rejected our request due to an error in our request");
      }
    } else {
      return ReplyStatus(res, 415, "UnsupportedMediaType",
                         "the lab accepts JSON, merge and strategic merge patches, not " + type);
    }
    // A patch applies to the current version unless it names another.
    if (!patch.is_object() || !patch.contains("metadata") || !patch["metadata"].is_object() ||
        !patch["metadata"].contains("resourceVersion")) {
      merged["metadata"]["resourceVersion"] = (*current)["metadata"]["resourceVersion"];
    }
    Replace(route, merged, *mode, strictness, res);
  }

  void Delete(const Route& route, httplib::Response& res) {
    const Resource& r = *route.resource;
    if (!r.user_writable)
      return ReplyStatus(res, 405, "MethodNotAllowed", r.plural + " are read-only in the lab");
    Result<Json> deleted = store->Delete(r.plural, route.ns, route.name);
    if (!deleted) return Fail(res, r, route.name, deleted.error());
    // What a garbage collector would do: a namespace takes its objects along,
    // an owner its dependents.
    const std::string uid = (*deleted)["metadata"].value("uid", "");
    for (const Resource& other : Resources()) {
      if (!other.namespaced) continue;
      for (const Json& o :
           store->List(other.plural, r.plural == "namespaces" ? route.name : route.ns).first) {
        bool owned = r.plural == "namespaces";
        for (const Json& owner : o["metadata"].value("ownerReferences", Json::array())) {
          owned = owned || owner.value("uid", "") == uid;
        }
        if (owned)
          (void)store->Delete(other.plural, o["metadata"].value("namespace", ""), o["metadata"]["name"]);
      }
    }
    Reply(res, 200, *deleted);
  }

  void Objects() {
    // Nothing thrown below leaves the module: a library's exception (JSON of an
    // unexpected shape) is the server's internal error, as a Status.
    const auto dispatch = [this](const httplib::Request& req, httplib::Response& res) {
      try {
        Dispatch(req, res);
      } catch (const std::exception& e) {
        ReplyStatus(res, 500, "InternalError", std::string("an error on the server: ") + e.what());
      }
    };
    for (const char* prefix : {R"(/api/v1/.*)", R"(/apis/[a-z0-9.-]+/v[0-9a-z]+/.*)"}) {
      http->Get(prefix, dispatch);
      http->Post(prefix, dispatch);
      http->Put(prefix, dispatch);
      http->Patch(prefix, dispatch);
      http->Delete(prefix, dispatch);
    }
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res) {
    const std::optional<Route> route = ParseRoute(req.path);
    if (!route) return ReplyStatus(res, 404, "NotFound", "the server could not find the requested resource");
    const bool item = !route->name.empty();
    if (route->resource->namespaced && route->ns.empty() && item) {
      return ReplyStatus(res, 404, "NotFound", "the server could not find the requested resource");
    }
    if (!route->subresource.empty() && route->subresource != "status") {
      // kubectl logs, exec, attach, port-forward: what the lab has instead.
      static const std::map<std::string, std::string> kUnsupported = {
          {"log",
           "kubectl logs is not supported by the lab: a container's output is in the lab "
           "directory's logs/<namespace>_<pod>_<container>.log"},
          {"exec",
           "kubectl exec is not supported by the lab: run a command in the pod's network namespace "
           "with ip netns exec <lab name>-<namespace>.<pod> COMMAND"},
          {"attach", "kubectl attach is not supported by the lab"},
          {"portforward",
           "kubectl port-forward is not supported by the lab: connect to the pod's IP "
           "from its node's network namespace"},
      };
      const auto unsupported = kUnsupported.find(route->subresource);
      if (route->resource->plural == "pods" && unsupported != kUnsupported.end()) {
        return ReplyStatus(res, 404, "NotFound", unsupported->second,
                           {{"name", route->name}, {"kind", "pods"}});
      }
      return ReplyStatus(res, 404, "NotFound", "the server could not find the requested resource");
    }
    // Bodies only as JSON (and YAML-free JSON at that): kubectl sends
    // protobuf for the objects its generators build (create namespace, ...).
    if ((req.method == "POST" || req.method == "PUT" || req.method == "PATCH") &&
        req.get_header_value("Content-Type").find("protobuf") != std::string::npos) {
      return ReplyStatus(
          res, 415, "UnsupportedMediaType",
          "the lab's API server does not read protobuf request bodies (" +
              req.get_header_value("Content-Type") +
              "), which kubectl sends for objects it builds itself (kubectl create namespace, "
              "kubectl create deployment, ...); write the object as YAML and use kubectl create -f");
    }
    if (req.method == "GET") {
      if (item) return Get(*route, req, res);
      if (req.get_param_value("watch") == "true" || req.get_param_value("watch") == "1")
        return Watch(*route, req, res);
      return List(*route, req, res);
    }
    if (req.method == "POST" && !item) {
      if (route->resource->namespaced && route->ns.empty()) {
        return ReplyStatus(res, 405, "MethodNotAllowed", "create needs a namespace");
      }
      return Create(*route, req, res);
    }
    if (req.method == "PUT" && item) return Update(*route, req, res);
    if (req.method == "PATCH" && item) return Patch(*route, req, res);
    if (req.method == "DELETE" && item) return Delete(*route, res);
    ReplyStatus(res, 405, "MethodNotAllowed", req.method + " is not allowed on " + req.path);
  }

  Status Seed() {
    for (const std::string ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      if (store->Get("namespaces", "", ns).ok()) continue;
      Json object = {{"metadata", {{"name", ns}}}};
      if (auto bad = Prepare(*FindResource("", "v1", "namespaces"), "", object)) return Internal(bad->dump());
      NETPOL_RETURN_IF_ERROR(store->Create("namespaces", "", ns, object), "seeding namespaces");
    }
    for (const std::string& node : options.nodes) {
      if (store->Get("nodes", "", node).ok()) continue;
      Json object = {{"apiVersion", "v1"},
                     {"kind", "Node"},
                     {"metadata",
                      {{"name", node},
                       {"uid", Uid()},
                       {"creationTimestamp", Rfc3339Now()},
                       {"labels", {{"kubernetes.io/hostname", node}}}}},
                     {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
      NETPOL_RETURN_IF_ERROR(store->Create("nodes", "", node, object), "seeding nodes");
    }
    return Ok();
  }
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() {
  Stop();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  NETPOL_ASSIGN_OR_RETURN(impl->store, Store::Open(options.database), "starting the lab API server");
  NETPOL_RETURN_IF_ERROR(impl->Seed(), "starting the lab API server");
  if (options.tls_cert.empty()) {
    impl->http = std::make_unique<httplib::Server>();
  } else {
    // The certificate and key as OpenSSL objects; the server's TLS context
    // takes its own references.
    const auto read_pem = [](const std::string& pem, auto read) {
      BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      auto* object = bio != nullptr ? read(bio, nullptr, nullptr, nullptr) : nullptr;
      BIO_free(bio);
      return object;
    };
    X509* cert = read_pem(options.tls_cert, PEM_read_bio_X509);
    EVP_PKEY* key = read_pem(options.tls_key, PEM_read_bio_PrivateKey);
    auto server =
        cert != nullptr && key != nullptr ? std::make_unique<httplib::SSLServer>(cert, key) : nullptr;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!server || !server->is_valid())
      return InvalidArgument("the lab API server's certificate or key is not usable");
    impl->http = std::move(server);
  }
  // Watches hold a thread each for their lifetime.
  impl->http->new_task_queue = [] { return new httplib::ThreadPool(64); };
  // Clients keep their connections (kube::Client pools them, kubectl too):
  // without TCP_NODELAY a response written in two parts on a kept-alive
  // connection waits for the client's delayed ACK (tens of ms; Go's net, and
  // so kube-apiserver, sets it too). And many requests per connection.
  impl->http->set_tcp_nodelay(true);
  impl->http->set_keep_alive_max_count(1000);
  impl->http->set_pre_routing_handler(
      [raw = impl.get()](const httplib::Request& req, httplib::Response& res) {
        const std::string& token = raw->options.token;
        if (token.empty() || SameToken(req.get_header_value("Authorization"), "Bearer " + token)) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        ReplyStatus(res, 401, "Unauthorized", "Unauthorized");
        return httplib::Server::HandlerResponse::Handled;
      });
  impl->Discovery();
  impl->Objects();
  if (options.port == 0) {
    impl->port = impl->http->bind_to_any_port(options.address);
  } else {
    impl->port = impl->http->bind_to_port(options.address, options.port) ? options.port : -1;
  }
  if (impl->port <= 0)
    return Unavailable("cannot listen on " + options.address + ":" + std::to_string(options.port));
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->http->listen_after_bind(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

int ApiServer::port() const {
  return impl_->port;
}

std::string ApiServer::url() const {
  return std::string(impl_->options.tls_cert.empty() ? "http" : "https") + "://" + impl_->options.address +
         ":" + std::to_string(impl_->port);
}

void ApiServer::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  impl_->store->WakeAll();
  impl_->http->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace netpol::lab
