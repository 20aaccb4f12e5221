// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwave-launch: send, receive, devices, presets, list, control and calibrate. Usage errors exit
// 2, runtime errors 1, a clean run or an interruption 0 (see docs/launcher.md).

#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "calibrate.h"
#include "command_line.h"
#include "config.h"
#include "config_file.h"
#include "device_monitor.h"
#include "discovery.h"
#include "discovery_session.h"
#ifdef SYNCWAVE_HAVE_CONTROL
#include <libsoup/soup.h>

#include "control_session.h"
#endif
#include "control_model.h"
#if SYNCWAVE_HAVE_SECURE
#include "control_auth.h"
#endif
#include "options.h"
#include "pipeline_builder.h"
#include "preset.h"
#include "runner.h"
#include "sound_server.h"

#ifdef G_OS_UNIX
#include <unistd.h>
#endif

using namespace syncwave::launcher;
namespace control = syncwave::control;
#if SYNCWAVE_HAVE_SECURE
namespace control_auth = syncwave::control_auth;
#endif

namespace {

// GLib and GStreamer warnings are for developers: shown with --verbose only, so that
// the user sees the launcher's one-sentence errors and not an element's assertion.
void quiet_log(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer verbose) {
  if (verbose) g_log_default_handler(domain, level, message, nullptr);
}

// Repeatable options given on the command line replace the config file's list rather
// than add to it (--device, --delay and --volume go together).
Assignments without_repeated_on_command_line(const Assignments& config,
                                             const Assignments& command_line) {
  bool targets = false, outputs = false;
  for (const Assignment& a : command_line) {
    targets = targets || a.first == "target";
    outputs = outputs || a.first == "device" || a.first == "delay" || a.first == "volume";
  }
  Assignments kept;
  for (const Assignment& a : config) {
    if (targets && a.first == "target") continue;
    if (outputs && (a.first == "device" || a.first == "delay" || a.first == "volume")) continue;
    kept.push_back(a);
  }
  return kept;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "syncwave-launch: %s\n", message.c_str());
  return kExitUsageError;
}

int runtime_error(const std::string& message) {
  std::fprintf(stderr, "syncwave-launch: %s\n", message.c_str());
  return kExitRuntimeError;
}

Platform this_platform() {
#if defined(G_OS_WIN32)
  return Platform::kWindows;
#elif defined(__APPLE__)
  return Platform::kMacOS;
#else
  return Platform::kLinux;
#endif
}

// An installed launcher finds its own plugin even when it was installed into a prefix
// GStreamer does not search (say /opt/syncwave): when no plugin named syncwave is on
// GStreamer's path, the launcher scans the directory it was installed with.
void register_installed_plugin() {
  GstRegistry* registry = gst_registry_get();
  if (GstPlugin* plugin = gst_registry_find_plugin(registry, "syncwave")) {
    gst_object_unref(plugin);
    return;
  }
  if (g_file_test(SYNCWAVE_PLUGINDIR, G_FILE_TEST_IS_DIR))
    gst_registry_scan_path(registry, SYNCWAVE_PLUGINDIR);
}

int show_devices(const Options& options) {
  std::vector<AudioDevice> devices = probe_audio_devices();
  if (options.common.print) {
    for (const AudioDevice& d : devices)
      std::printf("%s\n", gst_launch_command(device_test_description(d, this_platform())).c_str());
    return kExitOk;
  }
  std::printf("%s", format_device_list(devices).c_str());
  if (devices.empty())
    std::fprintf(stderr, "No audio devices were found: is PulseAudio or PipeWire running?\n");
  return kExitOk;
}

// send --source=loopback on Linux: the capture follows the sound server's default output
// (sound_server.h) and says which output it captures, on its own line above the status.
std::unique_ptr<DefaultOutputFollower> follow_default_output(const Options& options,
                                                             const BuildEnvironment& env) {
  if (options.command != Command::kSend || options.send.source != SourceKind::kLoopback ||
      env.platform != Platform::kLinux || env.loopback_device.empty())
    return nullptr;
  const bool quiet = options.common.quiet;
#ifdef G_OS_UNIX
  const bool tty = isatty(fileno(stderr));
#else
  const bool tty = false;
#endif
  auto follower = std::make_unique<DefaultOutputFollower>(
      env.loopback_device,
      [quiet, tty](DefaultOutputFollower::Event event, const std::string& text) {
        if (quiet && event != DefaultOutputFollower::Event::kProblem) return;
        std::fprintf(stderr, "%s%s\n", tty ? "\r\x1b[K" : "", text.c_str());
      });
  if (!follower->start()) return nullptr;
  return follower;
}

