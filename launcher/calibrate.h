// SPDX-License-Identifier: LGPL-2.1-or-later
// `syncwave-launch calibrate` (issue 15, docs/launcher.md): measures each receiver's
// acoustic delay with a microphone and sets its delay so that all arrive together.
//
//   receivers: --receiver=NAME@HOST:PORT, or found by discovery
//        │
//        ▼  one pipeline on the system clock, which receivers share (clock=auto)
//   audiotestsrc wave=silence ─► (probe written in by a pad probe) ─► syncwavepay ─► udpsink
//        one such stream per receiver, to its own address: its sweep, the others silent
//   pulsesrc (the microphone, provide-clock=false) ─► appsink: samples and running times
//        │
//        ▼  control back channel (control_session.h): reports give each receiver's
//           latency and delay; plan_probes() places the sweeps; measure_arrival() per
//           probe; combine_repeats(); align_delays(); a {"delay_ms"} change per receiver
//   table on stdout: receiver, acoustic delay, spread, delay applied
//
// Every time is on one pipeline clock: a probe written at running time P is played by
// its receiver at P + latency + delay (the sender's stamps, the shared clock), and the
// microphone's buffers carry the running time they were captured at. So arrivals of
// different receivers are comparable; the microphone's own capture latency is common
// to all of them and cancels in the delays applied (docs/synchronization.md §7).
//
// The formatting of the table is plain (format_calibration_table) and unit-tested; the
// rest is the runtime.
#pragma once

#include <string>
#include <vector>

#include "calibration_plan.h"
#include "options.h"

namespace syncwave {
namespace launcher {

// One line of the table.
struct CalibrationRow {
  std::string name;
  std::string problem;  // not empty: the receiver was not measured (not reached, ...)
  ReceiverMeasurement measurement;
  double acoustic_delay_s = 0;  // measurement.delay_s: after its scheduled play time
  DelayPlan plan;
  int current_delay_ms = 0;
  bool dry_run = false;
  bool confirmed = false;  // the receiver reported the new delay
};

// The table printed at the end, one line per receiver and the reasons after it.
std::string format_calibration_table(const std::vector<CalibrationRow>& rows);

// Runs the command; returns the exit code.
int run_calibrate(const Options& options);

}  // namespace launcher
}  // namespace syncwave
