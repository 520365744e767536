#include "api/internal/json_reader.h"

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

#include "api/internal/json_check.h"

namespace netpol::api::internal {
namespace {

namespace od = simdjson::ondemand;

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

uint64_t Load64(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#if !defined(__SSE2__)
// The high bit of each of 8 bytes equal to `c`; above the lowest, marks may
// be false (a borrow moves up from a true one), the lowest is exact.
uint64_t BytesEqual(uint64_t v, char c) {
  const uint64_t x = v ^ (kOnes * static_cast<unsigned char>(c));
  return (x - kOnes) & ~x & kHighs;
}

size_t LowestByte(uint64_t marks) {
  return static_cast<size_t>(__builtin_ctzll(marks)) / 8;
}
#endif

// A map being read: its keys and where each value starts, read once.
struct MapState {
  std::vector<JsonKey> keys;
  std::vector<uint32_t> values;                       // offsets, one per key
  std::vector<std::unique_ptr<std::string>> escaped;  // unescaped keys that had escapes
  std::vector<size_t> item_counts;  // of each value that is an array, when the check counted them (the root)
  // The value last read, asked for again (the decoder checks a field is
  // there, then reads it): valid while no loop has given back states.
  JsonNode last;
  size_t last_index = 0;
  uint64_t last_generation = 0;
  bool has_last = false;
};

struct ScalarState {
  std::string text;
};

// States are reused: a loop over items gives back what each item took, so
// a list of 10,000 pods needs the states of one.
template <typename T>
class Pool {
 public:
  T* Take() {
    if (used_ == items_.size()) items_.push_back(std::make_unique<T>());
    return items_[used_++].get();
  }
  size_t mark() const { return used_; }
  void Release(size_t mark) { used_ = mark; }

 private:
  std::vector<std::unique_ptr<T>> items_;
  size_t used_ = 0;
};

// The bytes of p[0..64) that are '\n' (bit k: p[k]), and whether one is '\r'.
struct LineBreaks {
  uint64_t newlines = 0;
  bool carriage_return = false;
};
LineBreaks LineBreaksIn(const char* p) {
  LineBreaks out;
#if defined(__SSE2__)
  const __m128i nl = _mm_set1_epi8('\n');
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
  const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48));
  const auto bits = [](__m128i v) {
    return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(v)));
  };
  out.newlines = bits(_mm_cmpeq_epi8(a, nl)) | bits(_mm_cmpeq_epi8(b, nl)) << 16 |
                 bits(_mm_cmpeq_epi8(c, nl)) << 32 | bits(_mm_cmpeq_epi8(d, nl)) << 48;
  const __m128i any_cr = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(a, cr), _mm_cmpeq_epi8(b, cr)),
                                      _mm_or_si128(_mm_cmpeq_epi8(c, cr), _mm_cmpeq_epi8(d, cr)));
  out.carriage_return = _mm_movemask_epi8(any_cr) != 0;
#else
  for (int k = 0; k < 64; ++k) {
    out.newlines |= uint64_t{p[k] == '\n'} << k;
    out.carriage_return = out.carriage_return || p[k] == '\r';
  }
#endif
  return out;
}

// Line and column of an offset, as libyaml counts them: "\r\n", "\r" and
// "\n" are one line break each (valid JSON has no other: strings hold none),
// columns count characters. Lines are indexed as far as asked, 64 bytes at a
// time; a line is searched for near the last answer's (the decoder asks
// mostly in document order, and near where it asked before), and a column is
// counted on from the last answer when it is on the same line, so a long
// line is not walked again.
class Positions {
 public:
  explicit Positions(std::string_view text) : text_(text) {}

  std::pair<int, int> At(size_t offset) {
    size_t hint = line_;
    if (offset >= indexed_) {
      IndexPast(offset);
      hint = line_starts_.size() - 1;
    }
    const size_t line = LineOf(offset, hint);
    if (line == line_ && offset >= offset_) {
      column_ += Characters(offset_, offset);
    } else if (line == line_) {
      column_ -= Characters(offset, offset_);
    } else {
      column_ = Characters(line_starts_[line], offset);
    }
    line_ = line;
    offset_ = offset;
    return {static_cast<int>(line_) + 1, static_cast<int>(column_) + 1};
  }