int show_presets(const Options& options) {
  std::vector<std::string> errors;
  std::vector<Preset> presets = list_presets(preset_directories(), &errors);
  for (const std::string& e : errors) std::fprintf(stderr, "syncwave-launch: %s\n", e.c_str());
  if (presets.empty())
    return runtime_error(
        "No presets were found: set SYNCWAVE_PIPELINES_DIR to the pipelines/ directory.");
  for (const Preset& p : presets) {
    if (!options.common.print) {
      std::printf("%-16s %s\n", p.name.c_str(), p.description.c_str());
      if (options.common.verbose) {
        std::printf("    file:    %s\n", p.path.c_str());
        std::string send, receive;
        for (const Assignment& a : p.send) send += " --" + a.first + "=" + a.second;
        for (const Assignment& a : p.receive) receive += " --" + a.first + "=" + a.second;
        std::printf("    send:   %s\n      %s\n", send.c_str(),
                    (p.send_template.empty() ? kDefaultSendTemplate : p.send_template.c_str()));
        std::printf(
            "    receive:%s\n      %s\n", receive.c_str(),
            (p.receive_template.empty() ? kDefaultReceiveTemplate : p.receive_template.c_str()));
      }
      continue;
    }
    // The pipelines of the preset, runnable as printed: a tone sent to this machine.
    std::printf("# %s: %s\n", p.name.c_str(), p.description.c_str());
    for (Command c : {Command::kSend, Command::kReceive}) {
      Options o;
      o.command = c;
      std::string err;
      for (const Assignment& a : (c == Command::kSend ? p.send : p.receive))
        apply_option(o, a.first, a.second, &err);
      if (c == Command::kSend) {
        apply_option(o, "source", "test", &err);
        apply_option(o, "target", "127.0.0.1", &err);
      }
      BuildEnvironment env;
      env.platform = this_platform();
      std::string description;
      if (!build_pipeline(o, env, &p, &description, &err)) return runtime_error(err);
      std::printf("%s\n", gst_launch_command(description).c_str());
    }
  }
  return kExitOk;
}

}  // namespace

// `control NAME KEY=VALUE...`: validates the change as the API does, POSTs it to the
// sender's /api/receivers/NAME and says what happened.
// control without --sender: how long it looks for senders on the network.
constexpr double kFindSendersTimeoutS = 1.5;

#ifdef SYNCWAVE_HAVE_CONTROL
// One POST of `body` to the control API of `sender`. Returns the HTTP status (0: not
// reached) and the reply's text, or the reason in *error.
guint post_change(const std::string& sender, int port, const std::string& receiver,
                  const std::string& body, const std::string& token, std::string* text,
                  std::string* error) {
  gchar* escaped = g_uri_escape_string(receiver.c_str(), nullptr, FALSE);
  const std::string host = sender.find(':') != std::string::npos ? "[" + sender + "]" : sender;
  const std::string url =
      "http://" + host + ":" + std::to_string(port) + "/api/receivers/" + escaped;
  g_free(escaped);
  SoupSession* session = soup_session_new_with_options("timeout", 5, nullptr);
  SoupMessage* msg = soup_message_new("POST", url.c_str());
  guint status = 0;
  if (!msg) {
    *error = "Cannot make a request to " + url + ".";
  } else {
    if (!token.empty())
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                   ("SyncWave " + token).c_str());
    GBytes* b = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, "application/json", b);
    g_bytes_unref(b);
    GError* err = nullptr;
    GBytes* reply = soup_session_send_and_read(session, msg, nullptr, &err);
    if (reply) {
      gsize n = 0;
      const char* d = static_cast<const char*>(g_bytes_get_data(reply, &n));
      text->assign(d ? d : "", n);
      g_bytes_unref(reply);
    }
    if (err) {
      *error = "Cannot reach the control page of " + host + ":" + std::to_string(port) + " (" +
               err->message + "): is the sender running with --control-port there? "
               "--sender names its host.";
      g_clear_error(&err);
    } else {
      status = soup_message_get_status(msg);
    }
    g_object_unref(msg);
  }
  g_object_unref(session);
  return status;
}

