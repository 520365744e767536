#include "dataplane/nft/element.h"

#include <algorithm>
#include <ostream>

namespace netpol::dataplane::nft {
namespace {

// Header bits: kinds in bits 0-11 (3 per field, field 0 lowest; 0 ends the
// list), ranged in bit 12, the verdict in bits 13-15.
constexpr int kKindBits = 3;
constexpr uint16_t kRangedBit = uint16_t{1} << 12;
constexpr int kVerdictShift = 13;

size_t ValueSize(FieldKind kind) {
  switch (kind) {
    case FieldKind::kIpv4:
      return 4;
    case FieldKind::kIpv6:
    case FieldKind::kIfname:
      return 16;
    case FieldKind::kProto:
      return 1;
    case FieldKind::kPort:
      return 2;
  }
  return 0;
}

// A field's bytes in a key: its value, padded to 4 bytes inside a concatenation.
size_t FieldSize(FieldKind kind, bool concat) {
  const size_t size = ValueSize(kind);
  return concat ? (size + 3) / 4 * 4 : size;
}

void AppendValue(const Field& f, FieldValue v, bool concat, std::string& out) {
  const size_t start = out.size();
  if (f.kind == FieldKind::kIfname) {
    const std::string_view name = f.name.substr(0, 15);
    out.append(name);
  } else {
    for (size_t i = ValueSize(f.kind); i-- > 0;) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  out.resize(start + FieldSize(f.kind, concat), '\0');
}

FieldValue ReadValue(FieldKind kind, std::string_view bytes) {
  FieldValue v = 0;
  for (size_t i = 0; i < ValueSize(kind); ++i) v = v << 8 | static_cast<uint8_t>(bytes[i]);
  return v;
}

IpAddress AddressOf(FieldKind kind, FieldValue v) {
  if (kind == FieldKind::kIpv4) return IpAddress::V4(static_cast<uint32_t>(v));
  return IpAddress::V6(static_cast<uint64_t>(v >> 64), static_cast<uint64_t>(v));
}

std::string ValueText(const Field& f, FieldValue v) {
  switch (f.kind) {
    case FieldKind::kIpv4:
    case FieldKind::kIpv6:
      return AddressOf(f.kind, v).ToString();
    case FieldKind::kProto:
      if (v == 6) return "tcp";
      if (v == 17) return "udp";
      if (v == 132) return "sctp";
      return std::to_string(static_cast<unsigned>(v));
    case FieldKind::kPort:
      return std::to_string(static_cast<unsigned>(v));
    case FieldKind::kIfname:
      return "\"" + std::string(f.name) + "\"";
  }
  return "";
}

const char* VerdictText(Verdict v) {
  switch (v) {
    case Verdict::kNone:
      return "";
    case Verdict::kGoto:
      return "goto";
    case Verdict::kJump:
      return "jump";
    case Verdict::kAccept:
      return "accept";
    case Verdict::kDrop:
      return "drop";
    case Verdict::kReturn:
      return "return";
    case Verdict::kContinue:
      return "continue";
  }
  return "";
}

uint16_t Header(std::span<const FieldKind> kinds, bool ranged) {
  uint16_t h = ranged ? kRangedBit : 0;
  for (size_t i = 0; i < kinds.size() && i < Element::kMaxFields; ++i)
    h = static_cast<uint16_t>(h | static_cast<uint16_t>(kinds[i]) << (kKindBits * i));
  return h;
}

void AppendHeader(uint16_t h, std::string& out) {
  out.push_back(static_cast<char>(h & 0xff));
  out.push_back(static_cast<char>(h >> 8));
}

}  // namespace

Field Field::Addresses(const IpAddress& first, const IpAddress& last) {
  const auto value = [](const IpAddress& ip) {
    return ip.is_v4() ? FieldValue{ip.v4()} : (FieldValue{ip.high()} << 64 | ip.low());
  };
  return {first.is_v4() ? FieldKind::kIpv4 : FieldKind::kIpv6, value(first), value(last), {}};
}

IpAddress Field::FirstAddress() const {
  return AddressOf(kind, first);
}

IpAddress Field::LastAddress() const {
  return AddressOf(kind, last);
}

Element Element::Of(std::span<const Field> fields, bool ranged) {
  fields = fields.first(std::min(fields.size(), kMaxFields));
  FieldKind kinds[kMaxFields] = {};
  size_t key = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    kinds[i] = fields[i].kind;
    key += FieldSize(fields[i].kind, fields.size() > 1);
  }
  std::string data;
  data.reserve(2 + key * (ranged ? 2 : 1));
  AppendHeader(Header({kinds, fields.size()}, ranged), data);
  for (const Field& f : fields) AppendValue(f, f.first, fields.size() > 1, data);
  if (ranged) {
    for (const Field& f : fields) AppendValue(f, f.last, fields.size() > 1, data);
  }
  return Element(std::move(data));
}

Element Element::To(Verdict verdict, std::string_view chain) && {
  data_.resize(ChainOffset());
  const uint16_t h = static_cast<uint16_t>((header() & ~(uint16_t{7} << kVerdictShift)) |
                                           static_cast<uint16_t>(verdict) << kVerdictShift);
  data_[0] = static_cast<char>(h & 0xff);
  data_[1] = static_cast<char>(h >> 8);
  if (verdict == Verdict::kGoto || verdict == Verdict::kJump) data_.append(chain);
  return std::move(*this);
}

Result<Element> Element::FromKernel(std::span<const FieldKind> kinds, std::string_view key,
                                    std::string_view key_end, Verdict verdict, std::string_view chain) {
  if (kinds.empty() || kinds.size() > kMaxFields) return InvalidArgument("a key of no field, or too many");
  size_t size = 0;
  for (const FieldKind kind : kinds) size += FieldSize(kind, kinds.size() > 1);
  // The kernel pads a key to 4 bytes.
  const auto fits = [&](std::string_view bytes) {
    return bytes.size() >= size && bytes.size() <= (size + 3) / 4 * 4 &&
           std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(size), bytes.end(),
                       [](char c) { return c == '\0'; });
  };
  if (!fits(key) || (!key_end.empty() && !fits(key_end))) {
    return InvalidArgument("a key of " + std::to_string(key.size()) + " bytes where " + std::to_string(size) +
                           " were expected");
  }
  // What Of would write: a field's padding is NULs, and an interface name
  // ends in NUL with only NULs after it. (Else two elements could differ in
  // bytes no field shows.)
  for (const std::string_view bytes : {key, key_end}) {
    if (bytes.empty()) continue;
    size_t offset = 0;
    for (const FieldKind kind : kinds) {
      const std::string_view field = bytes.substr(offset, FieldSize(kind, kinds.size() > 1));
      if (kind == FieldKind::kIfname) {
        const size_t nul = field.find('\0');
        if (nul == std::string_view::npos || field.find_first_not_of('\0', nul) != std::string_view::npos)
          return InvalidArgument("an interface name of more than 15 bytes, or bytes after its end");
      } else if (field.find_first_not_of('\0', ValueSize(kind)) != std::string_view::npos) {
        return InvalidArgument("a field's padding is not zero");
      }
      offset += field.size();
    }
  }
  if (chain.find('\0') != std::string_view::npos) return InvalidArgument("a chain name with a NUL in it");
  std::string data;
  AppendHeader(static_cast<uint16_t>(Header(kinds, !key_end.empty()) | static_cast<uint16_t>(verdict)
                                                                           << kVerdictShift),
               data);
  data.append(key.substr(0, size));
  if (!key_end.empty()) data.append(key_end.substr(0, size));
  if (verdict == Verdict::kGoto || verdict == Verdict::kJump) data.append(chain);
  return Element(std::move(data));
}

