// SPDX-License-Identifier: LGPL-2.1-or-later
#include "control_server.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace syncwave {
namespace control {

namespace {

constexpr guint kMaxEventStreams = 16;
constexpr guint kEventIntervalMs = 1000;

void respond(SoupServerMessage* msg, guint status, const std::string& type,
             const std::string& body) {
  soup_server_message_set_status(msg, status, status == 429 ? "Too Many Requests" : nullptr);
  soup_server_message_set_response(msg, type.c_str(), SOUP_MEMORY_COPY, body.data(), body.size());
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
}

void respond_error(SoupServerMessage* msg, guint status, const std::string& sentence) {
  respond(msg, status, "application/json", "{\"error\":" + json_string(sentence) + "}");
}

int64_t now_us() { return g_get_monotonic_time(); }

}  // namespace

struct ControlServer::Impl {
  Hooks hooks;
  SoupServer* server = nullptr;
  RateLimiter limiter{20.0, 40.0};
  std::set<SoupServerMessage*> streams;
  guint timer = 0;

  ~Impl() {
    if (timer) g_source_remove(timer);
    for (SoupServerMessage* m : streams) {
      g_signal_handlers_disconnect_by_data(m, this);
      g_object_unref(m);
    }
    streams.clear();
    if (server) {
      soup_server_disconnect(server);
      g_object_unref(server);
    }
  }

  void push_events() {
    if (streams.empty()) return;
    const std::string chunk = "data: " + hooks.receivers_json() + "\n\n";
    for (SoupServerMessage* m : streams) {
      soup_message_body_append(soup_server_message_get_response_body(m), SOUP_MEMORY_COPY,
                               chunk.data(), chunk.size());
      soup_server_message_unpause(m);
    }
  }

  static void stream_finished(SoupServerMessage* msg, gpointer data) {
    Impl* self = static_cast<Impl*>(data);
    if (self->streams.erase(msg)) {
      g_signal_handlers_disconnect_by_data(msg, self);
      g_object_unref(msg);
    }
  }

  static gboolean tick(gpointer data) {
    static_cast<Impl*>(data)->push_events();
    return G_SOURCE_CONTINUE;
  }

  // Before the body is read: rate limit, method, and the body's announced size.
  static void early(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*,
                    gpointer data) {
    Impl* self = static_cast<Impl*>(data);
    const char* host = soup_server_message_get_remote_host(msg);
    if (!self->limiter.allow(host ? host : "?", now_us())) {
      respond_error(msg, 429 /* Too Many Requests */, "too many requests: slow down");
      return;
    }
    const char* method = soup_server_message_get_method(msg);
    if (method == SOUP_METHOD_POST) {
      SoupMessageHeaders* h = soup_server_message_get_request_headers(msg);
      if (soup_message_headers_get_encoding(h) != SOUP_ENCODING_CONTENT_LENGTH) {
        soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
        respond_error(msg, SOUP_STATUS_LENGTH_REQUIRED, "a request body needs a Content-Length");
        return;
      }
      if (soup_message_headers_get_content_length(h) > (goffset)kMaxBodyBytes) {
        soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
        respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                      "the request body is larger than " + std::to_string(kMaxBodyBytes) +
                          " bytes");
        return;
      }
    }
  }

