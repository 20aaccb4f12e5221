/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Secure streams in the elements: see syncwave-secure.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gio/gio.h>
#include <gst/net/gstnetaddressmeta.h>

#include <array>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "syncwave-secure.h"

#if SYNCWAVE_HAVE_SECURE
#include <sodium.h>

#include "secure_channel.h"
#include "secure_clock.h"
#else
/* Never made without secure mode; complete for the unique_ptrs in the header. */
namespace syncwave {
namespace secure {
class Sealer {};
class Opener {};
}  // namespace secure
}  // namespace syncwave
#endif

GST_DEBUG_CATEGORY_STATIC(syncwave_secure_debug);
#define GST_CAT_DEFAULT syncwave_secure_debug

namespace syncwave {

namespace {

constexpr size_t kMaxAnnounced = 256;

void init_debug() {
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    GST_DEBUG_CATEGORY_INIT(syncwave_secure_debug, "syncwavesecure", 0, "SyncWave secure streams");
    g_once_init_leave(&once, 1);
  }
}

bool secret_empty(const gchar* secret) {
  return secret == nullptr || secret[0] == '\0';
}

/* Posts the error for a secret that cannot be used; false then. */
bool check_state(GstElement* element, SecretState state) {
  switch (state) {
    case SecretState::kNotBuiltIn:
      GST_ELEMENT_ERROR(element, CORE, NOT_IMPLEMENTED,
                        ("A secret is set, but this SyncWave build has no secure mode"),
                        ("built without libsodium (meson -Dsecure=enabled needs libsodium-dev); "
                         "refusing to send or play in the clear"));
      return false;
    case SecretState::kDerivationFailed:
      GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("Could not derive the key from the secret"),
                        ("Argon2id needs 64 MiB of memory; refusing to send or play in the clear"));
      return false;
    default:
      return true;
  }
}

#if SYNCWAVE_HAVE_SECURE
/* The last keys derived in this process (a few: a launcher's receivers, tests), keyed by
 * a hash of their passphrase, most recent first. */
constexpr size_t kCachedKeys = 4;
struct CachedKey {
  std::array<uint8_t, crypto_generichash_BYTES> hash{};
  secure::Key key{};
};
std::mutex cache_lock;
std::vector<CachedKey> cache;

bool derive_cached(GstElement* element, const gchar* secret, secure::Key* key) {
  if (!secure::available()) return false;
  CachedKey entry;
  crypto_generichash(entry.hash.data(), entry.hash.size(),
                     reinterpret_cast<const unsigned char*>(secret), std::strlen(secret), nullptr,
                     0);
  {
    std::lock_guard<std::mutex> lk(cache_lock);
    for (const CachedKey& c : cache) {
      if (sodium_memcmp(c.hash.data(), entry.hash.data(), entry.hash.size()) == 0) {
        *key = c.key;
        return true;
      }
    }
  }
  const gint64 start = g_get_monotonic_time();
  if (!secure::derive_key(secret, key)) return false;
  GST_INFO_OBJECT(element, "key derived from the secret in %.0f ms",
                  (g_get_monotonic_time() - start) / 1000.0);
  entry.key = *key;
  std::lock_guard<std::mutex> lk(cache_lock);
  cache.insert(cache.begin(), entry);
  if (cache.size() > kCachedKeys) {
    sodium_memzero(cache.back().key.data(), cache.back().key.size());
    cache.pop_back();
  }
  sodium_memzero(entry.key.data(), entry.key.size());
  return true;
}

/* "HOST" of a datagram's sender (udpsrc's GstNetAddressMeta), "" when unknown. */
std::string sender_host(GstBuffer* buf) {
  GstNetAddressMeta* meta = gst_buffer_get_net_address_meta(buf);
  if (!meta || !G_IS_INET_SOCKET_ADDRESS(meta->addr)) return "";
  GInetAddress* a = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(meta->addr));
  gchar* s = g_inet_address_to_string(a);
  std::string out = s;
  g_free(s);
  return out;
}
#endif

}  // namespace

