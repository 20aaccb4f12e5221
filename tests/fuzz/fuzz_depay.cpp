// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: syncwavedepay through GstHarness. The input is a script of
// datagrams (headers, audio with honest or lying fields, garbage) interleaved with
// the events a real upstream sends: loss events (well-formed or not), DISCONT
// buffers, flushes, new segments. Every output is pulled and dropped. Finds
// crashes, out-of-bounds reads, UB, leaks and hangs.

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <cstdint>

#include "fuzz_gst_common.h"
#include "syncwave-lost-event.h"

using namespace syncwave::fuzz;

namespace {

// syncwavejitter, the only upstream that sends loss events, reports at most 500 ms
// per event; the fuzzer goes to 2 s, and a few malformed events.
GstEvent* lost_event(Reader& in, uint64_t ts_us) {
  const uint8_t shape = in.u8();
  const uint64_t dur = static_cast<uint64_t>(in.u16() % 2001) * GST_MSECOND;
  GstStructure* s = nullptr;
  switch (shape % 4) {
    case 0:
    case 1:
      s = gst_structure_new(SYNCWAVE_LOST_EVENT_NAME, "timestamp-us", G_TYPE_UINT64, ts_us,
                            "duration", G_TYPE_UINT64, dur, "pts", G_TYPE_UINT64,
                            static_cast<guint64>(GST_CLOCK_TIME_NONE), nullptr);
      break;
    case 2:  // missing fields
      s = gst_structure_new(SYNCWAVE_LOST_EVENT_NAME, "duration", G_TYPE_UINT64, dur, nullptr);
      break;
    default:  // wrong types
      s = gst_structure_new(SYNCWAVE_LOST_EVENT_NAME, "timestamp-us", G_TYPE_STRING, "x",
                            "duration", G_TYPE_INT, -1, nullptr);
      break;
  }
  return gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, s);
}

void drain(GstHarness* h) {
  while (GstBuffer* b = gst_harness_try_pull(h)) gst_buffer_unref(b);
  while (GstEvent* e = gst_harness_try_pull_event(h)) gst_event_unref(e);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_gstreamer("syncwavedepay");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  GstHarness* h = gst_harness_new("syncwavedepay");
  gst_harness_set_src_caps_str(h, "application/x-syncwave");
  DatagramScript script(1700000000000000ull);
  GstClockTime now = 0;
  int steps = 0;
  int losses = 0;
  while (!in.empty() && steps++ < 2000) {
    const uint8_t op = in.u8();
    now += static_cast<GstClockTime>(op >> 3) * GST_MSECOND;
    switch (op & 0x7) {
      case 0: {
        // Bounded: a 64-channel 384 kHz concealment is 24 MB; hundreds per input only
        // measure memset speed.
        if (losses++ < 16) gst_harness_push_event(h, lost_event(in, script.next_ts_us()));
        break;
      }
      case 1: {
        gst_harness_push_event(h, gst_event_new_flush_start());
        gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
        GstSegment seg;
        gst_segment_init(&seg, GST_FORMAT_TIME);
        gst_harness_push_event(h, gst_event_new_segment(&seg));
        break;
      }
      default: {
        GstBuffer* buf = buffer_from(script.next(in));
        GST_BUFFER_PTS(buf) = (op & 0x7) == 7 ? GST_CLOCK_TIME_NONE : now;
        GST_BUFFER_DTS(buf) = GST_BUFFER_PTS(buf);
        if ((op & 0x7) == 6) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
        gst_harness_push(h, buf);  // GstFlowReturn ignored: errors are legitimate
        break;
      }
    }
    drain(h);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  drain(h);
  gst_harness_teardown(h);
  return 0;
}