  static void handle(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*,
                     gpointer data) {
    Impl* self = static_cast<Impl*>(data);
    const char* method = soup_server_message_get_method(msg);
    const bool get = method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
    const std::string p = path ? path : "/";
    const std::string prefix = "/api/receivers/";
    if (p == "/" || p == "/index.html") {
      if (!get) return self->not_allowed(msg, "GET");
      respond(msg, SOUP_STATUS_OK, "text/html; charset=utf-8", control_page_html());
      soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                   "Content-Security-Policy",
                                   "default-src 'self'; script-src 'unsafe-inline'; "
                                   "style-src 'unsafe-inline'");
    } else if (p == "/api/receivers") {
      if (!get) return self->not_allowed(msg, "GET");
      respond(msg, SOUP_STATUS_OK, "application/json", self->hooks.receivers_json());
    } else if (p.compare(0, prefix.size(), prefix) == 0) {
      if (method != SOUP_METHOD_POST) return self->not_allowed(msg, "POST");
      const std::string name = p.substr(prefix.size());
      if (!valid_name(name)) return respond_error(msg, SOUP_STATUS_NOT_FOUND, "no such receiver");
      const int latency = self->hooks.latency_of(name);
      if (latency < 0)
        return respond_error(msg, SOUP_STATUS_NOT_FOUND, "no receiver named \"" + name + "\"");
      SoupMessageBody* body = soup_server_message_get_request_body(msg);
      GBytes* bytes = soup_message_body_flatten(body);
      gsize n = 0;
      const char* d = static_cast<const char*>(g_bytes_get_data(bytes, &n));
      const std::string text(d ? d : "", d ? n : 0);
      g_bytes_unref(bytes);
      ChangeRequest change;
      std::string error;
      if (!parse_change(text, latency, &change, &error))
        return respond_error(msg, SOUP_STATUS_BAD_REQUEST, error);
      if (!self->hooks.apply(name, change, &error))
        return respond_error(msg, SOUP_STATUS_CONFLICT, error);
      respond(msg, SOUP_STATUS_OK, "application/json", "{\"ok\":true}");
      self->push_events();
    } else if (p == "/api/events") {
      if (!get) return self->not_allowed(msg, "GET");
      if (self->streams.size() >= kMaxEventStreams)
        return respond_error(msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                             "too many event streams open");
      soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
      SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
      soup_message_headers_set_content_type(h, "text/event-stream", nullptr);
      soup_message_headers_replace(h, "Cache-Control", "no-store");
      soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
      SoupMessageBody* out = soup_server_message_get_response_body(msg);
      soup_message_body_set_accumulate(out, FALSE);
      const std::string first = "retry: 2000\ndata: " + self->hooks.receivers_json() + "\n\n";
      soup_message_body_append(out, SOUP_MEMORY_COPY, first.data(), first.size());
      self->streams.insert(static_cast<SoupServerMessage*>(g_object_ref(msg)));
      g_signal_connect(msg, "finished", G_CALLBACK(stream_finished), self);
      g_signal_connect(msg, "disconnected", G_CALLBACK(stream_finished), self);
    } else {
      respond_error(msg, SOUP_STATUS_NOT_FOUND, "no such page: the API is under /api/receivers");
    }
  }

  void not_allowed(SoupServerMessage* msg, const char* allow) {
    respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                  std::string("this path takes ") + allow + " only");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", allow);
  }
};

ControlServer::ControlServer(Hooks hooks) : impl_(new Impl) { impl_->hooks = std::move(hooks); }

ControlServer::~ControlServer() = default;

bool ControlServer::start(const std::vector<std::string>& addresses, uint16_t port,
                          std::string* error) {
  if (impl_->server) return true;
  impl_->server = soup_server_new("server-header", "SyncWave", nullptr);
  soup_server_add_early_handler(impl_->server, nullptr, &Impl::early, impl_.get(), nullptr);
  soup_server_add_handler(impl_->server, nullptr, &Impl::handle, impl_.get(), nullptr);
  uint16_t bound = port;
  for (const std::string& a : addresses) {
    GInetAddress* inet = g_inet_address_new_from_string(a.c_str());
    if (!inet) {
      *error = "--control-bind: \"" + a + "\" is not an IP address";
      return false;
    }
    GSocketAddress* sa = g_inet_socket_address_new(inet, bound);
    g_object_unref(inet);
    GError* err = nullptr;
    const gboolean ok = soup_server_listen(impl_->server, sa, (SoupServerListenOptions)0, &err);
    g_object_unref(sa);
    if (!ok) {
      *error = "Cannot serve the control page on " + a + ":" + std::to_string(bound) + ": " +
               (err ? err->message : "unknown error") +
               ". Choose another --control-port, or --control-port=0 to turn it off.";
      g_clear_error(&err);
      return false;
    }
    if (bound == 0) {
      GSList* listeners = soup_server_get_listeners(impl_->server);
      for (GSList* l = listeners; l && bound == 0; l = l->next) {
        GSocketAddress* local = g_socket_get_local_address(G_SOCKET(l->data), nullptr);
        if (local) {
          bound = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
          g_object_unref(local);
        }
      }
      g_slist_free(listeners);
    }
  }
  port_ = bound;
  impl_->timer = g_timeout_add(kEventIntervalMs, &Impl::tick, impl_.get());
  return true;
}

