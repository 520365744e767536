// Decoding Kubernetes manifests (YAML or JSON) into api objects.
//
//   DecodeResult result = Decode(text, "policy.yaml", DecodeOptions{});
//   for (const Diagnostic& d : result.diagnostics) std::cerr << d.ToString() << "\n";
//   if (!HasErrors(result.diagnostics)) Use(result.objects);
//
// Accepts multi-document YAML, JSON (a YAML subset), `kind: List` and the typed
// lists the API returns (PodList, ...), so `kubectl get pods,netpol,ns -A -o yaml`
// output reads as is. Every decoded object records where each of its fields
// starts (Provenance), so later validation errors can name file:line:column.
// Decoding reports type errors and unsupported enum values; cross-field rules are
// api/validate.h's job. Kinds that do not bear on policy (Service, ConfigMap, ...)
// are counted in `ignored` and otherwise skipped. Never throws.
//
// A JSON object (what `kubectl -o json` writes) is read in place with simdjson
// (no tree): the same decoder, the same objects, diagnostics and positions as
// the YAML reader gives for the same text, which still reads whatever JSON
// the in-place reader would not read exactly as it does.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/diagnostic.h"
#include "api/objects.h"
#include "base/result.h"

namespace netpol::api {

struct DecodeOptions {
  // Namespace given to namespaced objects that name none (kubectl's -n).
  std::string default_namespace = "default";
  // Unknown fields are errors instead of warnings.
  bool strict = false;
  // Record where every field starts, so validation errors name line and
  // column. Off for objects read from the API server, where nobody reads the
  // positions and they would cost more than the object itself.
  bool field_positions = true;
  // JSON text is read in place (simdjson), not as YAML. Off: through the
  // YAML reader, as before; the tests compare the two.
  bool json_reader = true;
};

struct DecodeResult {
  std::vector<Object> objects;
  Diagnostics diagnostics;
  std::map<std::string, int> ignored;  // kind -> count of skipped objects
};

DecodeResult Decode(std::string_view text, std::string_view file, const DecodeOptions& options);

// Bytes past a text's end that DecodePadded may read (not write).
inline constexpr size_t kDecodePadding = 64;
// Decode for a text followed by kDecodePadding readable bytes (a std::string
// reserved that much larger), which JSON is then read from in place instead
// of a padded copy: a 50 MB `kubectl get pods -A -o json` costs no second 50 MB.
DecodeResult DecodePadded(std::string_view text, std::string_view file, const DecodeOptions& options);

// Decode for an already parsed JSON value (what the API returns): the same
// objects and diagnostics as Decode on the value's JSON text, without writing
// and parsing that text again. Diagnostics carry no line numbers (and so may
// come in another order).
DecodeResult DecodeJson(const nlohmann::json& object, std::string_view name, const DecodeOptions& options);

// --- what the API server sends a watcher ---------------------------------------
//
//   Result<ApiListPage> page = DecodeListPage(body, readable_after, {"Pod", "v1"});
//   for (ApiItem& item : page->items) item.object ? Use(*item.object) : Log(item.problem);
//   Result<ApiWatchEvent> event = DecodeWatchEvent(line, 0, {"Pod", "v1"});
//
// A LIST page ({"metadata":{"resourceVersion","continue"},"items":[...]}) or
// one WATCH event ({"type":..., "object":...}) read in place as Decode reads
// JSON (no tree; the YAML reader only for text the in-place reader gives up
// on), each item decoded and validated on its own: an item that does not
// decode is kept with its name and the reason, not the object.

// The kind a list's items are (they carry neither kind nor apiVersion).
struct ApiKind {
  std::string_view kind;
  std::string_view api_version;
};

struct ApiItem {
  std::string namespace_;
  std::string name;
  std::string resource_version;
  std::optional<Object> object;  // none: it does not decode (or is of a kind netpol ignores)
  std::string problem;           // why not, when none
};

struct ApiListPage {
  std::string resource_version;
  std::string continue_token;  // empty on the last page
  std::vector<ApiItem> items;
};

struct ApiWatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (or what the server sent)
  // ADDED, MODIFIED, DELETED: the object; BOOKMARK: only its resource_version.
  ApiItem item;
  // ERROR: the Status object's code (410: the resourceVersion is gone) and message.
  int status_code = 0;
  std::string status_message;
};

// `readable_after`: bytes past the text's end that may be read (kDecodePadding
// spares a copy). kInvalidArgument when the text is not a JSON object at all.
[[nodiscard]] Result<ApiListPage> DecodeListPage(std::string_view text, size_t readable_after, ApiKind items);
// The list's continue token alone ("" on the last page), what DecodeListPage
// reads as ApiListPage::continue_token: the next page can be asked for
// before this one is decoded.
[[nodiscard]] Result<std::string> ReadListContinue(std::string_view text, size_t readable_after);
[[nodiscard]] Result<ApiWatchEvent> DecodeWatchEvent(std::string_view text, size_t readable_after,
                                                     ApiKind kind);

}  // namespace netpol::api
