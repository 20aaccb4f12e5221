// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pipeline_builder.h"

#include <cstdio>
#include <map>

namespace syncwave {
namespace launcher {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string raw_caps() {
  return "audio/x-raw,format=F32LE,layout=interleaved,rate=" + std::to_string(kSampleRate) +
         ",channels=" + std::to_string(kChannels);
}

bool safe_gst_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '/' || c == ':' || c == '+' || c == '@' || c == '%';
}

bool safe_shell_char(char c) {
  return safe_gst_char(c) || c == '=' || c == ',' || c == '!';
}

// multiudpsink splits "host:port" at the last ':', so IPv6 addresses go unbracketed.
std::string endpoint_string(const Endpoint& ep, int default_port) {
  int port = ep.port ? ep.port : default_port;
  return ep.host + ":" + std::to_string(port);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) out += (i ? sep : "") + parts[i];
  return out;
}

std::string capture_fragment(const SendOptions& s, const BuildEnvironment& env) {
  const int frame_us = static_cast<int>(s.frame_ms * 1000);
  // provide-clock=false: the pipeline runs on the system clock, whose running time
  // syncwavepay converts to wall time exactly; the PulseAudio stream clock only starts
  // when the stream does, which can put every timestamp in the past. Below 10 ms
  // packets the capture period shrinks with them (10 ms is pulsesrc's default).
  std::string latency_time = " provide-clock=false";
  if (s.frame_ms < 10) latency_time = " latency-time=" + std::to_string(frame_us) + latency_time;
  std::string src;
  bool pace = false;
  switch (s.source) {
    case SourceKind::kTest:
      src =
          "audiotestsrc name=capture is-live=true wave=sine freq=440 volume=0.5 "
          "samplesperbuffer=" +
          std::to_string(static_cast<int>(kSampleRate * s.frame_ms / 1000));
      break;
    case SourceKind::kLoopback:
      if (env.platform == Platform::kWindows) {
        // No device on purpose: wasapi2src then opens the default render endpoint
        // (DEVINTERFACE_AUDIO_RENDER) and Windows' automatic stream routing moves the
        // loopback capture when the default changes (docs/launcher.md, untested here).
        src = "wasapi2src name=capture loopback=true low-latency=true";
      } else {
        // macOS never gets here: the runtime refuses loopback there. buffer-time 40 ms:
        // when the sender follows a new default output (sound_server.h) the server
        // moves this stream, and the samples missed meanwhile put every later
        // timestamp that much in the past; audiobasesrc only resynchronises a lag of a
        // whole buffer-time, which at the default 200 ms would eat the receivers'
        // latency for good.
        src = "pulsesrc name=capture device=" + gst_quote(env.loopback_device) +
              " buffer-time=40000" + latency_time;
      }
      break;
    case SourceKind::kDevice:
      if (env.platform == Platform::kWindows) {
        src = "wasapi2src name=capture device=" + gst_quote(s.source_arg) + " low-latency=true";
      } else if (env.platform == Platform::kMacOS) {
        src = "osxaudiosrc name=capture device=" + gst_quote(s.source_arg);
      } else {
        src = "pulsesrc name=capture device=" + gst_quote(s.source_arg) + latency_time;
      }
      break;
    case SourceKind::kFile:
      src = "uridecodebin name=capture uri=" + gst_quote(env.file_uri);
      pace = true;
      break;
  }
  std::string out = src + " ! audioconvert ! audioresample ! " + raw_caps();
  // A file decodes as fast as the CPU allows: clocksync sends it in real time.
  if (pace) out += " ! clocksync";
  return out;
}

// --secret: the `secret` property of syncwavepay / syncwavesink / syncwavejitter.
std::string secret_property(const std::string& secret) {
  return secret.empty() ? "" : " secret=" + gst_quote(secret);
}

std::string encode_fragment(const SendOptions& s, const std::string& secret) {
  // A header about every half second (the original: every 1000 packets, up to 10 s
  // of Opus), so that a receiver started mid-stream plays within a second.
  const int packets_per_s = s.codec == Codec::kRaw ? 300 : static_cast<int>(1000.0 / s.frame_ms);
  std::string pay = "syncwavepay name=pay header-interval=" + std::to_string(packets_per_s / 2) +
                    " time-provider-port=" + std::to_string(s.clock_port) + secret_property(secret);
  if (s.codec == Codec::kRaw) return pay;
  std::string enc =
      "audioconvert ! opusenc name=encoder bitrate=" + std::to_string(s.bitrate_kbps * 1000) +
      " frame-size=" + (s.frame_ms == 2.5 ? std::string("2") : num(s.frame_ms));
  if (s.fec_percent > 0)
    enc += " inband-fec=true packet-loss-percentage=" + std::to_string(s.fec_percent);
  return enc + " ! " + pay;
}

