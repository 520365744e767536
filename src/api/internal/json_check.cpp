#include "api/internal/json_check.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace netpol::api::internal {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

unsigned HexValue(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a') + 10;
  return static_cast<unsigned>(c - 'A') + 10;
}

#if !defined(__SSE2__)
uint64_t Load64(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// The high bit of each of 8 bytes (little-endian) that ends the fast scan of
// a string's content: the quote, the backslash, C0 controls, DEL and every
// non-ASCII byte (each checked on its own);
// bytes after the first may be marked falsely (borrows and carries move up
// from a true one), the lowest mark is exact.
uint64_t StringStops(uint64_t v) {
  const uint64_t quote = v ^ (kOnes * '"');
  const uint64_t backslash = v ^ (kOnes * '\\');
  const uint64_t zero_quote = (quote - kOnes) & ~quote;
  const uint64_t zero_backslash = (backslash - kOnes) & ~backslash;
  const uint64_t below_space = (v - kOnes * 0x20) & ~v;
  const uint64_t above_tilde = (v + kOnes) | v;  // a byte >= 0x7F sets its high bit
  return (zero_quote | zero_backslash | below_space | above_tilde) & kHighs;
}

// Bytes before the lowest mark.
size_t BytesBefore(uint64_t marks) {
  return static_cast<size_t>(__builtin_ctzll(marks)) / 8;
}
#endif

// The first byte from `p` on that needs a look (StringStops), 16 at a time
// (the padding after the text makes the bytes past the closing quote
// readable).
const char* NextStop(const char* p) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  while (true) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed, bytes from 0x80 up are below 0x20 too: every non-ASCII byte stops.
    const __m128i stops = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                       _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
    if (const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(stops)); mask != 0) {
      return p + __builtin_ctz(mask);
    }
    p += 16;
  }
#else
  while (true) {
    if (const uint64_t stops = StringStops(Load64(p)); stops != 0) return p + BytesBefore(stops);
    p += 8;
  }
#endif
}

// A character libyaml refuses (C1 controls, U+FFFE, U+FFFF, DEL) or reads
// as a line break and folds in a string (NEL, U+2028, U+2029).
bool RefusedMultibyte(std::string_view s, size_t at) {
  const auto b0 = static_cast<unsigned char>(s[at]);
  const auto b1 = at + 1 < s.size() ? static_cast<unsigned char>(s[at + 1]) : 0;
  const auto b2 = at + 2 < s.size() ? static_cast<unsigned char>(s[at + 2]) : 0;
  if (b0 == 0xC2) return b1 >= 0x80 && b1 <= 0x9F;
  if (b0 == 0xE2) return b1 == 0x80 && (b2 == 0xA8 || b2 == 0xA9);
  if (b0 == 0xEF) return b1 == 0xBF && (b2 == 0xBE || b2 == 0xBF);
  return b0 == 0x7F;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

const char* ReadAlikeStringEnd(const char* begin) {
  const char* p = begin;
  while (true) {
    p = NextStop(p);
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') return p;
    if (c < 0x20) return nullptr;  // JSON has no raw controls
    if (c >= 0x7F) {
      // The bytes after a lead byte are readable: its sequence, or the
      // closing quote at the latest (simdjson checked the UTF-8).
      if (RefusedMultibyte(std::string_view(p, 3), 0)) return nullptr;
      ++p;
      continue;
    }
    // A backslash (the string goes on past it: simdjson found its end).
    const char e = p[1];
    if (e == 'u') {
      unsigned value = 0;
      for (int k = 2; k < 6; ++k) {
        if (!IsHex(p[k])) return nullptr;  // the closing quote is not a hex digit
        value = value * 16 + HexValue(p[k]);
      }
      if (value >= 0xD800 && value <= 0xDFFF) return nullptr;
      p += 6;
      continue;
    }
    if (e == '\0' || std::strchr("\"\\/bfnrt", e) == nullptr) return nullptr;
    p += 2;
  }
}

bool IsJsonAtom(std::string_view token) {
  if (token == "true" || token == "false" || token == "null") return true;
  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
  size_t i = 0;
  const auto digits = [&] {
    const size_t from = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i > from;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '-' || token[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == token.size();
}

bool UnescapeJsonString(std::string_view content, std::string& out) {
  size_t i = 0;
  while (i < content.size()) {
    const size_t backslash = content.find('\\', i);
    const std::string_view run =
        content.substr(i, backslash == std::string_view::npos ? content.size() - i : backslash - i);
    for (const char c : run) {
      if (static_cast<unsigned char>(c) < 0x20) return false;
    }
    out.append(run);
    if (backslash == std::string_view::npos) return true;
    i = backslash + 1;
    if (i >= content.size()) return false;
    const char e = content[i++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        if (i + 4 > content.size()) return false;
        uint32_t cp = 0;
        for (size_t k = 0; k < 4; ++k) {
          if (!IsHex(content[i + k])) return false;
          cp = cp * 16 + HexValue(content[i + k]);
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // as libyaml: no surrogates, paired or not
        AppendUtf8(cp, out);
        i += 4;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace netpol::api::internal
