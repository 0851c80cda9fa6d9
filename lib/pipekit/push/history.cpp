#include "pipekit/push/history.hpp"

#include <algorithm>
#include <charconv>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pipekit::push {

std::string history_key(std::string_view prefix, std::string_view user) {
  return fmt::format("{}user:{{{}}}:history", prefix, user);
}

void append_history_commands(std::vector<std::vector<std::string>>& cmds, std::string_view prefix,
                             std::string_view user, const history_options& opts, std::string_view data,
                             std::string_view ref) {
  auto key = history_key(prefix, user);
  std::vector<std::string> xadd{"XADD", key, "MAXLEN", "~", std::to_string(opts.size), "*", "d", std::string(data)};
  if (!ref.empty()) {
    xadd.emplace_back("r");
    xadd.emplace_back(ref);
  }
  cmds.push_back(std::move(xadd));
  cmds.push_back({"PEXPIRE", std::move(key), std::to_string(opts.ttl.count())});
}

void append_history_commands(redis::commands& cmds, std::string_view prefix, std::string_view user,
                             const history_options& opts, std::string_view data, std::string_view ref) {
  const auto key = history_key(prefix, user);
  char size[24], ttl[24];
  const std::string_view size_text(size, static_cast<std::size_t>(std::to_chars(size, size + sizeof size, opts.size).ptr - size));
  const std::string_view ttl_text(ttl, static_cast<std::size_t>(std::to_chars(ttl, ttl + sizeof ttl, opts.ttl.count()).ptr - ttl));
  if (ref.empty()) cmds.add({"XADD", key, "MAXLEN", "~", size_text, "*", "d", data});
  else cmds.add({"XADD", key, "MAXLEN", "~", size_text, "*", "d", data, "r", ref});
  cmds.add({"PEXPIRE", key, ttl_text});
}

std::optional<stream_id> parse_stream_id(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= text.size()) return std::nullopt;
  stream_id id;
  auto number = [](std::string_view s, std::uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (!number(text.substr(0, dash), id.ms) || !number(text.substr(dash + 1), id.seq)) return std::nullopt;
  return id;
}

std::string message_frame(std::string_view id_json, std::string_view data_json, std::string_view ref_json) {
  std::string f;
  f.reserve(40 + id_json.size() + data_json.size() + ref_json.size());
  f += R"({"type":"message")";
  if (!id_json.empty()) {
    f += R"(,"id":)";
    f += id_json;
  }
  f += R"(,"data":)";
  f += data_json;
  if (!ref_json.empty()) {
    f += R"(,"ref":)";
    f += ref_json;
  }
  f += '}';
  return f;
}

namespace {

constexpr std::size_t page_size = 500;

// One XRANGE/XREVRANGE entry as a frame; false when it is not one of ours.
bool entry_frame(const redis::reply& e, std::string& id, std::string& frame) {
  if (e.type != redis::reply::kind::array || e.elements.size() != 2) return false;
  id = e.elements[0].str;
  const auto& fields = e.elements[1].elements;
  std::string_view data, ref;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "d") data = fields[i + 1].str;
    else if (fields[i].str == "r") ref = fields[i + 1].str;
  }
  if (data.empty()) return false;
  frame = message_frame(nlohmann::json(id).dump(), data, ref);
  return true;
}

struct reader_state {
  redis::client* redis;
  std::string key;
  std::string since;
  std::size_t max;
  std::function<void(history_page)> done;
  history_page page;
  bool first = true;
};

void next_page(const std::shared_ptr<reader_state>& s) {
  // The first page includes `since` itself, to tell whether it is still there.
  const std::string start = s->first ? s->since : "(" + s->page.last_id;
  const std::size_t want = std::min(page_size, s->max - s->page.frames.size()) + (s->first ? 1 : 0);
  s->redis->command({"XRANGE", s->key, start, "+", "COUNT", std::to_string(want)}, [s, want](redis::result r) {
    if (!r.ok() || r.value.is_error()) {
      s->page = {};
      s->page.error = r.ok() ? r.value.str : r.error;
      return s->done(std::move(s->page));
    }
    const auto& entries = r.value.elements;
    std::size_t i = 0;
    if (s->first) {
      s->first = false;
      const bool since_there = !entries.empty() && entries[0].elements.size() == 2 && entries[0].elements[0].str == s->since;
      s->page.gap = !since_there;
      if (since_there) i = 1;
      s->page.last_id = s->since;
    }
    for (; i < entries.size(); ++i) {
      std::string id, frame;
      if (!entry_frame(entries[i], id, frame)) continue;
      s->page.frames.push_back(std::move(frame));
      s->page.last_id = std::move(id);
    }
    if (entries.size() < want || s->page.frames.size() >= s->max) return s->done(std::move(s->page));
    next_page(s);
  });
}

}  // namespace

void read_history(redis::client& redis, std::string_view prefix, std::string_view user, std::string since,
                  std::size_t max, std::function<void(history_page)> done) {
  auto key = history_key(prefix, user);
  if (max == 0) return done({});
  if (since.empty()) {
    // The last `max`, newest first from Redis, handed over oldest first.
    redis.command({"XREVRANGE", key, "+", "-", "COUNT", std::to_string(max)},
                  [done = std::move(done)](redis::result r) {
                    history_page page;
                    if (!r.ok() || r.value.is_error()) {
                      page.error = r.ok() ? r.value.str : r.error;
                      return done(std::move(page));
                    }
                    const auto& entries = r.value.elements;
                    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
                      std::string id, frame;
                      if (!entry_frame(*it, id, frame)) continue;
                      page.frames.push_back(std::move(frame));
                      page.last_id = std::move(id);
                    }
                    done(std::move(page));
                  });
    return;
  }
  auto s = std::make_shared<reader_state>();
  s->redis = &redis;
  s->key = std::move(key);
  s->since = std::move(since);
  s->max = max;
  s->done = std::move(done);
  next_page(s);
}

}  // namespace pipekit::push
