// SPDX-License-Identifier: LGPL-2.1-or-later
#include "runner.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/net/gstnetaddressmeta.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "config.h"

#ifdef G_OS_UNIX
#include <arpa/inet.h>
#include <glib-unix.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>
#endif
#ifdef G_OS_WIN32
#include <io.h>
#include <windows.h>
#define isatty _isatty
#define fileno _fileno
#endif

#include "device_monitor.h"
#include "status_format.h"

namespace syncwave {
namespace launcher {

namespace {

// How long a locked sender may stay silent before another one is accepted.
constexpr gint64 kSenderTimeoutUs = 2 * G_USEC_PER_SEC;
// After EOS is sent, how long to wait for it to reach the sinks.
constexpr guint kEosTimeoutMs = 3000;

bool have_element(const char* factory) {
  GstElementFactory* f = gst_element_factory_find(factory);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

// Binds a UDP socket to check that a port is free. Empty on success, else the reason.
std::string udp_port_problem(const std::string& address, int port) {
  GInetAddress* inet = address.empty() ? g_inet_address_new_any(G_SOCKET_FAMILY_IPV4)
                                       : g_inet_address_new_from_string(address.c_str());
  if (!inet) return "";  // a name: udpsrc resolves it
  GError* err = nullptr;
  GSocket* sock = g_socket_new(g_inet_address_get_family(inet), G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, &err);
  std::string problem;
  if (sock) {
    GSocketAddress* sa = g_inet_socket_address_new(inet, static_cast<guint16>(port));
    if (!g_socket_bind(sock, sa, FALSE, &err)) {
      problem = err->message;
      if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) problem = "in use";
    }
    g_object_unref(sa);
    g_object_unref(sock);
  } else {
    problem = err ? err->message : "no socket";
  }
  if (err) g_error_free(err);
  g_object_unref(inet);
  return problem;
}

bool resolves(const std::string& host, std::vector<std::string>* addresses) {
  std::string h = host;
  GInetAddress* literal = g_inet_address_new_from_string(h.c_str());
  if (literal) {
    gchar* s = g_inet_address_to_string(literal);
    if (addresses) addresses->push_back(s);
    g_free(s);
    g_object_unref(literal);
    return true;
  }
  GResolver* resolver = g_resolver_get_default();
  GList* list = g_resolver_lookup_by_name(resolver, h.c_str(), nullptr, nullptr);
  g_object_unref(resolver);
  if (!list) return false;
  for (GList* l = list; l; l = l->next) {
    gchar* s = g_inet_address_to_string(G_INET_ADDRESS(l->data));
    if (addresses) addresses->push_back(s);
    g_free(s);
  }
  g_resolver_free_addresses(list);
  return true;
}

std::string broadcast_address() {
#ifdef G_OS_UNIX
  struct ifaddrs* ifs = nullptr;
  std::string result;
  if (getifaddrs(&ifs) == 0) {
    for (struct ifaddrs* i = ifs; i && result.empty(); i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
      if (!(i->ifa_flags & IFF_BROADCAST)) continue;
      // From the address and netmask: an address added without a broadcast address
      // (`ip addr add 10.77.0.1/24`) reports its own address as ifa_broadaddr.
      struct in_addr brd{};
      if (i->ifa_netmask) {
        const auto* addr = reinterpret_cast<const struct sockaddr_in*>(i->ifa_addr);
        const auto* mask = reinterpret_cast<const struct sockaddr_in*>(i->ifa_netmask);
        brd.s_addr = addr->sin_addr.s_addr | ~mask->sin_addr.s_addr;
      } else if (i->ifa_broadaddr) {
        brd = reinterpret_cast<const struct sockaddr_in*>(i->ifa_broadaddr)->sin_addr;
      } else {
        continue;
      }
      char buf[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &brd, buf, sizeof buf)) result = buf;
    }
    freeifaddrs(ifs);
  }
  if (!result.empty()) return result;
#endif
  return "255.255.255.255";
}

bool check_output_devices(const ReceiveOptions& r, std::string* error) {
  bool any_named = false;
  for (const Output& o : r.outputs) any_named = any_named || o.named;
  if (!any_named || r.silent) return true;
  std::vector<AudioDevice> devices = probe_audio_devices();
  for (const Output& o : r.outputs) {
    if (!o.named) continue;
    bool found = false;
    for (const AudioDevice& d : devices) found = found || (!d.source && d.name == o.device);
    if (!found) {
      *error = "Audio output '" + o.device +
               "' was not found: run 'syncwave-launch devices' to see the names.";
      return false;
    }
  }
  return true;
}

bool prepare_send(const SendOptions& s, bool print, BuildEnvironment* env, std::string* error) {
  for (const Endpoint& t : s.targets) {
    std::vector<std::string> addresses;
    if (!resolves(t.host, &addresses) || addresses.empty()) {
      *error = "Cannot resolve the host '" + t.host +
               "' (--target): check the name, or give its IP address.";
      return false;
    }
    std::string chosen = addresses[0];
    for (const std::string& a : addresses) {
      if (a.find(':') == std::string::npos) {
        chosen = a;
        break;
      }
    }
    env->resolved_hosts[t.host] = chosen;
  }
  if (s.broadcast) env->broadcast_address = broadcast_address();
  if (s.clock_port != 0 && !print) {
    std::string problem = udp_port_problem("", s.clock_port);
    if (!problem.empty()) {
      *error = "The clock port " + std::to_string(s.clock_port) + " cannot be used (" + problem +
               "): is another sender running? Stop it or choose --clock-port=PORT.";
      return false;
    }
  }
  switch (s.source) {
    case SourceKind::kTest:
      break;
    case SourceKind::kFile: {
      if (!g_file_test(s.source_arg.c_str(), G_FILE_TEST_IS_REGULAR)) {
        *error = "The file '" + s.source_arg + "' does not exist or is not a regular file: " +
                 "check the path given to --source=file:.";
        return false;
      }
      gchar* abs = g_canonicalize_filename(s.source_arg.c_str(), nullptr);
      gchar* uri = g_filename_to_uri(abs, nullptr, nullptr);
      env->file_uri = uri ? uri : "";
      g_free(uri);
      g_free(abs);
      break;
    }
    case SourceKind::kLoopback: {
      if (env->platform == Platform::kMacOS) {
        *error =
            "macOS cannot capture what it plays by itself: install a virtual loopback "
            "device (for example BlackHole), make it the output, and send with "
            "--source=device:BlackHole.";
        return false;
      }
      if (env->platform == Platform::kWindows) break;
      const AudioDevice* loopback = nullptr;
      std::vector<AudioDevice> devices = probe_audio_devices();
      loopback = choose_loopback(devices);
      if (!loopback) {
        *error = devices.empty()
                     ? "No audio server answered, so there is no loopback source: start "
                       "PulseAudio or PipeWire, or send a tone with --source=test."
                     : "No loopback (monitor) source was found: run 'syncwave-launch devices' "
                       "and pass one with --source=device:NAME.";
        return false;
      }
      env->loopback_device = loopback->name;
      break;
    }
    case SourceKind::kDevice: {
      std::vector<AudioDevice> devices = probe_audio_devices();
      bool found = devices.empty();  // no monitor support: let the source element decide
      for (const AudioDevice& d : devices) found = found || (d.source && d.name == s.source_arg);
      if (!found) {
        *error = "Audio source '" + s.source_arg +
                 "' was not found: run 'syncwave-launch devices' to see the names.";
        return false;
      }
      break;
    }
  }
  for (const char* f : {"syncwavepay", "multiudpsink"}) {
    if (!print && !have_element(f)) {
      *error = std::string("The GStreamer element '") + f +
               "' is missing: install the SyncWave plugin (package gstreamer1.0-syncwave; "
               "this syncwave-launch also looks in " SYNCWAVE_PLUGINDIR
               ") and GStreamer's good plugins, or set GST_PLUGIN_PATH to the directory "
               "that holds the plugin (a build tree's gst-plugin/).";
      return false;
    }
  }
  if (!print && s.codec == Codec::kOpus && !have_element("opusenc")) {
    *error =
        "Opus needs the 'opusenc' element (gstreamer1.0-plugins-base): install it or use "
        "--codec=raw.";
    return false;
  }
  return true;
}

bool prepare_receive(const ReceiveOptions& r, bool print, BuildEnvironment* env,
                     std::string* error) {
  env->have_syncwavesink = have_element("syncwavesink");
  env->have_syncwavejitter = have_element("syncwavejitter");
  if (print) return true;
  std::string problem = udp_port_problem(r.bind, r.port);
  if (problem == "in use") {
    *error = "UDP port " + std::to_string(r.port) +
             " is already in use: stop the other receiver or choose another --port.";
    return false;
  }
  if (!problem.empty()) {
    *error = "Cannot receive on " + (r.bind.empty() ? std::string("port ") : r.bind + " port ") +
             std::to_string(r.port) + " (" + problem + "): check --bind and --port.";
    return false;
  }
  // Not a host: the name of a sender, looked up by discovery (main.cpp).
  if (!r.from.empty() && !resolves(r.from, nullptr)) env->from_unresolved = true;
  if (!have_element("syncwavedepay")) {
    *error =
        "The GStreamer element 'syncwavedepay' is missing: install the SyncWave plugin "
        "(package gstreamer1.0-syncwave; this syncwave-launch also looks in " SYNCWAVE_PLUGINDIR
        "), or set GST_PLUGIN_PATH to the directory that holds the plugin (a build tree's "
        "gst-plugin/).";
    return false;
  }
  return check_output_devices(r, error);
}

// ---------------------------------------------------------------------------------

std::optional<double> field(const GstStructure* s, std::initializer_list<const char*> names) {
  if (!s) return std::nullopt;
  for (const char* name : names) {
    const GValue* v = gst_structure_get_value(s, name);
    if (!v) continue;
    switch (G_VALUE_TYPE(v)) {
      case G_TYPE_INT:
        return g_value_get_int(v);
      case G_TYPE_UINT:
        return g_value_get_uint(v);
      case G_TYPE_INT64:
        return static_cast<double>(g_value_get_int64(v));
      case G_TYPE_UINT64:
        return static_cast<double>(g_value_get_uint64(v));
      case G_TYPE_LONG:
        return static_cast<double>(g_value_get_long(v));
      case G_TYPE_ULONG:
        return static_cast<double>(g_value_get_ulong(v));
      case G_TYPE_DOUBLE:
        return g_value_get_double(v);
      case G_TYPE_FLOAT:
        return g_value_get_float(v);
      default:
        break;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> count(const GstStructure* s, std::initializer_list<const char*> names) {
  auto v = field(s, names);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

GstStructure* element_stats(GstElement* e) {
  if (!e) return nullptr;
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "stats");
  if (!spec || spec->value_type != GST_TYPE_STRUCTURE) return nullptr;
  GstStructure* s = nullptr;
  g_object_get(e, "stats", &s, nullptr);
  return s;
}

std::string address_string(GSocketAddress* addr) {
  if (!G_IS_INET_SOCKET_ADDRESS(addr)) return "";
  GInetSocketAddress* isa = G_INET_SOCKET_ADDRESS(addr);
  gchar* ip = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
  std::string out = std::string(ip) + ":" + std::to_string(g_inet_socket_address_get_port(isa));
  g_free(ip);
  return out;
}

std::string host_of(const std::string& address) {
  size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

#ifdef G_OS_WIN32
class Runner;
extern Runner* console_runner;
BOOL WINAPI on_console_event(DWORD type);
#endif

class Runner {
 public:
  Runner(const Options& options, GstElement* pipeline, const RunHooks& hooks)
      : options_(options),
        pipeline_(pipeline),
        hooks_(hooks),
        command_(command_name(options.command)) {
    tty_ = isatty(fileno(stderr));
  }

  int run();

  // Ctrl-C from any thread (Windows console handler): stop in the main loop.
  void request_stop_async() { g_idle_add(on_stop_request_once, this); }

 private:
  static gboolean on_stop_request_once(gpointer self) {
    static_cast<Runner*>(self)->request_stop();
    return G_SOURCE_REMOVE;
  }
  static gboolean on_bus(GstBus*, GstMessage* msg, gpointer self) {
    static_cast<Runner*>(self)->handle_message(msg);
    return G_SOURCE_CONTINUE;
  }
  static gboolean on_tick(gpointer self) {
    static_cast<Runner*>(self)->tick();
    return G_SOURCE_CONTINUE;
  }
  static gboolean on_stop_request(gpointer self) {
    static_cast<Runner*>(self)->request_stop();
    return G_SOURCE_CONTINUE;
  }
  static gboolean on_duration(gpointer self) {
    static_cast<Runner*>(self)->duration_source_ = 0;
    static_cast<Runner*>(self)->request_stop();
    return G_SOURCE_REMOVE;
  }
  static gboolean on_eos_timeout(gpointer self) {
    auto* r = static_cast<Runner*>(self);
    if (r->options_.common.verbose) std::fprintf(stderr, "EOS did not arrive in time; stopping.\n");
    g_main_loop_quit(r->loop_);
    return G_SOURCE_REMOVE;
  }
  static GstPadProbeReturn on_packet(GstPad*, GstPadProbeInfo* info, gpointer self) {
    return static_cast<Runner*>(self)->packet(GST_PAD_PROBE_INFO_BUFFER(info));
  }

  void handle_message(GstMessage* msg);
  void tick();
  void request_stop();
  GstPadProbeReturn packet(GstBuffer* buffer);
  StatsSample sample();
  void print_summary();
  std::string explain_error(GstMessage* msg);

  const Options& options_;
  GstElement* pipeline_;
  const RunHooks& hooks_;
  std::string command_;
  GMainLoop* loop_ = nullptr;
  bool tty_ = false;
  FILE* json_ = nullptr;
  int exit_code_ = kExitOk;
  bool stopping_ = false;
  guint duration_source_ = 0;
  bool status_shown_ = false;
  gint64 start_us_ = 0;
  gint64 last_tick_us_ = 0;
  uint64_t last_bytes_ = 0;
  uint64_t last_packets_ = 0;
  bool ever_received_ = false;
  uint64_t last_before_header_ = 0;  // syncwavedepay's dropped-before-header, last tick
  StatsSample last_sample_;

  std::mutex lock_;  // guards what the streaming thread's probe and the bus share
  std::vector<ChannelLevel> levels_;
  uint64_t probe_packets_ = 0;
  uint64_t probe_bytes_ = 0;
  std::map<std::string, gint64> heard_;     // sender address -> last packet (monotonic us)
  std::set<std::string> senders_reported_;  // --verbose: other senders already shown
};

// Counts what arrives and who sends it. It only observes: choosing the sender (the
// first heard, or --from) is syncwavejitter's job, so the printed pipeline does it too.
#ifdef G_OS_WIN32
Runner* console_runner = nullptr;

// Ctrl-C, Ctrl-Break and closing the console window stop cleanly, as SIGINT does.
BOOL WINAPI on_console_event(DWORD type) {
  if (console_runner == nullptr) return FALSE;
  if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT) return FALSE;
  console_runner->request_stop_async();
  return TRUE;
}
#endif

GstPadProbeReturn Runner::packet(GstBuffer* buffer) {
  // Only what udpsrc knows: who sent a datagram and its size. What it carries (its
  // format, its capture time) is the elements' to read; their stats say it.
  GstNetAddressMeta* meta = gst_buffer_get_net_address_meta(buffer);
  std::string from = meta ? address_string(meta->addr) : "";
  gint64 now = g_get_monotonic_time();
  std::lock_guard<std::mutex> guard(lock_);
  if (!from.empty()) heard_[from] = now;
  probe_packets_++;
  probe_bytes_ += gst_buffer_get_size(buffer);
  return GST_PAD_PROBE_OK;
}

StatsSample Runner::sample() {
  StatsSample s;
  gint64 now = g_get_monotonic_time();
  s.time_s = (now - start_us_) / 1e6;
  s.command = command_;
  double dt = last_tick_us_ ? (now - last_tick_us_) / 1e6 : 0.0;
  last_tick_us_ = now;
  {
    std::lock_guard<std::mutex> guard(lock_);
    s.levels = levels_;
    if (options_.command == Command::kReceive) {
      s.packets = probe_packets_;
      s.bytes = probe_bytes_;
      for (const auto& h : heard_)
        if (now - h.second < kSenderTimeoutUs) s.other_senders.push_back(h.first);
    }
  }
  if (options_.command == Command::kSend) {
    GstElement* pay = gst_bin_get_by_name(GST_BIN(pipeline_), "pay");
    GstStructure* st = element_stats(pay);
    s.packets = count(st, {"packets", "num-packets"});
    s.bytes = count(st, {"bytes", "num-bytes"});
    if (st) gst_structure_free(st);
    if (pay) gst_object_unref(pay);
    if (!s.bytes) {
      GstElement* net = gst_bin_get_by_name(GST_BIN(pipeline_), "net");
      if (net) {
        guint64 served = 0;
        g_object_get(net, "bytes-served", &served, nullptr);
        s.bytes = served;
        gst_object_unref(net);
      }
    }
    s.targets = static_cast<int>(options_.send.targets.size() + (options_.send.broadcast ? 1 : 0) +
                                 (options_.send.multicast.host.empty() ? 0 : 1));
    s.state = "sending";
  } else {
    GstElement* depay = gst_bin_get_by_name(GST_BIN(pipeline_), "rxdepay");
    GstStructure* ds = element_stats(depay);
    // Playback statistics come from the receiver (syncwavesink: output 0's figures);
    // with standard elements from the first output's jitter element, or the monitor's.
    GstElement* out = gst_bin_get_by_name(GST_BIN(pipeline_), "receiver");
    if (!out) out = gst_bin_get_by_name(GST_BIN(pipeline_), "out0");
    if (!out) out = gst_bin_get_by_name(GST_BIN(pipeline_), "rxjitter");
    // Only syncwavesink runs on the shared clock; a jitter element in slave mode maps
    // arrival to sender time, and its offset is not a clock offset worth showing.
    GstElementFactory* factory = out ? gst_element_get_factory(out) : nullptr;
    const bool synced_mode = factory && g_strcmp0(GST_OBJECT_NAME(factory), "syncwavesink") == 0;
    GstStructure* js = element_stats(out);
    const bool have_jitter_stats = js != nullptr;
    // Transit: syncwavesink's p99 over the last 2 s on the shared clock (capture to
    // arrival: what the path needs of the latency); without it, the depayloader's mean
    // on this host's wall clock (the standard-element fallback).
    if (auto p99 = field(js, {"transit-p99-us"}); p99 && *p99 >= 0) s.transit_us = p99;
    if (!s.transit_us) s.transit_us = field(ds, {"transit-mean-us"});
    s.lost = count(js, {"lost"});
    s.late = count(js, {"late"});
    s.late_output = count(js, {"late-outputs"});
    s.concealed = count(js, {"concealed"});
    s.underruns = count(js, {"underruns"});
    s.duplicates = count(js, {"duplicates"});
    s.jitter_us = field(js, {"jitter-us"});
    s.buffer_ms = field(js, {"level-ms"});
    if (synced_mode) {
      s.clock_offset_us = field(js, {"clock-offset-us"});
      s.drift_ppm = field(js, {"drift-ppm"});
    }
    const gchar* sender = js ? gst_structure_get_string(js, "sender") : nullptr;
    if (sender && *sender) s.sender = sender;
    gboolean synced = FALSE;
    bool have_synced = js && gst_structure_get_boolean(js, "clock-synced", &synced);
    const gchar* clock = js ? gst_structure_get_string(js, "clock") : nullptr;
    if (clock && *clock) s.clock = clock;
    // What the output plays (syncwavesink): "playing", "late" or "no-audio".
    const gchar* pb = js ? gst_structure_get_string(js, "playback") : nullptr;
    const std::string playback = pb ? pb : "";
    const uint64_t before_header = count(js, {"depay-dropped-before-header"}).value_or(0);
    const bool waiting_header = before_header > last_before_header_;
    last_before_header_ = before_header;
    if (auto played = count(js, {"played-latency-ms"})) s.latency_ms = static_cast<int>(*played);
    // Muted or at volume 0 (--volume=0, or the control page): silence is what was asked.
    bool muted = false;
    if (synced_mode) {
      gdouble volume = 1.0;
      gboolean mute = FALSE;
      g_object_get(out, "volume", &volume, "mute", &mute, nullptr);
      muted = mute || volume <= 0.0;
    }
    if (ds) gst_structure_free(ds);
    if (js) gst_structure_free(js);
    if (depay) gst_object_unref(depay);
    if (out) gst_object_unref(out);
    if (!s.latency_ms) s.latency_ms = options_.receive.latency_ms;
    uint64_t delta = *s.packets - last_packets_;
    last_packets_ = *s.packets;
    if (*s.packets > 0) ever_received_ = true;
    // "synced" only while audio reaches the output on time; otherwise what happens.
    s.state = !ever_received_          ? "waiting"
              : delta == 0             ? "quiet"
              : waiting_header         ? "waiting for header"
              : playback == "late"     ? "late"
              : muted                  ? "muted"
              : playback == "no-audio" ? "silent: nothing reaches the output"
              : have_synced            ? (synced ? "synced" : "syncing")
                                       : "receiving";
    // Every sender heard recently except the one played.
    std::vector<std::string> others;
    for (const std::string& a : s.other_senders)
      if (a != s.sender && host_of(a) != s.sender) others.push_back(a);
    s.other_senders = others;
    // Packets arrive but none is played (--from names another sender).
    if (s.sender.empty() && !others.empty() && have_jitter_stats) s.state = "waiting";
    if (options_.common.verbose) {
      for (const std::string& a : others) {
        if (senders_reported_.insert(a).second)
          std::fprintf(stderr,
                       "%sAnother sender is sending to this port: %s (not played; "
                       "--from chooses).\n",
                       status_shown_ ? "\n" : "", a.c_str());
      }
    }
  }
  if (s.bytes && dt > 0) s.bitrate_kbps = (*s.bytes - last_bytes_) * 8.0 / 1000.0 / dt;
  if (s.bytes) last_bytes_ = *s.bytes;
  return s;
}

void Runner::tick() {
  StatsSample s = sample();
  if (hooks_.tick) hooks_.tick(&s);
  last_sample_ = s;
  if (json_) {
    std::fprintf(json_, "%s\n", stats_json(s).c_str());
    std::fflush(json_);
  }
  if (options_.common.quiet) return;
  if (tty_) {
    std::fprintf(stderr, "\r%s\x1b[K", status_line(s, 12).c_str());
    status_shown_ = true;
  } else {
    std::fprintf(stderr, "%s\n", status_line(s, 0).c_str());
  }
  std::fflush(stderr);
}

void Runner::request_stop() {
  if (stopping_) {
    g_main_loop_quit(loop_);  // a second Ctrl-C: stop now
    return;
  }
  stopping_ = true;
  gst_element_send_event(pipeline_, gst_event_new_eos());
  g_timeout_add(kEosTimeoutMs, on_eos_timeout, this);
}

std::string Runner::explain_error(GstMessage* msg) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(msg, &err, &debug);
  std::string text = err ? err->message : "unknown error";
  std::string details = debug ? debug : "";
  std::string src = GST_MESSAGE_SRC_NAME(msg) ? GST_MESSAGE_SRC_NAME(msg) : "";
  std::string all = text + " " + details;
  std::string out;
  if (all.find("Address already in use") != std::string::npos) {
    out =
        "A UDP port is already in use: stop the other SyncWave program or choose another "
        "--port / --clock-port.";
  } else if (all.find("Connection refused") != std::string::npos &&
             (src == "capture" || all.find("pulse") != std::string::npos)) {
    out =
        "Cannot connect to the audio server: start PulseAudio or PipeWire, or use "
        "--source=test.";
  } else if (all.find("No such entity") != std::string::npos ||
             (err && err->domain == GST_RESOURCE_ERROR &&
              err->code == GST_RESOURCE_ERROR_NOT_FOUND)) {
    out = "The audio device or file was not found (" + text +
          "): run 'syncwave-launch devices' to see the names.";
  } else if (err && err->domain == GST_STREAM_ERROR &&
             (err->code == GST_STREAM_ERROR_CODEC_NOT_FOUND ||
              err->code == GST_STREAM_ERROR_TYPE_NOT_FOUND ||
              err->code == GST_STREAM_ERROR_WRONG_TYPE)) {
    out = "The input cannot be decoded (" + text + "): install the matching GStreamer plugins.";
  } else {
    if (!text.empty() && text.back() != '.') text += '.';
    out = src + ": " + text + " Run with --verbose for details.";
  }
  if (options_.common.verbose && !details.empty()) out += "\n  " + details;
  if (err) g_error_free(err);
  g_free(debug);
  return out;
}

void Runner::handle_message(GstMessage* msg) {
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
      if (stopping_) {
        // Shutting down before anything arrived (decodebin never saw data): not a
        // failure of the run.
        if (options_.common.verbose)
          std::fprintf(stderr, "%sWhile stopping: %s\n", status_shown_ ? "\n" : "",
                       explain_error(msg).c_str());
        status_shown_ = false;
        g_main_loop_quit(loop_);
        break;
      }
      std::string text = explain_error(msg);
      if (status_shown_) std::fprintf(stderr, "\n");
      status_shown_ = false;
      std::fprintf(stderr, "syncwave-launch: %s\n", text.c_str());
      exit_code_ = kExitRuntimeError;
      g_main_loop_quit(loop_);
      break;
    }
    case GST_MESSAGE_WARNING:
      if (!options_.common.quiet && !options_.common.verbose) {
        // A path slower than the latency is worth one line even without --verbose.
        GError* err = nullptr;
        gst_message_parse_warning(msg, &err, nullptr);
        // So is a secure receiver's "datagrams from ADDR fail authentication: wrong
        // secret?" (or "... are not secured"), posted once per address.
        if (err && (std::strstr(err->message, "too low for this path") ||
                    std::strstr(err->message, "fail authentication") ||
                    std::strstr(err->message, "are not secured"))) {
          std::fprintf(stderr, "%s%s\n", status_shown_ ? "\n" : "", err->message);
          status_shown_ = false;
        }
        if (err) g_error_free(err);
      }
      if (options_.common.verbose) {
        GError* err = nullptr;
        gst_message_parse_warning(msg, &err, nullptr);
        std::fprintf(stderr, "%swarning from %s: %s\n", status_shown_ ? "\n" : "",
                     GST_MESSAGE_SRC_NAME(msg), err ? err->message : "");
        status_shown_ = false;
        if (err) g_error_free(err);
      }
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit(loop_);
      break;
    case GST_MESSAGE_LATENCY:
      // syncwavesink moved its playout point (a path slower than --latency, or
      // --latency=auto): distribute the new latency, as gst-launch-1.0 does.
      gst_bin_recalculate_latency(GST_BIN(pipeline_));
      break;
    case GST_MESSAGE_CLOCK_LOST:
      // syncwavesink posts this when the shared clock becomes available (clock=auto
      // once the sender is known, or a net/NTP/PTP clock that synced late): going
      // through PAUSED makes the pipeline select the new clock, as gst-launch does.
      if (!stopping_) {
        gst_element_set_state(pipeline_, GST_STATE_PAUSED);
        gst_element_set_state(pipeline_, GST_STATE_PLAYING);
      }
      break;
    case GST_MESSAGE_ELEMENT: {
      const GstStructure* s = gst_message_get_structure(msg);
      if (s && gst_structure_has_name(s, "syncwave-sender-changed")) {
        // The played sender went silent and another one took over: one line.
        const gchar* address = gst_structure_get_string(s, "address");
        const gchar* previous = gst_structure_get_string(s, "previous");
        if (!options_.common.quiet && address && previous && *previous) {
          std::fprintf(stderr, "%sNow playing %s (the sender played before went silent).\n",
                       status_shown_ ? "\n" : "", address);
          status_shown_ = false;
        }
        break;
      }
      if (!s || !gst_structure_has_name(s, "level")) break;
      const GValue* peak = gst_structure_get_value(s, "peak");
      const GValue* rms = gst_structure_get_value(s, "rms");
      if (!peak || !rms) break;
      G_GNUC_BEGIN_IGNORE_DEPRECATIONS
      GValueArray* pa = static_cast<GValueArray*>(g_value_get_boxed(peak));
      GValueArray* ra = static_cast<GValueArray*>(g_value_get_boxed(rms));
      std::vector<ChannelLevel> levels;
      for (guint i = 0; pa && ra && i < pa->n_values && i < ra->n_values; i++) {
        ChannelLevel l;
        l.peak_db = g_value_get_double(g_value_array_get_nth(pa, i));
        l.rms_db = g_value_get_double(g_value_array_get_nth(ra, i));
        levels.push_back(l);
      }
      G_GNUC_END_IGNORE_DEPRECATIONS
      std::lock_guard<std::mutex> guard(lock_);
      levels_ = levels;
      break;
    }
    default:
      break;
  }
}

void Runner::print_summary() {
  if (status_shown_) std::fprintf(stderr, "\n");
  StatsSample s = sample();
  if (hooks_.tick) hooks_.tick(&s);
  double secs = s.time_s;
  double mb = s.bytes ? *s.bytes / 1e6 : 0.0;
  if (options_.command == Command::kSend) {
    std::fprintf(stderr, "Sent %llu packets (%.2f MB) to %d destination%s in %.1f s.\n",
                 static_cast<unsigned long long>(s.packets.value_or(0)), mb, s.targets.value_or(0),
                 s.targets.value_or(0) == 1 ? "" : "s", secs);
  } else {
    std::fprintf(stderr, "Received %llu packets (%.2f MB) in %.1f s",
                 static_cast<unsigned long long>(s.packets.value_or(0)), mb, secs);
    if (!s.sender.empty()) std::fprintf(stderr, " from %s", s.sender.c_str());
    if (s.lost) std::fprintf(stderr, "; lost %llu", static_cast<unsigned long long>(*s.lost));
    if (s.late) std::fprintf(stderr, ", late %llu", static_cast<unsigned long long>(*s.late));
    std::fprintf(stderr, ".\n");
    if (!s.other_senders.empty())
      std::fprintf(stderr, "Also heard (not played): %s.\n", s.other_senders[0].c_str());
    if (!options_.receive.record.empty())
      std::fprintf(stderr, "Recorded to %s.\n", options_.receive.record.c_str());
  }
}

int Runner::run() {
  loop_ = g_main_loop_new(nullptr, FALSE);
  if (!options_.common.stats_json.empty()) {
    if (options_.common.stats_json == "-") {
      json_ = stdout;
    } else {
      json_ = std::fopen(options_.common.stats_json.c_str(), "w");
      if (!json_) {
        std::fprintf(stderr, "syncwave-launch: cannot write '%s' (--stats-json): check the path.\n",
                     options_.common.stats_json.c_str());
        g_main_loop_unref(loop_);
        return kExitRuntimeError;
      }
    }
  }
  GstBus* bus = gst_element_get_bus(pipeline_);
  guint bus_watch = gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);