void ControlServer::notify() { impl_->push_events(); }

const char* control_page_html() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SyncWave rooms</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;padding:1em;background:#111;color:#eee}
h1{font-size:1.3em;margin:0 0 .6em}
.room{background:#222;border-radius:.6em;padding:.8em;margin:0 0 .8em}
.top{display:flex;justify-content:space-between;align-items:baseline}
.name{font-weight:600;font-size:1.1em}.state{font-size:.85em;color:#9c9}
.meter{height:.5em;background:#333;border-radius:.25em;margin:.5em 0;overflow:hidden}
.meter div{height:100%;background:#4a4;width:0}
label{display:flex;align-items:center;gap:.6em;margin:.4em 0}
input[type=range]{flex:1}.num{width:5em}.info{font-size:.8em;color:#aaa}
#empty{color:#aaa}
</style></head><body>
<h1>SyncWave rooms</h1>
<div id="rooms"></div><p id="empty">Looking for receivers...</p>
<script>
"use strict";
const rooms = document.getElementById("rooms");
const empty = document.getElementById("empty");
const busy = new Set();
const byName = new Map();  // name -> the room's element (names may differ in "_" only)
function post(name, change) {
  busy.add(name);
  return fetch("/api/receivers/" + encodeURIComponent(name), {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(change)})
    .then(r => r.json()).then(j => { if (j.error) alert(name + ": " + j.error); })
    .finally(() => busy.delete(name));
}
function room(r) {
  let el = byName.get(r.name);
  if (!el) {
    el = document.createElement("div");
    el.className = "room"; el.dataset.name = r.name;
    el.innerHTML = '<div class="top"><span class="name"></span><span class="state"></span></div>' +
      '<div class="meter"><div></div></div>' +
      '<label>Volume <input type="range" class="volume" min="0" max="1.5" step="0.01"></label>' +
      '<label><input type="checkbox" class="mute"> Mute</label>' +
      '<label>Delay (ms) <input type="number" class="num delay" step="1"></label>' +
      '<div class="info"></div>';
    el.querySelector(".name").textContent = r.name;
    el.querySelector(".volume").addEventListener("change", e =>
      post(r.name, {volume: parseFloat(e.target.value)}));
    el.querySelector(".mute").addEventListener("change", e =>
      post(r.name, {mute: e.target.checked}));
    el.querySelector(".delay").addEventListener("change", e =>
      post(r.name, {delay_ms: parseInt(e.target.value, 10)}));
    byName.set(r.name, el);
    rooms.appendChild(el);
  }
  el.querySelector(".state").textContent = r.state;
  const level = r.level_db.length ? Math.max(...r.level_db) : -200;
  el.querySelector(".meter div").style.width = Math.max(0, Math.min(100, (level + 60) * 100 / 60)) + "%";
  if (!busy.has(r.name) && document.activeElement.closest(".room") !== el) {
    el.querySelector(".volume").value = r.volume;
    el.querySelector(".mute").checked = r.mute;
    el.querySelector(".delay").value = r.delay_ms;
  }
  el.querySelector(".info").textContent = r.address + " \u00b7 latency " + r.latency_ms +
    " ms \u00b7 offset " + r.sync_offset_us.toFixed(0) + " \u00b5s \u00b7 lost " + r.lost +
    " \u00b7 late " + r.late;
}
function show(data) {
  const names = new Set(data.receivers.map(r => r.name));
  for (const [name, el] of byName)
    if (!names.has(name)) { el.remove(); byName.delete(name); }
  data.receivers.forEach(room);
  empty.style.display = data.receivers.length ? "none" : "";
}
fetch("/api/receivers").then(r => r.json()).then(show);
const events = new EventSource("/api/events");
events.onmessage = e => show(JSON.parse(e.data));
</script></body></html>
)HTML";
}

}  // namespace control
}  // namespace syncwave