bool secure_built_in() {
  return SYNCWAVE_HAVE_SECURE != 0;
}

/* ---------------------------------------------------------------------------------
 * SecureSend */

SecureSend::SecureSend() {
  init_debug();
}
SecureSend::~SecureSend() = default;

void SecureSend::set_secret(GstElement* element, const gchar* secret) {
  if (secret_empty(secret)) {
    std::lock_guard<std::mutex> lk(lock_);
    state_ = SecretState::kOff;
    sealer_.reset();
    GST_INFO_OBJECT(element, "no secret: plain SYNC v1");
    return;
  }
#if SYNCWAVE_HAVE_SECURE
  secure::Key key{};
  const bool ok = derive_cached(element, secret, &key);
  std::lock_guard<std::mutex> lk(lock_);
  if (ok) {
    sealer_ = std::make_unique<secure::Sealer>(key, secure::Sealer::random_stream_id());
    state_ = SecretState::kOn;
    GST_INFO_OBJECT(element,
                    "secret set: every datagram is sealed (stream %014" G_GINT64_MODIFIER "x)",
                    (guint64)sealer_->stream_id());
  } else {
    sealer_.reset();
    state_ = SecretState::kDerivationFailed;
  }
  sodium_memzero(key.data(), key.size());
#else
  (void)element;
  std::lock_guard<std::mutex> lk(lock_);
  state_ = SecretState::kNotBuiltIn;
#endif
}

bool SecureSend::check_start(GstElement* element) {
  SecretState state;
  {
    std::lock_guard<std::mutex> lk(lock_);
    state = state_;
  }
  return check_state(element, state);
}

size_t SecureSend::overhead() {
#if SYNCWAVE_HAVE_SECURE
  std::lock_guard<std::mutex> lk(lock_);
  return sealer_ ? secure::kOverhead : 0;
#else
  return 0;
#endif
}

void SecureSend::restart() {
  std::lock_guard<std::mutex> lk(lock_);
  restart_ = true;
}

GstBufferList* SecureSend::seal(GstBufferList* list) {
#if SYNCWAVE_HAVE_SECURE
  std::lock_guard<std::mutex> lk(lock_);
  if (!sealer_) return list;
  if (restart_) {
    /* A new stream: same key, a new id, counters from 0. */
    restart_ = false;
    sealer_->restart(secure::Sealer::random_stream_id());
  }
  GstBufferList* out = gst_buffer_list_new_sized(gst_buffer_list_length(list));
  const guint n = gst_buffer_list_length(list);
  for (guint i = 0; i < n; i++) {
    GstBuffer* in = gst_buffer_list_get(list, i);
    GstMapInfo imap;
    if (!gst_buffer_map(in, &imap, GST_MAP_READ)) {
      failures_++;
      continue;
    }
    GstBuffer* sealed = gst_buffer_new_allocate(NULL, imap.size + secure::kOverhead, NULL);
    GstMapInfo omap;
    gst_buffer_map(sealed, &omap, GST_MAP_WRITE);
    const size_t written = sealer_->seal(imap.data, imap.size, omap.data, omap.size);
    gst_buffer_unmap(sealed, &omap);
    gst_buffer_unmap(in, &imap);
    if (written == 0) {
      failures_++;
      gst_buffer_unref(sealed);
      continue;
    }
    /* What syncwavepay sets on its datagrams: times and DISCONT (no metas). */
    GST_BUFFER_PTS(sealed) = GST_BUFFER_PTS(in);
    GST_BUFFER_DTS(sealed) = GST_BUFFER_DTS(in);
    GST_BUFFER_DURATION(sealed) = GST_BUFFER_DURATION(in);
    if (GST_BUFFER_IS_DISCONT(in)) GST_BUFFER_FLAG_SET(sealed, GST_BUFFER_FLAG_DISCONT);
    gst_buffer_list_add(out, sealed);
    sealed_++;
  }
  gst_buffer_list_unref(list);
  return out;
#else
  return list;
#endif
}