uint16_t Element::header() const {
  if (data_.size() < 2) return 0;
  return static_cast<uint16_t>(static_cast<uint8_t>(data_[0]) | static_cast<uint8_t>(data_[1]) << 8);
}

size_t Element::size() const {
  size_t n = 0;
  while (n < kMaxFields && ((header() >> (kKindBits * n)) & 7) != 0) ++n;
  return n;
}

bool Element::ranged() const {
  return (header() & kRangedBit) != 0;
}

Verdict Element::verdict() const {
  return static_cast<Verdict>(header() >> kVerdictShift);
}

size_t Element::KeySize() const {
  const size_t n = size();
  size_t bytes = 0;
  for (size_t i = 0; i < n; ++i)
    bytes += FieldSize(static_cast<FieldKind>((header() >> (kKindBits * i)) & 7), n > 1);
  return bytes;
}

size_t Element::ChainOffset() const {
  return data_.empty() ? 0 : 2 + KeySize() * (ranged() ? 2 : 1);
}

std::string_view Element::key() const {
  const std::string_view data = data_;
  return data.substr(std::min<size_t>(2, data.size()), KeySize());
}

std::string_view Element::key_end() const {
  if (!ranged()) return {};
  const std::string_view data = data_;
  return data.substr(2 + KeySize(), KeySize());
}

