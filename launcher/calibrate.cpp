// SPDX-License-Identifier: LGPL-2.1-or-later
// `syncwave-launch calibrate`: the runtime (calibrate.h draws the flow).
#include "calibrate.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "calibration.h"
#include "calibration_plan.h"
#include "discovery.h"
#include "discovery_session.h"
#include "pipeline_builder.h"
#ifdef SYNCWAVE_HAVE_CONTROL
#include "control_session.h"
#endif

namespace syncwave {
namespace launcher {

namespace {

constexpr double kFindReceiversTimeoutS = 3.0;
// How long the receivers get to lock to this clock and report "synced".
constexpr double kSyncTimeoutS = 12.0;
// How long a receiver must have been synced before it is measured: two reports in a
// row (they come once a second).
constexpr double kSettleS = 0.8;
// How long a receiver gets to report the delay it was sent.
constexpr double kConfirmTimeoutS = 3.0;
constexpr int kRate = kSampleRate;

int fail(const std::string& message) {
  std::fprintf(stderr, "syncwave-launch: %s\n", message.c_str());
  return kExitRuntimeError;
}

// Iterates the default main context (the control socket, discovery) until `done` or
// `timeout_s`; true when `done` said so.
bool pump_until(const std::function<bool()>& done, double timeout_s) {
  const gint64 end = g_get_monotonic_time() + static_cast<gint64>(timeout_s * 1e6);
  while (!done()) {
    if (g_get_monotonic_time() >= end) return false;
    while (g_main_context_pending(nullptr)) g_main_context_iteration(nullptr, FALSE);
    g_usleep(10000);
  }
  return true;
}

// What one receiver's stream plays: its probes, each starting at a running time.
struct ProbeTrack {
  std::mutex lock;
  std::vector<GstClockTime> starts;  // running time of each probe's first sample
};

struct ProbeWriter {
  const LogSweep* probe = nullptr;
  ProbeTrack* track = nullptr;
};

// audiotestsrc wave=silence's buffers, stamped with their running time: the probe's
// samples written in where a probe is due (every channel the same).
GstPadProbeReturn write_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* w = static_cast<ProbeWriter*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf || !GST_BUFFER_PTS_IS_VALID(buf)) return GST_PAD_PROBE_OK;
  const GstClockTime pts = GST_BUFFER_PTS(buf);
  const size_t frames = gst_buffer_get_size(buf) / (sizeof(float) * kChannels);
  const std::vector<float>& samples = w->probe->samples();
  const GstClockTime span = gst_util_uint64_scale(frames, GST_SECOND, kRate);
  const GstClockTime length = gst_util_uint64_scale(samples.size(), GST_SECOND, kRate);
  std::lock_guard<std::mutex> guard(w->track->lock);
  for (GstClockTime start : w->track->starts) {
    if (start >= pts + span || start + length <= pts) continue;
    buf = gst_buffer_make_writable(buf);
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_WRITE)) continue;
    float* out = reinterpret_cast<float*>(map.data);
    // Sample i of the buffer is at pts + i/rate; the probe's sample k at start + k/rate.
    const double first =
        (static_cast<double>(pts) - static_cast<double>(start)) * kRate / GST_SECOND;
    for (size_t i = 0; i < frames; i++) {
      const long k = std::lround(first + static_cast<double>(i));
      if (k < 0 || k >= static_cast<long>(samples.size())) continue;
      for (int c = 0; c < kChannels; c++) out[i * kChannels + c] = samples[static_cast<size_t>(k)];
    }
    gst_buffer_unmap(buf, &map);
  }
  return GST_PAD_PROBE_OK;
}

// The microphone: mono samples placed by the running time of their buffers.
struct Recording {
  std::mutex lock;
  std::vector<float> samples;
  GstClockTime start = GST_CLOCK_TIME_NONE;  // running time of samples[0]
  size_t jumps = 0;                          // buffers placed by their time, not after the last

  void add(GstClockTime pts, const float* data, size_t n) {
    std::lock_guard<std::mutex> guard(lock);
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return;
    if (!GST_CLOCK_TIME_IS_VALID(start)) start = pts;
    if (pts < start) return;
    // Contiguous unless the buffer's time is more than 2 ms off where it would go
    // (a capture overrun lost samples): then it goes where its time says.
    const double at = static_cast<double>(pts - start) * kRate / GST_SECOND;
    size_t index = samples.size();
    if (std::abs(at - static_cast<double>(index)) > 0.002 * kRate) {
      index = static_cast<size_t>(std::llround(at));
      jumps++;
    }
    if (samples.size() < index + n) samples.resize(index + n, 0.0f);
    std::copy(data, data + n, samples.begin() + static_cast<long>(index));
  }
};

