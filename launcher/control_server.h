// SPDX-License-Identifier: LGPL-2.1-or-later
// The control surface over HTTP (libsoup 3): the JSON API, live updates as server-sent
// events and the page at /. What it serves and changes comes from the caller's hooks;
// the validation, limits and JSON are control_model's. docs/control.md describes the API.
//
//   GET  /                      the page: every room with meters, volume, mute, delay
//   GET  /api/receivers         {"receivers":[...]} (ReceiverTable::to_json)
//   POST /api/receivers/NAME    {"volume":0.25} / {"mute":true} / {"delay_ms":-150} ...
//   GET  /api/events            text/event-stream: the receivers' JSON on every change
//                               and at least once a second
//
// With an `authorize` hook (a secret is set, docs/control.md "Authentication"), every
// request but the page itself must carry a token: in the `Authorization: SyncWave
// TOKEN` header, or as `?auth=TOKEN` (EventSource cannot set headers). Without one, or
// with one the hook refuses, the answer is 401 with {"error", "server_time_ms"} and
// nothing else happens: the check comes before routing, so an unauthenticated client
// learns nothing, not even which receivers exist.
//
// Every request is rate-limited per client address (429); a POST body must carry a
// Content-Length of at most control::kMaxBodyBytes (411, 413); other methods get 405,
// other paths 404, bad values 400 with {"error":"one sentence"}.
//
// Runs on the GMainContext given to start() (the launcher's main loop); not
// thread-safe: call everything from that context's thread.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control_model.h"

namespace syncwave {
namespace control {

class ControlServer {
 public:
  struct Hooks {
    // The receivers' JSON, as ReceiverTable::to_json returns it.
    std::function<std::string()> receivers_json;
    // The latency of receiver NAME (bounds delay_ms); -1 when there is no such receiver.
    std::function<int(const std::string& name)> latency_of;
    // Applies a validated change to NAME; false with *error (one sentence) on failure.
    std::function<bool(const std::string& name, const ChangeRequest& change,
                       std::string* error)>
        apply;
    // Empty: no authentication (no secret). Otherwise: whether `token` authorises
    // METHOD PATH (the decoded path) with BODY; false with *error (one sentence).
    std::function<bool(const std::string& token, const std::string& method, const std::string& path,
                       const std::string& body, std::string* error)>
        authorize;
    // The wall-clock time in ms since 1970 (told to refused clients so that they can
    // correct their clock); empty: g_get_real_time().
    std::function<int64_t()> now_ms;
  };

  explicit ControlServer(Hooks hooks);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Listens on each of `addresses` (IPv4/IPv6 literals) at `port` (0: any free port,
  // the same for all). False with *error (one sentence: what to do) on failure.
  bool start(const std::vector<std::string>& addresses, uint16_t port, std::string* error);
  // The port listened on (after start()).
  uint16_t port() const { return port_; }
  // The receivers changed: push them to the event streams now.
  void notify();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

// The page served at / (self-contained HTML, CSS and script; no external resources).
const char* control_page_html();

}  // namespace control
}  // namespace syncwave