void SecureSend::add_stats(GstStructure* s) {
  std::lock_guard<std::mutex> lk(lock_);
  gst_structure_set(s, "secure", G_TYPE_BOOLEAN, (gboolean)(state_ == SecretState::kOn), "sealed",
                    G_TYPE_UINT64, sealed_, "seal-failures", G_TYPE_UINT64, failures_, NULL);
#if SYNCWAVE_HAVE_SECURE
  if (sealer_)
    gst_structure_set(s, "stream-id", G_TYPE_UINT64, (guint64)sealer_->stream_id(), NULL);
#endif
}

/* ---------------------------------------------------------------------------------
 * SecureReceive */

SecureReceive::SecureReceive() {
  init_debug();
}
SecureReceive::~SecureReceive() = default;

void SecureReceive::attach(GstElement* element, GstPad* sinkpad) {
  element_ = element;
#if SYNCWAVE_HAVE_SECURE
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, &SecureReceive::probe, this, NULL);
#else
  (void)sinkpad;
#endif
}

void SecureReceive::set_secret(GstElement* element, const gchar* secret) {
  if (secret_empty(secret)) {
    std::lock_guard<std::mutex> lk(lock_);
    state_ = SecretState::kOff;
    opener_.reset();
    GST_INFO_OBJECT(element, "no secret: plain SYNC v1");
    return;
  }
#if SYNCWAVE_HAVE_SECURE
  secure::Key key{};
  const bool ok = derive_cached(element, secret, &key);
  std::lock_guard<std::mutex> lk(lock_);
  if (ok) {
    opener_ = std::make_unique<secure::Opener>(key);
    state_ = SecretState::kOn;
    announced_.clear();
    GST_INFO_OBJECT(element, "secret set: only datagrams sealed with it are played");
  } else {
    opener_.reset();
    state_ = SecretState::kDerivationFailed;
  }
  sodium_memzero(key.data(), key.size());
#else
  (void)element;
  std::lock_guard<std::mutex> lk(lock_);
  state_ = SecretState::kNotBuiltIn;
#endif
}

bool SecureReceive::check_start(GstElement* element) {
  SecretState state;
  {
    std::lock_guard<std::mutex> lk(lock_);
    state = state_;
  }
  return check_state(element, state);
}

bool SecureReceive::on() {
  std::lock_guard<std::mutex> lk(lock_);
  return state_ == SecretState::kOn;
}

GstPadProbeReturn SecureReceive::probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  (void)pad;
  return static_cast<SecureReceive*>(user_data)->open(info);
}

GstPadProbeReturn SecureReceive::open(GstPadProbeInfo* info) {
#if SYNCWAVE_HAVE_SECURE
  std::unique_lock<std::mutex> lk(lock_);
  if (!opener_) return GST_PAD_PROBE_OK; /* plain mode */
  GstBuffer* buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buf; /* dropped (unreffed) by the pad on DROP */
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READWRITE)) return GST_PAD_PROBE_DROP;
  const secure::OpenResult r = opener_->open_in_place(map.data, map.size);
  gst_buffer_unmap(buf, &map);
  if (r.reject == secure::Reject::kNone) {
    gst_buffer_resize(buf, secure::kHeaderSize, (gssize)r.size);
    if (r.new_stream)
      GST_INFO_OBJECT(
          element_, "secure stream %014" G_GINT64_MODIFIER "x from its counter %" G_GUINT64_FORMAT,
          (guint64)r.stream_id, (guint64)r.counter);
    return GST_PAD_PROBE_OK;
  }
  GST_LOG_OBJECT(element_, "dropped: %s", secure::reject_name(r.reject));
  /* Replays and old datagrams are what a network's duplicates look like: counted only. */
  if (r.reject != secure::Reject::kReplayed && r.reject != secure::Reject::kTooOld) {
    const std::string host = sender_host(buf);
    const std::string key = std::string(secure::reject_name(r.reject)) + " " + host;
    if (announced_.size() < kMaxAnnounced && announced_.insert(key).second) {
      lk.unlock();
      announce(buf, static_cast<int>(r.reject));
    }
  }
  return GST_PAD_PROBE_DROP;
