/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Secure streams in the elements: the `secret` property's key and the GStreamer side of
 * core/secure_channel.h (docs/wire-format.md, "Secure framing").
 *
 *   syncwavepay:    chain ─► v1 datagrams ─► SecureSend::seal(list) ─► src pad
 *   syncwavejitter: sink pad ─► [SecureReceive probe: open or drop] ─► chain (v1 parse)
 *
 * - The key is derived from the passphrase once (Argon2id, 64 MiB, a fraction of a
 *   second) when the property is set, with no element lock held; the last four keys
 *   derived in the process are kept, so that several elements given the same secret
 *   derive it once. The secret itself is neither stored nor logged.
 * - The receiving half opens each datagram in a buffer probe that the jitter installs
 *   on its own sink pad when it is created, so it runs before any probe added later
 *   (syncwavesink's sender and transit probe) and before the chain function: nothing
 *   downstream of it ever sees an unauthenticated datagram. A rejected datagram is
 *   dropped (GST_PAD_PROBE_DROP), counted by reason, and the first one of a kind from
 *   each address (up to 256) is announced with a warning and an element message
 *   "syncwave-secure-rejected" (address, reason).
 * - A secret set on a build without libsodium, or whose key could not be derived,
 *   makes the element fail NULL->READY with an error: it never falls back to plain.
 */
#pragma once

#include <gst/gst.h>

#include <array>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace syncwave {

namespace secure {
class Sealer;
class Opener;
}  // namespace secure

/* Whether this build has secure streams (the `secure` meson feature). */
bool secure_built_in();

/* What set_secret() found. */
enum class SecretState { kOff, kOn, kNotBuiltIn, kDerivationFailed };

class SecureSend {
 public:
  SecureSend();
  ~SecureSend();

  /* `secret` (any thread): NULL or "" is plain mode. Derives the key (slow). */
  void set_secret(GstElement* element, const gchar* secret);
  /* NULL->READY: false, after posting an error, when a secret was set but cannot be used. */
  bool check_start(GstElement* element);

  /* Streaming thread. Bytes every datagram grows by (0 in plain mode). */
  size_t overhead();
  /* The next datagram starts a new stream (a new random stream id, counter 0). */
  void restart();
  /* Seals every buffer of `list` (consumed) in plain mode's place; returns the list to
   * push. A buffer that cannot be sealed (too large) is dropped and counted. */
  GstBufferList* seal(GstBufferList* list);

  /* secure (boolean), sealed, seal-failures, stream-id (when secure). */
  void add_stats(GstStructure* s);

 private:
  std::mutex lock_;
  SecretState state_ = SecretState::kOff;
  std::unique_ptr<secure::Sealer> sealer_; /* the streaming thread uses it under lock_ */
  bool restart_ = false;
  guint64 sealed_ = 0;
  guint64 failures_ = 0;
};

class SecureReceive {
 public:
  SecureReceive();
  ~SecureReceive();

  /* Installs the opening probe on `sinkpad`, `element`'s. Call once, from _init. */
  void attach(GstElement* element, GstPad* sinkpad);
  /* `secret` (any thread): NULL or "" is plain mode (every datagram passes). */
  void set_secret(GstElement* element, const gchar* secret);
  bool check_start(GstElement* element);
  /* A secret is in force (any thread). */
  bool on();

  /* secure (boolean), secure-opened, secure-rejected and secure-rejected-<reason>
   * for each reason (plain, truncated, bad-version, auth-failed, replayed, too-old),
   * secure-streams. */
  void add_stats(GstStructure* s);

 private:
  static GstPadProbeReturn probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data);
  GstPadProbeReturn open(GstPadProbeInfo* info);
  void announce(GstBuffer* buf, int reason);

  GstElement* element_ = nullptr; /* not a reference: the element owns us */
  std::mutex lock_;
  SecretState state_ = SecretState::kOff;
  std::unique_ptr<secure::Opener> opener_;
  std::set<std::string> announced_; /* "reason address", at most 256 */
};

/* The clock exchange's key for `secret` (core/secure_clock.h: the stream key's clock
 * subkey), through the process's key cache (fast when the element's SecureSend or
 * SecureReceive derived it already). False when `secret` is NULL or "", the build has no
 * secure mode, or the key cannot be derived. */
bool secure_clock_key(GstElement* element, const gchar* secret, std::array<guint8, 32>* key);

/* syncwavepay's time provider in secure mode: answers the sealed requests of
 * core/secure_clock.h with `clock`'s time, on a thread of its own, on address:port (UDP).
 * A request that does not authenticate, or was answered before, gets no answer. */
class SecureTimeProvider {
 public:
  /* NULL with *error set when the socket cannot be bound or the build has no secure mode. */
  static SecureTimeProvider* start(GstClock* clock, const std::string& address, int port,
                                   const std::array<guint8, 32>& clock_key, std::string* error);
  ~SecureTimeProvider(); /* stops the thread and closes the socket */

  guint64 answered();
  guint64 rejected();

 private:
  SecureTimeProvider() = default;
  static gpointer run(gpointer self);
  struct State;
  State* state_ = nullptr;
};

}  // namespace syncwave
