// SPDX-License-Identifier: LGPL-2.1-or-later
#include "impair_model.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace syncwave {
namespace impair {

namespace {

constexpr double kParetoAlpha = 2.5;
constexpr double kParetoCap = 50.0;
constexpr double kNormalClip = 4.0;

bool parse_double(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !std::isfinite(v)) return false;
  *out = v;
  return *end == '\0';
}

// Splits "12.5ms" into 12.5 and "ms".
bool split_unit(const std::string& text, double* number, std::string* unit) {
  size_t i = 0;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' || text[i] == '-' ||
          text[i] == '+' || text[i] == 'e' || text[i] == 'E')) {
    // An 'e' followed by a letter is a unit, not an exponent.
    if ((text[i] == 'e' || text[i] == 'E') &&
        (i + 1 >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i + 1])))) {
      break;
    }
    i++;
  }
  *unit = text.substr(i);
  return parse_double(text.substr(0, i), number);
}

bool parse_probability(const std::string& text, double* out) {
  double v = 0;
  std::string unit;
  if (!split_unit(text, &v, &unit)) return false;
  if (unit == "%") {
    v /= 100.0;
  } else if (!unit.empty()) {
    return false;
  }
  if (v < 0.0 || v > 1.0) return false;
  *out = v;
  return true;
}

bool parse_time_us(const std::string& text, uint64_t* out) {
  double v = 0;
  std::string unit;
  if (!split_unit(text, &v, &unit) || v < 0) return false;
  double scale = 1000.0;
  if (unit.empty() || unit == "ms") {
    scale = 1000.0;
  } else if (unit == "us") {
    scale = 1.0;
  } else if (unit == "s") {
    scale = 1e6;
  } else {
    return false;
  }
  const double us = v * scale;
  if (us > 1e15) return false;
  *out = static_cast<uint64_t>(std::llround(us));
  return true;
}

bool parse_rate_bps(const std::string& text, uint64_t* out) {
  double v = 0;
  std::string unit;
  if (!split_unit(text, &v, &unit) || v < 0) return false;
  double scale = 1000.0;
  if (unit.empty() || unit == "kbit") {
    scale = 1e3;
  } else if (unit == "bit") {
    scale = 1.0;
  } else if (unit == "mbit") {
    scale = 1e6;
  } else {
    return false;
  }
  if (v * scale > 1e13) return false;
  *out = static_cast<uint64_t>(std::llround(v * scale));
  return true;
}

bool parse_bytes(const std::string& text, uint64_t* out) {
  double v = 0;
  std::string unit;
  if (!split_unit(text, &v, &unit) || v < 0) return false;
  double scale = 1.0;
  if (unit.empty() || unit == "b") {
    scale = 1.0;
  } else if (unit == "k" || unit == "kb") {
    scale = 1024.0;
  } else if (unit == "m" || unit == "mb") {
    scale = 1024.0 * 1024.0;
  } else {
    return false;
  }
  if (v * scale > 1e12) return false;
  *out = static_cast<uint64_t>(std::llround(v * scale));
  return true;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t pos = text.find(sep, start);
    parts.push_back(text.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return parts;
}

bool fail(std::string* error, const std::string& key, const std::string& value,
          const char* expected) {
  if (error) *error = "bad value '" + value + "' for " + key + ": expected " + expected;
  return false;
}

}  // namespace