  // Line starts noted in whole blocks up to `offset` (the rest when asked).
  void IndexBlocksTo(size_t offset) {
    size_t i = indexed_;
    for (; i + 64 <= offset; i += 64) IndexBlock(i);
    indexed_ = i;
  }

 private:
  void IndexBlock(size_t i) {
    // A '\r' is rare (and a line break of its own only when no '\n'
    // follows): its block is read byte by byte.
    const LineBreaks found = LineBreaksIn(text_.data() + i);
    if (found.carriage_return) {
      IndexBytes(i, i + 64);
      return;
    }
    for (uint64_t breaks = found.newlines; breaks != 0; breaks &= breaks - 1) {
      line_starts_.push_back(static_cast<uint32_t>(i + static_cast<size_t>(__builtin_ctzll(breaks)) + 1));
    }
  }

  // Line starts noted past `offset` (or to the end), a block at a time.
  void IndexPast(size_t offset) {
    size_t i = indexed_;
    // At least kAhead bytes at a time: the decoder skips most of the text,
    // which is no longer in the cache; read in long runs, it streams in.
    const size_t until = std::max(offset, indexed_ + kAhead);
    for (; i <= until && i + 64 <= text_.size(); i += 64) IndexBlock(i);
    if (i <= offset) {
      IndexBytes(i, text_.size());
      i = text_.size();
    }
    indexed_ = i;
  }

  void IndexBytes(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (text_[i] == '\n' || (text_[i] == '\r' && (i + 1 >= text_.size() || text_[i + 1] != '\n'))) {
        line_starts_.push_back(static_cast<uint32_t>(i + 1));
      }
    }
  }

  // The line `offset` is on (indexed), searched outward from line `hint`:
  // questions come near the last one, and a binary search of millions of
  // line starts would miss the cache at every step.
  size_t LineOf(size_t offset, size_t hint) const {
    const std::vector<uint32_t>& starts = line_starts_;
    size_t lo = hint;  // starts[lo] <= offset < starts[hi] (hi == size: the end)
    size_t hi = hint + 1;
    size_t step = 1;
    if (starts[hint] <= offset) {
      while (hi < starts.size() && starts[hi] <= offset) {
        lo = hi;
        step *= 2;
        hi = lo + step;
      }
      hi = std::min(hi, starts.size());
    } else {  // starts[0] == 0 <= offset, so hint > 0
      hi = hint;
      lo = hint - 1;
      while (starts[lo] > offset) {
        hi = lo;
        step *= 2;
        lo = hi > step ? hi - step : 0;
      }
    }
    return static_cast<size_t>(std::upper_bound(starts.begin() + static_cast<std::ptrdiff_t>(lo) + 1,
                                                starts.begin() + static_cast<std::ptrdiff_t>(hi), offset) -
                               starts.begin()) -
           1;
  }

  // Characters in [from, to): bytes less UTF-8 continuation bytes (10xxxxxx),
  // those counted 8 at a time.
  size_t Characters(size_t from, size_t to) const {
    size_t continuations = 0;
    size_t i = from;
    for (; i + 8 <= to; i += 8) {
      const uint64_t v = Load64(text_.data() + i);
      const uint64_t marks = v & ~(v << 1) & kHighs;                       // bit 7 set, bit 6 clear
      continuations += static_cast<size_t>(((marks >> 7) * kOnes) >> 56);  // the bytes' sum
    }
    for (; i < to; ++i) continuations += (static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80 ? 1U : 0U;
    return to - from - continuations;
  }

  static constexpr size_t kAhead = size_t{256} << 10;

  std::string_view text_;
  std::vector<uint32_t> line_starts_{0};  // of every line up to indexed_ (at and past it too)
  size_t indexed_ = 0;
  size_t offset_ = 0;  // the last answer's
  size_t line_ = 0;    // 0-based
  size_t column_ = 0;  // 0-based
};

// libyaml's simple-key limit is 1024 characters from the key's start to its
// ':'; bytes are at least as many, so this refuses every key it would.
constexpr size_t kMaxKeySpan = 1000;

