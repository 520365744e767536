#include "kube/client.h"

#include <curl/curl.h>

#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>

namespace netpol::kube {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A curl easy handle and header list, released on every path out.
struct Handle {
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  ~Handle() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  }
};

// curl copies blobs given with CURL_BLOB_COPY, so the strings need not outlive the call.
void SetBlob(CURL* curl, CURLoption option, const std::string& data) {
  curl_blob blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
  curl_easy_setopt(curl, option, &blob);
}

std::string TokenOf(const ClientConfig& config) {
  if (config.bearer_token_file.empty()) return config.bearer_token;
  std::ifstream in(config.bearer_token_file);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  return token.empty() ? config.bearer_token : token;
}

void Configure(Handle& h, const ClientConfig& config, const std::string& url) {
  curl_easy_setopt(h.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  if (!config.ca_file.empty()) curl_easy_setopt(h.curl, CURLOPT_CAINFO, config.ca_file.c_str());
  if (!config.ca_data.empty()) SetBlob(h.curl, CURLOPT_CAINFO_BLOB, config.ca_data);
  if (!config.client_cert_file.empty())
    curl_easy_setopt(h.curl, CURLOPT_SSLCERT, config.client_cert_file.c_str());
  if (!config.client_cert_data.empty()) SetBlob(h.curl, CURLOPT_SSLCERT_BLOB, config.client_cert_data);
  if (!config.client_key_file.empty())
    curl_easy_setopt(h.curl, CURLOPT_SSLKEY, config.client_key_file.c_str());
  if (!config.client_key_data.empty()) SetBlob(h.curl, CURLOPT_SSLKEY_BLOB, config.client_key_data);
  if (config.insecure_skip_tls_verify) {
    curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  h.headers = curl_slist_append(h.headers, "Accept: application/json");
  if (const std::string token = TokenOf(config); !token.empty()) {
    h.headers = curl_slist_append(h.headers, ("Authorization: Bearer " + token).c_str());
  }
}

Error FromStatus(long code, const std::string& body) {
  std::string message = "HTTP " + std::to_string(code);
  try {
    const Json status = Json::parse(body);
    if (status.is_object() && status.contains("message")) message = status["message"].get<std::string>();
  } catch (const Json::exception&) {
  }
  switch (code) {
    case 404:
      return NotFound(message);
    case 409:
      return Error(ErrorCode::kAlreadyExists, message);
    case 400:
    case 422:
      return InvalidArgument(message);
    case 401:
    case 403:
      return PermissionDenied(message);
    case 410:
      return FailedPrecondition("gone: " + message);
    default:
      return Unavailable(message);
  }
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(const ClientConfig& config) {
  GlobalInit();
  if (config.server.rfind("http://", 0) != 0 && config.server.rfind("https://", 0) != 0) {
    return InvalidArgument("API server address must start with http:// or https://: \"" + config.server +
                           "\"");
  }
  return std::unique_ptr<Client>(new Client(config));
}

Client::~Client() = default;

Result<Json> Client::Request(const std::string& method, const std::string& path, const std::string& body,
                             const std::string& content_type) {
  Handle h;
  if (h.curl == nullptr) return Internal("curl_easy_init failed");
  Configure(h, config_, config_.server + path);
  std::string response;
  curl_easy_setopt(h.curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    h.headers = curl_slist_append(h.headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(h.curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.request_timeout.count()));
  const CURLcode rc = curl_easy_perform(h.curl);
  if (rc != CURLE_OK) return Unavailable(method + " " + path + ": " + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) return FromStatus(code, response).WithContext(method + " " + path);
  try {
    return response.empty() ? Json::object() : Json::parse(response);
  } catch (const Json::exception& e) {
    return Unavailable(method + " " + path + ": unreadable response: " + e.what());
  }
}

Status Client::Stream(const std::string& path, const std::function<bool(const std::string&)>& on_line,
                      const std::atomic<bool>& stop, std::chrono::seconds stall) {
  Handle h;
  if (h.curl == nullptr) return Internal("curl_easy_init failed");
  Configure(h, config_, config_.server + path);
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  struct State {
    std::string buffer;
    const std::function<bool(const std::string&)>* on_line;
    const std::atomic<bool>* stop;
    bool stopped_by_handler = false;
  } state{{}, &on_line, &stop, false};
  const curl_write_callback write = [](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* s = static_cast<State*>(user);
    s->buffer.append(data, size * n);
    size_t start = 0;
    for (size_t end = s->buffer.find('\n'); end != std::string::npos; end = s->buffer.find('\n', start)) {
      const std::string line = s->buffer.substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      if (!(*s->on_line)(line)) {
        s->stopped_by_handler = true;
        return 0;  // aborts the transfer
      }
    }
    s->buffer.erase(0, start);
    return size * n;
  };
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &state);
  // Stop promptly when asked: the progress callback runs about once a second
  // even when no data flows.
  const curl_xferinfo_callback progress = [](void* user, curl_off_t, curl_off_t, curl_off_t,
                                             curl_off_t) -> int {
    return static_cast<State*>(user)->stop->load() ? 1 : 0;
  };
  curl_easy_setopt(h.curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFODATA, &state);
  // A stream that delivers nothing (not even a bookmark) for `stall` is dead.
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(stall.count()));
  const CURLcode rc = curl_easy_perform(h.curl);
  if (state.stopped_by_handler || stop.load()) return Ok();
  long code = 0;
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &code);
  if (rc == CURLE_OK && code >= 200 && code < 300) return Ok();  // the server ended the watch
  if (rc == CURLE_OK) return FromStatus(code, state.buffer).WithContext("watch " + path);
  return Unavailable("watch " + path + ": " + curl_easy_strerror(rc));
}

void ListWatch::Run(const std::atomic<bool>& stop) {
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds backoff{100};
  bool need_list = true;
  while (!stop.load()) {
    Status s = need_list ? List() : Watch(stop);
    if (s.ok()) {
      // A list is followed by a watch; a watch the server ended normally is
      // resumed from the last resourceVersion seen.
      need_list = false;
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    handler_.OnProblem(s.error().message());
    if (s.error().code() == ErrorCode::kFailedPrecondition) {
      need_list = true;  // 410 Gone: our resourceVersion is too old
      continue;
    }
    // Jittered exponential back-off, capped, sliced so `stop` is honoured.
    const auto wait =
        backoff / 2 + std::chrono::milliseconds(rng() % static_cast<uint64_t>(backoff.count() + 1));
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !stop.load();
         waited += std::chrono::milliseconds(20)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
  }
}

Status Client::List(const std::string& path,
                    const std::function<void(std::vector<Json>& items, const Json& metadata)>& on_page) {
  std::string next;
  do {
    const char join = path.find('?') == std::string::npos ? '?' : '&';
    std::string query = path + join + "limit=500";
    if (!next.empty()) query += "&continue=" + next;
    NETPOL_ASSIGN_OR_RETURN(Json page, Get(query), "listing " + path);
    std::vector<Json> items;
    items.reserve(page["items"].size());
    for (Json& item : page["items"]) items.push_back(std::move(item));
    const Json metadata = std::move(page["metadata"]);
    page = Json();  // the page's rest, before the caller allocates for its items
    next = metadata.value("continue", "");
    on_page(items, metadata);
  } while (!next.empty());
  return Ok();
}

Status ListWatch::List() {
  handler_.OnListBegin();
  NETPOL_RETURN_IF_ERROR(client_.List(path_,
                                      [&](std::vector<Json>& items, const Json& metadata) {
                                        resource_version_ = metadata.value("resourceVersion", "");
                                        handler_.OnListPage(items);
                                      }),
                         "");
  ++lists_;
  handler_.OnListEnd();
  return Ok();
}

Status ListWatch::Watch(const std::atomic<bool>& stop) {
  ++watches_;
  bool gone = false;
  const char join = path_.find('?') == std::string::npos ? '?' : '&';
  const std::string query =
      path_ + join +
      "watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + resource_version_;
  const Status s = client_.Stream(
      query,
      [&](const std::string& line) {
        Json event;
        try {
          event = Json::parse(line);
        } catch (const Json::exception&) {
          handler_.OnProblem("unreadable watch event");
          return false;
        }
        const std::string type = event.value("type", "");
        const Json& object = event["object"];
        if (type == "ERROR") {
          gone = object.value("code", 0) == 410;
          handler_.OnProblem("watch error: " + object.value("message", std::string("unknown")));
          return false;
        }
        const std::string rv = object["metadata"].value("resourceVersion", "");
        if (type != "BOOKMARK") handler_.OnEvent(type, object);
        if (!rv.empty()) resource_version_ = rv;
        return true;
      },
      stop, std::chrono::seconds(60));
  if (gone) return FailedPrecondition("resource version " + resource_version_ + " is gone");
  return s;
}

}  // namespace netpol::kube
