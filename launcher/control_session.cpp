// SPDX-License-Identifier: LGPL-2.1-or-later
#include "control_session.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "config.h"
#include "config_file.h"
#include "control_model.h"
#include "control_server.h"
#include "host_port.h"
#include "status_format.h"
#if SYNCWAVE_HAVE_SECURE
#include "control_auth.h"
#endif

namespace syncwave {
namespace launcher {

namespace c = control;
#if SYNCWAVE_HAVE_SECURE
namespace cauth = control_auth;
#endif

namespace {

#if SYNCWAVE_HAVE_SECURE
int64_t wall_ms() {
  return g_get_real_time() / 1000;
}
#endif

bool private_ipv4(uint32_t a) {  // host order
  return (a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
         (a >> 16) == (169u << 8 | 254) || (a >> 24) == 127;
}

// Sends `text` to `host`:`port` from `sock`; false when it cannot.
bool send_text(GSocket* sock, const std::string& host, int port, const std::string& text) {
  GInetAddress* inet = g_inet_address_new_from_string(host.c_str());
  if (!inet) return false;
  GSocketAddress* to = g_inet_socket_address_new(inet, (guint16)port);
  g_object_unref(inet);
  const gssize n = g_socket_send_to(sock, to, text.data(), text.size(), nullptr, nullptr);
  g_object_unref(to);
  return n == (gssize)text.size();
}

// Reads one datagram: its text and the sender's address ("HOST", port).
bool receive_text(GSocket* sock, std::string* text, std::string* host, int* port) {
  char buf[c::kMaxDatagramBytes + 1];
  GSocketAddress* from = nullptr;
  const gssize n = g_socket_receive_from(sock, &from, buf, sizeof buf, nullptr, nullptr);
  if (n <= 0 || !from) {
    if (from) g_object_unref(from);
    return false;
  }
  bool ok = false;
  if (G_IS_INET_SOCKET_ADDRESS(from) && (size_t)n <= c::kMaxDatagramBytes) {
    gchar* h = g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)));
    *host = h;
    g_free(h);
    *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from));
    text->assign(buf, (size_t)n);
    ok = true;
  }
  g_object_unref(from);
  return ok;
}

GSocket* udp_socket(const std::string& address, int port, std::string* error) {
  GInetAddress* inet = g_inet_address_new_from_string(address.c_str());
  if (!inet) {
    *error = "\"" + address + "\" is not an IP address";
    return nullptr;
  }
  GError* err = nullptr;
  GSocket* sock = g_socket_new(g_inet_address_get_family(inet), G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, &err);
  GSocketAddress* sa = g_inet_socket_address_new(inet, (guint16)port);
  g_object_unref(inet);
  if (!sock || !g_socket_bind(sock, sa, FALSE, &err)) {
    *error = "Cannot open the control port " + address + ":" + std::to_string(port) + " (UDP): " +
             (err ? err->message : "unknown error") +
             ". Choose another --control-port, or --control-port=0 to turn it off.";
    g_clear_error(&err);
    if (sock) g_object_unref(sock);
    g_object_unref(sa);
    return nullptr;
  }
  g_object_unref(sa);
  g_socket_set_blocking(sock, FALSE);
  return sock;
}

}  // namespace