// The end of a string token's content: its closing quote (`begin` is just
// past the opening one); `escaped` set when it has an escape. Only for text
// simdjson has found structured.
const char* ContentEnd(const char* begin, bool& escaped) {
  const char* end = begin;
  escaped = false;
  while (true) {
    // 16 (or 8) at a time to the next quote or backslash (simdjson's
    // padding makes the bytes past the text readable).
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(end));
    const auto marks = static_cast<uint32_t>(_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
    if (marks == 0) {
      end += 16;
      continue;
    }
    end += __builtin_ctz(marks);
#else
    const uint64_t v = Load64(end);
    const uint64_t marks = BytesEqual(v, '"') | BytesEqual(v, '\\');
    if (marks == 0) {
      end += 8;
      continue;
    }
    end += LowestByte(marks);
#endif
    if (*end == '"') return end;
    escaped = true;
    end += 2;
  }
}

std::string_view TrimSpaces(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
    raw.remove_suffix(1);
  }
  return raw;
}

// The end of a key libyaml reads alike (nullptr for another): its content
// (ReadAlikeStringEnd), and its ':' on its line, within the simple-key limit.
const char* KeyReadAlike(const char* begin) {
  const char* end = ReadAlikeStringEnd(begin);
  if (end == nullptr) return nullptr;
  const char* colon = end + 1;
  while (*colon == ' ' || *colon == '\t') ++colon;
  return *colon == ':' && static_cast<size_t>(colon - begin) < kMaxKeySpan ? end : nullptr;
}

// A container's span: where it starts ('{' or '['), and the first token
// after it, so the reader skips it without walking it again.
struct Span {
  uint32_t start = 0;
  uint32_t after = 0;
};

// What the check walk notes on its way: the span of every container, in
// document order (so sorted by start), and, when asked for, the lines up to
// where it stands (the text it just read is still in the cache).
struct CheckWalk {
  od::document& document;
  std::string_view text;
  std::vector<Span>& spans;
  Positions* lines;  // or none

  size_t Open(const char* at) {
    spans.push_back({static_cast<uint32_t>(at - text.data()), 0});
    return spans.size() - 1;
  }
  // The container noted at `slot` was walked to its end: simdjson stands at
  // the first token after it.
  bool Close(size_t slot) {
    const char* next = nullptr;
    if (document.current_location().get(next) != simdjson::SUCCESS) return false;
    const auto after = static_cast<uint32_t>(next - text.data());
    spans[slot].after = after;
    if (lines != nullptr) lines->IndexBlocksTo(after);
    return true;
  }
};

// Walks a value whole and checks it: valid JSON (simdjson checks structure
// only on what is walked, and the decoder skips most of an object) that
// libyaml reads alike, nested at most kJsonMaxDepth deep. `depth` counts the
// collections open once this one (if it is one) is. `items`, when given, is
// set to an array's count of items.
bool ReadAlike(CheckWalk& walk, od::value value, size_t depth, size_t* items = nullptr) {
  od::json_type type{};
  if (value.type().get(type) != simdjson::SUCCESS) return false;
  switch (type) {
    case od::json_type::object: {
      const char* start = value.raw_json_token().data();
      od::object object;
      if (depth > kJsonMaxDepth || value.get_object().get(object) != simdjson::SUCCESS) return false;
      const size_t slot = walk.Open(start);
      for (auto field : object) {
        od::raw_json_string key;
        od::value child;
        if (field.key().get(key) != simdjson::SUCCESS || KeyReadAlike(key.raw()) == nullptr ||
            field.value().get(child) != simdjson::SUCCESS || !ReadAlike(walk, child, depth + 1)) {
          return false;
        }
      }
      return walk.Close(slot);
    }
    case od::json_type::array: {
      const char* start = value.raw_json_token().data();
      od::array array;
      if (depth > kJsonMaxDepth || value.get_array().get(array) != simdjson::SUCCESS) return false;
      const size_t slot = walk.Open(start);
      size_t count = 0;
      for (auto item : array) {
        od::value child;
        if (item.get(child) != simdjson::SUCCESS || !ReadAlike(walk, child, depth + 1)) return false;
        ++count;
      }
      if (items != nullptr) *items = count;
      return walk.Close(slot);
    }
    case od::json_type::string: {
      // Taken, not left to the walk to skip: skipping, simdjson reads a
      // string followed by ':' as a key, and ["k": 1] would pass.
      od::raw_json_string taken;
      return value.get_raw_json_string().get(taken) == simdjson::SUCCESS &&
             ReadAlikeStringEnd(taken.raw()) != nullptr;
    }
    default:
      return IsJsonAtom(TrimSpaces(value.raw_json_token()));
  }
}

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// The first byte at or after `p` that is not a space between tokens (there
// is one: the root's closing brace at the latest; the padding makes the 16
// bytes from it readable).
const char* SkipSpaces(const char* p) {
  if (!IsSpace(*p)) return p;
#if defined(__SSE2__)
  while (true) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i spaces = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))));
    const auto others = ~static_cast<uint32_t>(_mm_movemask_epi8(spaces)) & 0xFFFFU;
    if (others != 0) return p + __builtin_ctz(others);
    p += 16;
  }