GstFlowReturn on_mic_sample(GstAppSink* sink, gpointer data) {
  GstSample* sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstBuffer* buf = gst_sample_get_buffer(sample);
  GstSegment* segment = gst_sample_get_segment(sample);
  GstMapInfo map;
  if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
    const GstClockTime running =
        gst_segment_to_running_time(segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    static_cast<Recording*>(data)->add(running, reinterpret_cast<const float*>(map.data),
                                       map.size / sizeof(float));
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

struct Destination {
  std::string name;
  std::string host;
  int port = 0;
};

std::string pipeline_description(const Options& options, const std::vector<Destination>& targets) {
  const CalibrateOptions& k = options.calibrate;
  std::string d;
  for (size_t i = 0; i < targets.size(); i++) {
    const std::string n = std::to_string(i);
    // Raw float32 as `send --codec=raw` sends it (a header every half second); the
    // first stream serves the clock the receivers lock to (clock=auto).
    d += "audiotestsrc name=probe" + n +
         " is-live=true wave=silence samplesperbuffer=480 ! audio/x-raw,format=F32LE,"
         "layout=interleaved,rate=" +
         std::to_string(kRate) + ",channels=" + std::to_string(kChannels) +
         " ! syncwavepay name=pay" + n +
         " header-interval=150 time-provider-port=" + std::to_string(i == 0 ? k.clock_port : 0) +
         " ! udpsink name=net" + n + " host=" + gst_quote(targets[i].host) +
         " port=" + std::to_string(targets[i].port) + " sync=false async=false ";
  }
  // provide-clock=false: the pipeline runs on the system clock, as `send` does, and the
  // microphone's buffers are stamped on it.
  d += "pulsesrc name=mic provide-clock=false";
  if (!k.microphone.empty()) d += " device=" + gst_quote(k.microphone);
  d += " ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,layout=interleaved,rate=" +
       std::to_string(kRate) + ",channels=1 ! appsink name=rec sync=false emit-signals=true";
  return d;
}

// An error or warning on the bus, as one sentence (nullptr: none).
std::string bus_error(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string text;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    if (text.empty()) {
      text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) + ": " + (err ? err->message : "?");
    }
    g_clear_error(&err);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

GstClockTime running_now(GstElement* pipeline) {
  GstClock* clock = gst_element_get_clock(pipeline);
  if (!clock) return 0;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(pipeline);
  return now > base ? now - base : 0;
}

}  // namespace

int run_calibrate(const Options& options) {
  const CalibrateOptions& k = options.calibrate;
  const bool quiet = options.common.quiet;
  const gint64 t_begin = g_get_monotonic_time();
#ifndef SYNCWAVE_HAVE_CONTROL
  (void)quiet, (void)t_begin;
  return fail(
      "This syncwave-launch was built without the control surface (libsoup-3.0): calibrate "
      "needs its back channel to hear the receivers and set their delays.");
#else
  // 1. The receivers and their addresses.
  std::vector<Destination> targets;
  bool need_discovery = k.receivers.empty();
  for (const CalibrateTarget& t : k.receivers)
    need_discovery = need_discovery || t.address.host.empty();
  std::vector<Peer> found;
  if (need_discovery) {
    std::string problem;
    std::unique_ptr<Discovery> d = make_discovery(&problem);
    if (!d)
      return fail(problem +
                  " Without discovery give each receiver's address: "
                  "--receiver=NAME@HOST:PORT.");
    found = find_receivers(d.get(), kFindReceiversTimeoutS);
  }
  if (k.receivers.empty()) {
    for (const Peer& p : found)
      if (control::valid_name(p.name)) targets.push_back({p.name, p.address, p.port});
    if (targets.size() < 2)
      return fail("calibrate found " + std::to_string(targets.size()) +
                  " receiver(s) on the network, and needs at least two: are they running "
                  "('syncwave-launch list')? Or name them: --receiver=NAME@HOST:PORT.");
  } else {
    for (const CalibrateTarget& t : k.receivers) {
      Destination x{t.name, t.address.host, t.address.port ? t.address.port : k.port};
      if (x.host.empty()) {
        for (const Peer& p : found)
          if (p.name == t.name) x = {t.name, p.address, p.port};
        if (x.host.empty())
          return fail("No receiver called '" + t.name +
                      "' was found on the network: is it running ('syncwave-launch list')? "
                      "Or give its address: --receiver=" +
                      t.name + "@HOST:PORT.");
      }
      targets.push_back(x);
    }
  }
  size_t reference = 0;
  if (!k.reference.empty()) {
    bool known = false;
    for (size_t i = 0; i < targets.size(); i++)
      if (targets[i].name == k.reference) reference = i, known = true;
    if (!known) return fail("--reference='" + k.reference + "' is not one of the receivers found.");
  }

  // 2. The back channel: the receivers report here once they play this stream.
  ControlSession control(options);
  std::string error;
  if (!control.start(&error))
    return fail(error +
                " Is a sender running on this machine? calibrate takes its place: stop it.");

  // 3. The probe, its analysis and the pipeline.
  const LogSweep probe;
  AnalysisConfig analysis;
  ScheduleConfig schedule_config;
  schedule_config.repeats = static_cast<size_t>(k.repeats);
  const std::string description = pipeline_description(options, targets);
  if (options.common.verbose) std::fprintf(stderr, "Pipeline: %s\n", description.c_str());
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  if (!pipeline || err) {
    const std::string why = err ? err->message : "unknown error";
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    return fail("Cannot build the calibration pipeline (" + why +
                "): are GStreamer's pulseaudio and app plugins installed?");
  }
  std::vector<std::unique_ptr<ProbeTrack> > tracks;
  std::vector<std::unique_ptr<ProbeWriter> > writers;
  for (size_t i = 0; i < targets.size(); i++) {
    tracks.push_back(std::make_unique<ProbeTrack>());
    writers.push_back(std::make_unique<ProbeWriter>(ProbeWriter{&probe, tracks.back().get()}));
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline), ("probe" + std::to_string(i)).c_str());
    GstPad* pad = gst_element_get_static_pad(src, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, write_probe, writers.back().get(), nullptr);
    gst_object_unref(pad);
    gst_object_unref(src);
  }
  // --secret: the probes are sealed as `send --secret` seals, and its clock answers only
  // receivers with the secret. Set here, not in the description, which --verbose prints.
  if (!options.common.secret.empty()) {
    for (size_t i = 0; i < targets.size(); i++) {
      GstElement* pay = gst_bin_get_by_name(GST_BIN(pipeline), ("pay" + std::to_string(i)).c_str());
      g_object_set(pay, "secret", options.common.secret.c_str(), NULL);
      gst_object_unref(pay);
    }
  }
  Recording recording;
  GstElement* rec = gst_bin_get_by_name(GST_BIN(pipeline), "rec");
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = on_mic_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(rec), &callbacks, &recording, nullptr);
  gst_object_unref(rec);
  auto stop = [&]() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  };
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    const std::string why = bus_error(pipeline);
    stop();
    return fail("Cannot start the calibration (" + why +
                "): is PulseAudio or PipeWire running, and the microphone '" +
                (k.microphone.empty() ? std::string("default") : k.microphone) +
                "' a capture device ('syncwave-launch devices')?");
  }

  // 4. Every receiver playing this stream on this clock.
  if (!quiet)
    std::fprintf(stderr, "Waiting for %zu receivers to play the calibration stream...\n",
                 targets.size());
  // Synced in two reports in a row (kSettleS): a receiver that has just locked to this
  // clock still places its outputs (a step, then the drift loop pulls the rest in at up
  // to 1000 ppm); a sweep played meanwhile moves with it (a spread of 1.7 ms in one test
  // run).
  std::vector<gint64> synced_since(targets.size(), 0);
  auto synced = [&](size_t i) {
    const control::ReceiverReport* r = control.receiver(targets[i].name);
    if (!r || r->state != "synced") {
      synced_since[i] = 0;
      return false;
    }
    const gint64 now = g_get_monotonic_time();
    if (synced_since[i] == 0) synced_since[i] = now;
    return now - synced_since[i] >= static_cast<gint64>(kSettleS * 1e6);
  };
  auto recording_started = [&] {
    std::lock_guard<std::mutex> guard(recording.lock);
    return GST_CLOCK_TIME_IS_VALID(recording.start);
  };
  pump_until(
      [&] {
        if (!bus_error(pipeline).empty()) return true;
        // The microphone's first buffers can come after the receivers have synced.
        if (!recording_started()) return false;
        bool all = true;
        for (size_t i = 0; i < targets.size(); i++) all = synced(i) && all;
        return all;
      },
      kSyncTimeoutS);
  const std::string broken = bus_error(pipeline);
  if (!broken.empty()) {
    stop();
    return fail("The calibration stopped (" + broken + ").");
  }
  if (!recording_started()) {
    stop();
    return fail("The microphone '" +
                (k.microphone.empty() ? std::string("default") : k.microphone) +
                "' delivered nothing in " + std::to_string(static_cast<int>(kSyncTimeoutS)) +
                " s: is it a capture device ('syncwave-launch devices')?");
  }
  std::vector<CalibrationRow> rows(targets.size());
  std::vector<size_t> measured;  // indices into targets
  std::vector<int> latency_ms(targets.size(), 0);
  for (size_t i = 0; i < targets.size(); i++) {
    rows[i].name = targets[i].name;
    rows[i].dry_run = k.dry_run;
    const control::ReceiverReport* r = control.receiver(targets[i].name);
    if (!r) {
      rows[i].problem = "no report from it at " + targets[i].host + ":" +
                        std::to_string(targets[i].port) +
                        ": is it running there with --name=" + targets[i].name +
                        " and --control-port=" + std::to_string(k.control_port) +
                        ", and not playing another sender (stop it; no --from)?" +
                        (options.common.secret.empty()
                             ? " A receiver with --secret plays only a calibrate given it too."
                             : " Has it the same --secret?");
      continue;
    }
    if (r->state != "synced") {
      rows[i].problem = "it does not play in sync (" + r->state + ") after " +
                        std::to_string(static_cast<int>(kSyncTimeoutS)) +
                        " s: is its --clock the sender's (auto) and --clock-port " +
                        std::to_string(k.clock_port) + "?";
      continue;
    }
    rows[i].current_delay_ms = r->delay_ms;
    latency_ms[i] = r->latency_ms;
    measured.push_back(i);
  }

  // 5. The probes: receiver by receiver, each repeat; slot times are when they play.
  const ProbeSchedule schedule = plan_probes(measured.size(), probe, analysis, schedule_config);
  int most_ahead_ms = 0;  // the largest latency + delay: how far ahead a probe is written
  for (size_t i : measured)
    most_ahead_ms = std::max(most_ahead_ms, latency_ms[i] + rows[i].current_delay_ms);
  const GstClockTime t0 = running_now(pipeline) + 200 * GST_MSECOND +
                          static_cast<GstClockTime>(most_ahead_ms) * GST_MSECOND;
  auto play_time = [&](const ProbeSchedule::Slot& s) {
    return t0 + static_cast<GstClockTime>(s.start_s * GST_SECOND);
  };
  for (const ProbeSchedule::Slot& s : schedule.slots) {
    const size_t i = measured[s.receiver];
    const GstClockTimeDiff ahead =
        static_cast<GstClockTimeDiff>(latency_ms[i] + rows[i].current_delay_ms) * GST_MSECOND;
    std::lock_guard<std::mutex> guard(tracks[i]->lock);
    tracks[i]->starts.push_back(
        static_cast<GstClockTime>(static_cast<GstClockTimeDiff>(play_time(s)) - ahead));
  }
  if (!schedule.slots.empty()) {
    if (!quiet)
      std::fprintf(stderr, "Measuring %zu receivers, %d times each (%.1f s)...\n", measured.size(),
                   k.repeats, schedule.duration_s);
    // The microphone's buffers arrive a capture period (and its latency) after.
    const GstClockTime end =
        t0 + static_cast<GstClockTime>(schedule.duration_s * GST_SECOND) + 300 * GST_MSECOND;
    pump_until([&] { return running_now(pipeline) >= end || !bus_error(pipeline).empty(); },
               schedule.duration_s + 5);
  }

  // 6. Where each probe arrived.
  std::vector<float> mic;
  GstClockTime mic_start = GST_CLOCK_TIME_NONE;
  {
    std::lock_guard<std::mutex> guard(recording.lock);
    mic = recording.samples;
    mic_start = recording.start;
  }
  if (options.common.verbose)
    std::fprintf(stderr,
                 "  microphone: %.3f s recorded from running time %.3f s (%zu jumps), probes "
                 "from %.3f s\n",
                 static_cast<double>(mic.size()) / kRate,
                 GST_CLOCK_TIME_IS_VALID(mic_start) ? mic_start / 1e9 : -1.0, recording.jumps,
                 t0 / 1e9);
  std::vector<std::vector<Arrival> > arrivals(targets.size());
  for (const ProbeSchedule::Slot& s : schedule.slots) {
    const size_t i = measured[s.receiver];
    const double offset_s =
        GST_CLOCK_TIME_IS_VALID(mic_start)
            ? (static_cast<double>(play_time(s)) - static_cast<double>(mic_start)) / GST_SECOND
            : 0.0;
    Arrival a = mic.empty() ? Arrival{Verdict::kNoRecording}
                            : measure_arrival(probe, mic.data(), mic.size(), offset_s, analysis);
    if (options.common.verbose)
      std::fprintf(stderr, "  %s #%zu: %s %.3f ms (peak %.1f dB over the noise)\n",
                   targets[i].name.c_str(), s.repeat + 1, verdict_name(a.verdict), a.delay_s * 1000,
                   a.peak_to_noise_db);
    arrivals[i].push_back(a);
  }
  std::vector<ReceiverDelay> inputs;
  for (size_t i : measured) {
    rows[i].measurement = combine_repeats(arrivals[i]);
    rows[i].acoustic_delay_s = rows[i].measurement.delay_s;
    if (!std::isfinite(rows[i].acoustic_delay_s) && rows[i].measurement.ok > 0) {
      std::vector<double> ok;
      for (const Arrival& a : arrivals[i])
        if (a.verdict == Verdict::kOk) ok.push_back(a.delay_s);
      std::sort(ok.begin(), ok.end());
      rows[i].acoustic_delay_s = ok[ok.size() / 2];
    }
    ReceiverDelay in;
    in.name = targets[i].name;
    in.measurement = rows[i].measurement;
    // align_delays' arrivals are after the time the probe plays at delay 0.
    in.measurement.delay_s += rows[i].current_delay_ms / 1000.0;
    in.current_delay_ms = rows[i].current_delay_ms;
    in.min_delay_ms = -latency_ms[i];
    in.max_delay_ms = control::kMaxDelayMs;
    inputs.push_back(in);
  }
  size_t ref_index = 0;
  bool ref_measured = k.reference.empty();
  for (size_t j = 0; j < measured.size(); j++)
    if (measured[j] == reference) ref_index = j, ref_measured = true;
  std::vector<DelayPlan> plans;
  if (ref_measured) {
    plans =
        align_delays(inputs, k.reference.empty() ? Target::kLatest : Target::kReference, ref_index);
  } else {
    plans.assign(inputs.size(), DelayPlan{Change::kNoReference});
  }
  for (size_t j = 0; j < measured.size(); j++) rows[measured[j]].plan = plans[j];

  // 7. The delays, through the back channel; each receiver keeps it in its config.
  if (!k.dry_run) {
    for (size_t i : measured) {
      if (rows[i].plan.change != Change::kApplied) continue;
      control::ChangeRequest change;
      change.delay_ms = rows[i].plan.new_delay_ms;
      std::string why;
      if (!control.send_change(targets[i].name, change, &why))
        rows[i].problem = "the new delay could not be sent (" + why + ")";
    }
    pump_until(
        [&] {
          bool all = true;
          for (size_t i : measured) {
            if (rows[i].plan.change != Change::kApplied || !rows[i].problem.empty()) continue;
            const control::ReceiverReport* r = control.receiver(targets[i].name);
            rows[i].confirmed = r && r->delay_ms == rows[i].plan.new_delay_ms;
            all = all && rows[i].confirmed;
          }
          return all;
        },
        kConfirmTimeoutS);
  }
  stop();
  std::printf("%s", format_calibration_table(rows).c_str());
  if (!quiet)
    std::fprintf(stderr, "Calibrated in %.1f s%s.\n", (g_get_monotonic_time() - t_begin) / 1e6,
                 k.dry_run ? " (dry run: no delay was changed)" : "");
  bool all_ok = true;
  for (const CalibrationRow& r : rows)
    all_ok = all_ok && r.problem.empty() &&
             (r.plan.change == Change::kApplied || r.plan.change == Change::kUnchanged) &&
             (k.dry_run || r.plan.change != Change::kApplied || r.confirmed);
  return all_ok ? kExitOk : kExitRuntimeError;
#endif
}

}  // namespace launcher
}  // namespace syncwave