std::string transmit_fragment(const SendOptions& s, const BuildEnvironment& env) {
  std::string out =
      "multiudpsink name=net clients=" + gst_quote(join(send_clients(s, env), ",")) + " sync=false";
  if (!s.multicast.host.empty()) out += " ttl-mc=" + std::to_string(s.ttl) + " auto-multicast=true";
  return out;
}

std::string receive_fragment(const ReceiveOptions& r) {
  std::string out = "udpsrc name=src port=" + std::to_string(r.port);
  if (!r.multicast.empty()) {
    out += " address=" + gst_quote(r.multicast) + " auto-multicast=true";
  } else if (!r.bind.empty()) {
    out += " address=" + gst_quote(r.bind);
  }
  return out + " caps=application/x-syncwave buffer-size=1048576";
}

// clock=auto asks the sender at this port; only written when not the default.
std::string clock_port_property(const ReceiveOptions& r) {
  if (r.clock_port == kDefaultClockPort) return "";
  return " auto-clock-port=" + std::to_string(r.clock_port);
}

// Playing without --record, the first output meters what it plays (its level element,
// `meter-interval`). --record and --silent add the monitor output (receiver_element).
bool meters_on_first_output(const ReceiveOptions& r, const BuildEnvironment& env) {
  return env.have_syncwavesink && !r.silent && r.record.empty() && !r.outputs.empty();
}

// Without syncwavesink: one chain of standard elements per output.
// No shared clock, so the jitter element runs in slave mode (smooth playback, no
// cross-device sync).
std::string playback_branch(const ReceiveOptions& r, const Output& out, size_t index,
                            const BuildEnvironment& env, const std::string& secret) {
  std::string s;
  if (env.have_syncwavejitter)
    s += "syncwavejitter name=out" + std::to_string(index) +
         " mode=slave latency=" + std::to_string(r.latency_ms) +
         (r.from.empty() ? "" : " sender=" + gst_quote(r.from)) + secret_property(secret) + " ! ";
  s += "syncwavedepay ! decodebin ! audioconvert ! audioresample ! volume volume=" +
       num(out.volume) + " ! ";
  if (env.platform == Platform::kLinux) {
    s += "pulsesink";
    if (!out.device.empty()) s += " device=" + gst_quote(out.device);
    if (out.delay_ms != 0)
      s += " ts-offset=" + std::to_string(static_cast<long long>(out.delay_ms) * 1000000);
  } else {
    s += "autoaudiosink";
  }
  return s;
}

// An unquoted property value inside a description that is itself a quoted property
// value (syncwavesink audio-sink="..."): every unsafe character backslash-escaped.
std::string gst_escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (!safe_gst_char(c)) out += '\\';
    out += c;
  }
  return out;
}

// What the monitor does with the decoded audio: meter it, and record it or drop it.
// `quoted`: the chain goes into audio-sink="...", so the file name is escaped for that.
std::string monitor_chain(const ReceiveOptions& r, bool quoted) {
  const std::string location = quoted ? gst_escape(r.record) : gst_quote(r.record);
  const std::string file = "filesink name=record location=" + location;
  const std::string meter = "audioconvert ! level name=meter interval=1000000000 ! ";
  // A file is one contiguous timeline: audiorate drops what overlaps (the timeline
  // restarted earlier: a discontinuity of the sender's stamps) and fills gaps with
  // silence; within 1 ms it leaves the timestamps alone. Encoders refuse timestamps
  // that go back ("buffer going too far back in time": flacenc and vorbisenc stopped a
  // loaded receiver's recording after 40 ms), and wavenc would write the overlap twice.
  const std::string rate = "audiorate skip-to-first=true tolerance=1000000 ! ";
  switch (r.record_format) {
    case RecordFormat::kWav:
      return meter + rate + "audioconvert ! audio/x-raw,format=S16LE ! wavenc ! " + file;
    case RecordFormat::kFlac:
      return meter + rate + "audioconvert ! flacenc ! " + file;
    case RecordFormat::kOgg:
      return meter + rate + "audioconvert ! vorbisenc ! oggmux ! " + file;
    case RecordFormat::kNone:
      break;
  }
  return meter + "fakesink sync=false async=false";
}

