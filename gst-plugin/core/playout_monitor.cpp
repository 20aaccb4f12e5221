// SPDX-License-Identifier: LGPL-2.1-or-later
// See playout_monitor.h.
#include "playout_monitor.h"

#include <algorithm>
#include <limits>

namespace syncwave {

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int kMarginOrigin = 1024;  // margin bin = ms + this

int clamp_bin(int64_t v) {
  return static_cast<int>(std::clamp<int64_t>(v, 0, 2047));
}

// a / b rounded towards +infinity, for b > 0; never overflows (a may be INT64_MIN).
int64_t ceil_div(int64_t a, int64_t b) {
  const int64_t q = a / b;  // rounds towards zero
  return q + (a % b > 0 ? 1 : 0);
}

}  // namespace

PlayoutMonitor::PlayoutMonitor(const Config& config) : config_(config) {
  if (config_.grid_ns <= 0) config_.grid_ns = kMs;
  if (config_.window_ns < kSlots) config_.window_ns = kSlots;
}

void PlayoutMonitor::advance(Series* s, int64_t now_ns) {
  const int64_t slot_ns = config_.window_ns / kSlots;
  if (s->slot_start_ns == INT64_MIN || now_ns < s->slot_start_ns) {
    // First use, or time went backwards (a new clock): start over.
    for (auto& h : s->slots) h = Histogram();
    s->slot_start_ns = now_ns;
    s->current = 0;
    return;
  }
  int64_t elapsed = (now_ns - s->slot_start_ns) / slot_ns;
  if (elapsed <= 0) return;
  if (elapsed >= kSlots) {
    for (auto& h : s->slots) h = Histogram();
    s->current = 0;
    s->slot_start_ns = now_ns;
    return;
  }
  for (int64_t i = 0; i < elapsed; i++) {
    s->current = (s->current + 1) % kSlots;
    s->slots[s->current] = Histogram();
  }
  s->slot_start_ns += elapsed * slot_ns;
}

void PlayoutMonitor::add(Series* s, int64_t now_ns, int bin, bool is_late) {
  advance(s, now_ns);
  Histogram& h = s->slots[s->current];
  h.bins[bin]++;
  h.count++;
  if (is_late) h.late++;
}

uint32_t PlayoutMonitor::count(const Series& s) {
  uint32_t n = 0;
  for (const auto& h : s.slots) n += h.count;
  return n;
}

uint32_t PlayoutMonitor::late(const Series& s) {
  uint32_t n = 0;
  for (const auto& h : s.slots) n += h.late;
  return n;
}

int64_t PlayoutMonitor::give_up_max(const Series& s) {
  int64_t g = 0;
  for (const auto& h : s.slots) g = std::max(g, h.give_up_max);
  return g;
}

int64_t PlayoutMonitor::percentile(const Series& s, double q, int64_t bin_origin_ms) {
  const uint32_t n = count(s);
  if (n == 0) return std::numeric_limits<int64_t>::min();
  // The value below which a fraction q of the observations lie: the upper edge of
  // the bin that holds the ceil(q * n)-th observation (so a p99 errs high, not low).
  const uint32_t rank = std::max<uint32_t>(1, static_cast<uint32_t>(q * n + 0.999999));
  uint32_t seen = 0;
  for (int b = 0; b < kBins; b++) {
    for (const auto& h : s.slots) seen += h.bins[b];
    if (seen >= rank) return (b + 1 - bin_origin_ms) * kMs;
  }
  return (kBins - bin_origin_ms) * kMs;
}

void PlayoutMonitor::on_arrival(int64_t now_ns, int64_t transit_ns, int64_t latency_ns,
                                int64_t give_up_ns) {
  if (first_arrival_ns_ == INT64_MIN) first_arrival_ns_ = now_ns;
  const int64_t give_up = std::clamp<int64_t>(give_up_ns, 0, std::max<int64_t>(latency_ns, 0));
  const bool is_late = transit_ns > latency_ns - give_up;
  if (is_late) {
    late_arrivals_total_++;
    last_late_ns_ = now_ns;
  }
  add(&transit_, now_ns, clamp_bin(transit_ns / kMs), is_late);
  Histogram& h = transit_.slots[transit_.current];
  h.give_up_max = std::max(h.give_up_max, give_up);
}

void PlayoutMonitor::on_output(int64_t now_ns, int64_t margin_ns) {
  // Buffers already on their way when the latency moved were placed for the old one.
  if (now_ns < ignore_output_until_ns_) return;
  const bool is_late = margin_ns < 0;
  if (is_late) {
    late_outputs_total_++;
    last_late_ns_ = now_ns;
  } else {
    last_on_time_ns_ = now_ns;
  }
  // floor(margin / 1 ms): a margin of -0.5 ms belongs to the bin of [-1, 0) ms.
  const int64_t ms = margin_ns / kMs - (margin_ns % kMs < 0 ? 1 : 0);
  add(&margin_, now_ns, clamp_bin(ms + kMarginOrigin), is_late);
}

