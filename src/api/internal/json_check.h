// What the JSON reader (internal/json_reader.h) checks of the tokens it
// walks, and how it turns string tokens into values. Internal to src/api.
//
//   if (!IsJsonStringTheYamlReaderReadsAlike(R"(a\"b)")) GiveUp();
//   std::string value;
//   if (!UnescapeJsonString(R"(a\"b)", value)) ...;   // value == "a\"b"
//
// libyaml read every manifest before, JSON included, and still reads what
// the JSON reader gives up on; these checks refuse what libyaml reads
// otherwise or not at all, so both readers give the same answer.
#pragma once

#include <string>
#include <string_view>

namespace netpol::api::internal {

// A string's content (between its quotes) that is valid JSON and that libyaml
// reads alike: only JSON's escapes, no \u escape of a surrogate (libyaml
// refuses those even in pairs), no raw control character, no character
// libyaml refuses (DEL, C1 controls, U+FFFE, U+FFFF) or folds as a line break
// (NEL, U+2028, U+2029). UTF-8 validity is simdjson's check.
bool IsJsonStringTheYamlReaderReadsAlike(std::string_view content);

// A JSON number, true, false or null (libyaml reads any as a plain scalar).
bool IsJsonAtom(std::string_view token);

// The value of a JSON string's content, appended to `out`. False on what the
// check above refuses.
bool UnescapeJsonString(std::string_view content, std::string& out);

}  // namespace netpol::api::internal
