// A Kubernetes API client over libcurl: requests, paginated lists and watch
// streams, for the node agent and the lab (one code path for a real cluster
// and the lab's API server).
//
//   Result<std::unique_ptr<Client>> api = Client::Create({.server = "http://127.0.0.1:6443"});
//   Result<Json> pods = (*api)->Get("/api/v1/pods");
//   ListWatch informer(**api, "/api/v1/pods", handler);   // list, then watch, forever
//   informer.Run(stop);
//   ListWatch typed(**api, kPolicyResources[1], object_handler);  // the same, as api objects
//
// ListWatch keeps a cache exactly in step with the server: it lists (page by
// page), hands the handler the full set, then watches from the list's
// resourceVersion; bookmarks advance it, 410 Gone (or an ERROR event) makes it
// list again, and a broken or stalled stream reconnects after a jittered
// exponential back-off. Every event reaches the handler once, in order.
//
// Two kinds of handler: an ObjectListWatchHandler gets api objects decoded
// straight from the response text (api::DecodeListPage, DecodeWatchEvent: no
// JSON tree; the node agent's path), a ListWatchHandler the JSON values.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/decode.h"
#include "base/result.h"

namespace netpol::kube {

using Json = nlohmann::json;

// How to reach and authenticate to an API server; kube/kubeconfig.h fills it
// from a kubeconfig or from a pod's service account.
struct ClientConfig {
  std::string server;  // "https://198.18.0.1:6443" or the lab's "http://127.0.0.1:PORT"
  std::string bearer_token;
  // Read again before every request: service account tokens are rotated.
  std::string bearer_token_file;
  std::string ca_file;  // PEM bundle the server's certificate must chain to
  std::string ca_data;  // the same, inline (PEM)
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_data;           // PEM
  std::string client_key_data;            // PEM
  bool insecure_skip_tls_verify = false;  // only when asked for, by name
  std::chrono::milliseconds request_timeout{30000};
};

// A plain-HTTP configuration for an API server on loopback (the lab's).
inline ClientConfig Api(std::string server) {
  ClientConfig config;
  config.server = std::move(server);
  return config;
}

namespace internal {
struct CurlPool;
}

class Client {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Client>> Create(const ClientConfig& config);
  ~Client();

  // The decoded JSON body of a successful response; the server's Status
  // message (kNotFound, kAlreadyExists, kInvalidArgument, kUnimplemented for 405
  // and 415, kUnavailable...) otherwise.
  Result<Json> Request(const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& content_type = "application/json");
  Result<Json> Get(const std::string& path) { return Request("GET", path); }

  // A paginated LIST (limit/continue): `on_page` for each page's items, with
  // the page's list metadata (resourceVersion, continue). Items carry neither
  // kind nor apiVersion: the list does.
  Status List(const std::string& path,
              const std::function<void(std::vector<Json>& items, const Json& metadata)>& on_page);
  // The same LIST, each page decoded from its text into api objects (items
  // are of `items`' kind); an item that does not decode comes with its name
  // and the reason instead of an object. The next pages are fetched on a
  // thread of their own while this one is decoded and `on_page` runs (at
  // most two pages ahead).
  Status ListObjects(const std::string& path, api::ApiKind items,
                     const std::function<void(api::ApiListPage& page)>& on_page);

  // Streams a watch: `on_line` for each newline-terminated JSON event, until
  // the server ends the stream, `on_line` returns false, `stop` is set, or no
  // byte arrives for `stall` (then kUnavailable). `on_open`, when given, is
  // called once the server has answered 2xx (the stream is open; within about
  // a second), before any line.
  Status Stream(const std::string& path, const std::function<bool(const std::string&)>& on_line,
                const std::atomic<bool>& stop, std::chrono::seconds stall,
                const std::function<void()>& on_open = {});

  const ClientConfig& config() const { return config_; }

  // Connections opened so far. Requests reuse idle connections (each request
  // leases a curl handle from a pool, and a handle keeps its connection and
  // TLS session), so this grows with concurrency, not with requests.
  uint64_t connections_opened() const;