int64_t PlayoutMonitor::transit_percentile(int64_t now_ns, double q) {
  advance(&transit_, now_ns);
  const int64_t v = percentile(transit_, q, 0);
  return v == std::numeric_limits<int64_t>::min() ? -1 : v;
}

int64_t PlayoutMonitor::margin_percentile(int64_t now_ns, double q) {
  advance(&margin_, now_ns);
  return percentile(margin_, q, kMarginOrigin);
}

PlayoutMonitor::Decision PlayoutMonitor::evaluate(int64_t now_ns, int64_t latency_ns,
                                                  bool auto_latency) {
  Decision d;
  d.latency_ns = latency_ns;
  advance(&transit_, now_ns);
  advance(&margin_, now_ns);
  const uint32_t arrivals = count(transit_);
  const uint32_t outputs = count(margin_);
  if (arrivals == 0) return d;
  d.transit_p99_ns = percentile(transit_, 0.99, 0);
  const double late_in = static_cast<double>(late(transit_)) / arrivals;
  const double late_out = outputs ? static_cast<double>(late(margin_)) / outputs : 0.0;
  d.late_fraction = std::max(late_in, late_out);

  // Packets must arrive within the latency; buffers must reach the output with a
  // margin. A buffer's margin is L - its transit - what happens after the jitter
  // buffer, so the low tail of the margins already holds the transit's high tail:
  // the latency that gives the 2nd percentile a margin of `guard` is L - m02 + guard.
  // Before any buffer reached the output, a typical overhead stands in for it.
  // When most packets arrive late, the few buffers that reached the output say little.
  const bool mostly_late = late_in > 0.5 && arrivals >= 10;
  int64_t need = d.transit_p99_ns + give_up_max(transit_) + config_.guard_ns;
  if (outputs > 0 && !mostly_late) {
    const int64_t m02 = percentile(margin_, 0.02, kMarginOrigin);
    const int64_t deficit = std::min<int64_t>(config_.guard_ns - m02, config_.max_overhead_ns);
    need = std::max(need, latency_ns + deficit);
  } else {
    need += config_.default_overhead_ns;
  }
  need = ceil_div(need, config_.grid_ns) * config_.grid_ns;
  need = std::clamp(need, config_.min_latency_ns, config_.max_latency_ns);
  d.need_ns = need;

  // Most packets arrive late, so nothing is heard: act after `fast_settle_ns`.
  const int64_t settle = mostly_late ? config_.fast_settle_ns : config_.settle_ns;
  const bool settled = first_arrival_ns_ != INT64_MIN && now_ns - first_arrival_ns_ >= settle &&
                       (last_change_ns_ == INT64_MIN || now_ns - last_change_ns_ >= settle);
  if (!settled) return d;

  int64_t target = latency_ns;
  if (auto_latency && !auto_decided_) {
    auto_decided_ = true;
    target = need;
  } else if (d.late_fraction > config_.late_fraction &&
             std::max(late(transit_), late(margin_)) >= config_.min_late && !futile_) {
    target = std::max(need, latency_ns + config_.grid_ns);
    // A raise that did not halve the lateness cannot be helped by latency (something
    // else makes buffers late): one more try, then no more until reset().
    if (last_raise_late_ >= 0 && d.late_fraction > 0.5 * last_raise_late_) futile_ = true;
    last_raise_late_ = d.late_fraction;
  }
  target = std::min(target, config_.max_latency_ns);
  if (target != latency_ns) {
    d.change = true;
    d.latency_ns = target;
    last_change_ns_ = now_ns;
    ignore_output_until_ns_ = now_ns + config_.settle_ns / 2;
    changes_++;
    reset_window();
    // The window restarts: measure the new latency for settle_ns before judging it.
    first_arrival_ns_ = INT64_MIN;
  }
  return d;
}

PlayoutMonitor::Health PlayoutMonitor::health(int64_t now_ns) const {
  auto recent = [&](int64_t t) { return t != INT64_MIN && now_ns - t <= config_.on_time_ns; };
  if (recent(last_late_ns_)) return Health::kLate;
  if (recent(last_on_time_ns_)) return Health::kOnTime;
  return Health::kNoAudio;
}

void PlayoutMonitor::reset_window() {
  transit_ = Series();
  margin_ = Series();
}

void PlayoutMonitor::reset() {
  reset_window();
  last_change_ns_ = INT64_MIN;
  first_arrival_ns_ = INT64_MIN;
  last_on_time_ns_ = INT64_MIN;
  last_late_ns_ = INT64_MIN;
  ignore_output_until_ns_ = INT64_MIN;
  auto_decided_ = false;
  last_raise_late_ = -1;
  futile_ = false;
}

}  // namespace syncwave