// The one sentence of an {"error":"...", ...} reply: the string up to its closing quote,
// with JSON's \" and \\ undone.
std::string reply_error(const std::string& text, guint status) {
  const size_t at = text.find("\"error\":\"");
  if (at == std::string::npos) return "HTTP status " + std::to_string(status);
  std::string why;
  for (size_t i = at + 9; i < text.size() && text[i] != '"'; i++) {
    if (text[i] == '\\' && i + 1 < text.size()) i++;
    why += text[i];
  }
  return why;
}
#endif

// `control NAME KEY=VALUE...`: to the sender named by --sender; without it, to the
// senders found on the network (mDNS, this computer's first), the first that knows
// NAME; with no sender found (or no mDNS daemon), to 127.0.0.1.
int run_control(const Options& options, bool sender_given) {
  const ControlOptions& c = options.control;
  control::ChangeRequest change;
  std::string error;
  if (!control::valid_name(c.receiver))
    return usage_error("'" + c.receiver + "' is not a receiver's name (1-63 letters, digits, "
                       "spaces, '-', '_' or '.').");
  // The delay's lower bound is the receiver's latency, which the sender checks.
  if (!control::parse_change_args(c.settings, control::kMaxLatencyMs, &change, &error))
    return usage_error(error + ".");
#ifdef SYNCWAVE_HAVE_CONTROL
  std::vector<std::string> senders;
  if (sender_given) {
    senders.push_back(c.sender);
  } else {
    std::string problem;
    std::unique_ptr<Discovery> d = make_discovery(&problem);
    if (d) senders = find_senders(d.get(), kFindSendersTimeoutS);
    if (senders.empty()) senders.push_back("127.0.0.1");
    if (options.common.verbose)
      for (const std::string& s : senders) std::fprintf(stderr, "control: trying %s\n", s.c_str());
  }
  const std::string body = control::change_to_json(change);
  // With a secret every request is signed (docs/control.md, "Authentication").
  const std::string path = "/api/receivers/" + c.receiver;
  const bool secured = !options.common.secret.empty();
#if SYNCWAVE_HAVE_SECURE
  control_auth::Key key{};
  if (secured && !control_auth::control_key_from_passphrase(options.common.secret, &key))
    return runtime_error("Cannot derive the control key from the secret (libsodium needs 64 MiB).");
#else
  if (secured)
    return runtime_error(
        "This syncwave-launch was built without libsodium: it cannot sign "
        "requests with --secret.");
#endif
  std::string last_error;
  for (const std::string& sender : senders) {
    std::string text;
    error.clear();
    int64_t offset_ms = 0;  // the sender's clock minus ours, from a refusal
    guint status = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
      std::string token;
#if SYNCWAVE_HAVE_SECURE
      if (secured)
        token =
            control_auth::make_token(key, g_get_real_time() / 1000 + offset_ms, "POST", path, body);
#else
      (void)offset_ms;
#endif
      text.clear();
      status = post_change(sender, c.control_port, c.receiver, body, token, &text, &error);
      // Refused for our clock: once more on the sender's.
      const size_t at = text.find("\"server_time_ms\":");
      if (status != 401 || !secured || attempt > 0 || at == std::string::npos ||
          text.find("clock") == std::string::npos)
        break;
      offset_ms = std::strtoll(text.c_str() + at + 17, nullptr, 10) - g_get_real_time() / 1000;
    }
    if (status == 401) {
      const std::string why = reply_error(text, status);
      return runtime_error(secured ? c.receiver + ": the sender at " + sender +
                                         " refused the request (" + why + ")."
                                   : c.receiver + ": the sender at " + sender +
                                         " wants its secret: give control --secret=PASSPHRASE or "
                                         "--secret-file=PATH, the sender's.");
    }
    if (status == 200) {
      if (!options.common.quiet) std::printf("%s: %s\n", c.receiver.c_str(), body.c_str());
      return kExitOk;
    }
    if (status != 0) error = c.receiver + ": " + reply_error(text, status) + ".";
    // Another sender may know the receiver: only "not here" and "not reached" go on.
    if (status != 0 && status != 404) return runtime_error(error);
    last_error = error;
  }
  return runtime_error(last_error);