  if (options_.command == Command::kReceive) {
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
    if (src) {
      GstPad* pad = gst_element_get_static_pad(src, "src");
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_packet, this, nullptr);
      gst_object_unref(pad);
      gst_object_unref(src);
    }
  }
#ifdef G_OS_UNIX
  guint sigint = g_unix_signal_add(SIGINT, on_stop_request, this);
  guint sigterm = g_unix_signal_add(SIGTERM, on_stop_request, this);
#endif
#ifdef G_OS_WIN32
  console_runner = this;
  SetConsoleCtrlHandler(on_console_event, TRUE);
#endif
  guint tick = g_timeout_add(1000, on_tick, this);
  if (options_.common.duration_s > 0)
    duration_source_ =
        g_timeout_add(static_cast<guint>(options_.common.duration_s * 1000), on_duration, this);

  if (hooks_.started) hooks_.started(pipeline_);
  start_us_ = g_get_monotonic_time();
  last_tick_us_ = start_us_;
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    GstBus* b = gst_element_get_bus(pipeline_);
    GstMessage* msg = gst_bus_pop_filtered(b, GST_MESSAGE_ERROR);
    gst_object_unref(b);
    if (msg) {
      handle_message(msg);
      gst_message_unref(msg);
    } else {
      std::fprintf(stderr,
                   "syncwave-launch: the pipeline cannot start: run with --verbose "
                   "and GST_DEBUG=3 for details.\n");
    }
    exit_code_ = kExitRuntimeError;
  } else {
    g_main_loop_run(loop_);
  }
  g_source_remove(tick);
  if (duration_source_) g_source_remove(duration_source_);