#else
  (void)info;
  return GST_PAD_PROBE_OK;
#endif
}

void SecureReceive::announce(GstBuffer* buf, int reason) {
#if SYNCWAVE_HAVE_SECURE
  const auto why = static_cast<secure::Reject>(reason);
  std::string host = sender_host(buf);
  const std::string from = host.empty() ? "an unknown address" : host;
  std::string text;
  switch (why) {
    case secure::Reject::kAuthFailed:
      text = "datagrams from " + from + " fail authentication: wrong secret?";
      break;
    case secure::Reject::kPlain:
      text =
          "datagrams from " + from + " are not secured: is that sender running without the secret?";
      break;
    default:
      text = "datagrams from " + from + " are no secure datagrams this receiver reads (" +
             secure::reject_name(why) + ")";
      break;
  }
  GST_ELEMENT_WARNING(element_, STREAM, DECRYPT, ("%s", text.c_str()),
                      ("dropped (%s); counted in stats secure-rejected-%s",
                       secure::reject_name(why), secure::reject_name(why)));
  gst_element_post_message(
      element_,
      gst_message_new_element(
          GST_OBJECT_CAST(element_),
          gst_structure_new("syncwave-secure-rejected", "address", G_TYPE_STRING, host.c_str(),
                            "reason", G_TYPE_STRING, secure::reject_name(why), "message",
                            G_TYPE_STRING, text.c_str(), NULL)));
#else
  (void)buf;
  (void)reason;
#endif
}

void SecureReceive::add_stats(GstStructure* s) {
  std::lock_guard<std::mutex> lk(lock_);
  gst_structure_set(s, "secure", G_TYPE_BOOLEAN, (gboolean)(state_ == SecretState::kOn), NULL);
#if SYNCWAVE_HAVE_SECURE
  const secure::Opener* o = opener_.get();
  gst_structure_set(s, "secure-opened", G_TYPE_UINT64, (guint64)(o ? o->opened() : 0),
                    "secure-rejected", G_TYPE_UINT64, (guint64)(o ? o->rejected_total() : 0),
                    "secure-streams", G_TYPE_UINT, (guint)(o ? o->streams() : 0), NULL);
  for (size_t i = 1; i < static_cast<size_t>(secure::Reject::kCount); i++) {
    const auto r = static_cast<secure::Reject>(i);
    const std::string field = std::string("secure-rejected-") + secure::reject_name(r);
    gst_structure_set(s, field.c_str(), G_TYPE_UINT64, (guint64)(o ? o->rejected(r) : 0), NULL);
  }
#endif
}

bool secure_clock_key(GstElement* element, const gchar* secret, std::array<guint8, 32>* key) {
  if (secret == NULL || *secret == '\0') return false;
#if SYNCWAVE_HAVE_SECURE
  secure::Key stream{};
  if (!derive_cached(element, secret, &stream)) return false;
  secure::Key clock{};
  const bool ok = secure::derive_clock_key(stream, &clock);
  sodium_memzero(stream.data(), stream.size());
  if (ok) std::copy(clock.begin(), clock.end(), key->begin());
  sodium_memzero(clock.data(), clock.size());
  return ok;
#else
  (void)element;
  (void)key;
  return false;
#endif
}

/* ---------------------------------------------------------------------------------
 * SecureTimeProvider */

struct SecureTimeProvider::State {
  GstClock* clock = nullptr;
  GSocket* socket = nullptr;
  GCancellable* cancel = nullptr;
  GThread* thread = nullptr;
  std::mutex lock;
#if SYNCWAVE_HAVE_SECURE
  std::unique_ptr<secure::ClockServer> server; /* the thread's; counters under lock */
#endif
};

