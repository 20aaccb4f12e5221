// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwave-impair: a UDP relay that makes a network bad on purpose (loss, bursts,
// reordering, duplication, delay with jitter, a bandwidth cap, outages), the same
// way every time for a given seed. Replaces kernel netem where it is unavailable.
//
//   syncwave-impair --listen=127.0.0.1:6000 --to=127.0.0.1:5555 --loss=10%
//       --reorder=5% --duplicate=2% --delay=30ms --jitter=20ms --seed=7
//   gst-launch-1.0 ... ! syncwavepay ! udpsink host=127.0.0.1 port=6000
//
// Counters go to stdout as JSON on exit and on SIGUSR1, and to --stats-file.

#include <glib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "impair_model.h"
#include "impair_relay.h"

namespace {

using syncwave::impair::Relay;
using syncwave::impair::Settings;

Settings g_settings;
std::string g_setting_error;
std::atomic<bool> g_usr1{false};
std::atomic<bool> g_term{false};
Relay* g_relay = nullptr;

gboolean on_setting(const gchar* option_name, const gchar* value, gpointer, GError** error) {
  std::string key = option_name;
  while (!key.empty() && key[0] == '-') key.erase(0, 1);
  std::string message;
  if (!syncwave::impair::apply_setting(&g_settings, key, value ? value : "", &message)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s", message.c_str());
    return FALSE;
  }
  return TRUE;
}

void on_signal(int sig) {
  if (sig == SIGUSR1) {
    g_usr1.store(true);
  } else {
    g_term.store(true);
  }
  if (g_relay) g_relay->wake();
}

// "HOST:PORT" or "[V6]:PORT" or "PORT".
bool split_host_port(const std::string& text, const std::string& default_host, std::string* host,
                     uint16_t* port) {
  std::string h = default_host;
  std::string p = text;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string::npos) {
      h = text.substr(0, colon);
      p = text.substr(colon + 1);
    }
  }
  if (p.empty() || h.empty()) return false;
  char* end = nullptr;
  const unsigned long v = std::strtoul(p.c_str(), &end, 10);
  if (*end != '\0' || v > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  std::fputs(text.c_str(), f);
  std::fputc('\n', f);
  std::fclose(f);
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  gchar* listen = nullptr;
  gchar** targets = nullptr;
  gint64 seed = 1;
  gchar* stats_file = nullptr;
  gchar* port_file = nullptr;
  gint stats_interval_ms = 0;
  gdouble duration_s = 0;
  gboolean quiet = FALSE;

  const gint cb = G_OPTION_FLAG_NONE;
  GOptionEntry entries[] = {
      {"listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
       "Where to receive: [HOST:]PORT (default 127.0.0.1:0, a free port)", "ADDR"},
      {"to", 't', 0, G_OPTION_ARG_STRING_ARRAY, &targets,
       "Destination HOST:PORT[,key=value...] (repeatable; settings after the address override "
       "the global ones for that destination, e.g. 127.0.0.1:5555,loss=2%,delay=30ms)",
       "DEST"},
      {"seed", 's', 0, G_OPTION_ARG_INT64, &seed,
       "Random seed; the same seed replays the same impairments (default 1)", "N"},
      {"loss", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Independent random loss probability (0.1 or 10%)", "P"},
      {"burst", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Gilbert-Elliott burst loss: P(good->bad)[:P(bad->good)[:loss in bad]]", "E[:X[:L]]"},
      {"reorder", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Probability that a packet is held back, and by how long (default 20ms)", "P[:HOLD]"},
      {"duplicate", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Probability that a packet is sent twice", "P"},
      {"delay", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting, "Base one-way delay (ms)",
       "TIME"},
      {"jitter", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Jitter amplitude: +-TIME uniform, sigma for normal, mean for pareto", "TIME"},
      {"jitter-dist", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Jitter distribution: uniform (default), normal or pareto (long-tailed)", "DIST"},
      {"rate", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Bandwidth cap (kbit/s, or 800kbit, 2mbit); 0 = none", "RATE"},
      {"queue", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Bottleneck queue size in bytes under --rate (default 65536)", "BYTES"},
      {"outage", 0, cb, G_OPTION_ARG_CALLBACK, (gpointer)on_setting,
       "Drop everything from AT after the first packet for DURATION (repeatable), e.g. 2s+300ms",
       "AT+DUR"},
      {"stats-file", 0, 0, G_OPTION_ARG_FILENAME, &stats_file,
       "Write the counters as JSON here on exit, on SIGUSR1 and every --stats-interval", "PATH"},
      {"stats-interval", 0, 0, G_OPTION_ARG_INT, &stats_interval_ms,
       "Also rewrite --stats-file every MS milliseconds (0 = off)", "MS"},
      {"port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file,
       "Write the listening port here once bound", "PATH"},
      {"duration", 0, 0, G_OPTION_ARG_DOUBLE, &duration_s,
       "Exit after SECONDS (0 = run until "
       "SIGINT/SIGTERM)",
       "SECONDS"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Print nothing but errors", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};

  GOptionContext* ctx = g_option_context_new("- impair a UDP stream on its way");
  g_option_context_set_summary(
      ctx,
      "Relays UDP datagrams to one or several destinations with seeded loss, burst loss,\n"
      "reordering, duplication, delay, jitter, a bandwidth cap and outages. Counters\n"
      "are printed as JSON on exit and on SIGUSR1.");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  GError* err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    std::fprintf(stderr, "syncwave-impair: %s\n", err->message);
    g_error_free(err);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);
  if (!targets || !targets[0]) {
    std::fprintf(stderr, "syncwave-impair: give at least one --to=HOST:PORT\n");
    return 2;
  }

  Relay relay;
  std::string error;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  if (listen && !split_host_port(listen, "127.0.0.1", &listen_host, &listen_port)) {
    std::fprintf(stderr, "syncwave-impair: bad --listen '%s': expected [HOST:]PORT\n", listen);
    return 2;
  }
  if (!relay.open(listen_host, listen_port, &error)) {
    std::fprintf(stderr, "syncwave-impair: %s\n", error.c_str());
    return 1;
  }
  for (int i = 0; targets[i]; i++) {
    std::string spec = targets[i];
    const size_t comma = spec.find(',');
    const std::string address = spec.substr(0, comma);
    Settings s = g_settings;
    if (comma != std::string::npos &&
        !syncwave::impair::apply_settings(&s, spec.substr(comma + 1), &error)) {
      std::fprintf(stderr, "syncwave-impair: --to=%s: %s\n", targets[i], error.c_str());
      return 2;
    }
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(address, "", &host, &port) || port == 0) {
      std::fprintf(stderr, "syncwave-impair: bad --to '%s': expected HOST:PORT\n", targets[i]);
      return 2;
    }
    const uint64_t dest_seed = static_cast<uint64_t>(seed) + 0x9e3779b97f4a7c15ull * i;
    if (!relay.add_destination(host, port, s, dest_seed, &error)) {
      std::fprintf(stderr, "syncwave-impair: %s\n", error.c_str());
      return 1;
    }
  }

  if (port_file) {
    write_file_atomically(port_file, std::to_string(relay.port()));
  }
  if (!quiet) {
    std::printf("syncwave-impair: listening on %s:%u, %zu destination(s), seed %" G_GINT64_FORMAT
                "\n",
                listen_host.c_str(), relay.port(), relay.destination_count(), seed);
    std::fflush(stdout);
  }

  g_relay = &relay;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // A timer thread wakes the relay for the periodic stats file and the duration.
  std::atomic<bool> timer_done{false};
  std::atomic<bool> periodic{false};
  std::thread timer;
  const uint64_t start_us = syncwave::impair::monotonic_us();
  if (duration_s > 0 || (stats_file && stats_interval_ms > 0)) {
    timer = std::thread([&] {
      uint64_t last_stats = start_us;
      while (!timer_done.load()) {
        g_usleep(10000);
        const uint64_t now = syncwave::impair::monotonic_us();
        if (duration_s > 0 && now - start_us >= static_cast<uint64_t>(duration_s * 1e6)) {
          g_term.store(true);
          relay.wake();
        }
        if (stats_file && stats_interval_ms > 0 &&
            now - last_stats >= static_cast<uint64_t>(stats_interval_ms) * 1000u) {
          last_stats = now;
          periodic.store(true);
          relay.wake();
        }
      }
    });
  }

  auto dump = [&](bool print) {
    const std::string json = relay.stats_json();
    if (print && !quiet) {
      std::printf("%s\n", json.c_str());
      std::fflush(stdout);
    }
    if (stats_file) write_file_atomically(stats_file, json);
  };

  relay.run([&] {
    if (g_usr1.exchange(false)) dump(true);
    if (periodic.exchange(false)) dump(false);
    return !g_term.load();
  });

  timer_done.store(true);
  if (timer.joinable()) timer.join();
  g_relay = nullptr;
  dump(true);
  g_free(listen);
  g_strfreev(targets);
  g_free(stats_file);
  g_free(port_file);
  return 0;
}
