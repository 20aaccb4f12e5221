// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwave-launch's plain logic: option validation, the command line, the config
// file, presets and templates, pipeline strings, device selection and the stats
// output. No GStreamer runtime, no processes.

#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "calibrate.h"
#include "command_line.h"
#include "config_file.h"
#include "device_list.h"
#include "options.h"
#include "pipeline_builder.h"
#include "preset.h"
#include "status_format.h"

using namespace syncwave::launcher;

namespace {

Options options_for(Command c, const Assignments& assignments, std::string* error = nullptr) {
  Options o;
  o.command = c;
  std::string err;
  for (const Assignment& a : assignments) {
    if (!apply_option(o, a.first, a.second, &err)) {
      ADD_FAILURE() << "--" << a.first << "=" << a.second << ": " << err;
    }
  }
  if (error) *error = err;
  return o;
}

std::string apply_error(Command c, const std::string& name, const std::string& value) {
  Options o;
  o.command = c;
  std::string err;
  EXPECT_FALSE(apply_option(o, name, value, &err)) << name << "=" << value;
  return err;
}

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1))
    n++;
  return n;
}

std::string build(const Options& o, const BuildEnvironment& env = BuildEnvironment{},
                  const Preset* preset = nullptr) {
  std::string description, error;
  EXPECT_TRUE(build_pipeline(o, env, preset, &description, &error)) << error;
  return description;
}

