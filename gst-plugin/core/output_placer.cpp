// SPDX-License-Identifier: LGPL-2.1-or-later
#include "output_placer.h"

#include <algorithm>
#include <cmath>

namespace syncwave {

namespace {
constexpr double kSecond = 1e9;
}

DriftController::Config OutputPlacer::Config::default_drift() {
  DriftController::Config c;
  c.kp = 2.0;
  c.ki = 1.0;
  c.error_tau_s = 0.05;
  c.max_ppm = 1500.0;
  c.max_slew_ppm_per_s = 2000.0;
  return c;
}

OutputPlacer::OutputPlacer() : OutputPlacer(Config()) {}

OutputPlacer::OutputPlacer(const Config& config)
    : config_(config), drift_(config.drift), aligner_(config.aligner) {}

void OutputPlacer::configure(double rate, int channels) {
  rate_ = rate > 0 ? rate : 48000.0;
  channels_ = channels > 0 ? channels : 1;
  resampler_.reset();
  reset();
}

void OutputPlacer::start_anchor() {
  last_error_valid_ = false;
  anchor_count_ = 0;
  anchor_sum_ = 0;
  anchor_rel_ = 0;
}

void OutputPlacer::reset_loop() {
  start_anchor();
  records_.clear();
  written_frames_ = 0;
  drift_.reset();
  aligner_.reset();
  pending_step_ = 0;
  pending_gap_ = 0;
  gap_discont_ = false;
  timeline_valid_ = false;
  move_pending_ = false;
  move_frames_ = 0;
  fade_in_pending_ = false;
  if (resampler_) resampler_->reset();
}

bool OutputPlacer::move(int64_t delta_ns) {
  if (!absolute_ || !aligner_.tracking() || !timeline_valid_ || pending_step_ != 0 ||
      pending_gap_ != 0 || move_pending_)
    return false;
  move_frames_ = std::llround(static_cast<double>(delta_ns) * rate_ / kSecond);
  move_pending_ = true;
  moves_++;
  return true;
}

void OutputPlacer::reset() {
  reset_loop();
  placed_since_ = -1;
  output_measured_ = false;
}

double OutputPlacer::content_at(double frame) const {
  if (records_.empty()) return 0.0;
  const Record* r = &records_.front();
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    if (static_cast<double>(it->frame) <= frame) {
      r = &*it;
      break;
    }
  }
  return r->rt + (frame - static_cast<double>(r->frame)) * kSecond / (rate_ * r->ratio);
}

bool OutputPlacer::observe_absolute(const Device& device, const Buffer& in, bool jumped,
                                    double* err_ns, bool* have_error, Block* block) {
  // Where the device is, absolutely: its own index minus where the sink put output
  // frame 0 is the output frame heard now. The frame written next is heard
  // (written - heard) frames later; its content against the content due then on the
  // shared clock (running time minus the pipeline latency and this output's delay) is
  // the error the loop works on. The error at the play position (what a listener
  // hears now) is kept for the stats.
  const double rt = static_cast<double>(in.content_ns);
  const int64_t k0 =
      static_cast<int64_t>(device.next_sample) - static_cast<int64_t>(written_frames_);
  const double heard_frame =
      static_cast<double>(device.position_ns) * rate_ / kSecond - static_cast<double>(k0);
  const double due_now = static_cast<double>(in.now_ns - in.base_ns) -
                         static_cast<double>(device.latency_ns) -
                         static_cast<double>(in.delay_ns);
  const double queued_ns = (static_cast<double>(written_frames_) - heard_frame) * kSecond / rate_;
  const double write_error = rt - (due_now + queued_ns);
  const double heard_error = content_at(heard_frame) - due_now;
  OutputAligner::Result r;
  if (jumped) {
    // The output keeps its timeline and the device position it was measured on: the
    // new content is placed from this reading (a gap before it, or late frames of it
    // dropped). A new timeline would be placed by the audio sink's own calibration,
    // off by as long as the device stalled when it started.
    pending_step_ = 0;
    const OutputAligner::Jump j = aligner_.jump(write_error, rate_);
    if (j.placed) {
      pending_gap_ = j.gap_frames;
      pending_step_ = -j.drop_frames;
      if (resampler_) resampler_->reset();
    } else {
      // Garbage, or a device not yet settled: a new timeline, placed by the sink.
      reset_loop();
      return false;
    }
  } else if (pending_step_ == 0) {
    // A step still being applied (a drop spans several buffers) is not measured.
    r = aligner_.observe(device.position_ns, k0, write_error, rate_);
  }
  if (r.step_frames != 0) {
    pending_step_ = r.step_frames;
    last_step_ = r.step_frames;
    drift_.reset();
  }
  *have_error = r.error_valid;
  *err_ns = r.error_valid ? r.error_ns : 0.0;
  // Placed where it is due, the frame written next is heard `queued` from now: how
  // far ahead of the device the stream runs. Below what the device holds itself, data
  // comes too late for its time and the device plays silence however well the stream
  // is aligned. Only reported once the placement has held for a while.
  const bool placed = aligner_.tracking() && pending_step_ == 0;
  if (!placed) {
    placed_since_ = -1;
  } else if (placed_since_ < 0) {
    placed_since_ = in.now_ns;
  }
  output_measured_ = placed && in.now_ns >= placed_since_ + config_.output_settle_ns;
  if (output_measured_) {
    const double device_ns = static_cast<double>(std::max<int64_t>(device.queue_ns, 0));
    block->margin_valid = true;
    block->margin_ns = queued_ns - device_ns;
  }
  heard_error_us_ = heard_error / 1000.0;
  return true;
}

