#include "kube/client.h"

#include <curl/curl.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

namespace netpol::kube {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

namespace internal {

// Idle curl easy handles. A handle keeps its connection (and TLS session)
// after a transfer, so the next request through it skips the TCP and TLS
// handshakes: against a real API server, a handshake per request would be a
// pod start's largest cost. (curl's shared connection cache is not for
// concurrent threads, hence a pool of handles, one thread each at a time.)
struct CurlPool {
  static constexpr size_t kMaxIdle = 8;
  std::mutex mu;
  std::vector<CURL*> idle;
  std::atomic<uint64_t> connections{0};
  ~CurlPool() {
    for (CURL* curl : idle) curl_easy_cleanup(curl);
  }
};

}  // namespace internal

namespace {

// A curl easy handle leased from the pool, and a header list, given back on
// every path out.
struct Handle {
  explicit Handle(internal::CurlPool& from) : pool(from) {
    {
      std::lock_guard lock(pool.mu);
      if (!pool.idle.empty()) {
        curl = pool.idle.back();
        pool.idle.pop_back();
      }
    }
    if (curl == nullptr) curl = curl_easy_init();
  }
  ~Handle() {
    if (curl != nullptr) {
      long opened = 0;  // NOLINT(google-runtime-int): curl's type
      curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &opened);
      pool.connections += static_cast<uint64_t>(opened);
      curl_easy_reset(curl);  // options back to defaults; the connection stays
    }
    curl_slist_free_all(headers);
    if (curl == nullptr) return;
    std::lock_guard lock(pool.mu);
    if (pool.idle.size() < internal::CurlPool::kMaxIdle) {
      pool.idle.push_back(curl);
    } else {
      curl_easy_cleanup(curl);
    }
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  internal::CurlPool& pool;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
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

Error FromStatus(long code, const std::string& body) {  // NOLINT(google-runtime-int): curl's type
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
    case 405:  // a verb or a patch type the server does not serve: no retry helps
    case 415:
      return Error(ErrorCode::kUnimplemented, message);
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

Client::Client(ClientConfig config)
    : config_(std::move(config)), pool_(std::make_unique<internal::CurlPool>()) {}

Client::~Client() = default;

uint64_t Client::connections_opened() const {
  return pool_->connections.load();
}

Result<Json> Client::Request(const std::string& method, const std::string& path, const std::string& body,
                             const std::string& content_type) {
  NETPOL_ASSIGN_OR_RETURN(const std::string response, Fetch(method, path, body, content_type), "");
  try {
    return response.empty() ? Json::object() : Json::parse(response);
  } catch (const Json::exception& e) {
    return Unavailable(method + " " + path + ": unreadable response: " + e.what());
  }
}

Result<std::string> Client::Fetch(const std::string& method, const std::string& path, const std::string& body,
                                  const std::string& content_type) {
  Handle h(*pool_);
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
  long code = 0;  // NOLINT(google-runtime-int): curl's type
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) return FromStatus(code, response).WithContext(method + " " + path);
  if (response.capacity() - response.size() < api::kDecodePadding)
    response.reserve(response.size() + api::kDecodePadding);
  return response;
}

Status Client::Stream(const std::string& path, const std::function<bool(const std::string&)>& on_line,
                      const std::atomic<bool>& stop, std::chrono::seconds stall,
                      const std::function<void()>& on_open) {
  Handle h(*pool_);
  if (h.curl == nullptr) return Internal("curl_easy_init failed");
  Configure(h, config_, config_.server + path);
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  struct State {
    CURL* curl;
    std::string buffer;
    const std::function<bool(const std::string&)>* on_line;
    const std::atomic<bool>* stop;
    std::chrono::steady_clock::duration stall;
    const std::function<void()>* on_open;
    std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();
    bool stopped_by_handler = false;
    bool stalled = false;
    bool opened = false;
    // Once, when the answer is 2xx (from the progress or the write callback).
    void Opened() {
      if (opened || on_open == nullptr || !*on_open) return;
      long code = 0;  // NOLINT(google-runtime-int): curl's type
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      if (code < 200 || code >= 300) return;
      opened = true;
      (*on_open)();
    }
  } state{h.curl, {}, &on_line, &stop, stall, &on_open};
  const curl_write_callback write = [](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* s = static_cast<State*>(user);
    s->last_data = std::chrono::steady_clock::now();
    s->buffer.append(data, size * n);
    // A refusal (410 Gone, 403...) is a Status object, not events: keep it
    // whole for the error.
    long code = 0;  // NOLINT(google-runtime-int): curl's type
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) return size * n;
    s->Opened();
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
  // Stop promptly when asked, and give a stream up when no byte (not even a
  // bookmark) came for `stall`: the progress callback runs about once a
  // second even when no data flows. (curl's own low-speed check averages over
  // several seconds, so a burst before the silence would hide it.)
  const curl_xferinfo_callback progress = [](void* user, curl_off_t, curl_off_t, curl_off_t,
                                             curl_off_t) -> int {
    auto* s = static_cast<State*>(user);
    if (s->stop->load()) return 1;
    s->Opened();
    s->stalled = std::chrono::steady_clock::now() - s->last_data > s->stall;
    return s->stalled ? 1 : 0;
  };
  curl_easy_setopt(h.curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(h.curl, CURLOPT_XFERINFODATA, &state);
  const CURLcode rc = curl_easy_perform(h.curl);
  if (state.stopped_by_handler || stop.load()) return Ok();
  long code = 0;  // NOLINT(google-runtime-int): curl's type
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &code);
  if (rc == CURLE_OK && code >= 200 && code < 300) return Ok();  // the server ended the watch
  if (rc == CURLE_OK) return FromStatus(code, state.buffer).WithContext("watch " + path);
  if (state.stalled) {
    return Unavailable("watch " + path + ": nothing received for " + std::to_string(stall.count()) + " s");
  }
  return Unavailable("watch " + path + ": " + curl_easy_strerror(rc));
}

void ListWatch::Run(const std::atomic<bool>& stop) {
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds backoff = options_.backoff_initial;
  // Jittered (half to all of `backoff`), then doubled up to the cap; sliced
  // so `stop` is honoured.
  const auto wait = [&] {
    const auto span = std::chrono::milliseconds(
        backoff / 2 + std::chrono::milliseconds(rng() % static_cast<uint64_t>(backoff.count() / 2 + 1)));
    for (auto waited = std::chrono::milliseconds(0); waited < span && !stop.load();
         waited += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    backoff = std::min(backoff * 2, options_.backoff_max);
  };
  bool need_list = true;
  while (!stop.load()) {
    bool progress = true;
    const Status s = need_list ? List() : Watch(stop, &progress);
    if (s.ok()) {
      // A list is followed by a watch; a watch the server ended normally is
      // resumed from the last resourceVersion seen, at once if it delivered
      // something, else after a wait (a server that ends every watch at once
      // is not hammered).
      need_list = false;
      if (progress) {
        backoff = options_.backoff_initial;
      } else {
        wait();
      }
      continue;
    }
    status_.OnFailure(s.error());
    if (s.error().code() == ErrorCode::kFailedPrecondition) {
      need_list = true;  // 410 Gone: our resourceVersion (or continue token) is too old
      continue;
    }
    wait();
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

namespace {

// The pages of one LIST, as text, between the thread that fetches them and
// the caller's, which decodes and applies them: at most kDepth wait, so the
// fetcher is at most that far ahead. Only text crosses threads: objects
// decoded on the fetcher and kept by the caller's engine made later
// programs several times slower (7 instead of 1.2 ms for some pod ADDs at
// 100k pods, measured), so decoding stays with the caller.
class PageQueue {
 public:
  static constexpr size_t kDepth = 2;

  // The fetcher's: false when the caller has stopped taking pages.
  bool Push(Result<std::string> page) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return pages_.size() < kDepth || abandoned_; });
    if (abandoned_) return false;
    pages_.push_back(std::move(page));
    ready_.notify_one();
    return true;
  }
  void Finish() {
    std::lock_guard lock(mu_);
    finished_ = true;
    ready_.notify_one();
  }
  // The caller's: the next page, or none when the fetcher has finished.
  std::optional<Result<std::string>> Pop() {
    std::unique_lock lock(mu_);
    ready_.wait(lock, [&] { return !pages_.empty() || finished_; });
    if (pages_.empty()) return std::nullopt;
    std::optional<Result<std::string>> page(std::move(pages_.front()));
    pages_.pop_front();
    room_.notify_one();
    return page;
  }
  void Abandon() {
    std::lock_guard lock(mu_);
    abandoned_ = true;
    room_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable room_;
  std::condition_variable ready_;
  std::deque<Result<std::string>> pages_;
  bool finished_ = false;
  bool abandoned_ = false;
};

}  // namespace

Result<std::string> Client::FetchPage(const std::string& path, const std::string& after) {
  const char join = path.find('?') == std::string::npos ? '?' : '&';
  std::string query = path + join + "limit=500";
  if (!after.empty()) query += "&continue=" + after;
  Result<std::string> text = Fetch("GET", query, "", "application/json");
  if (!text) return std::move(text).error().WithContext("listing " + path);
  return text;
}

Status Client::ListObjects(const std::string& path, api::ApiKind items,
                           const std::function<void(api::ApiListPage& page)>& on_page) {
  const auto apply = [&](const std::string& text) -> Status {
    Result<api::ApiListPage> page = api::DecodeListPage(text, text.capacity() - text.size(), items);
    if (!page) return Unavailable("listing " + path + ": " + page.error().message());
    on_page(*page);
    return Ok();
  };
  // One page's text, and `next` set to its continue token ("" when it has
  // none, or when it does not read: then its decode says why).
  const auto fetch = [this, &path](std::string& next) {
    Result<std::string> text = FetchPage(path, next);
    next.clear();
    if (text) {
      Result<std::string> token = api::ReadListContinue(*text, text->capacity() - text->size());
      if (token) next = std::move(*token);
    }
    return text;
  };
  // Page n+1 is fetched (the server's work, the transfer) while the caller
  // decodes and applies page n; its continue token is read ahead of that.
  PageQueue queue;
  std::optional<std::thread> fetcher;
  try {
    fetcher.emplace([&queue, &fetch] {
      pthread_setname_np(pthread_self(), "np-list");
      std::string next;
      do {
        if (!queue.Push(fetch(next))) break;
      } while (!next.empty());
      queue.Finish();
    });
  } catch (const std::system_error&) {
    // No thread to be had: one page after the other.
    std::string next;
    do {
      NETPOL_ASSIGN_OR_RETURN(const std::string text, fetch(next), "");
      NETPOL_RETURN_IF_ERROR(apply(text), "");
    } while (!next.empty());
    return Ok();
  }
  // The fetcher is stopped and joined however this returns.
  struct Join {
    PageQueue& queue;
    std::thread& thread;
    ~Join() {
      queue.Abandon();
      thread.join();
    }
  } join{queue, *fetcher};
  while (std::optional<Result<std::string>> text = queue.Pop()) {
    if (!*text) return std::move(*text).error();
    NETPOL_RETURN_IF_ERROR(apply(**text), "");
  }
  return Ok();
}

Status ListWatch::List() {
  if (objects_ != nullptr) {
    objects_->OnListBegin();
    NETPOL_RETURN_IF_ERROR(client_.ListObjects(path_, kind_,
                                               [&](api::ApiListPage& page) {
                                                 resource_version_ = page.resource_version;
                                                 objects_->OnListPage(page.items);
                                               }),
                           "");
    ++lists_;
    objects_->OnListEnd();
    return Ok();
  }
  json_->OnListBegin();
  NETPOL_RETURN_IF_ERROR(client_.List(path_,
                                      [&](std::vector<Json>& items, const Json& metadata) {
                                        resource_version_ = metadata.value("resourceVersion", "");
                                        json_->OnListPage(items);
                                      }),
                         "");
  ++lists_;
  json_->OnListEnd();
  return Ok();
}

namespace {

// A watch's ERROR event: 410 (Expired, Gone) means the resourceVersion is
// compacted away, list again; anything else: watch again after a back-off.
Status WatchError(int code, const std::string& message) {
  const std::string what = "watch error: " + (message.empty() ? std::string("unknown") : message);
  return code == 410 ? FailedPrecondition(what) : Unavailable(what);
}

bool KnownEventType(const std::string& type) {
  return type == "ADDED" || type == "MODIFIED" || type == "DELETED" || type == "BOOKMARK";
}

}  // namespace

bool ListWatch::JsonEvent(const std::string& line, std::optional<Status>* failed) {
  Json event;
  try {
    event = Json::parse(line);
  } catch (const Json::exception&) {
    *failed = Unavailable("unreadable watch event");
    return false;
  }
  const std::string type = event.value("type", "");
  const Json& object = event["object"];
  if (type == "ERROR") {
    *failed = WatchError(object.value("code", 0), object.value("message", std::string()));
    return false;
  }
  if (!KnownEventType(type)) {
    *failed = Unavailable("watch event of unknown type \"" + type + "\"");
    return false;
  }
  const std::string rv = object["metadata"].value("resourceVersion", "");
  if (type != "BOOKMARK") json_->OnEvent(type, object);
  if (!rv.empty()) resource_version_ = rv;
  return true;
}

bool ListWatch::ObjectEvent(const std::string& line, std::optional<Status>* failed) {
  // The line is a copy Stream keeps for the call; decoded from a padded copy
  // so the reader reads it in place.
  std::string text;
  text.reserve(line.size() + api::kDecodePadding);
  text = line;
  Result<api::ApiWatchEvent> event = api::DecodeWatchEvent(text, text.capacity() - text.size(), kind_);
  if (!event) {
    *failed = Unavailable("unreadable watch event");
    return false;
  }
  if (event->type == "ERROR") {
    *failed = WatchError(event->status_code, event->status_message);
    return false;
  }
  if (!KnownEventType(event->type)) {
    *failed = Unavailable("watch event of unknown type \"" + event->type + "\"");
    return false;
  }
  const std::string rv = event->item.resource_version;
  if (event->type != "BOOKMARK") objects_->OnEvent(event->type, event->item);
  if (!rv.empty()) resource_version_ = rv;
  return true;
}

Status ListWatch::Watch(const std::atomic<bool>& stop, bool* progress) {
  ++watches_;
  *progress = false;
  std::optional<Status> failed;  // an ERROR event, or one we cannot read
  const char join = path_.find('?') == std::string::npos ? '?' : '&';
  const std::string query = path_ + join + "watch=true&allowWatchBookmarks=true&timeoutSeconds=" +
                            std::to_string(options_.timeout_seconds) +
                            "&resourceVersion=" + resource_version_;
  Status s = client_.Stream(
      query,
      [&](const std::string& line) {
        const bool go_on = objects_ != nullptr ? ObjectEvent(line, &failed) : JsonEvent(line, &failed);
        if (go_on) *progress = true;
        return go_on;
      },
      stop, options_.stall, [&] { status_.OnWatching(); });
  if (failed) return *failed;
  return s;
}

}  // namespace netpol::kube
