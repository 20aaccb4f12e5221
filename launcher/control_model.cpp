// SPDX-License-Identifier: LGPL-2.1-or-later
#include "control_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace syncwave {
namespace control {

namespace {

// A strict reader of one flat JSON object: {"key": value, ...} where a value is a
// number, true, false or a string. Positions only move forward; every read is bounded
// by the text's end.
class FlatJson {
 public:
  struct Value {
    enum class Kind { kNumber, kBool, kString } kind = Kind::kNumber;
    double number = 0;
    bool integral = false;
    bool boolean = false;
    std::string text;
  };

  explicit FlatJson(const std::string& s) : s_(s) {}

  // Fills *out (key -> value); false with *error on any deviation.
  bool parse(std::vector<std::pair<std::string, Value>>* out, std::string* error) {
    skip_space();
    if (!eat('{')) return fail(error, "the body must be a JSON object");
    skip_space();
    if (eat('}')) return finish(error);
    for (;;) {
      skip_space();
      std::string key;
      if (!read_string(&key)) return fail(error, "expected a quoted key");
      skip_space();
      if (!eat(':')) return fail(error, "expected ':' after \"" + key + "\"");
      skip_space();
      Value v;
      if (!read_value(&v)) return fail(error, "the value of \"" + key + "\" is not a number, "
                                              "true, false or a string");
      out->emplace_back(key, v);
      skip_space();
      if (eat(',')) continue;
      if (eat('}')) return finish(error);
      return fail(error, "expected ',' or '}'");
    }
  }