void OutputPlacer::observe_relative(const Device& device, const Buffer& in, double* err_ns,
                                    bool* have_error) {
  // No absolute position: the device position mapped through what was written,
  // against the shared clock, moves only when the device drifts; the phase error is
  // its change since an anchor.
  const double dev_frames = static_cast<double>(device.internal_ns) * rate_ / kSecond;
  const double rel = content_at(dev_frames) - static_cast<double>(in.now_ns - in.base_ns);
  if (anchor_count_ < config_.anchor_observations) {
    anchor_sum_ += rel;
    if (++anchor_count_ == config_.anchor_observations)
      anchor_rel_ = anchor_sum_ / config_.anchor_observations;
    return;
  }
  double e = rel - anchor_rel_;
  *have_error = true;
  if (last_error_valid_ && std::fabs(e - last_error_ns_) > static_cast<double>(config_.phase_step_ns)) {
    // The device position stepped (an underrun, the audio server changing its
    // latency): not drift. The phase stays continuous across the step.
    phase_steps_++;
    anchor_rel_ += e - last_error_ns_;
    e = last_error_ns_;
  }
  if (std::fabs(e) > static_cast<double>(config_.resync_threshold_ns)) {
    // The sink jumped to where it wants the data: follow it, start over.
    resyncs_++;
    start_anchor();
    drift_.reset();
    e = 0;
    *have_error = false;
  }
  *err_ns = e;
}