std::string_view Element::chain() const {
  const std::string_view data = data_;
  return data.substr(std::min(ChainOffset(), data.size()));
}

Element Element::KeyOnly() const {
  return Element(data_).To(Verdict::kNone);
}

Field Element::field(size_t i) const {
  const size_t n = size();
  Field f;
  if (i >= n) return f;
  f.kind = static_cast<FieldKind>((header() >> (kKindBits * i)) & 7);
  size_t offset = 0;
  for (size_t j = 0; j < i; ++j)
    offset += FieldSize(static_cast<FieldKind>((header() >> (kKindBits * j)) & 7), n > 1);
  const std::string_view start = key().substr(offset);
  const std::string_view end = ranged() ? key_end().substr(offset) : start;
  if (f.kind == FieldKind::kIfname) {
    const std::string_view name = start.substr(0, 16);
    f.name = name.substr(0, name.find('\0'));
    return f;
  }
  f.first = ReadValue(f.kind, start);
  f.last = ReadValue(f.kind, end);
  return f;
}

std::string Element::KeyText() const {
  std::string out;
  for (size_t i = 0, n = size(); i < n; ++i) {
    if (i > 0) out += " . ";
    const Field f = field(i);
    out += ValueText(f, f.first);
    if (f.last != f.first) out += "-" + ValueText(f, f.last);
  }
  return out;
}

std::string Element::Text() const {
  std::string out = KeyText();
  if (verdict() == Verdict::kNone) return out;
  out += " : ";
  out += VerdictText(verdict());
  if (!chain().empty()) out += " " + std::string(chain());
  return out;
}

std::optional<Verdict> VerdictNamed(std::string_view word) {
  for (const Verdict v : {Verdict::kGoto, Verdict::kJump, Verdict::kAccept, Verdict::kDrop, Verdict::kReturn,
                          Verdict::kContinue}) {
    if (word == VerdictText(v)) return v;
  }
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, const Element& element) {
  return os << element.Text();
}

Result<std::vector<FieldKind>> KindsOf(std::string_view type) {
  if (const size_t colon = type.find(" : "); colon != std::string_view::npos) type = type.substr(0, colon);
  std::vector<FieldKind> kinds;
  while (!type.empty()) {
    const size_t dot = type.find(" . ");
    const std::string_view name = type.substr(0, dot);
    if (name == "ipv4_addr") {
      kinds.push_back(FieldKind::kIpv4);
    } else if (name == "ipv6_addr") {
      kinds.push_back(FieldKind::kIpv6);
    } else if (name == "inet_proto") {
      kinds.push_back(FieldKind::kProto);
    } else if (name == "inet_service") {
      kinds.push_back(FieldKind::kPort);
    } else if (name == "ifname") {
      kinds.push_back(FieldKind::kIfname);
    } else {
      return InvalidArgument("no element fields of type " + std::string(name));
    }
    type = dot == std::string_view::npos ? std::string_view{} : type.substr(dot + 3);
  }
  if (kinds.empty() || kinds.size() > Element::kMaxFields)
    return InvalidArgument("a set type of " + std::to_string(kinds.size()) + " fields");
  return kinds;
}

}  // namespace netpol::dataplane::nft