 private:
  explicit Client(ClientConfig config);
  // One page of a LIST after the continue token `after` ("": the first), as text.
  Result<std::string> FetchPage(const std::string& path, const std::string& after);
  // A successful response's body, with api::kDecodePadding bytes of capacity
  // to spare (read in place by api's decoder).
  Result<std::string> Fetch(const std::string& method, const std::string& path, const std::string& body,
                            const std::string& content_type);
  ClientConfig config_;
  std::unique_ptr<internal::CurlPool> pool_;
};

// The resources NetworkPolicy semantics depend on, as the agent watches them
// and `--live` and the lab read them.
struct PolicyResource {
  const char* kind;
  const char* api_version;
  const char* path;  // the cluster-wide collection
};
inline constexpr PolicyResource kPolicyResources[] = {
    {"Namespace", "v1", "/api/v1/namespaces"},
    {"Pod", "v1", "/api/v1/pods"},
    {"NetworkPolicy", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1/networkpolicies"},
};
// Read besides those when the cluster serves them and lets us list them:
// Nodes (for nodes peers) and ClusterNetworkPolicies (a CRD, which a cluster
// may not have installed). Without them netpol goes on, with a warning.
inline constexpr PolicyResource kOptionalPolicyResources[] = {
    {"Node", "v1", "/api/v1/nodes"},
    {"ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2",
     "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"},
};

// What both kinds of handler hear about the loop itself.
class WatchStatusHandler {
 public:
  virtual ~WatchStatusHandler() = default;
  // A failure the loop recovers from (logged by the caller).
  virtual void OnProblem(const std::string& what) { (void)what; }
  // The same failure with its code (404: the server does not serve the
  // collection, 403: not allowed to read it); by default OnProblem.
  virtual void OnFailure(const Error& error) { OnProblem(error.message()); }
  // A watch stream is open (the server answered): the API is reachable again
  // even when nothing changes (a watch delivers nothing until something does).
  virtual void OnWatching() {}
};

// A handler of api objects: a list (the first, and every relist) arrives as
// OnListBegin, OnListPage for each page, OnListEnd: together the complete
// current set; a list that fails midway begins again. Items and events that
// do not decode arrive with `object` empty and `problem` saying why.
class ObjectListWatchHandler : public WatchStatusHandler {
 public:
  virtual void OnListBegin() = 0;
  virtual void OnListPage(std::vector<api::ApiItem>& items) = 0;
  virtual void OnListEnd() = 0;
  // One change: ADDED, MODIFIED or DELETED.
  virtual void OnEvent(const std::string& type, api::ApiItem& item) = 0;
};

class ListWatchHandler : public WatchStatusHandler {
 public:
  // A list (the first, and every relist) arrives as OnListBegin, OnListPage
  // for each page, OnListEnd: together the complete current set. By default
  // the pages are buffered and the whole set handed to OnList; a handler that
  // can take pages as they come (and so never holds the whole list at once)
  // overrides the three instead. A list that fails midway begins again.
  virtual void OnListBegin() { buffered_.clear(); }
  virtual void OnListPage(std::vector<Json>& items) {
    for (Json& item : items) buffered_.push_back(std::move(item));
  }
  virtual void OnListEnd() {
    OnList(buffered_);
    std::vector<Json>().swap(buffered_);
  }
  // The complete current set, for handlers that keep the default paging.
  virtual void OnList(const std::vector<Json>& items) { (void)items; }
  // One change: ADDED, MODIFIED or DELETED.
  virtual void OnEvent(const std::string& type, const Json& object) = 0;

 private:
  std::vector<Json> buffered_;
};

struct ListWatchOptions {
  // No byte for this long (a real server sends bookmarks about once a minute)
  // means the stream is dead: reconnect.
  std::chrono::seconds stall{90};
  // Asked of the server, which then ends the watch normally; a fresh watch
  // resumes from the last resourceVersion seen.
  int timeout_seconds = 300;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10000};
};

class ListWatch {
 public:
  ListWatch(Client& client, std::string collection_path, ListWatchHandler& handler,
            ListWatchOptions options = {})
      : client_(client),
        path_(std::move(collection_path)),
        json_(&handler),
        status_(handler),
        options_(options) {}
  // Lists and watches `resource`'s collection as api objects.
  ListWatch(Client& client, const PolicyResource& resource, ObjectListWatchHandler& handler,
            ListWatchOptions options = {})
      : client_(client),
        path_(resource.path),
        kind_{resource.kind, resource.api_version},
        objects_(&handler),
        status_(handler),
        options_(options) {}
  // The same for another path to its objects (a field selector...).
  ListWatch(Client& client, std::string collection_path, api::ApiKind kind, ObjectListWatchHandler& handler,
            ListWatchOptions options = {})
      : client_(client),
        path_(std::move(collection_path)),
        kind_(kind),
        objects_(&handler),
        status_(handler),
        options_(options) {}

  // Runs until `stop` is set.
  void Run(const std::atomic<bool>& stop);
  // Counters, for tests and metrics.
  int lists() const { return lists_; }
  int watches() const { return watches_; }

 private:
  Status List();
  // Ok with `*progress` false when the server ended a watch that delivered
  // nothing (then the loop waits before watching again).
  Status Watch(const std::atomic<bool>& stop, bool* progress);
  // One line of a watch: false (with `*failed` set) ends the stream.
  bool JsonEvent(const std::string& line, std::optional<Status>* failed);
  bool ObjectEvent(const std::string& line, std::optional<Status>* failed);

  Client& client_;
  std::string path_;
  api::ApiKind kind_;                          // with objects_
  ListWatchHandler* json_ = nullptr;           // one of these two
  ObjectListWatchHandler* objects_ = nullptr;  //
  WatchStatusHandler& status_;
  ListWatchOptions options_;
  std::string resource_version_;
  std::atomic<int> lists_{0};
  std::atomic<int> watches_{0};
};

}  // namespace netpol::kube
