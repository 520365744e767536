// Renders a Helm chart's templates for tests, without helm (Debian 12 has no
// helm package): the subset of Go templates and Sprig the netpol chart uses,
// and nothing else, so a template that reaches beyond it fails to render
// instead of rendering wrong.
//
//   ChartRender render{.values = values, .release_namespace = "kube-system"};
//   Result<std::string> yaml = render.Render(template_text, "daemonset.yaml");
//
// Supported: text; `{{ }}` with `{{-`/`-}}` whitespace trimming; `{{/* */}}`;
// `if PIPELINE` / `else if PIPELINE` / `else` / `end`; pipelines of `.Values.a.b`, `.Release.Name`,
// `.Release.Namespace`, `.Chart.Name|Version|AppVersion`, "strings" and
// integers through quote, eq, not, default, join, toYaml, indent, nindent.
// A value that is missing (or a map or list) where text is written is an
// error, like `helm template` with --strict.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace netpol::testing_chart {

struct ChartRender {
  nlohmann::json values;  // values.yaml merged with overrides
  nlohmann::json chart;   // Chart.yaml as JSON (name, version, appVersion)
  std::string release_name = "netpol";
  std::string release_namespace = "kube-system";

  Result<std::string> Render(const std::string& text, const std::string& template_name) const;
};

// `base` with `overrides` merged in (maps recursively; anything else replaced),
// as `helm --set`/`-f` do.
nlohmann::json MergeValues(nlohmann::json base, const nlohmann::json& overrides);

}  // namespace netpol::testing_chart