bool apply_setting(Settings* s, const std::string& key, const std::string& value,
                   std::string* error) {
  if (key == "loss") {
    if (!parse_probability(value, &s->loss))
      return fail(error, key, value, "a probability such as 0.1 or 10%");
  } else if (key == "burst") {
    // ENTER[:EXIT[:LOSS]]
    const auto parts = split(value, ':');
    if (parts.size() > 3 || !parse_probability(parts[0], &s->burst_enter) ||
        (parts.size() > 1 && !parse_probability(parts[1], &s->burst_exit)) ||
        (parts.size() > 2 && !parse_probability(parts[2], &s->burst_loss)))
      return fail(error, key, value, "ENTER[:EXIT[:LOSS]] probabilities");
  } else if (key == "reorder") {
    // P[:HOLD]
    const auto parts = split(value, ':');
    if (parts.size() > 2 || !parse_probability(parts[0], &s->reorder) ||
        (parts.size() > 1 && !parse_time_us(parts[1], &s->reorder_delay_us)))
      return fail(error, key, value, "P[:HOLD-TIME], e.g. 5%:20ms");
  } else if (key == "duplicate") {
    if (!parse_probability(value, &s->duplicate))
      return fail(error, key, value, "a probability such as 0.02 or 2%");
  } else if (key == "delay") {
    if (!parse_time_us(value, &s->delay_us)) return fail(error, key, value, "a time such as 30ms");
  } else if (key == "jitter") {
    if (!parse_time_us(value, &s->jitter_us)) return fail(error, key, value, "a time such as 10ms");
  } else if (key == "jitter-dist") {
    if (value == "uniform") {
      s->jitter_dist = JitterDist::kUniform;
    } else if (value == "normal") {
      s->jitter_dist = JitterDist::kNormal;
    } else if (value == "pareto") {
      s->jitter_dist = JitterDist::kPareto;
    } else {
      return fail(error, key, value, "uniform, normal or pareto");
    }
  } else if (key == "rate") {
    if (!parse_rate_bps(value, &s->rate_bps))
      return fail(error, key, value, "a rate such as 800 (kbit/s), 800kbit or 2mbit");
  } else if (key == "queue") {
    if (!parse_bytes(value, &s->queue_limit_bytes))
      return fail(error, key, value, "a size such as 65536 or 64k");
  } else if (key == "outage") {
    // AT+DURATION
    const auto parts = split(value, '+');
    Outage o;
    if (parts.size() != 2 || !parse_time_us(parts[0], &o.start_us) ||
        !parse_time_us(parts[1], &o.duration_us))
      return fail(error, key, value, "AT+DURATION after the first packet, e.g. 2s+300ms");
    s->outages.push_back(o);
  } else {
    if (error) *error = "unknown setting '" + key + "'";
    return false;
  }
  return true;
}

bool apply_settings(Settings* s, const std::string& list, std::string* error) {
  if (list.empty()) return true;
  for (const auto& item : split(list, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      if (error) *error = "setting '" + item + "' is not key=value";
      return false;
    }
    if (!apply_setting(s, item.substr(0, eq), item.substr(eq + 1), error)) return false;
  }
  return true;
}

ImpairModel::ImpairModel(const Settings& settings, uint64_t seed)
    : settings_(settings), rng_(seed) {}

