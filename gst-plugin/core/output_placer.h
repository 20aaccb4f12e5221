// SPDX-License-Identifier: LGPL-2.1-or-later
// The drift and placement loop of one audio output: given, at every buffer, where the
// device is and what the shared clock says should be heard, it decides how the
// buffer's samples are written (resampled by the drift ratio, frames inserted or
// dropped to move the output into place, a gap left where the content jumped) and
// stamps them on the output's own contiguous timeline. Pure C++: no GStreamer, no
// GLib; time, device readings and samples are passed in (unit-tested in simulated
// time, tests/unit/test_output_placer.cpp). syncwavesink's rate probe is a thin shell
// over it.
//
// Two ways of knowing where the device is:
//   - absolute (Device::has_position): the device reports the index it plays now in
//     its own sample space and where it put the next frame written (syncwavepulsesink
//     answers the syncwave-device-position query with both). The frame heard now, and
//     so the content heard now, is known; the error against the shared clock is
//     measured outright and OutputAligner steps it away, the drift loop keeps it.
//   - relative (only Device::internal_ns, the device clock's time): the device
//     position mapped through what was written moves only when the device drifts, so
//     the phase error is its change since an anchor taken once the device settled.
//
// The output timeline: buffers leave stamped timeline_pts0 + frames_written / rate, so
// the audio sink sees one perfectly contiguous stream whatever was resampled, dropped
// or inserted, and never "corrects" it by resyncing to input timestamps
// (GstAudioBaseSink resyncs as soon as a buffer's timestamp lies a few ms ahead of
// where the previous one ended). A new timeline starts at a buffer's own timestamp
// (the sink places it), after a reset or a content jump nothing could place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "drift_controller.h"
#include "fractional_resampler.h"
#include "output_aligner.h"

namespace syncwave {

class OutputPlacer {
 public:
  struct Config {
    // Relative mode: beyond this phase error the audio sink resyncs by itself (its
    // alignment-threshold): follow it and anchor again.
    int64_t resync_threshold_ns = 40'000'000;
    // Relative mode: observations averaged to anchor the phase (the device position
    // moves in steps), taken after the device has run this long (audio servers settle
    // their latency first).
    int anchor_observations = 50;
    int64_t device_settle_ns = 1'000'000'000;
    // Relative mode: a change of the phase error this large between two buffers is a
    // step of the device position, not drift (drift moves it by well under a µs per
    // buffer).
    int64_t phase_step_ns = 2'000'000;
    // Buffers remembered to map the device position back to content.
    size_t max_records = 2000;
    // A content discontinuity larger than this is a jump no step should bridge.
    int64_t timeline_restart_ns = 100'000'000;
    // Absolute mode: the placement has held this long before the output's margin is
    // reported (right after the start or a step the device is not where it stays).
    int64_t output_settle_ns = 1'000'000'000;
    // A step's splice: the content after it fades in over this many frames.
    size_t step_fade_frames = 96;
    DriftController::Config drift = default_drift();
    OutputAligner::Config aligner;

    // The phase error is read at every buffer (every 3.6 ms of raw audio, 10 ms of
    // Opus) with a few µs of noise, so the loop is much tighter than
    // DriftController's defaults (which assume a noisy, sparse device position): it
    // follows an audio server whose rate wanders by hundreds of ppm while it settles,
    // with an error of tens of µs.
    static DriftController::Config default_drift();
  };

  // What is known of the device at one buffer.
  struct Device {
    bool has_position = false;  // position_ns and next_sample are valid (absolute mode)
    int64_t position_ns = 0;    // the index it plays now, in its own sample space, as time
    uint64_t next_sample = 0;   // its index where the next frame written goes
    int64_t internal_ns = 0;    // its clock's time (settling; the relative mode's position)
    int64_t latency_ns = 0;     // the sink's latency plus render delay
    int64_t queue_ns = -1;      // what it holds (ring buffer, server queue); -1 unknown
  };

  // One buffer on the way to the device.
  struct Buffer {
    int64_t now_ns = 0;        // the shared (pipeline) clock's time
    int64_t base_ns = 0;       // the pipeline's base time
    int64_t content_ns = 0;    // running time of the buffer's content
    int64_t pts_ns = 0;        // its timestamp (where a new output timeline starts)
    bool discont = false;      // the content may jump here
    int64_t delay_ns = 0;      // this output's own delay
    const float* samples = nullptr;  // interleaved, `frames` frames
    size_t frames = 0;
  };

