// SPDX-License-Identifier: LGPL-2.1-or-later
// `receive --record=FILE`: the recording chain the launcher builds, fed what the
// receive chain can give it. After a discontinuity of the sender's stamps the
// depayloader restarts the timeline, possibly before the previous buffer ended
// (gstsyncwavedepay.cpp); an audio sink copes, an encoder refused it ("buffer going too
// far back in time": a loaded receiver's FLAC and Ogg recordings came out empty). The
// chain must write one contiguous file: the overlap dropped, nothing twice.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "options.h"
#include "pipeline_builder.h"

using namespace syncwave::launcher;

namespace {

constexpr int kRate = 48000;
constexpr int kFramesPerBuffer = 480;  // 10 ms

// The chain inside audio-sink="..." of `receive --silent --record=PATH`.
std::string record_chain(const std::string& path) {
  Options o;
  o.command = Command::kReceive;
  std::string error;
  EXPECT_TRUE(apply_option(o, "silent", "", &error)) << error;
  EXPECT_TRUE(apply_option(o, "record", path, &error)) << error;
  BuildEnvironment env;
  std::string d;
  EXPECT_TRUE(build_pipeline(o, env, nullptr, &d, &error)) << error;
  const size_t at = d.find("audio-sink=\"");
  if (at == std::string::npos) return "";
  const size_t begin = at + 12;
  const size_t end = d.rfind('"');
  return end > begin ? d.substr(begin, end - begin) : "";
}

GstBuffer* tone(GstClockTime pts, bool discont, uint64_t first_frame) {
  std::vector<float> s(kFramesPerBuffer * 2);
  for (int i = 0; i < kFramesPerBuffer; i++)
    s[2 * i] = s[2 * i + 1] =
        0.5f * static_cast<float>(std::sin(2 * M_PI * 440.0 * (first_frame + i) / kRate));
  GstBuffer* b = gst_buffer_new_memdup(s.data(), s.size() * sizeof(float));
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = 10 * GST_MSECOND;
  if (discont) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
  return b;
}

// Runs `pipeline` to EOS; returns the first error ("" for none).
std::string run_to_eos(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND,
                                             (GstMessageType)(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  std::string error = m ? "" : "no EOS within 20 s";
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    error = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) + ": " + (e ? e->message : "?");
    g_clear_error(&e);
  }
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  return error;
}

// Frames in the file, decoded.
int64_t decoded_frames(const std::string& path, std::string* error) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(
      ("filesrc location=" + path +
       " ! decodebin ! audioconvert ! audio/x-raw,format=F32LE,channels=2 ! appsink name=out "
       "sync=false")
          .c_str(),
      &err);
  if (!p) {
    *error = err ? err->message : "cannot decode";
    g_clear_error(&err);
    return -1;
  }
  GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  int64_t frames = 0;
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 10 * GST_SECOND)) {
    frames += gst_buffer_get_size(gst_sample_get_buffer(s)) / 8;
    gst_sample_unref(s);
  }
  *error = run_to_eos(p);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(out);
  gst_object_unref(p);
  return frames;
}

class RecordChain : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    gchar* d = g_dir_make_tmp("syncwave-record-XXXXXX", nullptr);
    dir_ = d;
    g_free(d);
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  std::string dir_;
};

}  // namespace

TEST_P(RecordChain, ATimelineThatRestartsEarlierIsRecordedOnce) {
  const std::string ext = GetParam();
  for (const char* element : {"flacenc", "vorbisenc", "wavenc", "audiorate"}) {
    GstElementFactory* f = gst_element_factory_find(element);
    if (!f) GTEST_SKIP() << element << " missing";
    gst_object_unref(f);
  }
  const std::string path = dir_ + "/rec." + ext;
  const std::string chain = record_chain(path);
  ASSERT_NE(chain.find("filesink"), std::string::npos) << chain;
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(
      ("appsrc name=src format=time caps=audio/x-raw,format=F32LE,layout=interleaved,rate=48000,"
       "channels=2 ! " +
       chain)
          .c_str(),
      &err);
  ASSERT_NE(p, nullptr) << (err ? err->message : "") << "\n" << chain;
  g_clear_error(&err);
  GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
  ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  // 0..200 ms, then a timeline that restarts 65 ms earlier (DISCONT) and runs to 335 ms.
  uint64_t frame = 0;
  for (int i = 0; i < 20; i++, frame += kFramesPerBuffer)
    gst_app_src_push_buffer(GST_APP_SRC(src), tone(i * 10 * GST_MSECOND, i == 0, frame));
  for (int i = 0; i < 20; i++, frame += kFramesPerBuffer)
    gst_app_src_push_buffer(GST_APP_SRC(src),
                            tone(135 * GST_MSECOND + i * 10 * GST_MSECOND, i == 0, frame));
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  EXPECT_EQ(run_to_eos(p), "") << chain;
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(p);

  std::string error;
  const int64_t frames = decoded_frames(path, &error);
  ASSERT_EQ(error, "") << path;
  // 335 ms of timeline, the 65 ms overlap once (an encoder's framing: a few ms).
  const double ms = frames * 1000.0 / kRate;
  std::printf("%s: %.1f ms recorded\n", ext.c_str(), ms);
  EXPECT_GT(ms, 320.0);
  EXPECT_LT(ms, 350.0);
}

INSTANTIATE_TEST_SUITE_P(Formats, RecordChain, ::testing::Values("flac", "ogg", "wav"));