// Without syncwavesink: decodes what arrives for the meters, --record and --silent,
// apart from playback.
std::string monitor_branch(const ReceiveOptions& r, const BuildEnvironment& env,
                           const std::string& secret) {
  std::string s;
  if (env.have_syncwavejitter)
    s += "syncwavejitter name=rxjitter mode=slave latency=" + std::to_string(r.latency_ms) +
         (r.from.empty() ? "" : " sender=" + gst_quote(r.from)) + secret_property(secret) + " ! ";
  return s + "syncwavedepay name=rxdepay ! decodebin ! " + monitor_chain(r, false);
}

// With syncwavesink: one receiver, one jitter buffer, decoder and clock, and one output
// per --device (syncwavesink outputs=N; output 0's properties on the element itself,
// the others' as outputN::device=...). --record and --silent add an output whose audio
// sink meters and records (or drops) the same decoded stream.
std::string receiver_element(const ReceiveOptions& r, const BuildEnvironment& env,
                             const std::string& secret) {
  std::string s = "syncwavesink name=receiver latency=" + std::to_string(r.latency_ms) +
                  " clock=" + gst_quote(r.clock) + clock_port_property(r);
  if (r.auto_latency) s += " auto-latency=true";
  // --from: the sink's jitter element (a child named "jitter") locks to that sender.
  if (!r.from.empty()) s += " jitter::sender=" + gst_quote(r.from);
  const size_t devices = r.silent ? 0 : r.outputs.size();
  const bool monitor = !meters_on_first_output(r, env);
  const size_t n = devices + (monitor ? 1 : 0);
  if (n > 1) s += " outputs=" + std::to_string(n);
  auto prefix = [](size_t i) { return i == 0 ? std::string(" ") : " output" + std::to_string(i) + "::"; };
  for (size_t i = 0; i < devices; i++) {
    const Output& out = r.outputs[i];
    if (!out.device.empty()) s += prefix(i) + "device=" + gst_quote(out.device);
    if (out.delay_ms != 0) s += prefix(i) + "delay=" + std::to_string(out.delay_ms);
    if (out.volume != 1.0) s += prefix(i) + "volume=" + num(out.volume);
    // The meters: the first output meters what it plays.
    if (i == 0 && !monitor) s += " meter-interval=1000000000";
  }
  if (monitor) s += prefix(devices) + "audio-sink=" + gst_quote(monitor_chain(r, true));
  return s + secret_property(secret);
}

std::string playout_fragment(const ReceiveOptions& r, const BuildEnvironment& env,
                             const std::string& secret) {
  if (env.have_syncwavesink) return receiver_element(r, env, secret);
  std::vector<std::string> branches;
  if (!r.silent) {
    for (size_t i = 0; i < r.outputs.size(); i++)
      branches.push_back(playback_branch(r, r.outputs[i], i, env, secret));
  }
  branches.push_back(monitor_branch(r, env, secret));
  if (branches.size() == 1) return branches[0];
  std::string out = "tee name=rx";
  for (const std::string& b : branches) out += " rx. ! queue ! " + b;
  return out;
}

}  // namespace

std::vector<std::string> known_placeholders(Command command) {
  std::vector<std::string> names = {"port",       "latency", "bitrate_bps", "frame_ms",
                                    "clock_port", "clients", "rate",        "channels"};
  if (command == Command::kSend) {
    for (const char* n : {"capture", "meter", "encode", "transmit"}) names.push_back(n);
  } else {
    for (const char* n : {"receive", "playout"}) names.push_back(n);
  }
  return names;
}

std::vector<std::string> send_clients(const SendOptions& s, const BuildEnvironment& env) {
  std::vector<std::string> clients;
  for (const Endpoint& t : s.targets) {
    auto it = env.resolved_hosts.find(t.host);
    Endpoint ep = t;
    if (it != env.resolved_hosts.end()) ep.host = it->second;
    clients.push_back(endpoint_string(ep, s.port));
  }
  if (s.broadcast && !env.broadcast_address.empty())
    clients.push_back(endpoint_string(Endpoint{env.broadcast_address, 0}, s.port));
  if (!s.multicast.host.empty()) clients.push_back(endpoint_string(s.multicast, s.port));
  return clients;
}

