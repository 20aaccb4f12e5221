// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: syncwavejitter through GstHarness with a GstTestClock. The
// first input byte picks latency and mode; the rest is a script of datagrams with
// arbitrary arrival times (the op byte's high bits advance the test clock), loss of
// order, duplicates (a datagram resent), restarts, garbage, flushes. Due clock waits
// are released after every step; every output is pulled and dropped.

#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_gst_common.h"

using namespace syncwave::fuzz;

namespace {

void drain(GstHarness* h) {
  while (GstBuffer* b = gst_harness_try_pull(h)) gst_buffer_unref(b);
  while (GstEvent* e = gst_harness_try_pull_event(h)) gst_event_unref(e);
}

// Releases every clock wait that is due at the test clock's current time. The
// element's thread may still be on its way to its next wait: give it a few yields,
// never a sleep, so that an input costs microseconds, not milliseconds.
void release_due(GstHarness* h) {
  GstTestClock* tc = gst_harness_get_testclock(h);
  for (int i = 0; i < 64; i++) {
    bool pending = false;
    for (int y = 0; y < 4 && !pending; y++) {
      pending = gst_test_clock_peek_id_count(tc) > 0;
      if (!pending) g_thread_yield();
    }
    if (!pending) break;
    GstClockID id = gst_test_clock_process_next_clock_id(tc);
    if (!id) break;
    gst_clock_id_unref(id);
  }
  gst_object_unref(tc);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_gstreamer("syncwavejitter");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t config = in.u8();
  GstHarness* h = gst_harness_new("syncwavejitter");
  const std::string latency = std::to_string(5 + (config & 0x3f) * 5);
  gst_util_set_object_arg(G_OBJECT(h->element), "latency", latency.c_str());
  gst_util_set_object_arg(G_OBJECT(h->element), "mode", (config & 0x40) ? "slave" : "synced");
  gst_harness_use_testclock(h);
  gst_harness_set_src_caps_str(h, "application/x-syncwave");
  // In synced mode the pipeline clock reads the sender's timebase: start near it.
  GstClockTime now = (config & 0x80) ? 0 : 1700000000000000ull * 1000;
  gst_harness_set_time(h, now);
  DatagramScript script(1700000000000000ull);
  std::vector<uint8_t> last;
  int steps = 0;
  while (!in.empty() && steps++ < 1000) {
    const uint8_t op = in.u8();
    now += static_cast<GstClockTime>(op >> 3) * GST_MSECOND;
    gst_harness_set_time(h, now);
    switch (op & 0x7) {
      case 0:
        release_due(h);
        break;
      case 1: {
        gst_harness_push_event(h, gst_event_new_flush_start());
        gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
        GstSegment seg;
        gst_segment_init(&seg, GST_FORMAT_TIME);
        gst_harness_push_event(h, gst_event_new_segment(&seg));
        break;
      }
      case 2:  // resend the previous datagram: a duplicate
        if (!last.empty()) {
          GstBuffer* buf = buffer_from(last);
          GST_BUFFER_DTS(buf) = GST_BUFFER_PTS(buf) = now;
          gst_harness_push(h, buf);
        }
        break;
      default: {
        last = script.next(in);
        GstBuffer* buf = buffer_from(last);
        GST_BUFFER_DTS(buf) = GST_BUFFER_PTS(buf) = (op & 0x7) == 7 ? GST_CLOCK_TIME_NONE : now;
        gst_harness_push(h, buf);
        break;
      }
    }
    release_due(h);
    drain(h);
  }
  // Let everything held fall due, then end the stream.
  now += 2 * GST_SECOND;
  gst_harness_set_time(h, now);
  release_due(h);
  gst_harness_push_event(h, gst_event_new_eos());
  drain(h);
  gst_harness_teardown(h);
  return 0;
}