 private:
  bool finish(std::string* error) {
    skip_space();
    if (i_ != s_.size()) return fail(error, "unexpected text after the JSON object");
    return true;
  }
  static bool fail(std::string* error, const std::string& why) {
    *error = why;
    return false;
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      i_++;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool read_string(std::string* out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (s_.size() - i_ < 4) return false;
          unsigned v = 0;
          for (int k = 0; k < 4; k++) {
            const char h = s_[i_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
            else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
            else return false;
          }
          // Only ASCII is ever valid in what the API takes; anything else is kept as a
          // byte that valid_name() refuses.
          out->push_back(v < 0x80 ? static_cast<char>(v) : '\x7f');
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool read_value(Value* v) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') {
      v->kind = Value::Kind::kString;
      return read_string(&v->text);
    }
    if (s_.compare(i_, 4, "true") == 0) {
      i_ += 4;
      v->kind = Value::Kind::kBool;
      v->boolean = true;
      return true;
    }
    if (s_.compare(i_, 5, "false") == 0) {
      i_ += 5;
      v->kind = Value::Kind::kBool;
      v->boolean = false;
      return true;
    }
    // JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = i_;
    bool integral = true;
    if (s_[i_] == '-') i_++;
    if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return false;
    if (s_[i_] == '0') {
      i_++;
    } else {
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      integral = false;
      i_++;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return false;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integral = false;
      i_++;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return false;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    if (i_ - start > 32) return false;
    const std::string num = s_.substr(start, i_ - start);
    v->kind = Value::Kind::kNumber;
    v->number = std::strtod(num.c_str(), nullptr);
    v->integral = integral && std::fabs(v->number) < 1e9;
    return std::isfinite(v->number);
  }

  const std::string& s_;
  size_t i_ = 0;
};

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", std::isfinite(v) ? v : 0.0);
  return buf;
}

bool apply_field(const std::string& key, double number, bool have_number, bool integral,
                 const std::optional<bool>& boolean, const std::optional<std::string>& text,
                 int latency_ms_now, ChangeRequest* out, std::string* error) {
  if (key == "volume") {
    if (!have_number) return (*error = "volume must be a number from 0 to 1.5", false);
    if (!(number >= 0 && number <= kMaxVolume))
      return (*error = "volume must be from 0 to 1.5, not " + format_double(number), false);
    out->volume = number;
  } else if (key == "mute") {
    if (!boolean) return (*error = "mute must be true or false", false);
    out->mute = *boolean;
  } else if (key == "delay_ms" || key == "delay") {
    if (!have_number || !integral)
      return (*error = "delay_ms must be a whole number of milliseconds", false);
    const int lo = -std::max(0, latency_ms_now);
    if (number < lo || number > kMaxDelayMs)
      return (*error = "delay_ms must be from " + std::to_string(lo) + " (minus the latency) to " +
                       std::to_string(kMaxDelayMs) + ", not " + format_double(number),
              false);
    out->delay_ms = static_cast<int>(number);
  } else if (key == "latency_ms" || key == "latency") {
    if (!have_number || !integral)
      return (*error = "latency_ms must be a whole number of milliseconds", false);
    if (number < kMinLatencyMs || number > kMaxLatencyMs)
      return (*error = "latency_ms must be from " + std::to_string(kMinLatencyMs) + " to " +
                       std::to_string(kMaxLatencyMs) + ", not " + format_double(number),
              false);
    out->latency_ms = static_cast<int>(number);
  } else if (key == "name") {
    if (!text) return (*error = "name must be a string", false);
    if (!valid_name(*text))
      return (*error = "a name is 1-63 letters, digits, spaces, '-', '_' or '.'", false);
    out->name = *text;
  } else {
    return (*error = "unknown setting \"" + (key.size() > 32 ? key.substr(0, 32) + "..." : key) +
                     "\": volume, mute, delay_ms, latency_ms and name can be set",
            false);
  }
  return true;
}

}  // namespace

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  if (name.front() == ' ' || name.back() == ' ') return false;
  for (size_t i = 0; i < name.size();) {
    const unsigned char u = static_cast<unsigned char>(name[i]);
    if (u < 0x80) {
      if (!(std::isalnum(u) || u == ' ' || u == '-' || u == '_' || u == '.')) return false;
      i++;
      continue;
    }
    // A UTF-8 sequence of 2-4 bytes (no overlong lead bytes, nothing past U+10FFFF).
    const size_t len = u >= 0xC2 && u <= 0xDF ? 2 : u >= 0xE0 && u <= 0xEF ? 3
                     : u >= 0xF0 && u <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > name.size()) return false;
    for (size_t k = 1; k < len; k++)
      if ((static_cast<unsigned char>(name[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool parse_change(const std::string& body, int latency_ms_now, ChangeRequest* out,
                  std::string* error) {
  *out = ChangeRequest{};
  if (body.size() > kMaxBodyBytes) {
    *error = "the request body is larger than " + std::to_string(kMaxBodyBytes) + " bytes";
    return false;
  }
  std::vector<std::pair<std::string, FlatJson::Value>> fields;
  if (!FlatJson(body).parse(&fields, error)) return false;
  if (fields.empty()) {
    *error = "nothing to change: give volume, mute, delay_ms, latency_ms or name";
    return false;
  }
  std::set<std::string> seen;
  for (const auto& [key, v] : fields) {
    if (!seen.insert(key).second) {
      *error = "\"" + key.substr(0, 32) + "\" is given twice";
      return false;
    }
    using K = FlatJson::Value::Kind;
    if (!apply_field(key, v.number, v.kind == K::kNumber, v.integral,
                     v.kind == K::kBool ? std::optional<bool>(v.boolean) : std::nullopt,
                     v.kind == K::kString ? std::optional<std::string>(v.text) : std::nullopt,
                     latency_ms_now, out, error))
      return false;
  }
  return true;
}

bool parse_change_args(const std::vector<std::string>& args, int latency_ms_now,
                       ChangeRequest* out, std::string* error) {
  *out = ChangeRequest{};
  if (args.empty()) {
    *error = "nothing to change: give volume=V, mute=true|false, delay=MS, latency=MS or name=N";
    return false;
  }
  std::set<std::string> seen;
  for (const std::string& a : args) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      *error = "\"" + a.substr(0, 40) + "\" is not KEY=VALUE";
      return false;
    }
    const std::string key = a.substr(0, eq), value = a.substr(eq + 1);
    if (!seen.insert(key).second) {
      *error = key.substr(0, 32) + " is given twice";
      return false;
    }
    std::optional<bool> boolean;
    if (value == "true" || value == "on" || value == "yes") boolean = true;
    if (value == "false" || value == "off" || value == "no") boolean = false;
    char* end = nullptr;
    const double number = value.empty() ? 0 : std::strtod(value.c_str(), &end);
    const bool have_number = !value.empty() && end && *end == '\0' && std::isfinite(number);
    const bool integral = have_number && value.find_first_of(".eE") == std::string::npos;
    const std::string json_key = key == "delay" ? "delay_ms" : key == "latency" ? "latency_ms" : key;
    if (!apply_field(json_key, number, have_number, integral, boolean,
                     std::optional<std::string>(value), latency_ms_now, out, error))
      return false;
  }
  return true;
}

std::string change_to_json(const ChangeRequest& c) {
  std::vector<std::string> parts;
  if (c.volume) parts.push_back("\"volume\":" + format_double(*c.volume));
  if (c.mute) parts.push_back(std::string("\"mute\":") + (*c.mute ? "true" : "false"));
  if (c.delay_ms) parts.push_back("\"delay_ms\":" + std::to_string(*c.delay_ms));
  if (c.latency_ms) parts.push_back("\"latency_ms\":" + std::to_string(*c.latency_ms));
  if (c.name) parts.push_back("\"name\":" + json_string(*c.name));
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); i++) out += (i ? "," : "") + parts[i];
  return out + "}";
}

std::string report_to_json(const ReceiverReport& r) {
  std::string levels;
  for (size_t i = 0; i < r.level_db.size() && i < 8; i++)
    levels += (i ? "," : "") + format_double(std::max(-200.0, r.level_db[i]));
  return "{\"name\":" + json_string(r.name) + ",\"state\":" + json_string(r.state.substr(0, 64)) +
         ",\"latency_ms\":" + std::to_string(r.latency_ms) +
         ",\"sync_offset_us\":" + format_double(r.sync_offset_us) +
         ",\"lost\":" + std::to_string(r.lost) + ",\"late\":" + std::to_string(r.late) +
         ",\"level_db\":" + json_string(levels) + ",\"volume\":" + format_double(r.volume) +
         ",\"mute\":" + (r.mute ? "true" : "false") +
         ",\"delay_ms\":" + std::to_string(r.delay_ms) +
         (r.control_refused ? ",\"control_refused\":" + std::to_string(*r.control_refused) : "") +
         "}";
}

bool parse_report(const std::string& json, ReceiverReport* out, std::string* error) {
  *out = ReceiverReport{};
  if (json.size() > kMaxDatagramBytes) {
    *error = "report too long";
    return false;
  }
  std::vector<std::pair<std::string, FlatJson::Value>> fields;
  if (!FlatJson(json).parse(&fields, error)) return false;
  using K = FlatJson::Value::Kind;
  auto number = [&](const FlatJson::Value& v, double lo, double hi, double* to) {
    if (v.kind != K::kNumber || !(v.number >= lo && v.number <= hi)) return false;
    *to = v.number;
    return true;
  };
  for (const auto& [key, v] : fields) {
    double d = 0;
    bool ok = true;
    if (key == "name") {
      ok = v.kind == K::kString && valid_name(v.text);
      if (ok) out->name = v.text;
    } else if (key == "state") {
      ok = v.kind == K::kString && v.text.size() <= 64;
      if (ok) out->state = v.text;
    } else if (key == "latency_ms") {
      ok = number(v, 0, kMaxLatencyMs, &d);
      out->latency_ms = (int)d;
    } else if (key == "sync_offset_us") {
      ok = number(v, -1e9, 1e9, &d);
      out->sync_offset_us = d;
    } else if (key == "lost" || key == "late") {
      ok = number(v, 0, 1e15, &d);
      (key == "lost" ? out->lost : out->late) = (uint64_t)d;
    } else if (key == "level_db") {
      ok = v.kind == K::kString && (v.text.empty() || v.text.back() != ',');
      size_t at = 0;
      while (ok && at < v.text.size() && out->level_db.size() < 8) {
        const size_t comma = std::min(v.text.find(',', at), v.text.size());
        const std::string item = v.text.substr(at, comma - at);
        char* end = nullptr;
        const double db = std::strtod(item.c_str(), &end);
        ok = !item.empty() && end && *end == '\0' && std::isfinite(db);
        if (ok) out->level_db.push_back(std::max(-200.0, std::min(40.0, db)));
        at = comma + 1;
      }
    } else if (key == "volume") {
      ok = number(v, 0, kMaxVolume, &d);
      out->volume = d;
    } else if (key == "mute") {
      ok = v.kind == K::kBool;
      out->mute = v.boolean;
    } else if (key == "delay_ms") {
      ok = number(v, -kMaxLatencyMs, kMaxDelayMs, &d);
      out->delay_ms = (int)d;
    } else if (key == "control_refused") {
      ok = number(v, 0, 1e15, &d);
      out->control_refused = (uint64_t)d;
    }
    if (!ok) {
      *error = "bad \"" + key.substr(0, 32) + "\" in a report";
      return false;
    }
  }
  if (out->name.empty()) {
    *error = "a report without a name";
    return false;
  }
  return true;
}

bool ReceiverTable::report(const ReceiverReport& r, int64_t now_us) {
  if (!valid_name(r.name)) return false;
  auto it = receivers_.find(r.name);
  if (it == receivers_.end()) {
    if (receivers_.size() >= kMaxReceivers) return false;
    it = receivers_.emplace(r.name, Entry{}).first;
  }
  it->second.report = r;
  if (it->second.report.level_db.size() > 8) it->second.report.level_db.resize(8);
  it->second.seen_us = now_us;
  return true;
}

size_t ReceiverTable::expire(int64_t now_us) {
  size_t n = 0;
  for (auto it = receivers_.begin(); it != receivers_.end();) {
    if (now_us - it->second.seen_us > timeout_us_) {
      it = receivers_.erase(it);
      n++;
    } else {
      ++it;
    }
  }
  return n;
}

const ReceiverReport* ReceiverTable::find(const std::string& name) const {
  auto it = receivers_.find(name);
  return it == receivers_.end() ? nullptr : &it->second.report;
}

std::string ReceiverTable::to_json(int64_t now_us) const {
  std::string out = "{\"receivers\":[";
  bool first = true;
  for (const auto& [name, e] : receivers_) {
    const ReceiverReport& r = e.report;
    if (!first) out += ",";
    first = false;
    out += "{\"name\":" + json_string(r.name) + ",\"address\":" + json_string(r.address) +
           ",\"state\":" + json_string(r.state) +
           ",\"latency_ms\":" + std::to_string(r.latency_ms) +
           ",\"sync_offset_us\":" + format_double(r.sync_offset_us) +
           ",\"lost\":" + std::to_string(r.lost) + ",\"late\":" + std::to_string(r.late) +
           ",\"level_db\":[";
    for (size_t i = 0; i < r.level_db.size(); i++)
      out += (i ? "," : "") + format_double(std::max(-200.0, r.level_db[i]));
    out += "],\"volume\":" + format_double(r.volume) + ",\"mute\":" + (r.mute ? "true" : "false") +
           ",\"delay_ms\":" + std::to_string(r.delay_ms) +
           (r.control_refused ? ",\"control_refused\":" + std::to_string(*r.control_refused) : "") +
           ",\"age_ms\":" + std::to_string(std::max<int64_t>(0, now_us - e.seen_us) / 1000) + "}";
  }
  return out + "]}";
}

bool RateLimiter::allow(const std::string& client, int64_t now_us) {
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) {
      auto oldest = std::min_element(buckets_.begin(), buckets_.end(), [](const auto& a,
                                                                         const auto& b) {
        return a.second.last_us < b.second.last_us;
      });
      buckets_.erase(oldest);
    }
    it = buckets_.emplace(client, Bucket{burst_, now_us}).first;
  }
  Bucket& b = it->second;
  const double dt = std::max<int64_t>(0, now_us - b.last_us) / 1e6;
  b.tokens = std::min(burst_, b.tokens + dt * rate_);
  b.last_us = now_us;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace control
}  // namespace syncwave
