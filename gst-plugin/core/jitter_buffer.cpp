// SPDX-License-Identifier: LGPL-2.1-or-later
#include "jitter_buffer.h"

#include <algorithm>
#include <utility>

namespace syncwave {

JitterVerdict JitterBuffer::insert(uint64_t timestamp_us, uint64_t duration_ns, uint64_t pts_ns,
                                   uint64_t now_ns, JitterPayload payload) {
  const uint64_t ts = us_to_ns(timestamp_us);
  if (!time_valid(ts) || duration_ns == 0 || !time_valid(duration_ns)) {
    stats_.invalid++;
    return JitterVerdict::kInvalid;
  }

  if (started_) {
    const int64_t d = time_diff(ts, expected_);
    const uint64_t forward = time_add(config_.latency_ns, config_.max_forward_jump_ns);
    if (d < -static_cast<int64_t>(config_.max_backward_jump_ns) ||
        d > static_cast<int64_t>(forward)) {
      // The sender restarted (or its clock jumped): what is held belongs to the
      // old stream and goes out first, in order.
      drain();
      stats_.resets++;
    }
  }

  if (held_.count(ts) != 0 || in_history(ts)) {
    stats_.duplicates++;
    return JitterVerdict::kDuplicate;
  }
  // Lateness on the fitted timeline: a packet in its slot is needed when its slot
  // plays, whatever its own stamp's deviation.
  uint64_t judged_pts = pts_ns;
  if (started_ && time_valid(pts_ns)) {
    const int64_t d = time_diff(ts, expected_);
    const int64_t tol = static_cast<int64_t>(tolerance());
    if (d >= -tol && d <= tol) judged_pts = time_add_signed(pts_ns, -d);
  }
  if (time_valid(now_ns) &&
      (!time_valid(judged_pts) || time_add(judged_pts, config_.latency_ns) <= now_ns)) {
    stats_.late++;
    return JitterVerdict::kLate;
  }
  if (started_ && time_diff(ts, expected_) < -static_cast<int64_t>(tolerance())) {
    // Its slot is already past: reported lost, or overlapping what went out.
    stats_.late++;
    return JitterVerdict::kLate;
  }
  if (held_.size() >= config_.max_held) {
    stats_.overflow++;
    return JitterVerdict::kOverflow;
  }

  if (!started_) {
    started_ = true;
    expected_ = ts;
  }
  if (ts < max_ts_seen_)
    stats_.reordered++;
  else
    max_ts_seen_ = ts;
  const uint64_t end_pts = time_add(pts_ns, duration_ns);
  if (time_valid(end_pts) && (!time_valid(newest_end_pts_) || end_pts > newest_end_pts_))
    newest_end_pts_ = end_pts;
  held_.emplace(ts, Held{timestamp_us, duration_ns, pts_ns, std::move(payload)});
  process(now_ns);
  return JitterVerdict::kAccepted;
}

bool JitterBuffer::pop(uint64_t now_ns, JitterOutput* out) {
  process(now_ns);
  if (ready_.empty()) return false;
  *out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

uint64_t JitterBuffer::margin() const {
  return std::min(config_.decode_margin_ns, config_.latency_ns / 2);
}

uint64_t JitterBuffer::deadline_for(uint64_t pts_ns) const {
  if (!time_valid(pts_ns)) return kTimeNone;
  return time_sub_floor(time_add(pts_ns, config_.latency_ns), margin());
}

uint64_t JitterBuffer::gap_deadline(uint64_t head_ts, const Held& head) const {
  // pts of the gap's start, on the head packet's timeline.
  return deadline_for(time_sub_floor(head.pts_ns, head_ts - expected_));
}

uint64_t JitterBuffer::unheard_deadline() const {
  if (config_.unheard_loss_ns == 0 || !have_last_ || last_duration_ == 0 || !held_.empty())
    return kTimeNone;
  if (time_add(unheard_ns_, last_duration_) > config_.unheard_loss_ns) return kTimeNone;
  return deadline_for(expected_pts_);
}

uint64_t JitterBuffer::next_deadline() const {
  if (!ready_.empty()) return 0;
  if (held_.empty()) return unheard_deadline();
  const auto& head = *held_.begin();
  const int64_t d = time_diff(head.first, expected_);
  if (d <= static_cast<int64_t>(tolerance())) return 0;
  if (static_cast<uint64_t>(d) > config_.max_loss_ns) return 0;
  return gap_deadline(head.first, head.second);
}

void JitterBuffer::process(uint64_t now_ns) {
  for (;;) {
    // A gap is known only once a later packet arrived: a sender that stops is not
    // loss (no concealment tail after the last packet), unless the expected packet
    // may be reported unheard (at most unheard_loss_ns in a row).
    if (held_.empty()) {
      const uint64_t deadline = unheard_deadline();
      if (!time_valid(now_ns) || !time_valid(deadline) || now_ns < deadline) return;
      const uint64_t start = expected_;
      const uint64_t pts = expected_pts_;
      expected_ = time_add(expected_, last_duration_);
      unheard_ns_ = time_add(unheard_ns_, last_duration_);
      emit_loss(start, last_duration_, pts);
      continue;
    }

    auto head = held_.begin();
    const int64_t d = time_diff(head->first, expected_);
    const int64_t tol = static_cast<int64_t>(tolerance());
    if (d < -tol) {
      // Overtaken by the expected timestamp while held; cannot go out in order.
      stats_.late++;
      held_.erase(head);
      continue;
    }
    if (d <= tol) {
      release_head();
      continue;
    }

    const uint64_t gap = static_cast<uint64_t>(d);
    if (gap > config_.max_loss_ns) {
      // Too long to be loss: the sender was silent. Start again at the head.
      stats_.discontinuities++;
      discont_next_ = true;
      expected_ = head->first;
      fit_count_ = 0;  // a new anchor: fit the timeline again
      release_head();
      continue;
    }
    if (!time_valid(now_ns)) return;
    const uint64_t deadline = gap_deadline(head->first, head->second);
    if (!time_valid(deadline) || now_ns < deadline) return;
    const uint64_t pts = time_sub_floor(head->second.pts_ns, gap);
    const uint64_t start = expected_;
    const uint64_t lost = loss_duration(gap);
    // The timeline moves by what was reported lost; the head keeps its deviation
    // from it (within the tolerance) and goes out next as the in-order packet.
    expected_ = time_add(expected_, lost);
    emit_loss(start, lost, pts);
  }
}

uint64_t JitterBuffer::loss_duration(uint64_t gap_ns) const {
  // Whole packets only when the packets all have one size (the original sender's
  // 10 ms chunks): a payloader that cuts buffers at the MTU sends packets of several
  // sizes, and a missing short one is not a packet of the last one's size.
  if (last_duration_ == 0 || same_size_count_ < kLearnPackets) return gap_ns;
  const uint64_t n = (gap_ns + last_duration_ / 2) / last_duration_;
  if (n == 0) return gap_ns;
  const uint64_t whole = n * last_duration_;
  const uint64_t off = whole > gap_ns ? whole - gap_ns : gap_ns - whole;
  // Never so much that the head would count as late.
  return off <= tolerance() && off < last_duration_ / 2 ? whole : gap_ns;
}

void JitterBuffer::release_head() {
  auto node = held_.extract(held_.begin());
  const uint64_t ts = node.key();
  Held& h = node.mapped();

  // Next expected timestamp: this one's expected + duration, corrected by a fraction
  // of its deviation (a running mean while the fit is young), so that jittery sender
  // timestamps neither accumulate nor move the timeline by their own jitter.
  const int64_t err = time_diff(ts, expected_);
  const int64_t gain = static_cast<int64_t>(std::min(fit_count_ + 1, kFitGain));
  expected_ = time_add(time_add_signed(expected_, err / gain), h.duration_ns);
  // The expected packet's pts on this packet's timeline.
  expected_pts_ = time_add_signed(h.pts_ns, time_diff(expected_, ts));
  unheard_ns_ = 0;
  if (have_last_ && fit_count_ >= kPeakAfter) {
    // Learn how far the sender's stamps stray (released packets are the in-order ones).
    const uint64_t abs_err = static_cast<uint64_t>(err < 0 ? -err : err);
    const uint64_t e = std::min(abs_err, h.duration_ns);
    peak_error_ns_ = std::max(e, peak_error_ns_ - peak_error_ns_ / 512);
  }
  fit_count_++;
  if (have_last_) {
    const uint64_t diff = h.duration_ns > last_duration_ ? h.duration_ns - last_duration_
                                                         : last_duration_ - h.duration_ns;
    same_size_count_ = diff * 64 <= last_duration_ ? same_size_count_ + 1 : 0;
  }

  last_duration_ = h.duration_ns;
  have_last_ = true;
  history_[history_pos_] = ts;
  history_pos_ = (history_pos_ + 1) % kHistory;
  history_len_ = std::min(history_len_ + 1, kHistory);
  stats_.pushed++;

  JitterOutput out;
  out.kind = JitterOutput::Kind::kPacket;
  out.timestamp_us = h.timestamp_us;
  out.duration_ns = h.duration_ns;
  out.pts_ns = h.pts_ns;
  out.discont = discont_next_;
  out.payload = std::move(h.payload);
  discont_next_ = false;
  ready_.push_back(std::move(out));
}

void JitterBuffer::emit_loss(uint64_t start_ns, uint64_t duration_ns, uint64_t pts_ns) {
  // One event per missing packet (the gap cut in packet-sized pieces): each
  // concealment the decoder does stays packet-sized, and Opus FEC in the next
  // packet applies to the last piece.
  uint64_t packets = 1;
  if (last_duration_ > 0)
    packets = std::max<uint64_t>(1, (duration_ns + last_duration_ / 2) / last_duration_);
  stats_.lost += packets;
  stats_.lost_ns = time_add(stats_.lost_ns, duration_ns);

  // Bounded: tiny packets (a hostile sender) must not turn one gap into a flood.
  const uint64_t pieces = std::min<uint64_t>(packets, kMaxLossPieces);
  stats_.loss_events += pieces;
  uint64_t offset = 0;
  for (uint64_t i = 0; i < pieces; i++) {
    // duration_ns <= max_loss, so the product cannot overflow.
    const uint64_t next = (i + 1 == pieces) ? duration_ns : duration_ns * (i + 1) / pieces;
    JitterOutput out;
    out.kind = JitterOutput::Kind::kLoss;
    out.timestamp_us = time_add(start_ns, offset) / kNsPerUs;
    out.duration_ns = next - offset;
    out.pts_ns = time_add(pts_ns, offset);
    ready_.push_back(std::move(out));
    offset = next;
  }
  expected_pts_ = time_add(pts_ns, duration_ns);
}

bool JitterBuffer::in_history(uint64_t ts_ns) const {
  for (size_t i = 0; i < history_len_; i++)
    if (history_[i] == ts_ns) return true;
  return false;
}

void JitterBuffer::drain() {
  while (!held_.empty()) {
    const uint64_t ts = held_.begin()->first;
    if (have_last_ && time_diff(ts, expected_) > static_cast<int64_t>(tolerance()))
      discont_next_ = true;
    expected_ = ts;
    release_head();
  }
  start_over();
}

void JitterBuffer::reset() {
  held_.clear();
  ready_.clear();
  history_len_ = 0;
  history_pos_ = 0;
  start_over();
}

void JitterBuffer::start_over() {
  started_ = false;
  have_last_ = false;
  discont_next_ = true;
  expected_ = 0;
  last_duration_ = 0;
  max_ts_seen_ = 0;
  newest_end_pts_ = kTimeNone;
  expected_pts_ = kTimeNone;
  unheard_ns_ = 0;
  fit_count_ = 0;  // the sender may be another one now
  peak_error_ns_ = 0;
  same_size_count_ = 0;
}

uint64_t JitterBuffer::level_ns(uint64_t now_ns) const {
  if (!time_valid(newest_end_pts_) || !time_valid(now_ns)) return 0;
  return time_sub_floor(time_add(newest_end_pts_, config_.latency_ns), now_ns);
}

}  // namespace syncwave
