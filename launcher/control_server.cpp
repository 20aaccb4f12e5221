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

  static std::string body_of(SoupServerMessage* msg) {
    GBytes* bytes = soup_message_body_flatten(soup_server_message_get_request_body(msg));
    gsize n = 0;
    const char* d = static_cast<const char*>(g_bytes_get_data(bytes, &n));
    const std::string text(d ? d : "", d ? n : 0);
    g_bytes_unref(bytes);
    return text;
  }

  static void handle(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query,
                     gpointer data) {
    Impl* self = static_cast<Impl*>(data);
    const char* method = soup_server_message_get_method(msg);
    const bool get = method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
    const std::string p = path ? path : "/";
    const std::string prefix = "/api/receivers/";
    const bool page = p == "/" || p == "/index.html";
    // The page is static and holds no secret: it is served to anyone, and asks for the
    // key itself. Everything else needs a token when a secret is set.
    const std::string text = method == SOUP_METHOD_POST ? body_of(msg) : std::string();
    if (!page && !self->authorized(msg, method, p, query, text)) return;
    if (page) {
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

  // A secret is set: the token of this request, checked before anything else.
  bool authorized(SoupServerMessage* msg, const char* method, const std::string& path,
                  GHashTable* query, const std::string& body) {
    if (!hooks.authorize) return true;
    std::string token;
    const char* auth =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    const std::string scheme = "SyncWave ";
    if (auth && std::strncmp(auth, scheme.c_str(), scheme.size()) == 0) {
      token = auth + scheme.size();
    } else if (query) {
      const char* q = static_cast<const char*>(g_hash_table_lookup(query, "auth"));
      if (q) token = q;
    }
    std::string why;
    if (hooks.authorize(token, method ? method : "", path, body, &why)) return true;
    const int64_t now = hooks.now_ms ? hooks.now_ms() : g_get_real_time() / 1000;
    respond(msg, SOUP_STATUS_UNAUTHORIZED, "application/json",
            "{\"error\":" + json_string(why) + ",\"server_time_ms\":" + std::to_string(now) + "}");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "WWW-Authenticate",
                                 "SyncWave");
    return false;
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
input[type=range],.key{flex:1}.num{width:5em}.info{font-size:.8em;color:#aaa}
#empty{color:#aaa}
</style></head><body>
<h1>SyncWave rooms</h1>
<form id="keyform" style="display:none"><p>This sender needs its control key: the part
after <code>#key=</code> of the address it prints ("Control page: ...").</p>
<p class="why"></p><label><input type="password" class="key" autocomplete="off"
placeholder="64 hex digits"> <button>Use</button></label></form>
<div id="rooms"></div><p id="empty">Looking for receivers...</p>
<script>
"use strict";
// Authentication (docs/control.md): with a secret the sender wants a token on every
// request, HMAC-SHA256 under the control key over "SWAUTH1\n" ts "\n" nonce "\n" method
// "\n" path "\n" body. WebCrypto is not there for a page served over plain http from a
// LAN address, so SHA-256 is written out here (tested against core/control_auth's
// golden token in integration-control-browser-secure).
const auth = (() => {
  const K = new Uint32Array([
  0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
  0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
  0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
  0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
  0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
  0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
  0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
  0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2
  ]);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  function sha256(bytes) {
    const n = bytes.length, len = ((n + 9 + 63) >> 6) << 6;
    const m = new Uint8Array(len);
    m.set(bytes);
    m[n] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(len - 8, Math.floor(n / 0x20000000));
    dv.setUint32(len - 4, (n * 8) >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64), v = new Uint32Array(8);
    for (let o = 0; o < len; o += 64) {
      for (let i = 0; i < 16; i++) w[i] = dv.getUint32(o + 4 * i);
      for (let i = 16; i < 64; i++)
        w[i] = w[i - 16] + (rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3)) +
               w[i - 7] + (rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10));
      v.set(h);
      for (let i = 0; i < 64; i++) {
        const e = v[4], a = v[0];
        const t1 = v[7] + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & v[5]) ^ (~e & v[6])) +
                   K[i] + w[i];
        const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
        v.copyWithin(1, 0, 7);
        v[4] += t1;
        v[0] = t1 + t2;
      }
      for (let i = 0; i < 8; i++) h[i] += v[i];
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) new DataView(out.buffer).setUint32(4 * i, h[i]);
    return out;
  }
  const hex = b => Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
  const unhex = s => new Uint8Array(s.match(/../g).map(x => parseInt(x, 16)));
  function hmac(key, bytes) {
    const k = new Uint8Array(64);
    k.set(key.length > 64 ? sha256(key) : key);
    const inner = new Uint8Array(64 + bytes.length), outer = new Uint8Array(96);
    for (let i = 0; i < 64; i++) { inner[i] = k[i] ^ 0x36; outer[i] = k[i] ^ 0x5c; }
    inner.set(bytes, 64);
    outer.set(sha256(inner), 64);
    return sha256(outer);
  }
  function token(keyHex, ts, nonce, method, path, body) {
    const text = "SWAUTH1\n" + ts + "\n" + nonce + "\n" + method + "\n" + path + "\n" + body;
    return "v1." + ts + "." + nonce + "." + hex(hmac(unhex(keyHex), new TextEncoder().encode(text)));
  }
  const valid = k => /^[0-9a-fA-F]{64}$/.test(k || "");
  let key = null, offset = 0;  // offset: the sender's clock minus ours, learnt from a 401
  try { key = localStorage.getItem("syncwave-control-key"); } catch (e) {}
  const m = /(?:^#|&)key=([0-9a-fA-F]{64})(?:&|$)/.exec(location.hash);
  if (m) {
    key = m[1].toLowerCase();
    try { localStorage.setItem("syncwave-control-key", key); } catch (e) {}
    history.replaceState(null, "", location.pathname + location.search);  // out of sight
  }
  if (!valid(key)) key = null;
  return {
    sha256, hmac, hex, token,
    has: () => key !== null,
    set(k) { key = k.toLowerCase(); try { localStorage.setItem("syncwave-control-key", key); } catch (e) {} },
    forget() { key = null; try { localStorage.removeItem("syncwave-control-key"); } catch (e) {} },
    valid,
    learn(serverMs) { if (Number.isFinite(serverMs)) offset = serverMs - Date.now(); },
    // The token for one request, or null without a key.
    sign(method, path, body) {
      if (!key) return null;
      const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
      return token(key, Date.now() + offset, nonce, method, path, body || "");
    },
  };
})();
const rooms = document.getElementById("rooms");
const empty = document.getElementById("empty");
const keyform = document.getElementById("keyform");
const busy = new Set();
const byName = new Map();  // name -> the room's element (names may differ in "_" only)
let secured = false;       // the sender asked for a token once
// One API request: signed when there is a key; a 401 with the sender's time is tried
// once more with the clock corrected, another one asks for the key.
function api(method, path, body, retried) {
  const headers = body === undefined ? {} : {"Content-Type": "application/json"};
  const t = auth.sign(method, path, body);
  if (t) headers.Authorization = "SyncWave " + t;
  return fetch(path.split("/").map(encodeURIComponent).join("/"), {method, headers, body})
    .then(r => r.json().then(j => {
      if (r.status !== 401) return j;
      secured = true;
      auth.learn(j.server_time_ms);
      if (!retried && auth.has() && /clock/.test(j.error || "")) return api(method, path, body, true);
      askKey(auth.has() ? "The sender refused the key: " + j.error : "");
      throw new Error("unauthorized");
    }));
}
function askKey(why) {
  keyform.querySelector(".why").textContent = why;
  keyform.style.display = "";
  empty.style.display = "none";
}
keyform.addEventListener("submit", e => {
  e.preventDefault();
  const k = keyform.querySelector("input").value.trim();
  if (!auth.valid(k)) return askKey("A key is 64 hex digits.");
  auth.set(k);
  keyform.style.display = "none";
  start();
});
function post(name, change) {
  busy.add(name);
  return api("POST", "/api/receivers/" + name, JSON.stringify(change))
    .then(j => { if (j.error) alert(name + ": " + j.error); }, () => {})
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
let events = null;
// The event stream. Signed, it cannot reconnect by itself (the same token twice is a
// replay), so it is reopened with a fresh one.
function listen() {
  if (events) events.close();
  const t = auth.sign("GET", "/api/events", "");
  events = new EventSource("/api/events" + (t ? "?auth=" + t : ""));
  events.onmessage = e => show(JSON.parse(e.data));
  events.onerror = () => {
    if (!auth.has() && !secured) return;  // plain: EventSource retries on its own
    events.close();
    setTimeout(start, 2000);
  };
}
// The list, then the event stream; while the sender cannot be reached, every 2 s (a
// refused key stops it: the key form is shown).
function start() {
  api("GET", "/api/receivers").then(d => { show(d); listen(); },
    e => { if (e.message !== "unauthorized") setTimeout(start, 2000); });
}
start();
</script></body></html>
)HTML";
}

}  // namespace control
}  // namespace syncwave