#else
  while (IsSpace(*p)) ++p;
  return p;
#endif
}

// The end of a number, true, false or null.
const char* AtomEnd(const char* p) {
  while (!IsSpace(*p) && *p != ',' && *p != '}' && *p != ']') ++p;
  return p;
}

const std::vector<JsonKey> kNoKeys;
const std::string kEmpty;

}  // namespace

// Once Root() has checked the whole text (through simdjson, noting every
// container's span), the handles read it directly: a map's keys and where
// its values start in one scan, containers skipped by their spans, nothing
// walked twice.
struct JsonText::Impl {
  std::string_view text;
  std::string copy;  // the text with padding, when it came without
  od::parser parser;
  od::document document;
  bool failed = false;
  bool index_lines = false;              // during the check
  std::unique_ptr<Positions> positions;  // made on the first question
  std::vector<Span> spans;
  size_t span_hint = 0;  // the last span found
  Pool<MapState> maps;
  Pool<ScalarState> scalars;
  uint64_t generation = 0;  // states given back so far (by loops)

  struct Marks {
    size_t maps, scalars;
  };
  Marks Mark() const { return {maps.mark(), scalars.mark()}; }
  void Release(const Marks& marks) {
    maps.Release(marks.maps);
    scalars.Release(marks.scalars);
    ++generation;
  }

  Positions& Lines() {
    if (!positions) positions = std::make_unique<Positions>(text);
    return *positions;
  }
  std::pair<int, int> At(size_t offset) { return Lines().At(offset); }

  JsonNode Fail() {
    failed = true;
    return JsonNode();
  }

  size_t OffsetOf(const char* p) const { return static_cast<size_t>(p - text.data()); }

  // The first token after the container at `p`, from its span (searched
  // outward from the last one found: the reader moves mostly forward).
  const char* After(const char* p) {
    const auto offset = static_cast<uint32_t>(OffsetOf(p));
    if (spans.empty()) {
      failed = true;
      return text.data() + text.size();
    }
    size_t i = std::min(span_hint, spans.size() - 1);
    if (spans[i].start < offset) {
      size_t step = 1;
      size_t lo = i;
      while (lo + step < spans.size() && spans[lo + step].start < offset) {
        lo += step;
        step *= 2;
      }
      const size_t hi = std::min(lo + step, spans.size() - 1);
      i = static_cast<size_t>(std::lower_bound(spans.begin() + static_cast<std::ptrdiff_t>(lo),
                                               spans.begin() + static_cast<std::ptrdiff_t>(hi) + 1, offset,
                                               [](const Span& a, uint32_t o) { return a.start < o; }) -
                              spans.begin());
    } else if (spans[i].start > offset) {
      size_t step = 1;
      size_t hi = i;
      while (hi >= step && spans[hi - step].start > offset) {
        hi -= step;
        step *= 2;
      }
      const size_t lo = hi >= step ? hi - step : 0;
      i = static_cast<size_t>(std::lower_bound(spans.begin() + static_cast<std::ptrdiff_t>(lo),
                                               spans.begin() + static_cast<std::ptrdiff_t>(hi), offset,
                                               [](const Span& a, uint32_t o) { return a.start < o; }) -
                              spans.begin());
    }
    if (i >= spans.size() || spans[i].start != offset) {
      failed = true;  // not a container the check walked: cannot be
      return text.data() + text.size();
    }
    span_hint = i;
    return text.data() + spans[i].after;
  }

  // Just past the value at `p`.
  const char* SkipValue(const char* p) {
    switch (*p) {
      case '{':
      case '[':
        return After(p);
      case '"': {
        bool escaped = false;
        return ContentEnd(p + 1, escaped) + 1;
      }
      default:
        return AtomEnd(p);
    }
  }