double ImpairModel::uniform() {
  // 53 random bits: the same on every standard library, unlike the distributions.
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

int64_t ImpairModel::jitter_sample_us(double u1, double u2) const {
  const double j = static_cast<double>(settings_.jitter_us);
  if (j <= 0) return 0;
  double offset = 0;
  switch (settings_.jitter_dist) {
    case JitterDist::kUniform:
      offset = (2.0 * u1 - 1.0) * j;
      break;
    case JitterDist::kNormal: {
      const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
      const double n = r * std::cos(2.0 * M_PI * u2);
      offset = std::max(-kNormalClip, std::min(kNormalClip, n)) * j;
      break;
    }
    case JitterDist::kPareto: {
      // Pareto with x_m chosen so that the excess over x_m has mean j.
      const double excess = (std::pow(1.0 - u1, -1.0 / kParetoAlpha) - 1.0);
      offset = std::min(excess * (kParetoAlpha - 1.0), kParetoCap) * j;
      break;
    }
  }
  return static_cast<int64_t>(std::llround(offset));
}

bool ImpairModel::in_outage(uint64_t now_us) const {
  const uint64_t t = now_us - first_us_;
  for (const auto& o : settings_.outages) {
    if (t >= o.start_us && t - o.start_us < o.duration_us) return true;
  }
  return false;
}

void ImpairModel::schedule(uint64_t seq, uint64_t due_us, bool duplicate, uint64_t arrival_us,
                           std::vector<uint8_t> data) {
  Pending p;
  p.arrival_us = arrival_us;
  p.delivery.seq = seq;
  p.delivery.due_us = due_us;
  p.delivery.duplicate = duplicate;
  p.delivery.data = std::move(data);
  pending_.emplace(std::make_pair(due_us, insert_order_++), std::move(p));
}

void ImpairModel::arrive(uint64_t now_us, const uint8_t* data, size_t size) {
  arrive(now_us, std::vector<uint8_t>(data, data + size));
}

void ImpairModel::arrive(uint64_t now_us, std::vector<uint8_t> data) {
  if (!have_first_) {
    have_first_ = true;
    first_us_ = now_us;
  }
  const uint64_t seq = next_seq_++;
  const size_t size = data.size();
  counters_.received++;
  counters_.received_bytes += size;

  // A fixed number of draws per packet keeps decisions aligned with the packet index.
  const double u_loss = uniform();
  const double u_burst_transition = uniform();
  const double u_burst_loss = uniform();
  const double u_reorder = uniform();
  const double u_duplicate = uniform();
  const double u_jitter1 = uniform();
  const double u_jitter2 = uniform();
  const double u_dup_jitter1 = uniform();
  const double u_dup_jitter2 = uniform();

  // The Gilbert-Elliott chain advances on every packet, lost or not.
  if (settings_.burst_enter > 0) {
    if (burst_bad_) {
      if (u_burst_transition < settings_.burst_exit) burst_bad_ = false;
    } else if (u_burst_transition < settings_.burst_enter) {
      burst_bad_ = true;
    }
  }

  if (in_outage(now_us)) {
    counters_.lost_outage++;
    return;
  }
  if (u_loss < settings_.loss) {
    counters_.lost_random++;
    return;
  }
  if (settings_.burst_enter > 0 && burst_bad_ && u_burst_loss < settings_.burst_loss) {
    counters_.lost_burst++;
    return;
  }

  const bool dup = u_duplicate < settings_.duplicate;
  uint64_t depart = now_us;
  uint64_t dup_depart = now_us;
  if (settings_.rate_bps > 0) {
    const double rate = static_cast<double>(settings_.rate_bps);
    const uint64_t backlog_us = link_free_us_ > now_us ? link_free_us_ - now_us : 0;
    const double backlog_bytes = static_cast<double>(backlog_us) * rate / 8e6;
    if (backlog_bytes + static_cast<double>(size) >
        static_cast<double>(settings_.queue_limit_bytes)) {
      counters_.dropped_queue++;
      return;
    }
    const auto tx_us = static_cast<uint64_t>(std::ceil(static_cast<double>(size) * 8e6 / rate));
    link_free_us_ = std::max(link_free_us_, now_us) + tx_us;
    depart = link_free_us_;
    if (dup) {
      link_free_us_ += tx_us;
      dup_depart = link_free_us_;
    }
  }

  auto due_after = [this](uint64_t from, double u1, double u2, uint64_t extra) {
    const int64_t d = static_cast<int64_t>(settings_.delay_us) + jitter_sample_us(u1, u2);
    return from + static_cast<uint64_t>(std::max<int64_t>(0, d)) + extra;
  };

  uint64_t hold = 0;
  if (u_reorder < settings_.reorder) {
    hold = settings_.reorder_delay_us;
    counters_.held_back++;
  }
  const uint64_t due = due_after(depart, u_jitter1, u_jitter2, hold);
  if (dup) {
    counters_.duplicated++;
    schedule(seq, due, false, now_us, data);
    schedule(seq, due_after(dup_depart, u_dup_jitter1, u_dup_jitter2, hold), true, now_us,
             std::move(data));
  } else {
    schedule(seq, due, false, now_us, std::move(data));
  }
}

uint64_t ImpairModel::next_due() const {
  if (pending_.empty()) return std::numeric_limits<uint64_t>::max();
  return pending_.begin()->first.first;
}

std::vector<Delivery> ImpairModel::pop_due(uint64_t now_us) {
  std::vector<Delivery> out;
  while (!pending_.empty() && pending_.begin()->first.first <= now_us) {
    auto node = pending_.extract(pending_.begin());
    Pending& p = node.mapped();
    const uint64_t seq = p.delivery.seq;
    if (popped_any_ && seq < max_popped_seq_) counters_.reordered++;
    if (!popped_any_ || seq > max_popped_seq_) max_popped_seq_ = seq;
    popped_any_ = true;
    const uint64_t delay = p.delivery.due_us - p.arrival_us;
    counters_.forwarded++;
    counters_.forwarded_bytes += p.delivery.data.size();
    counters_.delay_sum_us += delay;
    counters_.delay_max_us = std::max(counters_.delay_max_us, delay);
    out.push_back(std::move(p.delivery));
  }
  return out;
}

std::string ImpairModel::counters_json() const {
  const Counters& c = counters_;
  char buf[1024];
  std::snprintf(
      buf, sizeof(buf),
      "{\"received\": %" PRIu64 ", \"received-bytes\": %" PRIu64 ", \"forwarded\": %" PRIu64
      ", \"forwarded-bytes\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"lost-random\": %" PRIu64
      ", \"lost-burst\": %" PRIu64 ", \"lost-outage\": %" PRIu64 ", \"dropped-queue\": %" PRIu64
      ", \"duplicated\": %" PRIu64 ", \"held-back\": %" PRIu64 ", \"reordered\": %" PRIu64
      ", \"pending\": %zu, \"delay-mean-us\": %" PRIu64 ", \"delay-max-us\": %" PRIu64 "}",
      c.received, c.received_bytes, c.forwarded, c.forwarded_bytes, c.lost(), c.lost_random,
      c.lost_burst, c.lost_outage, c.dropped_queue, c.duplicated, c.held_back, c.reordered,
      pending_.size(), c.forwarded ? c.delay_sum_us / c.forwarded : 0, c.delay_max_us);
  return buf;
}

}  // namespace impair
}  // namespace syncwave