class TempDir {
 public:
  TempDir() {
    gchar* d = g_dir_make_tmp("syncwave-launcher-XXXXXX", nullptr);
    path_ = d;
    g_free(d);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    if (system(cmd.c_str()) != 0) {
    }
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// ---------------------------------------------------------------- options

TEST(LauncherOptions, DefaultsMatchTheDocumentation) {
  Options o;
  o.command = Command::kSend;
  EXPECT_EQ(o.send.source, SourceKind::kLoopback);
  EXPECT_EQ(o.send.codec, Codec::kOpus);
  EXPECT_EQ(o.send.bitrate_kbps, 128);
  EXPECT_EQ(o.send.frame_ms, 10.0);
  EXPECT_EQ(o.send.port, 5555);
  EXPECT_EQ(o.send.clock_port, 5556);
  EXPECT_EQ(o.receive.port, 5555);
  EXPECT_EQ(o.receive.latency_ms, 60);
  EXPECT_EQ(o.receive.clock, "auto");
  ASSERT_EQ(o.receive.outputs.size(), 1u);
  EXPECT_FALSE(o.receive.outputs[0].named);
}

TEST(LauncherOptions, SendValuesAreParsed) {
  Options o = options_for(Command::kSend, {{"source", "device:alsa_input.usb-mic"},
                                           {"codec", "raw"},
                                           {"bitrate", "64"},
                                           {"frame-ms", "2.5"},
                                           {"target", "10.0.0.2"},
                                           {"target", "kitchen.local:6000"},
                                           {"target", "[::1]:7000"},
                                           {"multicast", "239.255.0.1:5600"},
                                           {"ttl", "4"},
                                           {"port", "6001"},
                                           {"clock-port", "0"},
                                           {"broadcast", ""}});
  EXPECT_EQ(o.send.source, SourceKind::kDevice);
  EXPECT_EQ(o.send.source_arg, "alsa_input.usb-mic");
  EXPECT_EQ(o.send.codec, Codec::kRaw);
  EXPECT_EQ(o.send.bitrate_kbps, 64);
  EXPECT_EQ(o.send.frame_ms, 2.5);
  ASSERT_EQ(o.send.targets.size(), 3u);
  EXPECT_EQ(o.send.targets[0], (Endpoint{"10.0.0.2", 0}));
  EXPECT_EQ(o.send.targets[1], (Endpoint{"kitchen.local", 6000}));
  EXPECT_EQ(o.send.targets[2], (Endpoint{"::1", 7000}));
  EXPECT_EQ(o.send.multicast, (Endpoint{"239.255.0.1", 5600}));
  EXPECT_EQ(o.send.ttl, 4);
  EXPECT_EQ(o.send.port, 6001);
  EXPECT_EQ(o.send.clock_port, 0);
  EXPECT_TRUE(o.send.broadcast);

  Options f = options_for(Command::kSend, {{"source", "file:/music/a b.flac"}});
  EXPECT_EQ(f.send.source, SourceKind::kFile);
  EXPECT_EQ(f.send.source_arg, "/music/a b.flac");
}

TEST(LauncherOptions, BadValuesNameTheOptionAndTheValue) {
  struct Case {
    Command command;
    const char* name;
    const char* value;
  } cases[] = {
      {Command::kSend, "codec", "flac"},        {Command::kSend, "bitrate", "abc"},
      {Command::kSend, "bitrate", "5"},         {Command::kSend, "bitrate", "511"},
      {Command::kSend, "frame-ms", "7"},        {Command::kSend, "frame-ms", "10ms"},
      {Command::kSend, "fec", "101"},           {Command::kSend, "port", "0"},
      {Command::kSend, "port", "65536"},        {Command::kSend, "clock-port", "-1"},
      {Command::kSend, "target", ""},           {Command::kSend, "target", "host:"},
      {Command::kSend, "target", "host:99999"}, {Command::kSend, "multicast", "10.0.0.1"},
      {Command::kSend, "source", "mic"},        {Command::kSend, "source", "device:"},
      {Command::kSend, "ttl", "256"},           {Command::kReceive, "latency", "0"},
      {Command::kReceive, "volume", "1.6"},     {Command::kReceive, "volume", "-0.1"},
      {Command::kReceive, "delay", "12.5"},     {Command::kReceive, "clock", "gps"},
      {Command::kReceive, "clock", "net:"},     {Command::kReceive, "clock", "ptp:300"},
      {Command::kReceive, "record", "out.mp3"}, {Command::kReceive, "multicast", "1.2.3.4"},
      {Command::kSend, "duration", "0"},        {Command::kReceive, "stats-json", ""},
  };
  for (const Case& c : cases) {
    std::string err = apply_error(c.command, c.name, c.value);
    EXPECT_NE(err.find(std::string("--") + c.name), std::string::npos) << err;
    EXPECT_NE(err.find(std::string("'") + c.value + "'"), std::string::npos) << err;
    EXPECT_EQ(err.back(), '.') << err;
  }
}

TEST(LauncherOptions, OptionsOfTheOtherCommandAreRejected) {
  EXPECT_NE(apply_error(Command::kSend, "latency", "60").find("not an option of 'send'"),
            std::string::npos);
  EXPECT_NE(apply_error(Command::kReceive, "codec", "raw").find("not an option of 'receive'"),
            std::string::npos);
}

TEST(LauncherOptions, ClockSpellings) {
  for (const char* clock :
       {"auto", "system", "net:10.0.0.2", "net:sender.local:5600", "net://10.0.0.2:5556", "ptp",
        "ptp:3", "ptp://0", "ntp:pool.ntp.org", "ntp://10.0.0.1:123"}) {
    Options o = options_for(Command::kReceive, {{"clock", clock}});
    EXPECT_EQ(o.receive.clock, clock);
  }
}

TEST(LauncherOptions, DelayAndVolumeFollowTheirDevice) {
  Options o = options_for(Command::kReceive, {{"delay", "15"},
                                              {"device", "hdmi"},
                                              {"volume", "0.5"},
                                              {"device", "bluez"},
                                              {"delay", "-40"},
                                              {"volume", "1.5"},
                                              {"device", "usb"}});
  ASSERT_EQ(o.receive.outputs.size(), 3u);
  EXPECT_EQ(o.receive.outputs[0].device, "hdmi");
  EXPECT_EQ(o.receive.outputs[0].delay_ms, 15);
  EXPECT_EQ(o.receive.outputs[0].volume, 0.5);
  EXPECT_EQ(o.receive.outputs[1].device, "bluez");
  EXPECT_EQ(o.receive.outputs[1].delay_ms, -40);
  EXPECT_EQ(o.receive.outputs[1].volume, 1.5);
  EXPECT_EQ(o.receive.outputs[2].device, "usb");
  EXPECT_EQ(o.receive.outputs[2].delay_ms, 0);
  EXPECT_EQ(o.receive.outputs[2].volume, 1.0);
}

TEST(LauncherOptions, CrossOptionChecks) {
  std::string err;
  Options o = options_for(Command::kSend, {{"codec", "raw"}, {"fec", "10"}, {"target", "h"}});
  EXPECT_FALSE(validate_options(o, &err));
  EXPECT_NE(err.find("--fec=10"), std::string::npos);

  // No destination is valid: the sender follows the receivers it discovers.
  Options none = options_for(Command::kSend, {{"source", "test"}});
  EXPECT_TRUE(validate_options(none, &err)) << err;
  EXPECT_TRUE(none.send.discover());

  Options early = options_for(Command::kReceive, {{"latency", "40"}, {"delay", "-50"}});
  EXPECT_FALSE(validate_options(early, &err));
  EXPECT_NE(err.find("--delay=-50"), std::string::npos);
  Options ok = options_for(Command::kReceive, {{"latency", "40"}, {"delay", "-40"}});
  EXPECT_TRUE(validate_options(ok, &err)) << err;

  Options silent = options_for(Command::kReceive, {{"silent", ""}, {"device", "x"}});
  EXPECT_FALSE(validate_options(silent, &err));
  Options both = options_for(Command::kSend, {{"verbose", ""}, {"quiet", ""}, {"target", "h"}});
  EXPECT_FALSE(validate_options(both, &err));
}

TEST(LauncherCalibrateOptions, DefaultsAndValues) {
  Options d = options_for(Command::kCalibrate, {});
  EXPECT_EQ(d.calibrate.microphone, "");  // the default input
  EXPECT_TRUE(d.calibrate.receivers.empty());
  EXPECT_EQ(d.calibrate.repeats, 3);
  EXPECT_FALSE(d.calibrate.dry_run);
  EXPECT_EQ(d.calibrate.clock_port, kDefaultClockPort);
  EXPECT_EQ(d.calibrate.control_port, kDefaultControlPort);

  Options o = options_for(Command::kCalibrate, {{"microphone", "alsa_input.usb-mic"},
                                                {"receiver", "Kitchen"},
                                                {"receiver", "Living room@192.168.1.20"},
                                                {"receiver", "B@127.0.0.1:5602"},
                                                {"reference", "Kitchen"},
                                                {"dry-run", ""},
                                                {"repeats", "5"},
                                                {"clock-port", "6000"},
                                                {"control-port", "6001"},
                                                {"secret", "the house's"}});
  std::string err;
  EXPECT_TRUE(validate_options(o, &err)) << err;
  EXPECT_EQ(o.common.secret, "the house's");  // for its probes and the delays it sets
  EXPECT_EQ(o.calibrate.microphone, "alsa_input.usb-mic");
  ASSERT_EQ(o.calibrate.receivers.size(), 3u);
  EXPECT_EQ(o.calibrate.receivers[0].name, "Kitchen");
  EXPECT_EQ(o.calibrate.receivers[0].address.host, "");  // found by discovery
  EXPECT_EQ(o.calibrate.receivers[1].name, "Living room");
  EXPECT_EQ(o.calibrate.receivers[1].address.host, "192.168.1.20");
  EXPECT_EQ(o.calibrate.receivers[1].address.port, 0);  // --port
  EXPECT_EQ(o.calibrate.receivers[2].address.port, 5602);
  EXPECT_EQ(o.calibrate.reference, "Kitchen");
  EXPECT_TRUE(o.calibrate.dry_run);
  EXPECT_EQ(o.calibrate.repeats, 5);
  EXPECT_EQ(o.calibrate.clock_port, 6000);
  EXPECT_EQ(o.calibrate.control_port, 6001);
  EXPECT_TRUE(is_flag_option("dry-run"));
  EXPECT_EQ(options_for(Command::kCalibrate, {{"microphone", "default"}}).calibrate.microphone, "");
}

TEST(LauncherCalibrateOptions, BadValuesAreOneSentenceNamingTheOption) {
  auto one_sentence = [](const std::string& e) {
    return !e.empty() && e.back() == '.' && e.find('\n') == std::string::npos;
  };
  for (const auto& bad :
       std::vector<std::pair<std::string, std::string>>{{"repeats", "1"},
                                                        {"repeats", "21"},
                                                        {"repeats", "three"},
                                                        {"microphone", ""},
                                                        {"receiver", ""},
                                                        {"receiver", "A@"},
                                                        {"receiver", "A@host:99999"},
                                                        {"reference", ""},
                                                        {"dry-run", "maybe"},
                                                        {"clock-port", "0"},
                                                        {"control-port", "70000"}}) {
    const std::string e = apply_error(Command::kCalibrate, bad.first, bad.second);
    EXPECT_NE(e.find("--" + bad.first), std::string::npos) << e;
    EXPECT_TRUE(one_sentence(e)) << e;
  }
  // Options of other commands are refused by name.
  EXPECT_NE(apply_error(Command::kCalibrate, "target", "h").find("not an option of 'calibrate'"),
            std::string::npos);
  EXPECT_NE(apply_error(Command::kCalibrate, "delay", "5").find("--delay"), std::string::npos);
  EXPECT_NE(apply_error(Command::kSend, "microphone", "x").find("not an option of 'send'"),
            std::string::npos);
  // A receiver named twice.
  Options twice;
  twice.command = Command::kCalibrate;
  std::string err;
  EXPECT_TRUE(apply_option(twice, "receiver", "A", &err));
  EXPECT_FALSE(apply_option(twice, "receiver", "A@10.0.0.2", &err));
  EXPECT_NE(err.find("already"), std::string::npos) << err;
}

TEST(LauncherCalibrateOptions, CrossChecks) {
  std::string err;
  Options one = options_for(Command::kCalibrate, {{"receiver", "A"}});
  EXPECT_FALSE(validate_options(one, &err));
  EXPECT_NE(err.find("at least two"), std::string::npos) << err;
  Options unknown =
      options_for(Command::kCalibrate, {{"receiver", "A"}, {"receiver", "B"}, {"reference", "C"}});
  EXPECT_FALSE(validate_options(unknown, &err));
  EXPECT_NE(err.find("--reference='C'"), std::string::npos) << err;
  // No --receiver: every receiver found, the reference among them (checked at run time).
  Options found = options_for(Command::kCalibrate, {{"reference", "C"}});
  EXPECT_TRUE(validate_options(found, &err)) << err;
  Options both = options_for(Command::kCalibrate, {{"verbose", ""}, {"quiet", ""}});
  EXPECT_FALSE(validate_options(both, &err));
}

TEST(LauncherCalibrateOptions, CommandLineUsageErrors) {
  CommandLine cl;
  std::string err;
  const char* ok[] = {"syncwave-launch", "calibrate", "--receiver=A", "--receiver=B", "--dry-run"};
  ASSERT_TRUE(parse_command_line(5, ok, &cl, &err)) << err;
  EXPECT_EQ(cl.command, Command::kCalibrate);
  ASSERT_EQ(cl.assignments.size(), 3u);
  EXPECT_EQ(cl.assignments[2].first, "dry-run");
  const char* unknown[] = {"syncwave-launch", "calibrate", "--codec=raw"};
  EXPECT_FALSE(parse_command_line(3, unknown, &cl, &err));
  EXPECT_NE(err.find("--codec"), std::string::npos) << err;
  const char* positional[] = {"syncwave-launch", "calibrate", "Kitchen"};
  EXPECT_FALSE(parse_command_line(3, positional, &cl, &err));
  EXPECT_NE(err.find("'Kitchen'"), std::string::npos) << err;
  const char* help[] = {"syncwave-launch", "calibrate", "--help"};
  ASSERT_TRUE(parse_command_line(3, help, &cl, &err));
  EXPECT_NE(cl.help_text.find("--microphone"), std::string::npos);
  EXPECT_NE(cl.help_text.find("--reference"), std::string::npos);
  EXPECT_NE(general_help().find("calibrate"), std::string::npos);
}

TEST(LauncherCalibrateTable, OneLinePerReceiverAndWhyNothingChanged) {
  using syncwave::Change;
  using syncwave::Verdict;
  CalibrationRow a;
  a.name = "A";
  a.measurement.verdict = Verdict::kOk;
  a.measurement.ok = a.measurement.repeats = 3;
  a.measurement.spread_s = 0.000012;
  a.acoustic_delay_s = 0.03533;
  a.plan.change = Change::kApplied;
  a.plan.new_delay_ms = 120;
  a.confirmed = true;
  CalibrationRow b = a;
  b.name = "B";
  b.acoustic_delay_s = 0.15527;
  b.plan.change = Change::kUnchanged;
  b.plan.new_delay_ms = 0;
  CalibrationRow c;
  c.name = "Kitchen";
  c.measurement.verdict = Verdict::kNotHeard;
  c.measurement.repeats = 3;
  c.acoustic_delay_s = NAN;
  c.plan.change = Change::kRefused;
  CalibrationRow d;
  d.name = "Gone";
  d.problem = "no report from it at 127.0.0.1:5602: is it running?";
  const std::string t = format_calibration_table({a, b, c, d});
  EXPECT_NE(t.find("receiver"), std::string::npos) << t;
  EXPECT_NE(t.find("acoustic delay"), std::string::npos) << t;
  EXPECT_NE(t.find("35.33 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("0.012 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("0 -> 120 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("155.27 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("already aligned"), std::string::npos) << t;
  EXPECT_NE(t.find("Kitchen: not-heard"), std::string::npos) << t;
  EXPECT_NE(t.find("Nothing was changed for it."), std::string::npos) << t;
  EXPECT_NE(t.find("Gone: no report from it at 127.0.0.1:5602: is it running?\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(count_of(t, "\n"), 1 + 4 + 2) << t;  // heading, rows, the two reasons
  // --dry-run and an unconfirmed change say so.
  a.dry_run = true;
  EXPECT_NE(format_calibration_table({a}).find("dry run: not applied"), std::string::npos);
  a.dry_run = false;
  a.confirmed = false;
  EXPECT_NE(format_calibration_table({a}).find("not confirmed"), std::string::npos);
  // --reference asking for more than the latency allows: unchanged, and what to do.
  b.plan.change = Change::kOutOfRange;
  b.plan.exact_delay_s = -0.1203;
  const std::string early = format_calibration_table({b});
  EXPECT_NE(early.find("needs -120 ms"), std::string::npos) << early;
  EXPECT_NE(early.find("B: the delay it needs, -120.3 ms, is outside"), std::string::npos) << early;
  EXPECT_NE(early.find("raise its latency"), std::string::npos) << early;
}

// ---------------------------------------------------------------- command line

TEST(LauncherCommandLine, CollectsAssignmentsInOrder) {
  const char* argv[] = {"syncwave-launch", "send",        "--target=a", "--target",
                        "b:6000",          "--codec=raw", "--print",    "--bitrate=64"};
  CommandLine cl;
  std::string err;
  ASSERT_TRUE(parse_command_line(8, argv, &cl, &err)) << err;
  EXPECT_EQ(cl.command, Command::kSend);
  Assignments expected = {
      {"target", "a"}, {"target", "b:6000"}, {"codec", "raw"}, {"print", ""}, {"bitrate", "64"}};
  EXPECT_EQ(cl.assignments, expected);
}

TEST(LauncherCommandLine, UsageErrors) {
  CommandLine cl;
  std::string err;
  const char* none[] = {"syncwave-launch"};
  EXPECT_FALSE(parse_command_line(1, none, &cl, &err));
  const char* bad_command[] = {"syncwave-launch", "play"};
  EXPECT_FALSE(parse_command_line(2, bad_command, &cl, &err));
  EXPECT_NE(err.find("'play'"), std::string::npos);
  const char* unknown[] = {"syncwave-launch", "send", "--speed=2"};
  EXPECT_FALSE(parse_command_line(3, unknown, &cl, &err));
  EXPECT_NE(err.find("--speed"), std::string::npos);
  const char* wrong_command[] = {"syncwave-launch", "receive", "--codec=raw"};
  EXPECT_FALSE(parse_command_line(3, wrong_command, &cl, &err));
  EXPECT_NE(err.find("--codec"), std::string::npos);
  const char* positional[] = {"syncwave-launch", "send", "10.0.0.2"};
  EXPECT_FALSE(parse_command_line(3, positional, &cl, &err));
  EXPECT_NE(err.find("'10.0.0.2'"), std::string::npos);
  const char* missing[] = {"syncwave-launch", "receive", "--port"};
  EXPECT_FALSE(parse_command_line(3, missing, &cl, &err));
  EXPECT_NE(err.find("--port"), std::string::npos);
}

TEST(LauncherCommandLine, HelpAndVersion) {
  CommandLine cl;
  std::string err;
  const char* help[] = {"syncwave-launch", "--help"};
  ASSERT_TRUE(parse_command_line(2, help, &cl, &err));
  EXPECT_TRUE(cl.help);
  EXPECT_NE(cl.help_text.find("Examples"), std::string::npos);
  const char* send_help[] = {"syncwave-launch", "send", "--target=x", "--help"};
  ASSERT_TRUE(parse_command_line(4, send_help, &cl, &err));
  EXPECT_TRUE(cl.help);
  for (const char* option :
       {"--source", "--codec", "--bitrate", "--frame-ms", "--fec", "--target", "--broadcast",
        "--multicast", "--ttl", "--port", "--clock-port", "--preset", "--print", "--duration",
        "--stats-json", "--verbose", "--quiet", "--save-config", "Examples"})
    EXPECT_NE(cl.help_text.find(option), std::string::npos) << option;
  std::string receive_help = command_help(Command::kReceive);
  for (const char* option : {"--port", "--bind", "--multicast", "--latency", "--clock", "--from",
                             "--device", "--delay", "--volume", "--silent", "--record"})
    EXPECT_NE(receive_help.find(option), std::string::npos) << option;
  const char* version[] = {"syncwave-launch", "--version"};
  ASSERT_TRUE(parse_command_line(2, version, &cl, &err));
  EXPECT_TRUE(cl.version);
}

// ---------------------------------------------------------------- config file

TEST(LauncherConfig, MissingFileIsNoError) {
  TempDir dir;
  Assignments a;
  std::string err;
  EXPECT_TRUE(load_config(dir.file("nope.conf"), Command::kSend, &a, &err));
  EXPECT_TRUE(a.empty());
}

TEST(LauncherConfig, ReadsListsAndPairsDevicesWithDelays) {
  TempDir dir;
  write_file(dir.file("s.conf"),
             "# comment\n[send]\ntarget=10.0.0.2;10.0.0.3:6000\ncodec=raw\nbroadcast=true\n"
             "[receive]\ndevice=hdmi;bluez\ndelay=0;-30\nvolume=1;0.7\nlatency=80\n");
  Assignments send, receive;
  std::string err;
  ASSERT_TRUE(load_config(dir.file("s.conf"), Command::kSend, &send, &err)) << err;
  Options s = options_for(Command::kSend, send);
  ASSERT_EQ(s.send.targets.size(), 2u);
  EXPECT_EQ(s.send.targets[1].port, 6000);
  EXPECT_EQ(s.send.codec, Codec::kRaw);
  EXPECT_TRUE(s.send.broadcast);
  ASSERT_TRUE(load_config(dir.file("s.conf"), Command::kReceive, &receive, &err)) << err;
  Options r = options_for(Command::kReceive, receive);
  ASSERT_EQ(r.receive.outputs.size(), 2u);
  EXPECT_EQ(r.receive.outputs[1].device, "bluez");
  EXPECT_EQ(r.receive.outputs[1].delay_ms, -30);
  EXPECT_DOUBLE_EQ(r.receive.outputs[1].volume, 0.7);
  EXPECT_EQ(r.receive.latency_ms, 80);
}

// What the control page set on a receiver is kept under its name; other groups, other
// rooms and comments stay, and [receive]/[send] are not disturbed by it.
TEST(LauncherConfig, RoomSettingsAreKeptUnderTheReceiversName) {
  TempDir dir;
  const std::string path = dir.file("syncwave.conf");
  std::string err;
  EXPECT_TRUE(load_room(path, "Kitchen").empty());
  write_file(path,
             "# mine\n[receive]\nlatency=80\n[room Bedroom]\nvolume=0.5\n");
  ASSERT_TRUE(save_room(path, "Küche", {"volume=0.25", "mute=true"}, &err)) << err;
  ASSERT_TRUE(save_room(path, "Küche", {"delay=-150", "volume=0.3"}, &err)) << err;
  EXPECT_EQ(load_room(path, "Küche"),
            (std::vector<std::string>{"volume=0.3", "mute=true", "delay=-150"}));
  EXPECT_EQ(load_room(path, "Bedroom"), (std::vector<std::string>{"volume=0.5"}));
  Assignments receive;
  ASSERT_TRUE(load_config(path, Command::kReceive, &receive, &err)) << err;
  EXPECT_EQ(options_for(Command::kReceive, receive).receive.latency_ms, 80);
  // And a saved [receive] group leaves the rooms alone.
  ASSERT_TRUE(save_config(path, Command::kReceive, {{"latency", "90"}}, &err)) << err;
  EXPECT_EQ(load_room(path, "Küche").size(), 3u);
  gchar* contents = nullptr;
  ASSERT_TRUE(g_file_get_contents(path.c_str(), &contents, nullptr, nullptr));
  const std::string text = contents;
  g_free(contents);
  EXPECT_NE(text.find("# mine"), std::string::npos);
}

TEST(LauncherConfig, BadValueNamesTheFile) {
  TempDir dir;
  write_file(dir.file("bad.conf"), "[send]\nbitrate=lots\n");
  Assignments a;
  std::string err;
  EXPECT_FALSE(load_config(dir.file("bad.conf"), Command::kSend, &a, &err));
  EXPECT_NE(err.find("bad.conf"), std::string::npos);
  EXPECT_NE(err.find("--bitrate='lots'"), std::string::npos);
  write_file(dir.file("broken.conf"), "not a key file [[[\n");
  EXPECT_FALSE(load_config(dir.file("broken.conf"), Command::kSend, &a, &err));
}

TEST(LauncherConfig, SaveWritesExplicitOptionsAndKeepsTheOtherGroup) {
  TempDir dir;
  const std::string path = dir.file("sub/syncwave.conf");
  std::string err;
  ASSERT_TRUE(save_config(path, Command::kReceive,
                          {{"latency", "90"}, {"device", "a"}, {"delay", "20"}}, &err));
  ASSERT_TRUE(save_config(path, Command::kSend,
                          {{"target", "h1"},
                           {"target", "h2:7"},
                           {"codec", "raw"},
                           {"print", ""},
                           {"save-config", ""},
                           {"codec", "opus"}},
                          &err))
      << err;
  std::string text = read_file(path);
  EXPECT_EQ(text.find("print"), std::string::npos) << text;
  EXPECT_EQ(text.find("save-config"), std::string::npos) << text;
  Assignments send, receive;
  ASSERT_TRUE(load_config(path, Command::kSend, &send, &err)) << err;
  Options s = options_for(Command::kSend, send);
  ASSERT_EQ(s.send.targets.size(), 2u);
  EXPECT_EQ(s.send.targets[1], (Endpoint{"h2", 7}));
  EXPECT_EQ(s.send.codec, Codec::kOpus);  // the last one given
  EXPECT_EQ(s.send.bitrate_kbps, 128);    // defaults are not written
  ASSERT_TRUE(load_config(path, Command::kReceive, &receive, &err)) << err;
  Options r = options_for(Command::kReceive, receive);
  EXPECT_EQ(r.receive.latency_ms, 90);
  EXPECT_EQ(r.receive.outputs[0].device, "a");
  EXPECT_EQ(r.receive.outputs[0].delay_ms, 20);
}

// ---------------------------------------------------------------- presets

TEST(LauncherPresets, TemplatesExpandNamedPlaceholdersOnly) {
  std::string out, err;
  ASSERT_TRUE(expand_template("{a} ! x caps=\"audio/x-raw,format={ F32LE, S16LE }\" ! {b_c}",
                              {{"a", "A"}, {"b_c", "BC"}}, &out, &err));
  EXPECT_EQ(out, "A ! x caps=\"audio/x-raw,format={ F32LE, S16LE }\" ! BC");
  EXPECT_FALSE(expand_template("{a} ! {nope}", {{"a", "A"}}, &out, &err));
  EXPECT_NE(err.find("{nope}"), std::string::npos);
  EXPECT_EQ(template_placeholders("{x} ! {y} {Z} {}"), (std::vector<std::string>{"x", "y"}));
}

TEST(LauncherPresets, TheShippedPresetsLoad) {
  const char* dir = g_getenv("SYNCWAVE_PIPELINES_DIR");
  ASSERT_NE(dir, nullptr) << "meson sets SYNCWAVE_PIPELINES_DIR";
  std::vector<std::string> errors;
  std::vector<Preset> presets = list_presets({dir}, &errors);
  EXPECT_TRUE(errors.empty()) << errors[0];
  std::vector<std::string> names;
  for (const Preset& p : presets) {
    names.push_back(p.name);
    EXPECT_FALSE(p.description.empty());
    EXPECT_EQ(p.description.find('\n'), std::string::npos);
    EXPECT_FALSE(p.send_template.empty()) << p.name;
    EXPECT_FALSE(p.receive_template.empty()) << p.name;
  }
  for (const char* required : {"gaming", "lan-lowlatency", "movie", "wifi"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;

  Preset lan, wifi;
  std::string err;
  ASSERT_TRUE(find_preset({dir}, "lan-lowlatency", &lan, &err)) << err;
  Options o = options_for(Command::kReceive, lan.receive);
  EXPECT_LE(o.receive.latency_ms, 30);
  Options s = options_for(Command::kSend, lan.send);
  EXPECT_EQ(s.send.codec, Codec::kRaw);
  ASSERT_TRUE(find_preset({dir}, "wifi", &wifi, &err)) << err;
  Options w = options_for(Command::kSend, wifi.send);
  EXPECT_EQ(w.send.codec, Codec::kOpus);
  EXPECT_GT(w.send.fec_percent, 0);
  EXPECT_FALSE(find_preset({dir}, "nosuch", &wifi, &err));
  EXPECT_NE(err.find("--preset='nosuch'"), std::string::npos);
}

TEST(LauncherPresets, BadPresetFilesAreReported) {
  TempDir dir;
  write_file(dir.file("nodesc.preset"), "[send]\ncodec=raw\n");
  write_file(dir.file("badopt.preset"), "[preset]\ndescription=x\n[send]\nlatency=5\n");
  write_file(dir.file("badtmpl.preset"),
             "[preset]\ndescription=x\n[receive]\npipeline={receive} ! {encode}\n");
  write_file(dir.file("good.preset"),
             "[preset]\ndescription=Good one\n[send]\nbitrate=64\n"
             "pipeline={capture} ! {meter} ! {encode} ! queue ! {transmit}\n");
  std::vector<std::string> errors;
  std::vector<Preset> presets = list_presets({dir.path()}, &errors);
  ASSERT_EQ(presets.size(), 1u);
  EXPECT_EQ(presets[0].name, "good");
  EXPECT_EQ(errors.size(), 3u);
  Options o = options_for(Command::kSend, {{"source", "test"}, {"target", "h"}});
  std::string d = build(o, BuildEnvironment{}, &presets[0]);
  EXPECT_NE(d.find("time-provider-port=5556 ! queue ! multiudpsink"), std::string::npos) << d;
}

// ---------------------------------------------------------------- pipelines

TEST(LauncherPipeline, FanOutUsesOneCaptureOneEncoderOneSocket) {
  Options o = options_for(Command::kSend, {{"source", "test"},
                                           {"target", "127.0.0.1"},
                                           {"target", "10.0.0.7:6000"},
                                           {"target", "[::1]:7000"},
                                           {"port", "5600"},
                                           {"fec", "10"}});
  std::string d = build(o);
  EXPECT_EQ(count_of(d, "audiotestsrc"), 1);
  EXPECT_EQ(count_of(d, "opusenc"), 1);
  EXPECT_EQ(count_of(d, "syncwavepay"), 1);
  EXPECT_EQ(count_of(d, "multiudpsink"), 1);
  EXPECT_EQ(count_of(d, "tee"), 0);
  EXPECT_NE(d.find("clients=\"127.0.0.1:5600,10.0.0.7:6000,::1:7000\""), std::string::npos) << d;
  EXPECT_NE(d.find("inband-fec=true packet-loss-percentage=10"), std::string::npos);
  EXPECT_NE(d.find("bitrate=128000 frame-size=10"), std::string::npos);
}

TEST(LauncherPipeline, SourcesPerPlatform) {
  BuildEnvironment linux_env;
  linux_env.loopback_device = "alsa_output.pci.analog-stereo.monitor";
  Options o = options_for(Command::kSend, {{"target", "h"}, {"frame-ms", "5"}});
  EXPECT_EQ(build(o, linux_env)
                .find("pulsesrc name=capture device=alsa_output.pci.analog-stereo.monitor "
                      "buffer-time=40000 latency-time=5000 provide-clock=false ! "),
            0u);
  BuildEnvironment win;
  win.platform = Platform::kWindows;
  EXPECT_EQ(build(o, win).find("wasapi2src name=capture loopback=true low-latency=true ! "), 0u);
  Options dev = options_for(Command::kSend, {{"target", "h"}, {"source", "device:Mic (USB)"}});
  EXPECT_EQ(build(dev, win).find("wasapi2src name=capture device=\"Mic (USB)\" low-latency=true"),
            0u);
  Options file = options_for(Command::kSend, {{"target", "h"}, {"source", "file:x.ogg"}});
  BuildEnvironment fenv;
  fenv.file_uri = "file:///tmp/x%20y.ogg";
  std::string fd = build(file, fenv);
  EXPECT_EQ(fd.find("uridecodebin name=capture uri=file:///tmp/x%20y.ogg ! audioconvert"), 0u);
  EXPECT_NE(fd.find("! clocksync !"), std::string::npos);
  Options raw = options_for(
      Command::kSend, {{"target", "h"}, {"source", "test"}, {"codec", "raw"}, {"frame-ms", "2.5"}});
  std::string rd = build(raw);
  EXPECT_EQ(rd.find("opusenc"), std::string::npos);
  EXPECT_NE(rd.find("samplesperbuffer=120"), std::string::npos);
  Options opus25 = options_for(Command::kSend, {{"target", "h"}, {"frame-ms", "2.5"}});
  EXPECT_NE(build(opus25, linux_env).find("frame-size=2 "), std::string::npos);
}

TEST(LauncherPipeline, BroadcastAndMulticastDestinations) {
  BuildEnvironment env;
  env.broadcast_address = "192.168.1.255";
  Options o = options_for(
      Command::kSend,
      {{"source", "test"}, {"broadcast", ""}, {"multicast", "239.255.0.9"}, {"ttl", "3"}});
  std::string d = build(o, env);
  EXPECT_NE(d.find("clients=\"192.168.1.255:5555,239.255.0.9:5555\""), std::string::npos) << d;
  EXPECT_NE(d.find("ttl-mc=3 auto-multicast=true"), std::string::npos) << d;
}

TEST(LauncherPipeline, ReceivePlaysEveryDeviceFromOneChain) {
  Options o = options_for(Command::kReceive, {{"port", "6000"},
                                              {"latency", "80"},
                                              {"clock", "net:10.0.0.2"},
                                              {"device", "hdmi"},
                                              {"device", "bluez"},
                                              {"delay", "-40"},
                                              {"volume", "0.8"},
                                              {"from", "10.0.0.2"},
                                              {"record", "/tmp/x y.flac"}});
  std::string d = build(o);
  EXPECT_EQ(d.find("udpsrc name=src port=6000 caps=application/x-syncwave"), 0u) << d;
  // One receiver (one jitter buffer, decoder and clock) with three outputs: the two
  // devices and the monitor, which meters and records the same decoded stream.
  EXPECT_EQ(count_of(d, "syncwavesink"), 1) << d;
  EXPECT_EQ(d.find("tee"), std::string::npos) << d;
  EXPECT_NE(d.find("syncwavesink name=receiver latency=80 clock=net:10.0.0.2 "
                   "jitter::sender=10.0.0.2 outputs=3 device=hdmi output1::device=bluez "
                   "output1::delay=-40 output1::volume=0.8 output2::audio-sink=\"audioconvert ! "
                   "level name=meter "),
            std::string::npos)
      << d;
  // The file name escaped inside the quoted audio-sink description.
  EXPECT_NE(d.find("flacenc ! filesink name=record location=/tmp/x\\\\ y.flac\""),
            std::string::npos)
      << d;
}

TEST(LauncherPipeline, SilentReceiverHasNoPlayback) {
  Options o = options_for(Command::kReceive, {{"silent", ""}, {"multicast", "239.1.2.3"}});
  std::string d = build(o);
  EXPECT_EQ(count_of(d, "syncwavesink"), 1);
  EXPECT_EQ(d.find("outputs="), std::string::npos);
  EXPECT_EQ(d.find("tee"), std::string::npos);
  EXPECT_NE(d.find("address=239.1.2.3 auto-multicast=true"), std::string::npos);
  EXPECT_NE(d.find("! syncwavesink name=receiver latency=60 clock=auto audio-sink=\"audioconvert ! "
                   "level name=meter interval=1000000000 ! fakesink sync=false async=false\""),
            std::string::npos)
      << d;
  Options ogg = options_for(Command::kReceive, {{"silent", ""}, {"record", "a.OGG"}});
  EXPECT_NE(build(ogg).find("vorbisenc ! oggmux ! filesink"), std::string::npos);
  Options wav = options_for(Command::kReceive, {{"silent", ""}, {"record", "a.wav"}});
  EXPECT_NE(build(wav).find("wavenc ! filesink"), std::string::npos);
}

TEST(LauncherPipeline, WithoutSyncwavesinkStandardElementsPlay) {
  BuildEnvironment env;
  env.have_syncwavesink = false;
  Options o = options_for(Command::kReceive, {{"device", "d"}, {"delay", "25"}});
  std::string d = build(o, env);
  EXPECT_EQ(d.find("syncwavesink"), std::string::npos);
  EXPECT_NE(d.find("pulsesink device=d ts-offset=25000000"), std::string::npos) << d;
  EXPECT_NE(d.find("syncwavejitter name=rxjitter mode=slave latency=60 ! syncwavedepay "
                   "name=rxdepay ! decodebin ! audioconvert ! level name=meter"),
            std::string::npos)
      << d;
}

TEST(LauncherPipeline, PrintedCommandQuotesForTheShell) {
  EXPECT_EQ(gst_quote("abc-1.2:3/x"), "abc-1.2:3/x");
  EXPECT_EQ(gst_quote("a b"), "\"a b\"");
  EXPECT_EQ(gst_quote("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(gst_quote(""), "\"\"");
  std::string d = "filesrc location=\"/tmp/it's a file\" ! fakesink";
  EXPECT_EQ(
      split_description(d),
      (std::vector<std::string>{"filesrc", "location=\"/tmp/it's a file\"", "!", "fakesink"}));
  EXPECT_EQ(gst_launch_command(d),
            "gst-launch-1.0 -e filesrc 'location=\"/tmp/it'\\''s a file\"' ! fakesink");
  EXPECT_EQ(gst_launch_command("a clients=x:1,y:2 ! b"), "gst-launch-1.0 -e a clients=x:1,y:2 ! b");
}

TEST(LauncherPipeline, DeviceTestLines) {
  AudioDevice sink{"out.hdmi", "HDMI", false, false, true, "", "pulse"};
  AudioDevice mon{"out.hdmi.monitor", "Monitor", true, true, false, "out.hdmi", "pulse"};
  EXPECT_NE(device_test_description(sink, Platform::kLinux).find("pulsesink device=out.hdmi"),
            std::string::npos);
  EXPECT_NE(device_test_description(mon, Platform::kWindows).find("loopback=true"),
            std::string::npos);
}

// ---------------------------------------------------------------- devices

TEST(LauncherDevices, LoopbackIsTheMonitorOfTheDefaultOutput) {
  std::vector<AudioDevice> devices = {
      {"alsa_output.hdmi", "HDMI", false, false, false, "", "pulse"},
      {"alsa_output.analog", "Speakers", false, false, true, "", "pulse"},
      {"alsa_output.hdmi.monitor", "Monitor of HDMI", true, true, false, "alsa_output.hdmi",
       "pulse"},
      {"alsa_output.analog.monitor", "Monitor of Speakers", true, true, false, "alsa_output.analog",
       "pulse"},
      {"alsa_input.mic", "Mic", true, false, true, "", "pulse"},
  };
  const AudioDevice* l = choose_loopback(devices);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->name, "alsa_output.analog.monitor");
  std::string listing = format_device_list(devices);
  EXPECT_NE(listing.find("alsa_output.analog.monitor  [loopback]"), std::string::npos) << listing;
  EXPECT_NE(listing.find("alsa_output.analog  [default]"), std::string::npos) << listing;
  EXPECT_NE(listing.find("alsa_output.hdmi.monitor  [monitor]"), std::string::npos) << listing;

  devices[1].is_default = false;  // two monitors, no default output: ambiguous
  EXPECT_EQ(choose_loopback(devices), nullptr);
  std::vector<AudioDevice> mic_only = {{"alsa_input.mic", "Mic", true, false, true, "", "pulse"}};
  EXPECT_EQ(choose_loopback(mic_only), nullptr);
  EXPECT_NE(format_device_list(mic_only).find("none found"), std::string::npos);
  EXPECT_NE(format_device_list({}).find("(none)"), std::string::npos);
}

// Device lists as GStreamer 1.22's pulse provider reports them: sinks and sources by
// their server names, monitors with device.class=monitor (monitor_of from the
// ".monitor" suffix, see device_monitor.cpp), and is-default set on none.
std::vector<AudioDevice> pulseaudio_laptop() {
  return {
      {"alsa_output.pci-0000_00_1f.3.hdmi-stereo", "HDMI", false, false, false, "", "pulse"},
      {"alsa_output.pci-0000_00_1f.3.analog-stereo", "Speakers", false, false, false, "", "pulse"},
      {"alsa_output.usb-Logitech_G435-00.analog-stereo", "Headset", false, false, false, "",
       "pulse"},
      {"alsa_output.pci-0000_00_1f.3.hdmi-stereo.monitor", "Monitor of HDMI", true, true, false,
       "alsa_output.pci-0000_00_1f.3.hdmi-stereo", "pulse"},
      {"alsa_output.pci-0000_00_1f.3.analog-stereo.monitor", "Monitor of Speakers", true, true,
       false, "alsa_output.pci-0000_00_1f.3.analog-stereo", "pulse"},
      {"alsa_output.usb-Logitech_G435-00.analog-stereo.monitor", "Monitor of Headset", true, true,
       false, "alsa_output.usb-Logitech_G435-00.analog-stereo", "pulse"},
      {"alsa_input.pci-0000_00_1f.3.analog-stereo", "Mic", true, false, false, "", "pulse"},
  };
}

// PipeWire's pulse server names devices by node.name: Bluetooth nodes end in ".1", and
// one name can be a prefix of another ("...analog-stereo" and "...analog-stereo.2").
std::vector<AudioDevice> pipewire_desktop() {
  return {
      {"alsa_output.pci-0000_0c_00.4.analog-stereo", "Speakers", false, false, false, "", "pulse"},
      {"alsa_output.pci-0000_0c_00.4.analog-stereo.2", "Line out", false, false, false, "",
       "pulse"},
      {"bluez_output.00_1B_66_AA_BB_CC.1", "WH-1000XM4", false, false, true, "", "pulse"},
      {"alsa_output.pci-0000_0c_00.4.analog-stereo.monitor", "Monitor of Speakers", true, true,
       false, "alsa_output.pci-0000_0c_00.4.analog-stereo", "pulse"},
      {"alsa_output.pci-0000_0c_00.4.analog-stereo.2.monitor", "Monitor of Line out", true, true,
       false, "alsa_output.pci-0000_0c_00.4.analog-stereo.2", "pulse"},
      {"bluez_output.00_1B_66_AA_BB_CC.1.monitor", "Monitor of WH-1000XM4", true, true, false,
       "bluez_output.00_1B_66_AA_BB_CC.1", "pulse"},
      {"alsa_input.pci-0000_0c_00.4.analog-stereo", "Mic", true, false, true, "", "pulse"},
  };
}

ServerDefaults server_says(const std::string& sink, const std::string& source) {
  ServerDefaults s;
  s.sink = sink;
  s.source = source;
  s.sink_monitor = sink + ".monitor";
  return s;
}

TEST(LauncherDevices, PulseAudioWithoutIsDefaultTakesTheServersDefaultOutput) {
  std::vector<AudioDevice> devices = pulseaudio_laptop();
  // The device list alone cannot tell: three monitors, no default marked (issue 19).
  EXPECT_EQ(choose_loopback(devices), nullptr);
  for (const char* sink :
       {"alsa_output.pci-0000_00_1f.3.hdmi-stereo", "alsa_output.pci-0000_00_1f.3.analog-stereo",
        "alsa_output.usb-Logitech_G435-00.analog-stereo"}) {
    const AudioDevice* l = choose_loopback(devices, sink);
    ASSERT_NE(l, nullptr) << sink;
    EXPECT_EQ(l->name, std::string(sink) + ".monitor");
    EXPECT_TRUE(l->monitor);
  }
  apply_server_defaults(&devices, server_says("alsa_output.pci-0000_00_1f.3.analog-stereo",
                                              "alsa_input.pci-0000_00_1f.3.analog-stereo"));
  EXPECT_EQ(devices.size(), pulseaudio_laptop().size());  // nothing added
  const AudioDevice* l = choose_loopback(devices);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->name, "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor");
  std::string listing = format_device_list(devices);
  EXPECT_NE(listing.find("  alsa_output.pci-0000_00_1f.3.analog-stereo  [default]\n"),
            std::string::npos)
      << listing;
  EXPECT_NE(listing.find("  alsa_output.pci-0000_00_1f.3.analog-stereo.monitor  [loopback]\n"),
            std::string::npos)
      << listing;
  EXPECT_NE(listing.find("  alsa_input.pci-0000_00_1f.3.analog-stereo  [default]\n"),
            std::string::npos)
      << listing;
  EXPECT_EQ(count_of(listing, "[default]"), 2) << listing;
  EXPECT_EQ(count_of(listing, "loopback]"), 1) << listing;
  EXPECT_NE(listing.find("Loopback (send --source=loopback): "
                         "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor\n"),
            std::string::npos)
      << listing;
}

TEST(LauncherDevices, TheServerOverridesAStaleIsDefault) {
  // GstDeviceMonitor marked the Bluetooth headset; the user switched to the line out.
  std::vector<AudioDevice> devices = pipewire_desktop();
  EXPECT_EQ(choose_loopback(devices)->name, "bluez_output.00_1B_66_AA_BB_CC.1.monitor");
  apply_server_defaults(&devices, server_says("alsa_output.pci-0000_0c_00.4.analog-stereo.2",
                                              "alsa_input.pci-0000_0c_00.4.analog-stereo"));
  const AudioDevice* l = choose_loopback(devices);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->name, "alsa_output.pci-0000_0c_00.4.analog-stereo.2.monitor");
  int defaults = 0;
  for (const AudioDevice& d : devices) defaults += d.is_default;
  EXPECT_EQ(defaults, 2);  // the line out and the mic, no stale headset
  EXPECT_FALSE(devices[2].is_default);
}

TEST(LauncherDevices, PipeWireNodeNamesMatchExactlyNotByPrefix) {
  const std::vector<AudioDevice> devices = pipewire_desktop();
  EXPECT_EQ(choose_loopback(devices, "alsa_output.pci-0000_0c_00.4.analog-stereo")->name,
            "alsa_output.pci-0000_0c_00.4.analog-stereo.monitor");
  EXPECT_EQ(choose_loopback(devices, "alsa_output.pci-0000_0c_00.4.analog-stereo.2")->name,
            "alsa_output.pci-0000_0c_00.4.analog-stereo.2.monitor");
  EXPECT_EQ(choose_loopback(devices, "bluez_output.00_1B_66_AA_BB_CC.1")->name,
            "bluez_output.00_1B_66_AA_BB_CC.1.monitor");
  // A default output whose monitor is not in the list: none, never another monitor or
  // the microphone.
  EXPECT_EQ(choose_loopback(devices, "alsa_output.usb-new-headset"), nullptr);
  // A monitor that does not follow the NAME.monitor convention, known by monitor_of.
  std::vector<AudioDevice> odd = {
      {"speakers", "Speakers", false, false, false, "", "pulse"},
      {"capture-of-speakers", "Monitor", true, true, false, "speakers", "pulse"},
      {"speakers.monitor", "Not a monitor", true, false, false, "", "pulse"},
  };
  EXPECT_EQ(choose_loopback(odd, "speakers")->name, "capture-of-speakers");
}

TEST(LauncherDevices, TheServersMonitorIsAddedWhenTheListLacksIt) {
  // GstDeviceMonitor found nothing (or not the new output), the server did.
  std::vector<AudioDevice> devices;
  ServerDefaults s = server_says("sink2", "sink2.monitor");
  s.sink_description = "Null Output";
  apply_server_defaults(&devices, s);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_TRUE(devices[0].source && devices[0].monitor && devices[0].is_default);
  EXPECT_EQ(devices[0].monitor_of, "sink2");
  EXPECT_EQ(devices[0].description, "Monitor of Null Output");
  EXPECT_EQ(choose_loopback(devices)->name, "sink2.monitor");
  // A monitor named otherwise by the server gets its monitor_of.
  std::vector<AudioDevice> odd = {{"speakers", "Speakers", false, false, false, "", "pulse"},
                                  {"mon-a", "Monitor A", true, true, false, "", "pulse"},
                                  {"mon-b", "Monitor B", true, true, false, "", "pulse"}};
  ServerDefaults o = server_says("speakers", "mon-b");
  o.sink_monitor = "mon-b";
  apply_server_defaults(&odd, o);
  EXPECT_EQ(odd.size(), 3u);
  EXPECT_EQ(choose_loopback(odd)->name, "mon-b");
  // No server answered: the list is left as GstDeviceMonitor gave it.
  std::vector<AudioDevice> untouched = pipewire_desktop();
  apply_server_defaults(&untouched, ServerDefaults());
  EXPECT_TRUE(untouched[2].is_default);
}

TEST(LauncherDevices, WithoutTheServerOnlyAMonitorIsTaken) {
  // One sink, no markers: its monitor.
  std::vector<AudioDevice> one = {
      {"syncwave_null", "Null", false, false, false, "", "pulse"},
      {"syncwave_null.monitor", "Monitor of Null", true, true, false, "syncwave_null", "pulse"}};
  EXPECT_EQ(choose_loopback(one)->name, "syncwave_null.monitor");
  // Several monitors, the default source is one of them (PulseAudio's fallback source
  // on a machine without a microphone).
  std::vector<AudioDevice> devices = pulseaudio_laptop();
  devices.pop_back();
  devices[4].is_default = true;
  EXPECT_EQ(choose_loopback(devices)->name, "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor");
  // A default microphone is never a loopback source.
  std::vector<AudioDevice> mic = pulseaudio_laptop();
  mic.back().is_default = true;
  EXPECT_EQ(choose_loopback(mic), nullptr);
  // A marked default output whose monitor is missing falls back to the only monitor.
  std::vector<AudioDevice> partial = {
      {"a", "A", false, false, true, "", "pulse"},
      {"b", "B", false, false, false, "", "pulse"},
      {"b.monitor", "Monitor of B", true, true, false, "b", "pulse"}};
  EXPECT_EQ(choose_loopback(partial)->name, "b.monitor");
}

// ---------------------------------------------------------------- stats output

TEST(LauncherStats, JsonHasEveryFieldAndNullsForUnknowns) {
  StatsSample s;
  s.time_s = 2.0;
  s.command = "receive";
  s.state = "synced";
  s.packets = 200;
  s.bytes = 250000;
  s.bitrate_kbps = 1000.0;
  s.lost = 1;
  s.late = 0;
  s.late_output = 3;
  s.concealed = 4;
  s.underruns = 0;
  s.duplicates = 2;
  s.jitter_us = 350;
  s.transit_us = 1200;
  s.buffer_ms = 59.5;
  s.sender = "10.0.0.2:4000";
  s.other_senders = {"10.0.0.3:5000"};
  s.levels = {{-6.0, -9.0}, {-7.0, -10.0}};
  std::string j = stats_json(s);
  for (const char* key :
       {"\"packets\":200", "\"bytes\":250000", "\"bitrate_kbps\":1000.000", "\"lost\":1",
        "\"late\":0", "\"late_output\":3", "\"concealed\":4", "\"underruns\":0",
        "\"duplicates\":2", "\"jitter_us\":350.000", "\"transit_us\":1200.000",
        "\"buffer_ms\":59.500", "\"clock_offset_us\":null", "\"drift_ppm\":null",
        "\"peak_db\":[-6.000,-7.000]", "\"rms_db\":[-9.000,-10.000]",
        "\"sender\":\"10.0.0.2:4000\"", "\"other_senders\":[\"10.0.0.3:5000\"]"})
    EXPECT_NE(j.find(key), std::string::npos) << key << " in " << j;
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_EQ(j.find('\n'), std::string::npos);
  StatsSample silent;
  silent.levels = {{-INFINITY, -INFINITY}};
  EXPECT_NE(stats_json(silent).find("\"peak_db\":[-200.000]"), std::string::npos);
}

TEST(LauncherStats, StatusLineAndMeters) {
  EXPECT_EQ(level_bar({0.0, -30.0}, 10), "[#####+++++]");
  EXPECT_EQ(level_bar({-200.0, -200.0}, 4), "[    ]");
  StatsSample s;
  s.command = "send";
  s.state = "sending";
  s.time_s = 3;
  s.targets = 2;
  s.bitrate_kbps = 128;
  s.levels = {{-6.0, -9.0}, {-6.0, -9.0}};
  std::string line = status_line(s, 8);
  EXPECT_NE(line.find("L["), std::string::npos) << line;
  EXPECT_NE(line.find("R["), std::string::npos) << line;
  EXPECT_NE(line.find("128 kb/s"), std::string::npos) << line;
  EXPECT_NE(line.find("2 targets"), std::string::npos) << line;
  EXPECT_EQ(status_line(s, 0).find('['), std::string::npos);
}

TEST(LauncherPipeline, LatencyAutoAsksEverySyncWaveSinkToPickItsLatency) {
  Options o = options_for(Command::kReceive, {{"latency", "auto"}, {"device", "a"}});
  EXPECT_TRUE(o.receive.auto_latency);
  EXPECT_EQ(o.receive.latency_ms, 60);  // where it starts
  std::string d = build(o);
  EXPECT_NE(d.find("syncwavesink name=receiver latency=60 clock=auto auto-latency=true"),
            std::string::npos)
      << d;
  Options fixed = options_for(Command::kReceive, {{"latency", "auto"}, {"latency", "90"}});
  EXPECT_FALSE(fixed.receive.auto_latency);
  EXPECT_EQ(build(fixed).find("auto-latency"), std::string::npos);
  EXPECT_NE(apply_error(Command::kReceive, "latency", "automatic").find("or auto"),
            std::string::npos);
}

// Playing without --record: the first output meters what it plays; no monitor chain
// (a second jitter buffer, decoder and clock only for the meters).
TEST(LauncherPipeline, MetersComeFromTheFirstOutput) {
  Options o = options_for(Command::kReceive, {{"device", "hdmi"}, {"device", "bluez"}});
  std::string d = build(o);
  EXPECT_EQ(d.find("audio-sink="), std::string::npos) << d;
  EXPECT_EQ(count_of(d, "syncwavesink"), 1) << d;
  EXPECT_EQ(count_of(d, "meter-interval=1000000000"), 1) << d;
  EXPECT_NE(d.find("syncwavesink name=receiver latency=60 clock=auto outputs=2 device=hdmi "
                   "meter-interval=1000000000 output1::device=bluez"),
            std::string::npos)
      << d;
  Options one = options_for(Command::kReceive, {});
  std::string d1 = build(one);
  EXPECT_EQ(d1.find("tee"), std::string::npos) << d1;
  EXPECT_EQ(count_of(d1, "syncwavesink"), 1) << d1;
  EXPECT_NE(d1.find("meter-interval=1000000000"), std::string::npos) << d1;
}

TEST(LauncherSecret, SecretGoesToThePayloaderAndEveryReceiver) {
  Options tx = options_for(Command::kSend, {{"target", "127.0.0.1"}, {"secret", "two words"}});
  EXPECT_EQ(tx.common.secret, "two words");
  const std::string d = build(tx);
  EXPECT_NE(d.find("syncwavepay name=pay"), std::string::npos) << d;
  EXPECT_EQ(count_of(d, " secret=\"two words\""), 1) << d;
  Options rx = options_for(Command::kReceive,
                           {{"device", "a"}, {"device", "b"}, {"secret", "two words"}});
  const std::string r = build(rx);
  EXPECT_EQ(count_of(r, " secret=\"two words\""), 1) << r;  // the one receiver
  BuildEnvironment plain_elements;
  plain_elements.have_syncwavesink = false;
  EXPECT_EQ(count_of(build(rx, plain_elements), " secret=\"two words\""), 3);
  // Without a secret nothing changes.
  EXPECT_EQ(build(options_for(Command::kReceive, {})).find("secret"), std::string::npos);
}

TEST(LauncherSecret, SecretFileGivesItsFirstLine) {
  gchar* path = nullptr;
  gint fd = g_file_open_tmp("syncwave-secret-XXXXXX", &path, nullptr);
  ASSERT_GE(fd, 0);
  const char text[] = "from a file\r\nsecond line\n";
  ASSERT_EQ(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  Options o = options_for(Command::kReceive, {{"secret-file", path}});
  EXPECT_EQ(o.common.secret, "from a file");
  g_unlink(path);
  EXPECT_NE(apply_error(Command::kReceive, "secret-file", path).find("readable file"),
            std::string::npos);
  g_free(path);
  EXPECT_NE(apply_error(Command::kSend, "secret", "").find("passphrase"), std::string::npos);
  // Send, receive and control take it (control signs its requests with it).
  EXPECT_NE(apply_error(Command::kDevices, "secret", "x").find("not an option"), std::string::npos);
  EXPECT_NE(apply_error(Command::kList, "secret", "x").find("not an option"), std::string::npos);
}

TEST(LauncherSecret, ControlTakesTheSecretAndPageKey) {
  Options o = options_for(Command::kControl, {{"secret", "two words"}, {"page-key", ""}});
  EXPECT_EQ(o.common.secret, "two words");
  EXPECT_TRUE(o.control.page_key);
  EXPECT_FALSE(options_for(Command::kControl, {}).control.page_key);
  EXPECT_TRUE(is_flag_option("page-key"));
  EXPECT_NE(apply_error(Command::kControl, "secret", "").find("passphrase"), std::string::npos);
  EXPECT_NE(
      apply_error(Command::kControl, "secret-file", "/nonexistent/secret").find("readable file"),
      std::string::npos);
  EXPECT_NE(apply_error(Command::kControl, "page-key", "maybe").find("true or false"),
            std::string::npos);
  EXPECT_NE(apply_error(Command::kSend, "page-key", "").find("not an option"), std::string::npos);
}

TEST(LauncherSecret, ATemplateWithoutTheSecuredFragmentsIsRefused) {
  Preset p;
  p.name = "bare";
  p.receive_template = "udpsrc port={port} ! fakesink";
  Options o = options_for(Command::kReceive, {{"secret", "s"}});
  std::string description, error;
  EXPECT_FALSE(build_pipeline(o, BuildEnvironment{}, &p, &description, &error));
  EXPECT_NE(error.find("in the clear"), std::string::npos) << error;
  Options plain = options_for(Command::kReceive, {});
  EXPECT_TRUE(build_pipeline(plain, BuildEnvironment{}, &p, &description, &error)) << error;
}