OutputPlacer::Block OutputPlacer::process(const Device& device, const Buffer& in,
                                          std::vector<float>* out) {
  Block block;
  const double rt = static_cast<double>(in.content_ns);
  // The content jumped (another sender took over, an outage, the sender restarted):
  // far enough that no step should bridge it.
  bool jumped = false;
  if (in.discont) {
    start_anchor();  // the sink may leave a gap
    jumped = !records_.empty() &&
             std::fabs(rt - content_at(static_cast<double>(written_frames_))) >
                 static_cast<double>(config_.timeline_restart_ns);
  }
  double err_ns = 0;
  bool have_error = false;
  bool absolute = device.has_position && !records_.empty() && in.now_ns > in.base_ns;
  // A new base time (the pipeline re-selected its clock): the audio sink calibrated
  // itself again, and the output timeline's timestamps are on the old running time. A
  // new timeline, placed by the sink.
  if (jumped && in.base_ns != records_base_) absolute = false;
  // Nothing tells where the device is: a new timeline, placed by the sink.
  if (jumped && !absolute) reset_loop();
  // The buffer a move fades out is measured with the new delay but not yet moved: not
  // observed (a content jump cancels the move: the jump is placed with the new delay).
  if (jumped) move_pending_ = false;
  if (absolute && move_pending_) {
    // Still absolute, nothing measured.
  } else if (absolute) {
    absolute = observe_absolute(device, in, jumped, &err_ns, &have_error, &block);
  } else {
    if (device.internal_ns >= config_.device_settle_ns && !records_.empty() &&
        in.now_ns > in.base_ns)
      observe_relative(device, in, &err_ns, &have_error);
  }
  absolute_ = absolute;
  last_error_valid_ = have_error;
  last_error_ns_ = err_ns;
  if (have_error) phase_error_us_ = err_ns / 1000.0;
  drift_.update(in.now_ns, device.internal_ns, true, static_cast<int64_t>(err_ns));
  if (pending_gap_ > 0 && timeline_valid_) {
    written_frames_ += static_cast<uint64_t>(pending_gap_);
    gap_discont_ = true;
  }
  pending_gap_ = 0;

  Record rec;
  rec.frame = written_frames_;
  rec.ratio = drift_.ratio();
  const uint64_t first_frame = written_frames_;
  size_t out_frames = 0;
  const double shift_ns = render(in, out, &out_frames);
  rec.rt = std::max(0.0, rt + shift_ns);
  if (records_.empty()) records_base_ = in.base_ns;
  records_.push_back(rec);
  while (records_.size() > config_.max_records) records_.pop_front();

  block.frames = out_frames;
  if (out_frames == 0) return block;  // all of it dropped by a step
  if (!timeline_valid_) {
    // A new output timeline starts at this buffer's content time; the audio sink
    // places it by that, the aligner measures where it landed.
    timeline_pts0_ = static_cast<int64_t>(std::max(0.0, static_cast<double>(in.pts_ns) + shift_ns));
    timeline_frame0_ = first_frame;
    timeline_valid_ = true;
    timeline_restarts_++;
    block.new_timeline = true;
    block.discont = in.discont;
  } else {
    block.discont = gap_discont_;
  }
  gap_discont_ = false;
  const uint64_t a = first_frame - timeline_frame0_;
  const uint64_t b = written_frames_ - timeline_frame0_;
  const uint64_t r = static_cast<uint64_t>(rate_);
  const auto to_ns = [r](uint64_t frames) {
    return static_cast<int64_t>(frames / r * 1000000000ull + frames % r * 1000000000ull / r);
  };
  block.pts_ns = timeline_pts0_ + to_ns(a);
  block.duration_ns = to_ns(b) - to_ns(a);
  return block;
}

double OutputPlacer::render(const Buffer& in, std::vector<float>* out, size_t* out_frames) {
  if (resampler_ == nullptr || resampler_->channels() != channels_)
    resampler_.reset(new FractionalResampler(channels_));
  resampler_->set_ratio(drift_.ratio());
  const float* data = in.samples;
  size_t in_frames = data != nullptr ? in.frames : 0;
  size_t inserted = 0, dropped = 0;
  if (pending_step_ < 0) {
    dropped = std::min<size_t>(in_frames, static_cast<size_t>(-pending_step_));
    pending_step_ += static_cast<int64_t>(dropped);
    data += dropped * channels_;
    in_frames -= dropped;
  } else if (pending_step_ > 0) {
    inserted = static_cast<size_t>(pending_step_);
    pending_step_ = 0;
  }
  out->assign(inserted * channels_, 0.0f);
  const size_t splice = out->size();
  const size_t frames = inserted + resampler_->process(data, in_frames, out);
  // No click at a splice: the content after it fades in (after a drop that ended with
  // a buffer, the next buffer's content).
  if (inserted > 0 || dropped > 0) fade_in_pending_ = true;
  if (fade_in_pending_ && frames > splice / channels_) {
    fade_in_pending_ = false;
    const size_t fade = config_.step_fade_frames;
    for (size_t f = 0; f < fade && splice / channels_ + f < frames; f++) {
      const float g = 0.5f - 0.5f * std::cos(static_cast<float>(M_PI) * static_cast<float>(f) /
                                             static_cast<float>(fade));
      for (int c = 0; c < channels_; c++) (*out)[splice + f * channels_ + c] *= g;
    }
  }
  if (move_pending_) {
    // A delay move: this buffer fades out; the next one starts with the step.
    const size_t fade = std::min(config_.step_fade_frames, frames);
    for (size_t f = 0; f < fade; f++) {
      const float g = 0.5f + 0.5f * std::cos(static_cast<float>(M_PI) * static_cast<float>(f + 1) /
                                             static_cast<float>(fade));
      for (int c = 0; c < channels_; c++) (*out)[(frames - fade + f) * channels_ + c] *= g;
    }
    move_pending_ = false;
    pending_step_ = move_frames_;
    last_step_ = move_frames_;
    move_frames_ = 0;
  }
  written_frames_ += frames;
  *out_frames = frames;
  return (static_cast<double>(dropped) - static_cast<double>(inserted)) * kSecond / rate_;
}

}  // namespace syncwave