#else
  (void)change;
  (void)sender_given;
  return runtime_error("This syncwave-launch was built without the control surface (libsoup-3.0).");
#endif
}

int main(int argc, char** argv) {
  CommandLine cl;
  std::string error;
  if (!parse_command_line(argc, argv, &cl, &error)) return usage_error(error);
  if (cl.help) {
    std::printf("%s", cl.help_text.c_str());
    return kExitOk;
  }
  if (cl.version) {
    gst_init(nullptr, nullptr);
    gchar* gst = gst_version_string();
    std::printf("%s(%s)\n", version_text().c_str(), gst);
    g_free(gst);
    return kExitOk;
  }

  Options options;
  options.command = cl.command;
  const bool streams = cl.command == Command::kSend || cl.command == Command::kReceive;
  // --from=NAME: how long receive looks for the sender of that name before giving up.
  constexpr double kFindSenderTimeoutS = 5.0;

  // Layers, later wins: defaults < preset < config file < command line.
  Assignments config;
  const std::string config_path = config_file_path();
  const bool configured = streams || cl.command == Command::kControl;
  if (configured && !load_config(config_path, cl.command, &config, &error))
    return usage_error(error);
  config = without_repeated_on_command_line(config, cl.assignments);
  std::string preset_name;
  for (const Assignment& a : config)
    if (a.first == "preset") preset_name = a.second;
  for (const Assignment& a : cl.assignments)
    if (a.first == "preset") preset_name = a.second;
  Preset preset;
  bool have_preset = false;
  if (!preset_name.empty()) {
    if (!find_preset(preset_directories(), preset_name, &preset, &error)) return usage_error(error);
    have_preset = true;
    for (const Assignment& a : cl.command == Command::kSend ? preset.send : preset.receive)
      if (!apply_option(options, a.first, a.second, &error)) return usage_error(error);
  }
  for (const Assignment& a : config)
    if (!apply_option(options, a.first, a.second, &error)) return usage_error(error);
  for (const Assignment& a : cl.assignments)
    if (!apply_option(options, a.first, a.second, &error)) return usage_error(error);
  if (!validate_options(options, &error)) return usage_error(error);
  if (cl.command == Command::kControl && options.common.secret.empty()) {
    // No secret in [control] or on the command line: the one this machine's sender (or
    // receiver) is configured with, so that `control` works where they run.
    for (Command other : {Command::kSend, Command::kReceive}) {
      Assignments saved;
      std::string ignored;
      if (!load_config(config_path, other, &saved, &ignored)) continue;
      for (const Assignment& a : saved)
        if ((a.first == "secret" || a.first == "secret-file") &&
            !apply_option(options, a.first, a.second, &error))
          return usage_error(error);
      if (!options.common.secret.empty()) break;
    }
  }
  if (cl.command == Command::kControl && options.control.page_key) {
    // The page's key, for a sender run with --quiet or as a service.
    if (!cl.positional.empty())
      return usage_error("control --page-key takes no receiver or setting.");
    if (options.common.secret.empty())
      return usage_error(
          "control --page-key needs the secret: --secret, --secret-file or the "
          "config file's.");
#if SYNCWAVE_HAVE_SECURE
    control_auth::Key key{};
    if (!control_auth::control_key_from_passphrase(options.common.secret, &key))
      return runtime_error(
          "Cannot derive the control key from the secret (libsodium needs 64 MiB).");
    std::printf("%s\n", control_auth::key_to_hex(key).c_str());
    return kExitOk;
#else
    return runtime_error("This syncwave-launch was built without libsodium: there is no page key.");
#endif
  }
  if (cl.command == Command::kControl) {
    if (cl.positional.size() < 2)
      return usage_error(
          "control needs a receiver's name and at least one setting, e.g. 'syncwave-launch "
          "control Kitchen volume=0.25'.");
    options.control.receiver = cl.positional[0];
    options.control.settings.assign(cl.positional.begin() + 1, cl.positional.end());
    bool sender_given = false;
    for (const Assignment& a : cl.assignments) sender_given = sender_given || a.first == "sender";
    for (const Assignment& a : config) sender_given = sender_given || a.first == "sender";
    return run_control(options, sender_given);
  }

  if (options.common.save_config) {
    Assignments explicit_options = config;
    explicit_options.insert(explicit_options.end(), cl.assignments.begin(), cl.assignments.end());
    if (!save_config(config_path, cl.command, explicit_options, &error))
      return runtime_error(error);
    if (!options.common.quiet)
      std::fprintf(stderr, "Saved the %s options to %s.\n", command_name(cl.command),
                   config_path.c_str());
  }

  gst_init(nullptr, nullptr);
  register_installed_plugin();
  for (const char* domain : {"GStreamer", "GLib", "GLib-GObject", "GLib-GIO"})
    g_log_set_handler(domain,
                      static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL),
                      quiet_log, GINT_TO_POINTER(options.common.verbose ? 1 : 0));
  // Probing a missing audio server logs a GStreamer ERROR line; the launcher says it
  // in its own words, so that noise only shows with --verbose.
  if (!options.common.verbose) gst_debug_set_threshold_for_name("pulse", GST_LEVEL_NONE);
  int code = kExitOk;
  if (cl.command == Command::kDevices) {
    code = show_devices(options);
  } else if (cl.command == Command::kPresets) {
    code = show_presets(options);
  } else if (cl.command == Command::kList) {
    code = run_list(options);
  } else if (cl.command == Command::kCalibrate) {
    code = run_calibrate(options);
  } else {
    BuildEnvironment env;
    // Discovery (discovery.h): not for --print; without a daemon one sentence, and the
    // command goes on with its manual destinations.
    std::unique_ptr<Discovery> discovery;
    bool ok = prepare_environment(options, &env, &error);
    if (ok && !options.common.print) {
      std::string problem;
      discovery = make_discovery(&problem);
      const bool needs_it = cl.command == Command::kSend && options.send.discover();
      const bool from_name = cl.command == Command::kReceive && env.from_unresolved;
      if (!discovery && (needs_it || from_name)) {
        ok = false;
        code = runtime_error(
            problem + (needs_it ? " Without discovery 'send' needs --target=HOST, --broadcast or "
                                  "--multicast=GROUP."
                                : " Without it --from takes a host, not a sender's name."));
      } else if (!discovery && !options.common.quiet) {
        std::fprintf(stderr, "%s%s\n", problem.c_str(),
                     cl.command == Command::kSend
                         ? " This sender is not announced."
                         : " This receiver is not announced: senders need --target to reach it.");
      } else if (from_name) {
        env.from_address =
            find_sender(discovery.get(), options.receive.from, kFindSenderTimeoutS, &error);
        if (env.from_address.empty()) {
          ok = false;
          code = runtime_error(error);
        }
      }
    } else if (!ok) {
      code = runtime_error(error);
    }
    if (ok && cl.command == Command::kSend && options.send.discover() && options.common.print)
      std::fprintf(stderr,
                   "No destination given: when run, 'send' adds the receivers it finds to "
                   "multiudpsink 'net'.\n");
    if (!ok) {
    } else {
      std::string description;
      if (!build_pipeline(options, env, have_preset ? &preset : nullptr, &description, &error)) {
        code = runtime_error(error);
      } else if (options.common.print) {
        std::printf("%s\n", gst_launch_command(description).c_str());
      } else {
        if (options.common.verbose) std::fprintf(stderr, "Pipeline: %s\n", description.c_str());
        std::unique_ptr<DefaultOutputFollower> follower = follow_default_output(options, env);
        DiscoverySession session(options, std::move(discovery));
        session.start();
#ifdef SYNCWAVE_HAVE_CONTROL
        // The control surface is an extra: when its port is taken (another sender on
        // this machine), say so and play on without it.
        std::vector<std::string> given;
        for (const Assignment& a : cl.assignments) given.push_back(a.first);
        ControlSession control(options, given);
        if (!control.start(&error)) {
          std::fprintf(stderr, "syncwave-launch: %s The stream runs without it.\n", error.c_str());
          code = run_pipeline(options, description, session.hooks());
        } else {
          code = run_pipeline(options, description, control.hooks(session.hooks()));
        }
#else
        code = run_pipeline(options, description, session.hooks());
#endif
      }
    }
  }
  gst_deinit();
  return code;
}