  // What to write.
  struct Block {
    size_t frames = 0;          // output frames in *out (0: all of it dropped by a step)
    int64_t pts_ns = 0;         // on the output timeline
    int64_t duration_ns = 0;
    bool discont = false;       // the sink must place it by its timestamp (after a gap)
    bool new_timeline = false;  // a new output timeline starts here
    // The absolute placement has held output_settle_ns: margin_ns is how far ahead of
    // what the device holds the stream runs (for the playout monitor).
    bool margin_valid = false;
    double margin_ns = 0;
  };

  OutputPlacer();
  explicit OutputPlacer(const Config& config);

  // The stream's format; forgets everything (as reset()).
  void configure(double rate, int channels);
  // A new stream, a flush, a new segment: a new output timeline at the next buffer.
  void reset();

  // Measures, controls, and writes `in`'s samples into *out (replaced). Needs
  // configure() first.
  Block process(const Device& device, const Buffer& in, std::vector<float>* out);

  // The output's delay changes by `delta_ns` (> 0: later) while it plays, without a
  // click and without touching the output timeline: the next process() fades its
  // buffer out at the end, and the buffer after it starts with that much silence
  // inserted (later) or content dropped (earlier), fading in. Pass the new delay in
  // Buffer::delay_ns from that buffer on; the running time the sink sees does not move
  // (a new timeline later is placed by the sink, then measured and stepped as at the
  // start). False when the output is not placed absolutely and tracking, or a step or
  // move is under way: the caller moves the running time instead (the sink re-places
  // the stream).
  bool move(int64_t delta_ns);

  // Running time of the content at output frame `frame` (extrapolated past the ends);
  // 0 before anything was written.
  double content_at(double frame) const;

  // Stats.
  double ratio() const { return drift_.ratio(); }
  const DriftController& drift() const { return drift_; }
  const OutputAligner& aligner() const { return aligner_; }
  bool absolute() const { return absolute_; }  // the last observation was absolute
  bool output_measured() const { return output_measured_; }
  double phase_error_us() const { return phase_error_us_; }
  double heard_error_us() const { return heard_error_us_; }
  uint64_t resyncs() const { return resyncs_; }
  uint64_t phase_steps() const { return phase_steps_; }
  int64_t last_step_frames() const { return last_step_; }
  uint64_t timelines() const { return timeline_restarts_; }
  uint64_t written_frames() const { return written_frames_; }
  uint64_t moves() const { return moves_; }  // delay changes made as faded steps

 private:
  struct Record {
    uint64_t frame;  // first output frame of the buffer
    double rt;       // running time of its content
    double ratio;    // output frames per input frame
  };

  void start_anchor();
  void reset_loop();
  // False when a jump could not be placed (the loop started over).
  bool observe_absolute(const Device& device, const Buffer& in, bool jumped, double* err_ns,
                        bool* have_error, Block* block);
  void observe_relative(const Device& device, const Buffer& in, double* err_ns,
                        bool* have_error);
  // Resamples by the drift ratio into *out, first applying a pending step; returns
  // the running-time shift of the content written first (+ for dropped frames).
  double render(const Buffer& in, std::vector<float>* out, size_t* out_frames);

  Config config_;
  double rate_ = 48000.0;
  int channels_ = 2;
  DriftController drift_;
  OutputAligner aligner_;
  std::unique_ptr<FractionalResampler> resampler_;
  std::vector<float> scratch_;

  uint64_t written_frames_ = 0;
  std::deque<Record> records_;
  int64_t records_base_ = -1;  // base time the records' content is on
  int64_t pending_step_ = 0;   // > 0: frames to insert, < 0: frames to drop
  // Output frames to leave empty before the next buffer (content that jumped, placed
  // by the aligner): the timeline skips them, and the buffer after the gap is marked
  // discont so that the sink puts it there rather than right after the last.
  int64_t pending_gap_ = 0;
  bool gap_discont_ = false;
  bool timeline_valid_ = false;
  int64_t timeline_pts0_ = 0;
  uint64_t timeline_frame0_ = 0;
  uint64_t timeline_restarts_ = 0;
  int64_t last_step_ = 0;
  // move(): the next process() fades out and then steps by move_frames_.
  bool move_pending_ = false;
  int64_t move_frames_ = 0;
  bool fade_in_pending_ = false;  // a step's splice: the next frames written fade in
  uint64_t moves_ = 0;

  int anchor_count_ = 0;
  double anchor_sum_ = 0;
  double anchor_rel_ = 0;  // content minus clock at the anchor, ns
  bool last_error_valid_ = false;
  double last_error_ns_ = 0;
  uint64_t phase_steps_ = 0;
  uint64_t resyncs_ = 0;

  bool absolute_ = false;
  double phase_error_us_ = 0;
  double heard_error_us_ = 0;
  int64_t placed_since_ = -1;  // the aligner has tracked since then
  bool output_measured_ = false;
};

}  // namespace syncwave