  // A handle for the value at `offset` (read at once when it is a scalar or
  // a map's keys).
  JsonNode Make(JsonText* owner, size_t offset) {
    JsonNode node;
    if (failed) return node;
    const char* p = text.data() + offset;
    node.doc_ = owner;
    node.offset_ = offset;
    switch (*p) {
      case '{': {
        MapState* state = maps.Take();
        if (!ReadKeys(owner, *state, p)) return Fail();
        node.kind_ = JsonNode::Kind::kMap;
        node.state_ = state;
        return node;
      }
      case '[':
        node.kind_ = JsonNode::Kind::kSequence;
        return node;
      case '"': {
        ScalarState* state = scalars.Take();
        bool escaped = false;
        const char* end = ContentEnd(p + 1, escaped);
        const std::string_view content(p + 1, static_cast<size_t>(end - p - 1));
        if (!escaped) {
          state->text.assign(content);
        } else {
          state->text.clear();
          if (!UnescapeJsonString(content, state->text)) return Fail();
        }
        node.kind_ = JsonNode::Kind::kString;
        node.state_ = state;
        return node;
      }
      default: {  // number, boolean, null: their text, as a plain scalar
        ScalarState* state = scalars.Take();
        state->text.assign(p, static_cast<size_t>(AtomEnd(p) - p));
        node.kind_ = state->text == "null" ? JsonNode::Kind::kNull : JsonNode::Kind::kPlain;
        node.state_ = state;
        return node;
      }
    }
  }

  // Reads the keys of the map at `p` ('{'), and where each value starts.
  bool ReadKeys(const JsonText* owner, MapState& state, const char* p) {
    state.keys.clear();
    state.values.clear();
    state.escaped.clear();
    state.item_counts.clear();
    state.has_last = false;
    p = SkipSpaces(p + 1);
    if (*p == '}') return true;
    while (true) {
      if (*p != '"') return false;
      const char* begin = p + 1;
      bool has_escape = false;
      const char* end = ContentEnd(begin, has_escape);
      const std::string_view content(begin, static_cast<size_t>(end - begin));
      JsonKey k{content, OffsetOf(p), owner};
      if (has_escape) {
        auto unescaped = std::make_unique<std::string>();
        if (!UnescapeJsonString(content, *unescaped)) return false;
        k.text = *unescaped;
        state.escaped.push_back(std::move(unescaped));
      }
      state.keys.push_back(k);
      p = SkipSpaces(end + 1);
      if (*p != ':') return false;
      p = SkipSpaces(p + 1);
      state.values.push_back(static_cast<uint32_t>(OffsetOf(p)));
      p = SkipSpaces(SkipValue(p));
      if (failed) return false;
      if (*p == '}') return true;
      if (*p != ',') return false;
      p = SkipSpaces(p + 1);
    }
  }

  // The value of field `index` of the map.
  JsonNode Field(JsonText* owner, MapState& state, size_t index) {
    if (failed) return JsonNode();
    if (state.has_last && index == state.last_index && state.last_generation == generation) {
      return state.last;
    }
    JsonNode node = Make(owner, state.values[index]);
    if (node.IsSequence() && index < state.item_counts.size())
      node.item_count_hint_ = state.item_counts[index];
    state.last = node;
    state.last_index = index;
    state.last_generation = generation;
    state.has_last = true;
    return node;
  }
};

JsonText::JsonText(std::string_view text, size_t readable_after, bool index_lines)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.text = text;
  d.index_lines = index_lines;
  if (text.size() >= std::numeric_limits<uint32_t>::max() || !LooksLikeJsonObject(text)) {
    d.failed = true;
    return;
  }
  if (readable_after < simdjson::SIMDJSON_PADDING) {
    d.copy.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    d.copy.assign(text);
    d.text = d.copy;
  }
  const simdjson::padded_string_view input(d.text.data(), d.text.size(),
                                           d.text.size() + simdjson::SIMDJSON_PADDING);
  if (d.parser.iterate(input).get(d.document) != simdjson::SUCCESS) d.failed = true;
}

JsonText::~JsonText() = default;

bool JsonText::LooksLikeJsonObject(std::string_view text) {
  const size_t first = text.find_first_not_of(" \n\r");
  return first != std::string_view::npos && text[first] == '{';
}

