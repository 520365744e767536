// What the JSON reader (internal/json_reader.h) checks of the tokens it
// walks, and how it turns string tokens into values. Internal to src/api.
//
//   const char* end = ReadAlikeStringEnd(token + 1);   // token: R"("a\"b" ...)"
//   if (end == nullptr) GiveUp();
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

// The closing quote of a JSON string token whose content starts at `begin`
// (just past its opening quote), when that content is valid JSON that libyaml
// reads alike: only JSON's escapes, no \u escape of a surrogate (libyaml
// refuses those even in pairs), no raw control character, no character libyaml
// refuses (DEL, C1 controls, U+FFFE, U+FFFF) or folds as a line break (NEL,
// U+2028, U+2029); nullptr otherwise. Only for a string simdjson has found
// (its closing quote is there, its UTF-8 is valid) with 16 readable bytes
// past the quote (simdjson's padding).
const char* ReadAlikeStringEnd(const char* begin);

// A JSON number, true, false or null (libyaml reads any as a plain scalar).
bool IsJsonAtom(std::string_view token);

// The value of a JSON string's content, appended to `out`. False on what the
// check above refuses.
bool UnescapeJsonString(std::string_view content, std::string& out);

}  // namespace netpol::api::internal
