#include "pipekit/push/message_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include <boost/container/small_vector.hpp>
#include <nlohmann/json.hpp>

namespace pipekit::push {

// What nlohmann's serializer writes for a string that is valid UTF-8 (the lexer checked it), with
// ensure_ascii off: the bytes, with '"', '\\' and control characters escaped.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t run = 0;  // start of the bytes not written yet
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        constexpr char hex[] = "0123456789abcdef";
        const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(s, run, s.size() - run);
  out += '"';
}

std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character: '"' or '\\' does not end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '\0') {
      break;  // nlohmann's end of input: what follows is not read (json::parse takes "{}\0]]")
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

namespace {

using json = nlohmann::ordered_json;

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// The SAX handler. Depth 1 is the line's object; "data" and "id" are written out as they are
// read, the users kept; any other member is read (so the whole line is checked) and dropped.
// Returning false stops the parse: the line is not plain.
class handler {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit handler(plain_options o) : opts_(o) {}

  plain_message msg;
  bool has_ref = false, has_stored = false;
  bool has_user = false, has_users = false, has_data = false, has_id = false, has_broadcast = false;

  bool null() { return scalar([&](std::string& o) { o += "null"; }, false); }
  bool boolean(bool v) {
    if (depth_ == 1 && member_ == member::broadcast) {
      msg.broadcast = v;
      return true;
    }
    if (depth_ == 1 && member_ == member::stored) {
      msg.stored = v;
      return true;
    }
    return scalar([&](std::string& o) { o += v ? "true" : "false"; }, false);
  }
  bool number_integer(number_integer_t v) {
    return scalar([&](std::string& o) { append_int(o, v); }, true, [&] { append_int(user_, v); });
  }
  bool number_unsigned(number_unsigned_t v) {
    return scalar([&](std::string& o) { append_int(o, v); }, true, [&] { append_int(user_, v); });
  }
  bool number_float(number_float_t v, const string_t&) {
    // nlohmann's shortest round-trip form of a double (with its ".0" and "e+"), written by nlohmann.
    return scalar([&](std::string& o) { o += json(v).dump(); }, false);
  }
  bool string(string_t& v) {
    return scalar([&](std::string& o) { append_json_string(o, v); }, true, [&] { user_ = std::move(v); });
  }
  bool binary(binary_t&) { return false; }  // JSON text has none

  bool start_object(std::size_t) {
    if (depth_ == 0) {  // the line's object
      ++depth_;
      return true;
    }
    if (!open(true)) return false;
    if (out_) *out_ += '{';
    return true;
  }
  bool key(string_t& k) {
    if (depth_ == 1) {
      member_ = k == "user"      ? member::user
                : k == "users"     ? member::users
                : k == "data"      ? member::data
                : k == "id"        ? member::id
                : k == "broadcast" ? member::broadcast
                : !opts_.node_members ? member::other
                : k == "ref"       ? member::ref
                : k == "stored"    ? member::stored
                                   : member::other;
      bool* seen = member_ == member::user        ? &has_user
                   : member_ == member::users     ? &has_users
                   : member_ == member::data      ? &has_data
                   : member_ == member::id        ? &has_id
                   : member_ == member::broadcast ? &has_broadcast
                   : member_ == member::ref       ? &has_ref
                   : member_ == member::stored    ? &has_stored
                                                  : nullptr;
      if (seen != nullptr) {
        if (*seen) return false;  // named twice: the tree keeps the last value in the first place
        *seen = true;
      }
      out_ = member_ == member::data ? &msg.data : member_ == member::id ? &msg.id : member_ == member::ref ? &msg.ref : nullptr;
      return true;
    }
    if (out_ != nullptr) {
      // A name twice in one object of data or id: the tree would keep one; leave it to the tree.
      auto& names = names_.back();
      if (opts_.sorted_names) {
        // In std::map's order, so no name twice either: only the last one is kept.
        if (!names.empty() && !(names.back() < k)) return false;
        names.assign(1, k);
      } else {
        if (names.size() >= max_object_members || std::find(names.begin(), names.end(), k) != names.end()) return false;
        names.push_back(k);
      }
      if (!frames_.back().first) *out_ += ',';
      frames_.back().first = false;
      append_json_string(*out_, k);
      *out_ += ':';
      after_key_ = true;
    }
    return true;
  }
  bool end_object() {
    if (--depth_ == 0) return true;
    close();
    if (out_) *out_ += '}';
    return done_value();
  }
  bool start_array(std::size_t) {
    if (depth_ == 1 && member_ == member::users && frames_.empty()) {
      users_array_ = true;
      ++depth_;
      frames_.push_back({false, true});
      return true;
    }
    if (!open(false)) return false;
    if (out_) *out_ += '[';
    return true;
  }
  bool end_array() {
    --depth_;
    if (users_array_ && depth_ == 1) {
      users_array_ = false;
      frames_.pop_back();
      return done_value();
    }
    close();
    if (out_) *out_ += ']';
    return done_value();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  enum class member { user, users, data, id, broadcast, ref, stored, other };
  struct frame {
    bool is_object;
    bool first;
  };

  // A scalar value: a user (users_ok and at a user's place), part of data or id, or skipped.
  template <class Write, class User = void (*)()>
  bool scalar(Write write, bool user_ok, User user = [] {}) {
    if (depth_ == 0) return false;  // the line is not an object
    if (depth_ == 1 && (member_ == member::user || member_ == member::users || member_ == member::broadcast ||
                        member_ == member::stored))
      return at_user(user_ok, user, member::user);
    if (users_array_ && depth_ == 2) return at_user(user_ok, user, member::users);
    if (out_) {
      separate();
      write(*out_);
    }
    return done_value();
  }
  template <class User>
  bool at_user(bool user_ok, User user, member where) {
    if (!user_ok || member_ != where) return false;  // not a user id, or "broadcast" not a boolean
    user_.clear();
    user();
    if (user_.empty()) return false;
    msg.users.push_back(std::move(user_));
    return true;
  }
  bool open(bool is_object) {
    if (depth_ == 0) return false;  // the line is not an object
    if (depth_ >= max_depth) return false;  // nested too deep: the tree's reading rejects it
    // A container where a user or "broadcast" belongs: not a plain message.
    if (depth_ == 1 && member_ != member::data && member_ != member::id && member_ != member::ref && member_ != member::other)
      return false;
    if (users_array_ && depth_ == 2) return false;
    if (out_) separate();
    ++depth_;
    frames_.push_back({is_object, true});
    if (out_ && is_object) names_.emplace_back();
    return true;
  }
  void close() {
    if (out_ && frames_.back().is_object) names_.pop_back();
    frames_.pop_back();
  }
  // Before a value in an array of data or id: the comma (in an object, key() wrote the separator).
  void separate() {
    if (after_key_ || frames_.empty() || frames_.back().is_object) {
      after_key_ = false;
      return;
    }
    if (!frames_.back().first) *out_ += ',';
    frames_.back().first = false;
  }
  bool done_value() {
    after_key_ = false;
    return true;
  }

  plain_options opts_;
  std::size_t depth_ = 0;
  member member_ = member::other;
  std::string* out_ = nullptr;  // where the current member is written (data or id), or nowhere
  boost::container::small_vector<frame, 8> frames_;  // below the line's object
  // The member names of each open object of data or id.
  boost::container::small_vector<boost::container::small_vector<std::string, 4>, 4> names_;
  std::string user_;
  bool users_array_ = false;
  bool after_key_ = false;
};

}  // namespace

std::optional<plain_message> read_plain_message(std::string_view line, plain_options opts) {
  handler h(opts);
  if (line.empty() || !json::sax_parse(line.begin(), line.end(), &h)) return std::nullopt;
  const int kinds = int(h.has_user) + int(h.has_users) + int(h.msg.broadcast);
  if (!h.has_data || kinds != 1 || (h.has_users && h.msg.users.empty()) || (h.msg.broadcast && !h.msg.users.empty()))
    return std::nullopt;
  return std::move(h.msg);
}

}  // namespace pipekit::push