bool build_pipeline(const Options& given, const BuildEnvironment& env, const Preset* preset,
                    std::string* description, std::string* error) {
  // --from=NAME: the address discovery found for that sender is what the jitter locks to.
  Options options = given;
  if (!env.from_address.empty()) options.receive.from = env.from_address;
  std::map<std::string, std::string> values;
  const SendOptions& s = options.send;
  const ReceiveOptions& r = options.receive;
  const bool send = options.command == Command::kSend;
  values["port"] = std::to_string(send ? s.port : r.port);
  values["latency"] = std::to_string(r.latency_ms);
  values["bitrate_bps"] = std::to_string(s.bitrate_kbps * 1000);
  values["frame_ms"] = num(s.frame_ms);
  values["clock_port"] = std::to_string(s.clock_port);
  values["clients"] = gst_quote(join(send_clients(s, env), ","));
  values["rate"] = std::to_string(kSampleRate);
  values["channels"] = std::to_string(kChannels);
  std::string tmpl;
  if (send) {
    values["capture"] = capture_fragment(s, env);
    values["meter"] = "level name=meter interval=1000000000";
    values["encode"] = encode_fragment(s, options.common.secret);
    values["transmit"] = transmit_fragment(s, env);
    tmpl = preset && !preset->send_template.empty() ? preset->send_template : kDefaultSendTemplate;
  } else {
    values["receive"] = receive_fragment(r);
    values["playout"] = playout_fragment(r, env, options.common.secret);
    tmpl = preset && !preset->receive_template.empty() ? preset->receive_template
                                                       : kDefaultReceiveTemplate;
  }
  std::string err;
  if (!expand_template(tmpl, values, description, &err)) {
    if (error) *error = "Preset '" + (preset ? preset->name : std::string()) + "': " + err;
    return false;
  }
  // --secret goes with {encode} / {playout}: a template without them would send or play
  // in the clear, so it is refused rather than run.
  if (!options.common.secret.empty() &&
      description->find(secret_property(options.common.secret)) == std::string::npos) {
    if (error)
      *error = "Preset '" + (preset ? preset->name : std::string()) + "' has no " +
               (send ? "{encode}" : "{playout}") +
               " for --secret to secure: refusing to run in the clear.";
    return false;
  }
  return true;
}

std::string device_test_description(const AudioDevice& d, Platform platform) {
  const std::string name = gst_quote(d.name);
  if (d.source) {
    std::string src = platform == Platform::kWindows
                          ? "wasapi2src device=" + name + (d.monitor ? " loopback=true" : "")
                      : platform == Platform::kMacOS ? "osxaudiosrc device=" + name
                                                     : "pulsesrc device=" + name;
    return src + " num-buffers=500 ! level ! fakesink";
  }
  std::string sink = platform == Platform::kWindows ? "wasapi2sink device=" + name
                     : platform == Platform::kMacOS ? "osxaudiosink device=" + name
                                                    : "pulsesink device=" + name;
  return "audiotestsrc num-buffers=100 ! audioconvert ! audioresample ! " + sink;
}

std::string gst_quote(const std::string& value) {
  bool safe = !value.empty();
  for (char c : value) safe = safe && safe_gst_char(c);
  if (safe) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> split_description(const std::string& description) {
  std::vector<std::string> tokens;
  std::string cur;
  bool in_quotes = false;
  for (size_t i = 0; i < description.size(); i++) {
    char c = description[i];
    if (in_quotes && c == '\\' && i + 1 < description.size()) {
      cur += c;
      cur += description[++i];
      continue;
    }
    if (c == '"') in_quotes = !in_quotes;
    if (c == ' ' && !in_quotes) {
      if (!cur.empty()) tokens.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) tokens.push_back(cur);
  return tokens;
}

std::string gst_launch_command(const std::string& description) {
  std::string out = "gst-launch-1.0 -e";
  for (const std::string& token : split_description(description)) {
    bool safe = true;
    for (char c : token) safe = safe && safe_shell_char(c);
    out += ' ';
    if (safe) {
      out += token;
      continue;
    }
    out += '\'';
    for (char c : token) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace launcher
}  // namespace syncwave
