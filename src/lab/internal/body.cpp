#include "lab/internal/body.h"

#include <cstddef>
#include <exception>
#include <set>
#include <utility>

namespace netpol::lab::internal {
namespace {

// Builds the value from nlohmann's parser events (so numbers, strings and
// errors are exactly Json::parse's) the way Go's decoder fills its target, and
// notes every field's path and position on the way.
class Builder final : public nlohmann::json_sax<Json> {
 public:
  Builder(Repeats repeats, Body& out) : repeats_(repeats), out_(out) {}

  bool null() override { return Set(nullptr); }
  bool boolean(bool value) override { return Set(value); }
  bool number_integer(number_integer_t value) override { return Set(value); }
  bool number_unsigned(number_unsigned_t value) override { return Set(value); }
  bool number_float(number_float_t value, const string_t& /*text*/) override { return Set(value); }
  bool string(string_t& value) override { return Set(std::move(value)); }
  bool binary(binary_t& value) override { return Set(Json::binary(std::move(value))); }

  bool start_object(std::size_t /*elements*/) override {
    Json& slot = Slot();
    if (!slot.is_object()) slot = Json::object();
    frames_.push_back({&slot, path_.size(), 0, {}});
    return true;
  }

  bool key(string_t& key) override {
    Frame& frame = frames_.back();
    path_.resize(frame.path_size);
    if (!path_.empty()) path_ += '.';
    path_ += key;
    const size_t position = next_position_++;
    out_.first.try_emplace(path_, position);
    // Twice in this occurrence of the object: a second occurrence of the
    // object (decoded into the first) starts afresh, as the decoder's check does.
    if (!frame.keys.insert(key).second) {
      if (reported_.insert(path_).second) out_.duplicates.push_back({path_, position});
      if (repeats_ == Repeats::kLastWins) (*frame.value)[key] = nullptr;
    }
    pending_ = &(*frame.value)[key];
    return true;
  }

  bool end_object() override {
    frames_.pop_back();
    return true;
  }

  bool start_array(std::size_t /*elements*/) override {
    Json& slot = Slot();
    if (!slot.is_array()) slot = Json::array();
    frames_.push_back({&slot, path_.size(), 0, {}});
    return true;
  }

  bool end_array() override {
    Frame& frame = frames_.back();
    Json& list = *frame.value;
    // Cut to this occurrence's length (a list decoded into a longer one).
    if (list.size() > frame.index)
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(frame.index), list.end());
    frames_.pop_back();
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  struct Frame {
    Json* value;                              // the object or list being filled
    size_t path_size;                         // the length of its path in path_
    size_t index;                             // a list's next element
    std::set<std::string, std::less<>> keys;  // an object's keys in this occurrence
  };

  // Where the value that starts now goes: the root, the value of the key just
  // read, or a list's next element (the old one, when a list is decoded into
  // another).
  Json& Slot() {
    if (frames_.empty()) return out_.value;
    Frame& frame = frames_.back();
    if (!frame.value->is_array()) return *pending_;
    path_.resize(frame.path_size);
    path_ += "[" + std::to_string(frame.index) + "]";
    Json& list = *frame.value;
    if (frame.index >= list.size()) list.push_back(nullptr);
    return list[frame.index++];
  }

  bool Set(Json value) {
    Slot() = std::move(value);
    return true;
  }

  const Repeats repeats_;
  Body& out_;
  std::vector<Frame> frames_;
  std::string path_;
  Json* pending_ = nullptr;
  size_t next_position_ = 0;
  std::set<std::string> reported_;
  std::string error_;
};

}  // namespace

std::optional<size_t> Body::FirstPosition(const std::string& path) const {
  const auto it = first.find(path);
  if (it == first.end()) return std::nullopt;
  return it->second;
}

Result<Body> DecodeBody(std::string_view text, Repeats repeats) {
  Body body;
  Builder builder(repeats, body);
  try {
    if (!Json::sax_parse(text, &builder)) return InvalidArgument(builder.error());
  } catch (const std::exception& e) {
    return InvalidArgument(e.what());
  }
  return body;
}

}  // namespace netpol::lab::internal