std::vector<std::string> default_control_addresses() {
  std::vector<std::string> out = {"127.0.0.1"};
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (struct ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    const uint32_t a = ntohl(reinterpret_cast<struct sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if (!private_ipv4(a) || (a >> 24) == 127) continue;
    char text[32];
    std::snprintf(text, sizeof text, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                  a & 255);
    if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
  }
  freeifaddrs(list);
  return out;
}

struct ControlSession::Impl {
  const Options& options;
  // send
  c::ReceiverTable table;
  std::unique_ptr<c::ControlServer> server;
  std::map<std::string, GSocket*> report_socket;  // the socket each receiver reports to
  // receive
  GstElement* pipeline = nullptr;
  std::string sender_host;
  double volume = 1.0;
  bool mute = false;
  int delay_ms = 0;
  int latency_ms = 0;
  std::string config_path;                // where [room NAME] is kept
  std::vector<std::string> command_line;  // options given there win over the saved room
  c::ChangeRequest restored;              // the saved room, applied when the pipeline starts
  // both
  std::vector<GSocket*> sockets;
  std::vector<GSource*> sources;
  // A secret is set: every request signed and checked (docs/control.md, "Authentication").
  bool secured = false;
#if SYNCWAVE_HAVE_SECURE
  cauth::Key key{};
  std::unique_ptr<cauth::Verifier> http_auth;  // send: the API's requests
  std::unique_ptr<cauth::Verifier> udp_auth;   // send: the reports; receive: the changes
#endif
  std::set<std::string> warned;  // "reason host": said once (at most 256)

  Impl(const Options& o, const std::vector<std::string>& given)
      : options(o), config_path(config_file_path()), command_line(given) {
    if (!o.receive.outputs.empty()) {
      volume = o.receive.outputs[0].volume;
      delay_ms = o.receive.outputs[0].delay_ms;
    }
    latency_ms = o.receive.latency_ms;
  }
  ~Impl() {
    for (GSource* s : sources) {
      g_source_destroy(s);
      g_source_unref(s);
    }
    for (GSocket* s : sockets) g_object_unref(s);
    if (pipeline) gst_object_unref(pipeline);
  }

  std::string my_name() const {
    const std::string& n = options.receive.name;
    if (!n.empty()) return n;
    std::string host = g_get_host_name();
    std::string clean;
    for (char ch : host) clean += c::valid_name(std::string(1, ch)) ? ch : '-';
    return clean.substr(0, c::kMaxNameBytes);
  }

  void watch(GSocket* sock) {
    GSource* src = g_socket_create_source(sock, G_IO_IN, nullptr);
    g_source_set_callback(src, G_SOURCE_FUNC(&Impl::on_readable), this, nullptr);
    g_source_attach(src, nullptr);
    sources.push_back(src);
    sockets.push_back(sock);
  }

  static gboolean on_readable(GSocket* sock, GIOCondition, gpointer data) {
    static_cast<Impl*>(data)->readable(sock);
    return G_SOURCE_CONTINUE;
  }

  void readable(GSocket* sock) {
    std::string text, host;
    int port = 0;
    while (receive_text(sock, &text, &host, &port)) {
      if (options.command == Command::kSend || options.command == Command::kCalibrate) {
        on_report(sock, text, host, port);
      } else {
        on_change(text, host);
      }
    }
  }

  // A back-channel datagram's text after its prefix: "JSON" plain, "TOKEN JSON" with a
  // secret. Returns the payload when it may be used (with a secret: its token verified
  // for METHOD PATH); nothing when refused (counted, said once per reason and host).
  std::optional<std::string> open(const std::string& rest, const char* method,
                                  const std::string& path, const std::string& host,
                                  const char* what) {
    if (!secured) return rest;
#if SYNCWAVE_HAVE_SECURE
    const size_t space = rest.find(' ');
    const bool tokened = !rest.empty() && rest[0] != '{' && space != std::string::npos;
    const std::string token = tokened ? rest.substr(0, space) : std::string();
    const std::string json = tokened ? rest.substr(space + 1) : rest;
    const cauth::Reject r = udp_auth->verify(token, method, path, json, wall_ms());
    if (r == cauth::Reject::kNone) return json;
    if (r != cauth::Reject::kReplayed && warned.size() < 256 &&
        warned.insert(std::string(cauth::reject_name(r)) + " " + host).second &&
        !options.common.quiet) {
      std::string why =
          r == cauth::Reject::kMissing ? "carry no token: is that side running without the secret?"
          : r == cauth::Reject::kStale
              ? "are more than 30 s off this machine's clock, or too old: are both clocks set?"
              : "fail authentication: wrong secret?";
      print_event_line(std::string("control: ") + what + " from " + host + " " + why);
    }
#else
    (void)rest, (void)method, (void)path, (void)host, (void)what;
#endif
    return std::nullopt;
  }

  // The datagram for `json`: signed with a secret.
  std::string seal(const char* prefix, const char* method, const std::string& path,
                   const std::string& json) {
#if SYNCWAVE_HAVE_SECURE
    if (secured) return prefix + cauth::make_token(key, wall_ms(), method, path, json) + " " + json;
#else
    (void)method, (void)path;
#endif
    return prefix + json;
  }

  // send: a receiver's report.
  void on_report(GSocket* sock, const std::string& text, const std::string& host, int port) {
    const std::string prefix = c::kReportPrefix;
    if (text.compare(0, prefix.size(), prefix) != 0) return;
    const std::optional<std::string> json =
        open(text.substr(prefix.size()), c::kReportMethod, "", host, "reports");
    if (!json) return;
    c::ReceiverReport r;
    std::string error;
    if (!c::parse_report(*json, &r, &error)) return;
    r.address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                std::to_string(port);
    const bool fresh = table.find(r.name) == nullptr;
    if (!table.report(r, g_get_monotonic_time())) return;
    report_socket[r.name] = sock;
    if (fresh && !options.common.quiet)
      print_event_line("control: " + r.name + " reports from " + r.address);
  }

  // receive: a change from the sender.
  void on_change(const std::string& text, const std::string& host) {
    const std::string prefix = c::kChangePrefix;
    if (text.compare(0, prefix.size(), prefix) != 0) return;
    if (sender_host.empty() || host != sender_host) return;  // only the played sender
    const std::optional<std::string> json =
        open(text.substr(prefix.size()), c::kChangeMethod, my_name(), host, "changes");
    if (!json) return;
    c::ChangeRequest change;
    std::string error;
    if (!c::parse_change(*json, latency_ms, &change, &error)) {
      if (options.common.verbose) print_event_line("control: ignored a change: " + error);
      return;
    }
    apply(change, host);
    save(change);
  }

  // receive: the room as the control page left it, from the config file; what the
  // command line gives wins.
  void restore() {
    std::vector<std::string> kept;
    for (const std::string& kv : load_room(config_path, my_name())) {
      const std::string key = kv.substr(0, kv.find('='));
      if (std::find(command_line.begin(), command_line.end(), key) == command_line.end())
        kept.push_back(kv);
    }
    if (kept.empty()) return;
    std::string error;
    c::ChangeRequest ch;
    if (!c::parse_change_args(kept, latency_ms, &ch, &error)) {
      print_event_line("control: ignored [room " + my_name() + "] in " + config_path + ": " + error);
      return;
    }
    restored.volume = ch.volume;
    restored.mute = ch.mute;
    restored.delay_ms = ch.delay_ms;
    restored.latency_ms = ch.latency_ms;
  }

  // receive: keeps a change from the sender in [room NAME].
  void save(const c::ChangeRequest& ch) {
    std::vector<std::string> values;
    char text[64];
    if (ch.volume) {
      std::snprintf(text, sizeof text, "volume=%.4g", *ch.volume);
      values.push_back(text);
    }
    if (ch.mute) values.push_back(std::string("mute=") + (*ch.mute ? "true" : "false"));
    if (ch.delay_ms) values.push_back("delay=" + std::to_string(*ch.delay_ms));
    if (ch.latency_ms) values.push_back("latency=" + std::to_string(*ch.latency_ms));
    if (values.empty()) return;
    std::string error;
    if (!save_room(config_path, my_name(), values, &error))
      print_event_line("control: the change is not kept for the next start: " + error);
  }

  void apply(const c::ChangeRequest& ch, const std::string& from) {
    std::string what;
    if (ch.volume) {
      volume = *ch.volume;
      what += " volume " + std::to_string(volume).substr(0, 4);
    }
    if (ch.mute) {
      mute = *ch.mute;
      what += mute ? " muted" : " unmuted";
    }
    if (ch.delay_ms) {
      delay_ms = *ch.delay_ms;
      what += " delay " + std::to_string(delay_ms) + " ms";
    }
    if (ch.latency_ms) {
      latency_ms = *ch.latency_ms;
      what += " latency " + std::to_string(latency_ms) + " ms";
    }
    if (!pipeline) return;
    // The receiver (one syncwavesink) and its device outputs, output0..outputN-1 (with
    // --silent there are none; the monitor output after them is left as it is).
    GstElement* receiver = gst_bin_get_by_name(GST_BIN(pipeline), "receiver");
    if (receiver == nullptr) return;
    if (ch.latency_ms) g_object_set(receiver, "latency", (guint)latency_ms, nullptr);
    const size_t devices = options.receive.silent ? 0 : options.receive.outputs.size();
    for (size_t i = 0; i < devices; i++) {
      GstElement* out =
          gst_bin_get_by_name(GST_BIN(receiver), ("output" + std::to_string(i)).c_str());
      if (!out) continue;
      if (ch.volume) g_object_set(out, "volume", volume, nullptr);
      if (ch.mute) g_object_set(out, "mute", (gboolean)mute, nullptr);
      if (ch.delay_ms) g_object_set(out, "delay", (gint)delay_ms, nullptr);
      gst_object_unref(out);
    }
    gst_object_unref(receiver);
    if (!what.empty() && !options.common.quiet)
      print_event_line("control:" + what + " (from " + from + ")");
  }

  // receive: once a second, the report to the played sender.
  void tick(StatsSample* s) {
    if (options.receive.control_port == 0 || sockets.empty() || s->sender.empty()) return;
    const HostPortResult hp = parse_host_port(s->sender);
    if (!hp.ok()) return;
    sender_host = hp.value.host;
    c::ReceiverReport r;
    r.name = my_name();
    r.state = s->state;
    r.latency_ms = s->latency_ms.value_or(latency_ms);
    r.sync_offset_us = s->clock_offset_us.value_or(0.0);
    r.lost = s->lost.value_or(0);
    r.late = s->late.value_or(0);
    for (const ChannelLevel& l : s->levels) r.level_db.push_back(l.rms_db);
    r.volume = volume;
    r.mute = mute;
    r.delay_ms = delay_ms;
#if SYNCWAVE_HAVE_SECURE
    if (secured) r.control_refused = udp_auth->rejected_total();
#endif
    send_text(sockets[0], sender_host, options.receive.control_port,
              seal(c::kReportPrefix, c::kReportMethod, "", c::report_to_json(r)));
  }

  // send, calibrate: a change to receiver NAME, to where its reports come from.
  bool send_change(const std::string& name, const c::ChangeRequest& ch, std::string* err) {
    const c::ReceiverReport* r = table.find(name);
    const HostPortResult hp = r ? parse_host_port(r->address) : HostPortResult{};
    auto via = report_socket.find(name);
    if (!r || !hp.ok() || via == report_socket.end() ||
        !send_text(via->second, hp.value.host, hp.value.port,
                   seal(c::kChangePrefix, c::kChangeMethod, name, c::change_to_json(ch)))) {
      *err = "cannot reach " + name;
      return false;
    }
    return true;
  }

  // A secret: the control key (Argon2id, as the stream's, then its control subkey).
  bool secure(std::string* error) {
    if (options.common.secret.empty()) return true;
#if SYNCWAVE_HAVE_SECURE
    if (!cauth::control_key_from_passphrase(options.common.secret, &key)) {
      *error = "Cannot derive the control key from the secret (libsodium needs 64 MiB).";
      return false;
    }
    secured = true;
    udp_auth = std::make_unique<cauth::Verifier>(key);
    if (options.command == Command::kSend) http_auth = std::make_unique<cauth::Verifier>(key);
    return true;
#else
    *error =
        "This syncwave-launch was built without libsodium: its control surface cannot "
        "check the secret.";
    return false;
#endif
  }

#if SYNCWAVE_HAVE_SECURE
  static std::string counts_json(const cauth::Verifier& v) {
    std::string out = "{\"accepted\":" + std::to_string(v.accepted());
    for (size_t i = 1; i < static_cast<size_t>(cauth::Reject::kCount); i++)
      out += std::string(",\"") + cauth::reject_name(static_cast<cauth::Reject>(i)) +
             "\":" + std::to_string(v.rejected(static_cast<cauth::Reject>(i)));
    return out + "}";
  }
  static const char* refusal(cauth::Reject r) {
    switch (r) {
      case cauth::Reject::kMissing:
        return "this sender has a secret: the request needs its token (syncwave-launch control "
               "--secret, or the page opened with #key=)";
      case cauth::Reject::kMalformed:
        return "the request's token is malformed";
      case cauth::Reject::kStale:
        return "the request's time is more than 30 s from the sender's clock, or too old "
               "(server_time_ms is the sender's)";
      case cauth::Reject::kBadMac:
        return "the request's token does not verify: wrong secret or key?";
      case cauth::Reject::kReplayed:
        return "the request's token was used before";
      default:
        return "refused";
    }
  }
#endif

  bool start(std::string* error) {
    if (options.command == Command::kReceive) {
      if (options.receive.control_port == 0) return true;
      if (!secure(error)) return false;
      restore();
      GSocket* sock = udp_socket("0.0.0.0", 0, error);
      if (!sock) return false;
      watch(sock);
      return true;
    }
    if (options.command == Command::kCalibrate) {
      // Only the back channel: the receivers report here, their changes go from here.
      if (!secure(error)) return false;
      for (const std::string& a : default_control_addresses()) {
        GSocket* sock = udp_socket(a, options.calibrate.control_port, error);
        if (!sock) return false;
        watch(sock);
      }
      return true;
    }
    if (options.command != Command::kSend || options.send.control_port == 0) return true;
    if (!secure(error)) return false;
    const std::vector<std::string> addresses =
        options.send.control_bind.empty() ? default_control_addresses() : options.send.control_bind;
    c::ControlServer::Hooks hooks;
    hooks.receivers_json = [this] {
      table.expire(g_get_monotonic_time());
      for (auto it = report_socket.begin(); it != report_socket.end();)
        it = table.find(it->first) ? std::next(it) : report_socket.erase(it);
      std::string json = table.to_json(g_get_monotonic_time());
#if SYNCWAVE_HAVE_SECURE
      // With a secret: what was refused, by reason (docs/control.md).
      if (secured)
        json.insert(json.size() - 1, ",\"auth\":{\"requests\":" + counts_json(*http_auth) +
                                         ",\"reports\":" + counts_json(*udp_auth) + "}");
#endif
      return json;
    };
    hooks.latency_of = [this](const std::string& name) {
      const c::ReceiverReport* r = table.find(name);
      return r ? r->latency_ms : -1;
    };
    hooks.apply = [this](const std::string& name, const c::ChangeRequest& ch, std::string* err) {
      return send_change(name, ch, err);
    };
#if SYNCWAVE_HAVE_SECURE
    if (secured) {
      hooks.authorize = [this](const std::string& token, const std::string& method,
                               const std::string& path, const std::string& body, std::string* err) {
        const cauth::Reject r = http_auth->verify(token, method, path, body, wall_ms());
        if (r == cauth::Reject::kNone) return true;
        *err = refusal(r);
        if (options.common.verbose)
          print_event_line(std::string("control: refused a request (") + cauth::reject_name(r) +
                           ")");
        return false;
      };
      hooks.now_ms = [] { return wall_ms(); };
    }
#endif
    server = std::make_unique<c::ControlServer>(hooks);
    if (!server->start(addresses, (uint16_t)options.send.control_port, error)) return false;
    for (const std::string& a : addresses) {
      GSocket* sock = udp_socket(a, server->port(), error);
      if (!sock) return false;
      watch(sock);
    }
    if (!options.common.quiet) {
      std::string fragment;
#if SYNCWAVE_HAVE_SECURE
      // The page's key: it controls the rooms, but cannot open or seal the audio.
      if (secured) fragment = "#key=" + cauth::key_to_hex(key);
#endif
      std::fprintf(stderr, "Control page: http://%s:%u/%s\n",
                   addresses.size() > 1 ? addresses[1].c_str() : addresses[0].c_str(),
                   server->port(), fragment.c_str());
    }
    return true;
  }
};

ControlSession::ControlSession(const Options& options, const std::vector<std::string>& command_line)
    : impl_(new Impl(options, command_line)) {}
ControlSession::~ControlSession() = default;

bool ControlSession::start(std::string* error) { return impl_->start(error); }

const control::ReceiverReport* ControlSession::receiver(const std::string& name) {
  impl_->table.expire(g_get_monotonic_time());
  return impl_->table.find(name);
}

bool ControlSession::send_change(const std::string& name, const control::ChangeRequest& change,
                                 std::string* error) {
  return impl_->send_change(name, change, error);
}

RunHooks ControlSession::hooks(RunHooks inner) {
  RunHooks h;
  Impl* impl = impl_.get();
  h.started = [impl, inner](GstElement* pipeline) {
    if (inner.started) inner.started(pipeline);
    if (impl->pipeline) gst_object_unref(impl->pipeline);
    impl->pipeline = GST_ELEMENT(gst_object_ref(pipeline));
    // Before it plays: the room as the control page left it.
    if (!impl->restored.empty()) impl->apply(impl->restored, "the config file");
  };
  h.tick = [impl, inner](StatsSample* s) {
    if (inner.tick) inner.tick(s);
    impl->tick(s);
  };
  return h;
}

}  // namespace launcher
}  // namespace syncwave
