// SPDX-License-Identifier: LGPL-2.1-or-later
// Small GStreamer helpers shared by the integration tests (header-only, so that
// tests/common's library stays free of GStreamer).
#pragma once

#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>

namespace syncwave_test {

// gst_init once per test binary, before any test runs.
class GstEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
inline const auto* const kGstEnvironment = ::testing::AddGlobalTestEnvironment(new GstEnvironment);

// Whether an element factory is installed.
inline bool have(const char* factory) {
  GstElementFactory* f = gst_element_factory_find(factory);
  if (f) gst_object_unref(f);
  return f != nullptr;
}

// gst_parse_launch, failing the test with the parser's message.
inline GstElement* launch(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (err) {
    ADD_FAILURE() << desc << ": " << err->message;
    g_error_free(err);
  }
  return p;
}

// Plays a pipeline whose clock needs a startup sync (syncwavesink clock=net://...) as an
// application that does not handle CLOCK_LOST does: PAUSED, wait until the clock the
// pipeline will select is synchronized, then PLAYING. (syncwavesink never blocks a state
// change for its clock; it posts CLOCK_LOST when a clock syncs after it was selected.)
inline GstStateChangeReturn play_when_clock_synced(GstElement* pipe,
                                                   GstClockTime timeout = 5 * GST_SECOND) {
  if (gst_element_set_state(pipe, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE)
    return GST_STATE_CHANGE_FAILURE;
  if (GstClock* c = gst_element_provide_clock(pipe)) {
    if (GST_OBJECT_FLAG_IS_SET(c, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC))
      gst_clock_wait_for_sync(c, timeout);
    gst_object_unref(c);
  }
  return gst_element_set_state(pipe, GST_STATE_PLAYING);
}

// Waits for EOS or an error on the pipeline's bus; true on EOS.
inline bool wait_eos(GstElement* pipeline, GstClockTime timeout) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_timed_pop_filtered(
      bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool eos = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (m && !eos) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    ADD_FAILURE() << "pipeline error: " << e->message;
    g_error_free(e);
  }
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  return eos;
}

// A guint64 field of an element's `stats` structure (0 when absent).
inline guint64 stat(GstElement* e, const char* field) {
  GstStructure* s = nullptr;
  g_object_get(e, "stats", &s, NULL);
  guint64 v = 0;
  if (s) {
    gst_structure_get_uint64(s, field, &v);
    gst_structure_free(s);
  }
  return v;
}

}  // namespace syncwave_test