SecureTimeProvider* SecureTimeProvider::start(GstClock* clock, const std::string& address,
                                              int port, const std::array<guint8, 32>& clock_key,
                                              std::string* error) {
#if SYNCWAVE_HAVE_SECURE
  GInetAddress* addr = g_inet_address_new_from_string(address.c_str());
  if (addr == NULL) {
    *error = "\"" + address + "\" is not an IP address";
    return NULL;
  }
  GError* err = NULL;
  GSocket* socket = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_DATAGRAM,
                                 G_SOCKET_PROTOCOL_UDP, &err);
  GSocketAddress* sa = g_inet_socket_address_new(addr, (guint16)port);
  g_object_unref(addr);
  if (socket == NULL || !g_socket_bind(socket, sa, TRUE, &err)) {
    *error = err ? err->message : "cannot bind";
    g_clear_error(&err);
    g_object_unref(sa);
    if (socket) g_object_unref(socket);
    return NULL;
  }
  g_object_unref(sa);
  SecureTimeProvider* self = new SecureTimeProvider();
  self->state_ = new State();
  self->state_->clock = GST_CLOCK(gst_object_ref(clock));
  self->state_->socket = socket;
  self->state_->cancel = g_cancellable_new();
  secure::Key key;
  std::copy(clock_key.begin(), clock_key.end(), key.begin());
  self->state_->server = std::make_unique<secure::ClockServer>(key);
  sodium_memzero(key.data(), key.size());
  self->state_->thread = g_thread_try_new("syncwave-timeprov", run, self->state_, &err);
  if (self->state_->thread == NULL) {
    *error = err ? err->message : "cannot start a thread";
    g_clear_error(&err);
    delete self;
    return NULL;
  }
  return self;
#else
  (void)clock;
  (void)address;
  (void)port;
  (void)clock_key;
  *error = "this build has no secure mode";
  return NULL;
#endif
}

gpointer SecureTimeProvider::run(gpointer data) {
#if SYNCWAVE_HAVE_SECURE
  State* st = static_cast<State*>(data);
  guint8 buf[256];
  std::vector<uint8_t> answer;
  while (!g_cancellable_is_cancelled(st->cancel)) {
    GSocketAddress* from = NULL;
    GError* err = NULL;
    const gssize got =
        g_socket_receive_from(st->socket, &from, (gchar*)buf, sizeof buf, st->cancel, &err);
    if (got < 0) {
      g_clear_error(&err);
      if (from) g_object_unref(from);
      continue;
    }
    /* Stamped when the request is answered: the client's round trip covers the rest. */
    const GstClockTime now = gst_clock_get_time(st->clock);
    secure::ClockReject r;
    {
      std::lock_guard<std::mutex> lk(st->lock);
      r = st->server->answer(buf, (size_t)got, (uint64_t)now, &answer);
    }
    if (r == secure::ClockReject::kNone && from != NULL)
      g_socket_send_to(st->socket, from, (const gchar*)answer.data(), answer.size(), NULL, NULL);
    if (from) g_object_unref(from);
  }
#else
  (void)data;
#endif
  return NULL;
}

SecureTimeProvider::~SecureTimeProvider() {
  if (state_ == nullptr) return;
  if (state_->cancel) g_cancellable_cancel(state_->cancel);
  if (state_->thread) g_thread_join(state_->thread);
  if (state_->socket) g_object_unref(state_->socket);
  if (state_->cancel) g_object_unref(state_->cancel);
  if (state_->clock) gst_object_unref(state_->clock);
  delete state_;
}

guint64 SecureTimeProvider::answered() {
#if SYNCWAVE_HAVE_SECURE
  std::lock_guard<std::mutex> lk(state_->lock);
  return state_->server->answered();
#else
  return 0;
#endif
}

guint64 SecureTimeProvider::rejected() {
#if SYNCWAVE_HAVE_SECURE
  std::lock_guard<std::mutex> lk(state_->lock);
  return state_->server->rejected_total();
#else
  return 0;
#endif
}

}  // namespace syncwave