JsonNode JsonText::Root() {
  Impl& d = *impl_;
  if (d.failed) return JsonNode();
  od::value root;
  od::object object;
  if (d.document.get_value().get(root) != simdjson::SUCCESS ||
      root.get_object().get(object) != simdjson::SUCCESS) {
    return d.Fail();
  }
  // The check: every key and value, once, for the whole text.
  CheckWalk walk{d.document, d.text, d.spans, d.index_lines ? &d.Lines() : nullptr};
  std::vector<size_t> item_counts;
  for (auto field : object) {
    od::raw_json_string key;
    od::value value;
    size_t items = 0;
    if (field.key().get(key) != simdjson::SUCCESS || KeyReadAlike(key.raw()) == nullptr ||
        field.value().get(value) != simdjson::SUCCESS || !ReadAlike(walk, value, 2, &items)) {
      return d.Fail();
    }
    item_counts.push_back(items);
  }
  // Nothing after the root but spaces (no tab: libyaml refuses one that starts a line).
  const char* rest = nullptr;
  if (d.document.current_location().get(rest) != simdjson::OUT_OF_BOUNDS) return d.Fail();
  if (d.text.substr(d.text.find_last_not_of(" \t\n\r") + 1).find('\t') != std::string_view::npos) {
    return d.Fail();
  }
  const size_t offset = d.text.find('{');
  MapState* state = d.maps.Take();
  if (!d.ReadKeys(this, *state, d.text.data() + offset) || state->keys.size() != item_counts.size()) {
    return d.Fail();
  }
  state->item_counts = std::move(item_counts);
  JsonNode node;
  node.doc_ = this;
  node.kind_ = JsonNode::Kind::kMap;
  node.offset_ = offset;
  node.state_ = state;
  return node;
}

bool JsonText::failed() const {
  return impl_->failed;
}

std::pair<int, int> JsonKey::LineColumn() const {
  return doc->impl_->At(offset);
}

const std::string& JsonNode::Scalar() const {
  if (!IsScalar() || doc_->failed()) return kEmpty;
  return static_cast<const ScalarState*>(state_)->text;
}

std::pair<int, int> JsonNode::LineColumn() const {
  if (doc_ == nullptr) return {0, 0};
  return doc_->impl_->At(offset_);
}

JsonNode JsonNode::operator[](std::string_view key) const {
  if (!IsMap() || doc_->failed()) return JsonNode();
  auto& state = *static_cast<MapState*>(state_);
  for (size_t i = 0; i < state.keys.size(); ++i) {
    // Most keys differ in length or first letter: no call to compare them.
    const std::string_view k = state.keys[i].text;
    if (k.size() == key.size() && (key.empty() || (k[0] == key[0] && k == key))) {
      return doc_->impl_->Field(doc_, state, i);
    }
  }
  return JsonNode();
}

const std::vector<JsonKey>& JsonNode::Keys() const {
  if (!IsMap() || doc_->failed()) return kNoKeys;
  auto& state = *static_cast<MapState*>(state_);
  return state.keys;
}

void JsonNode::ForEachItem(FunctionRef<void(size_t, const JsonNode&)> fn) const {
  if (!IsSequence() || doc_->failed()) return;
  JsonText::Impl& d = *doc_->impl_;
  const char* p = SkipSpaces(d.text.data() + offset_ + 1);
  if (*p == ']') return;
  for (size_t index = 0;; ++index) {
    const JsonText::Impl::Marks marks = d.Mark();
    const JsonNode node = d.Make(doc_, d.OffsetOf(p));
    if (d.failed) return;
    fn(index, node);
    d.Release(marks);  // nothing the item's handles reached outlives the callback
    if (d.failed) return;
    p = SkipSpaces(d.SkipValue(p));
    if (d.failed) return;
    if (*p == ']') return;
    if (*p != ',') {
      d.Fail();
      return;
    }
    p = SkipSpaces(p + 1);
  }
}

void JsonNode::ForEachEntry(FunctionRef<void(const JsonKey&, const JsonNode&)> fn) const {
  if (!IsMap() || doc_->failed()) return;
  JsonText::Impl& d = *doc_->impl_;
  auto& state = *static_cast<MapState*>(state_);
  const std::vector<JsonKey>& keys = state.keys;
  for (size_t i = 0; i < keys.size(); ++i) {
    const JsonText::Impl::Marks marks = d.Mark();
    const JsonNode value = d.Field(doc_, state, i);
    if (d.failed) return;
    fn(keys[i], value);
    d.Release(marks);
    if (d.failed) return;
  }
}

}  // namespace netpol::api::internal