#ifdef G_OS_UNIX
  g_source_remove(sigint);
  g_source_remove(sigterm);
#endif
#ifdef G_OS_WIN32
  SetConsoleCtrlHandler(on_console_event, FALSE);
  console_runner = nullptr;
#endif
  if (exit_code_ == kExitOk) print_summary();
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  g_source_remove(bus_watch);
  if (json_ && json_ != stdout) std::fclose(json_);
  g_main_loop_unref(loop_);
  return exit_code_;
}

}  // namespace

bool prepare_environment(const Options& options, BuildEnvironment* env, std::string* error) {
#if defined(G_OS_WIN32)
  env->platform = Platform::kWindows;
#elif defined(__APPLE__)
  env->platform = Platform::kMacOS;
#else
  env->platform = Platform::kLinux;
#endif
  const bool print = options.common.print;
  if (options.command == Command::kSend) return prepare_send(options.send, print, env, error);
  if (options.command == Command::kReceive)
    return prepare_receive(options.receive, print, env, error);
  return true;
}

void print_event_line(const std::string& text) {
  static const bool tty = isatty(fileno(stderr));
  std::fprintf(stderr, "%s%s\n", tty ? "\r\x1b[K" : "", text.c_str());
  std::fflush(stderr);
}

int run_pipeline(const Options& options, const std::string& description, const RunHooks& hooks) {
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  if (!pipeline || err) {
    std::fprintf(stderr,
                 "syncwave-launch: the pipeline cannot be built (%s): check the preset, or that "
                 "the SyncWave plugin and GStreamer's base/good plugins are installed.\n",
                 err ? err->message : "unknown error");
    if (options.common.verbose) std::fprintf(stderr, "  %s\n", description.c_str());
    if (err) g_error_free(err);
    if (pipeline) gst_object_unref(pipeline);
    return kExitRuntimeError;
  }
  int code;
  {
    Runner runner(options, pipeline, hooks);
    code = runner.run();
  }
  gst_object_unref(pipeline);
  return code;
}

}  // namespace launcher
}  // namespace syncwave
