// SPDX-License-Identifier: LGPL-2.1-or-later
#include "command_line.h"

#include <glib.h>

#include <vector>

#include "config.h"

namespace syncwave {
namespace launcher {

namespace {

struct OptionDoc {
  const char* name;
  const char* arg;  // nullptr: a flag
  const char* help;
  bool send, receive, other;  // other: devices, presets
  bool list = false;
  bool control = false;
  bool calibrate = false;
};

const OptionDoc kOptionDocs[] = {
    {"source", "loopback|test|device:NAME|file:PATH",
     "What to send: what this computer plays (default), a 440 Hz tone, a capture device, a "
     "file",
     true, false, false},
    {"codec", "raw|opus", "raw float32 or Opus (default opus)", true, false, false},
    {"bitrate", "KBPS", "Opus bit rate in kb/s, 6..510 (default 128)", true, false, false},
    {"frame-ms", "2.5|5|10|20", "Packet duration in ms (default 10)", true, false, false},
    {"fec", "PERCENT", "Opus in-band FEC tuned for this expected loss (default 0: off)", true,
     false, false},
    {"target", "HOST[:PORT]",
     "Send to this receiver; repeat for more (one capture, one encoder). No --target, "
     "--broadcast or --multicast: every receiver found on the network",
     true, false, false},
    {"broadcast", nullptr, "Send to the subnet broadcast address", true, false, false},
    {"multicast", "GROUP[:PORT]", "Send to (send) or receive from (receive) a multicast group",
     true, true, false},
    {"ttl", "HOPS", "Multicast TTL (default 1)", true, false, false},
    {"port", "PORT", "UDP port (default 5555; calibrate: of a --receiver=NAME@HOST without one)",
     true, true, false, false, false, true},
    {"clock-port", "PORT",
     "send: serve the clock on this UDP port (0: off); receive: the sender's clock port that "
     "--clock=auto asks (default 5556); calibrate: the receivers' --clock-port",
     true, true, false, false, false, true},
    {"control-port", "PORT",
     "send: serve the control page and API on this TCP port (0: off); receive, control: the "
     "sender's control port (default 5580); calibrate: the receivers' --control-port",
     true, true, false, false, true, true},
    {"sender", "HOST",
     "control: the sender serving the control API (default: the senders found on the network, else "
     "127.0.0.1)",
     false, false, false, false, true},
    {"page-key", nullptr,
     "control: print the control page's key for the secret (what follows #key= in its "
     "address) and exit",
     false, false, false, false, true},
    {"control-bind", "ADDR",
     "Serve the control page on this address; repeat for more (default: this machine's LAN "
     "addresses and 127.0.0.1)",
     true, false, false},
    {"bind", "ADDR", "Local address to receive on (default all)", false, true, false},
    {"latency", "MS", "Playout latency in ms (default 60)", false, true, false},
    {"clock", "auto|system|net:HOST[:PORT]|ptp[:DOMAIN]|ntp:HOST[:PORT]",
     "Shared clock (default auto: the sender's)", false, true, false},
    {"from", "NAME|HOST",
     "Play only this sender: its name (see 'list') or host (default: the first heard)", false, true,
     false},
    {"name", "NAME", "The name announced on the network (default: the host name)", true, true,
     false},
    {"json", nullptr, "Print JSON instead of one line per service", false, false, false, true},
    {"timeout", "SECONDS", "How long to look (default 2)", false, false, false, true},
    {"device", "NAME", "Play on this output; repeat for several (see 'devices')", false, true,
     false},
    {"delay", "MS", "Delay of the preceding --device, may be negative down to -latency", false,
     true, false},
    {"volume", "0..1.5", "Volume of the preceding --device (default 1)", false, true, false},
    {"silent", nullptr, "Do not play: receive, validate and show stats", false, true, false},
    {"record", "FILE", "Also write what is received to FILE (.wav, .flac or .ogg)", false, true,
     false},
    {"preset", "NAME", "Start from a preset (see 'presets'); options given win", true, true, false},
    {"print", nullptr, "Print the gst-launch-1.0 command line instead of running", true, true,
     true},
    {"duration", "SECONDS", "Stop after this many seconds", true, true, false},
    {"stats-json", "FILE|-", "Write one JSON object of statistics per second", true, true, false},
    {"secret", "PASSPHRASE",
     "Secure stream: seal (send) or play only (receive) datagrams with this passphrase; the "
     "control surface then wants requests signed with it (control: sign with it; calibrate: "
     "the receivers' secret, for its probes and their delays)",
     true, true, false, false, true, true},
    {"secret-file", "PATH", "The same, the passphrase on the first line of PATH", true, true, false,
     false, true, true},
    {"save-config", nullptr, "Save the options given as defaults in the config file", true, true,
     false},
    {"microphone", "SOURCE",
     "calibrate: the capture device that hears the receivers (see 'devices'; default: the "
     "default input)",
     false, false, false, false, false, true},
    {"receiver", "NAME[@HOST[:PORT]]",
     "calibrate: this receiver (its --name); repeat for each. Without @HOST it is found on the "
     "network; no --receiver: every receiver found",
     false, false, false, false, false, true},
    {"reference", "NAME",
     "calibrate: align the others to this receiver, which keeps its delay (default: to the "
     "latest, nobody is made earlier)",
     false, false, false, false, false, true},
    {"dry-run", nullptr, "calibrate: measure and print, change nothing", false, false, false, false,
     false, true},
    {"repeats", "N", "calibrate: measurements per receiver, 2..20 (default 3)", false, false, false,
     false, false, true},
    {"verbose", nullptr, "Show more: element warnings, every sender heard", true, true, true, true,
     false, true},
    {"quiet", nullptr, "Show only errors and the summary", true, true, true, true, false, true},
};

struct ParseState {
  Assignments* out;
};

gboolean on_option(const gchar* option_name, const gchar* value, gpointer data, GError**) {
  auto* state = static_cast<ParseState*>(data);
  std::string name = option_name;
  while (!name.empty() && name[0] == '-') name.erase(0, 1);
  state->out->emplace_back(name, value ? value : "");
  return TRUE;
}

bool applies(const OptionDoc& d, Command c) {
  return (c == Command::kSend && d.send) || (c == Command::kReceive && d.receive) ||
         ((c == Command::kDevices || c == Command::kPresets) && d.other) ||
         (c == Command::kList && d.list) || (c == Command::kControl && d.control) ||
         (c == Command::kCalibrate && d.calibrate);
}

const char* summary_for(Command c) {
  switch (c) {
    case Command::kSend:
      return "- capture audio and send it to receivers over UDP";
    case Command::kReceive:
      return "- receive a SyncWave stream and play it in sync";
    case Command::kDevices:
      return "- list audio sources and outputs and their names";
    case Command::kPresets:
      return "- list the preset pipelines";
    case Command::kList:
      return "- list the SyncWave senders and receivers on the network";
    case Command::kControl:
      return "NAME KEY=VALUE... - change one receiver through a sender's control API";
    case Command::kCalibrate:
      return "- measure each receiver's acoustic delay with a microphone and set its delay";
    case Command::kNone:
      break;
  }
  return "";
}

const char* examples_for(Command c) {
  switch (c) {
    case Command::kSend:
      return "Examples:\n"
             "  syncwave-launch send                  to every receiver found on the network\n"
             "  syncwave-launch send --target=192.168.1.20\n"
             "  syncwave-launch send --target=kitchen.local --target=192.168.1.21:6000\n"
             "  syncwave-launch send --preset=wifi --broadcast\n"
             "  syncwave-launch send --source=test --codec=raw --target=127.0.0.1 --print\n"
             "  syncwave-launch send --source=file:song.flac --multicast=239.255.0.1 --ttl=2\n"
             "\nExit status: 0 ok or interrupted, 1 runtime error, 2 usage error.";
    case Command::kReceive:
      return "Examples:\n"
             "  syncwave-launch receive\n"
             "  syncwave-launch receive --name=kitchen --from=studio\n"
             "  syncwave-launch receive --silent --stats-json=-\n"
             "  syncwave-launch receive --latency=120 --record=party.flac\n"
             "  syncwave-launch receive --device=alsa_output.hdmi --device=bluez_sink.XX "
             "--delay=-150 --volume=0.8\n"
             "  syncwave-launch receive --multicast=239.255.0.1 --clock=system\n"
             "\nExit status: 0 ok or interrupted, 1 runtime error, 2 usage error.";
    case Command::kDevices:
      return "Example:\n  syncwave-launch devices";
    case Command::kPresets:
      return "Example:\n  syncwave-launch presets --print";
    case Command::kList:
      return "Examples:\n  syncwave-launch list\n  syncwave-launch list --json --timeout=5\n"
             "\nExit status: 0 ok (also when none is found), 1 runtime error, 2 usage error.";
    case Command::kControl:
      return "Settings: volume=0..1.5, mute=true|false, delay=MS, latency=MS, name=NAME.\n"
             "\nExamples:\n"
             "  syncwave-launch control Kitchen volume=0.25\n"
             "  syncwave-launch control \"Living room\" mute=false delay=-150 "
             "--sender=192.168.1.10\n"
             "  syncwave-launch control Kitchen mute=true "
             "--secret-file=$HOME/.config/syncwave/secret\n"
             "\nA sender with a secret takes only requests signed with it: --secret, "
             "--secret-file, "
             "or secret-file= in the config file's [control] group (else its [send] or [receive] "
             "group).\n"
             "\nExit status: 0 changed, 1 runtime error (no such receiver, sender not reachable, "
             "secret missing or wrong), "
             "2 usage error.";
    case Command::kCalibrate:
      return "calibrate is the receivers' sender while it runs: stop the sender first. Each "
             "receiver plays a short sweep in turn, the microphone records them on the shared "
             "clock, and each receiver's delay is set (and kept in its config) so that all of "
             "them arrive together at the microphone.\n"
             "\nExamples:\n"
             "  syncwave-launch calibrate --receiver=Kitchen --receiver=\"Living room\"\n"
             "  syncwave-launch calibrate --microphone=alsa_input.usb-mic --dry-run\n"
             "  syncwave-launch calibrate --receiver=TV --receiver=Soundbar --reference=TV\n"
             "  syncwave-launch calibrate --receiver=A@127.0.0.1:5601 --receiver=B@127.0.0.1:5602\n"
             "\nExit status: 0 every receiver measured (and set), 1 a measurement not trusted "
             "or a receiver not reached (nothing changed for it), 2 usage error.";
    case Command::kNone:
      break;
  }
  return "";
}

}  // namespace

std::string general_help() {
  return "Usage: syncwave-launch COMMAND [OPTIONS]\n"
         "\n"
         "Share what a computer plays with any number of receivers that play it in sync.\n"
         "\n"
         "Commands:\n"
         "  send       capture audio (default: what this computer plays) and send it\n"
         "  receive    receive a stream and play it in sync with the other receivers\n"
         "  devices    list audio sources and outputs, and which sources are loopback\n"
         "  presets    list the preset pipelines (--preset=NAME on send and receive)\n"
         "  list       list the senders and receivers on the network (mDNS)\n"
         "  control    change a receiver's volume, mute, delay or latency (the sender's API)\n"
         "  calibrate  measure each receiver's delay in the room with a microphone and set it\n"
         "\n"
         "Run 'syncwave-launch COMMAND --help' for the options of a command.\n"
         "\n"
         "Examples:\n"
         "  syncwave-launch send                           on the computer playing music\n"
         "  syncwave-launch receive                        on every device that should play it\n"
         "  syncwave-launch send --target=192.168.1.20     to one receiver, named by hand\n"
         "  syncwave-launch send --source=test --target=127.0.0.1 --print\n"
         "\n"
         "  --help       this text\n"
         "  --version    the version\n"
         "\n"
         "Exit status: 0 ok or interrupted, 1 runtime error, 2 usage error.\n";
}

std::string version_text() {
  return std::string("syncwave-launch ") + VERSION + "\n";
}

static GOptionContext* make_context(Command command, ParseState* state,
                                    std::vector<GOptionEntry>* entries) {
  for (const OptionDoc& d : kOptionDocs) {
    if (!applies(d, command)) continue;
    GOptionEntry e = {};
    e.long_name = d.name;
    e.short_name = 0;
    // Values as given (no conversion from the locale's charset: under the C locale a
    // UTF-8 --name was refused as an invalid byte sequence).
    e.flags = d.arg ? G_OPTION_FLAG_FILENAME : G_OPTION_FLAG_NO_ARG;
    e.arg = G_OPTION_ARG_CALLBACK;
    e.arg_data = reinterpret_cast<gpointer>(&on_option);
    e.description = d.help;
    e.arg_description = d.arg;
    entries->push_back(e);
  }
  entries->push_back(GOptionEntry{"help", 'h', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK,
                                  reinterpret_cast<gpointer>(&on_option), "Show this help",
                                  nullptr});
  entries->push_back(GOptionEntry{nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr});

  std::string param = summary_for(command);
  GOptionContext* ctx = g_option_context_new(param.c_str());
  g_option_context_set_help_enabled(ctx, FALSE);
  g_option_context_set_summary(ctx, nullptr);
  g_option_context_set_description(ctx, examples_for(command));
  GOptionGroup* group = g_option_group_new("main", "", "", state, nullptr);
  g_option_group_add_entries(group, entries->data());
  g_option_context_set_main_group(ctx, group);
  return ctx;
}

std::string command_help(Command command) {
  Assignments dummy;
  ParseState state{&dummy};
  std::vector<GOptionEntry> entries;
  GOptionContext* ctx = make_context(command, &state, &entries);
  g_set_prgname((std::string("syncwave-launch ") + command_name(command)).c_str());
  gchar* help = g_option_context_get_help(ctx, TRUE, nullptr);
  std::string text = help;
  g_free(help);
  g_option_context_free(ctx);
  return text;
}

bool parse_command_line(int argc, const char* const* argv, CommandLine* result,
                        std::string* error) {
  *result = CommandLine{};
  if (argc < 2) {
    *error =
        "A command is missing: run 'syncwave-launch --help' (send, receive, devices, "
        "presets, list, control or calibrate).";
    return false;
  }
  std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    result->help = true;
    result->help_text = general_help();
    if (first == "help" && argc > 2 && command_from_name(argv[2]) != Command::kNone)
      result->help_text = command_help(command_from_name(argv[2]));
    return true;
  }
  if (first == "--version") {
    result->version = true;
    return true;
  }
  Command command = command_from_name(first);
  if (command == Command::kNone) {
    *error = "'" + first +
             "' is not a command: use send, receive, devices, presets, list, control or calibrate.";
    return false;
  }
  result->command = command;

  Assignments assignments;
  ParseState state{&assignments};
  std::vector<GOptionEntry> entries;
  GOptionContext* ctx = make_context(command, &state, &entries);
  gchar** args = g_new0(gchar*, argc);
  args[0] = g_strdup("syncwave-launch");
  for (int i = 2; i < argc; i++) args[i - 1] = g_strdup(argv[i]);
  GError* err = nullptr;
  bool ok = g_option_context_parse_strv(ctx, &args, &err);
  if (!ok) {
    *error = std::string(err->message) + ": run 'syncwave-launch " + first + " --help'.";
    g_error_free(err);
  } else if (command == Command::kControl) {
    for (int i = 1; args[i] != nullptr; i++) result->positional.push_back(args[i]);
  } else if (args[1] != nullptr) {
    *error = std::string("'") + args[1] + "' is not an option of '" + first +
             "': options look like --name=value.";
    ok = false;
  }
  g_strfreev(args);
  g_option_context_free(ctx);
  if (!ok) return false;

  for (const Assignment& a : assignments) {
    if (a.first == "help") {
      result->help = true;
      result->help_text = command_help(command);
      return true;
    }
  }
  result->assignments = assignments;
  return true;
}

}  // namespace launcher
}  // namespace syncwave
