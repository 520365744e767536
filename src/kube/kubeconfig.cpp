#include "kube/kubeconfig.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "api/yaml_json.h"

namespace netpol::kube {
namespace {

namespace fs = std::filesystem;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<std::string> Base64(const std::string& text, const std::string& what) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return InvalidArgument(what + " is not valid base64");
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xffU);
    }
  }
  return out;
}

// One kubeconfig file, with the directory its relative paths are relative to.
struct File {
  std::string path;
  nlohmann::json doc;
};

// A field as text; "" when absent or not text (the file is the user's: nothing in it throws).
std::string Str(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

// The entry named `name` in a list like `clusters`, from the first file that has it.
const nlohmann::json* Find(const std::vector<File>& files, const char* list, const std::string& name,
                           const File** from) {
  for (const File& f : files) {
    if (!f.doc.is_object() || !f.doc.contains(list) || !f.doc[list].is_array()) continue;
    for (const nlohmann::json& entry : f.doc[list]) {
      if (entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
          Str(entry, "name") == name) {
        *from = &f;
        return &entry;
      }
    }
  }
  return nullptr;
}

std::string Resolve(const File& file, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(file.path).parent_path() / path).string();
}

}  // namespace

Result<ClientConfig> LoadKubeconfig(const KubeconfigOptions& options) {
  std::vector<std::string> paths;
  if (!options.path.empty()) {
    paths.push_back(options.path);
  } else if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      const size_t colon = list.find(':', start);
      const std::string p =
          list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!p.empty()) paths.push_back(p);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    paths.push_back(std::string(home) + "/.kube/config");
  }
  std::vector<File> files;
  for (const std::string& p : paths) {
    Result<std::string> text = ReadFile(p);
    // kubectl skips missing files in $KUBECONFIG, but not an explicit --kubeconfig.
    if (!text) {
      if (!options.path.empty()) return std::move(text).error().WithContext("--kubeconfig");
      continue;
    }
    NETPOL_ASSIGN_OR_RETURN(nlohmann::json doc, api::YamlToJson(*text, p), "reading kubeconfig");
    files.push_back({p, std::move(doc)});
  }
  if (files.empty()) return NotFound("no kubeconfig found (tried --kubeconfig, $KUBECONFIG, ~/.kube/config)");
  std::string context_name = options.context;
  for (const File& f : files) {
    if (!context_name.empty()) break;
    context_name = Str(f.doc, "current-context");
  }
  if (context_name.empty()) return NotFound("the kubeconfig names no current-context; pass --context");
  const File* context_file = nullptr;
  const nlohmann::json* context = Find(files, "contexts", context_name, &context_file);
  if (context == nullptr) return NotFound("context \"" + context_name + "\" is not in the kubeconfig");
  const nlohmann::json ctx = context->value("context", nlohmann::json::object());
  const std::string cluster_name = Str(ctx, "cluster");
  const std::string user_name = Str(ctx, "user");
  const File* cluster_file = nullptr;
  const nlohmann::json* cluster_entry = Find(files, "clusters", cluster_name, &cluster_file);
  if (cluster_entry == nullptr) {
    return NotFound("cluster \"" + cluster_name + "\" of context \"" + context_name +
                    "\" is not in the kubeconfig");
  }
  const nlohmann::json cluster = cluster_entry->value("cluster", nlohmann::json::object());
  ClientConfig config;
  config.server = Str(cluster, "server");
  if (config.server.empty()) return InvalidArgument("cluster \"" + cluster_name + "\" has no server");
  config.ca_file = Resolve(*cluster_file, Str(cluster, "certificate-authority"));
  if (const std::string data = Str(cluster, "certificate-authority-data"); !data.empty()) {
    NETPOL_ASSIGN_OR_RETURN(config.ca_data, Base64(data, "certificate-authority-data"),
                            "cluster " + cluster_name);
  }
  config.insecure_skip_tls_verify =
      cluster.contains("insecure-skip-tls-verify") && cluster["insecure-skip-tls-verify"] == true;
  if (user_name.empty()) return config;
  const File* user_file = nullptr;
  const nlohmann::json* user_entry = Find(files, "users", user_name, &user_file);
  if (user_entry == nullptr) {
    return NotFound("user \"" + user_name + "\" of context \"" + context_name +
                    "\" is not in the kubeconfig");
  }
  const nlohmann::json user = user_entry->value("user", nlohmann::json::object());
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    if (user.is_object() && user.contains(unsupported)) {
      return Error(ErrorCode::kUnimplemented, "user \"" + user_name + "\" authenticates with " + unsupported +
                                                  ", which netpol does not support; use a token or a client "
                                                  "certificate");
    }
  }
  config.bearer_token = Str(user, "token");
  config.bearer_token_file = Resolve(*user_file, Str(user, "tokenFile"));
  config.client_cert_file = Resolve(*user_file, Str(user, "client-certificate"));
  config.client_key_file = Resolve(*user_file, Str(user, "client-key"));
  if (const std::string data = Str(user, "client-certificate-data"); !data.empty()) {
    NETPOL_ASSIGN_OR_RETURN(config.client_cert_data, Base64(data, "client-certificate-data"),
                            "user " + user_name);
  }
  if (const std::string data = Str(user, "client-key-data"); !data.empty()) {
    NETPOL_ASSIGN_OR_RETURN(config.client_key_data, Base64(data, "client-key-data"), "user " + user_name);
  }
  return config;
}

Result<ClientConfig> InClusterConfig(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return NotFound("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  const std::string dir = root + "/var/run/secrets/kubernetes.io/serviceaccount";
  ClientConfig config;
  // An IPv6 host goes in brackets.
  const std::string h = host;
  config.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  config.bearer_token_file = dir + "/token";
  config.ca_file = dir + "/ca.crt";
  NETPOL_ASSIGN_OR_RETURN(config.bearer_token, ReadFile(config.bearer_token_file),
                          "the service account token");
  if (!fs::exists(config.ca_file))
    return NotFound("the service account CA " + config.ca_file + " is missing");
  return config;
}

}  // namespace netpol::kube
