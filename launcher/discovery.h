// SPDX-License-Identifier: LGPL-2.1-or-later
// Discovery: senders and receivers find each other with mDNS/DNS-SD (issue 13).
//
//   receive --name=kitchen            send (no destination)           list
//        |  announce                       |  browse receivers          |  browse both
//        v                                 v                            v
//   _syncwave._udp  "kitchen"  SRV port 5555   TXT version=0.1.0 codecs=raw,opus state=waiting
//   _syncwave-send._udp "studio" SRV port 5556 TXT version=0.1.0 format=opus/48000/2
//                                                  clock-port=5556 port=5555 state=sending
//
// Receivers are `_syncwave._udp` services whose SRV port is the UDP port they receive
// on; senders are `_syncwave-send._udp` services whose SRV port is their clock port.
// Two types, so that a sender and a receiver on one computer can both take the host
// name without an mDNS name conflict.
//
// This file is the plain part, tested without any daemon: TXT records built and read
// (everything read from the network is checked, hostile records are dropped or
// cleaned, never trusted), the table of peers (one service is seen once per interface
// and address family; it is gone when every one of those is gone), the targets of a
// sender that follows the receivers, and the receiver's choice of sender.
//
// The platform part is the Discovery interface at the end: Avahi (libavahi-client on
// the GLib main loop, discovery_avahi.cpp) on Linux, the dns_sd API (Bonjour) on
// Windows and macOS (discovery_dnssd.cpp, never built or run in this project's CI),
// or none (discovery_none.cpp) when built with -Ddiscovery=disabled.

#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.h"

namespace syncwave {
namespace launcher {

constexpr const char* kReceiverServiceType = "_syncwave._udp";
constexpr const char* kSenderServiceType = "_syncwave-send._udp";
// DNS-SD instance names are one DNS label: at most 63 bytes of UTF-8.
constexpr size_t kMaxServiceNameBytes = 63;
// A TXT string is one length byte and at most 255 bytes (RFC 6763 §6.1).
constexpr size_t kMaxTxtRecordBytes = 255;
// What a value may hold once read (longer values are cut at a character boundary).
constexpr size_t kMaxTxtValueBytes = 64;

enum class Role { kSender, kReceiver };

const char* role_name(Role role);
const char* service_type(Role role);

// What this program announces. `txt` keys are lowercase ASCII.
struct Announcement {
  Role role = Role::kReceiver;
  std::string name;
  int port = 0;
  std::map<std::string, std::string> txt;
};

// The TXT of a receiver (version, codecs, state) and of a sender (version, format,
// clock port, data port, state).
Announcement receiver_announcement(const std::string& name, int port,
                                   const std::vector<std::string>& codecs,
                                   const std::string& state);
Announcement sender_announcement(const std::string& name, const SendOptions& send,
                                 const std::string& state);

// "key=value" strings, in key order, each at most 255 bytes (longer ones are left out).
std::vector<std::string> encode_txt(const std::map<std::string, std::string>& txt);

// What a TXT record says, checked. Keys are matched without case and the first one
// wins (RFC 6763 §6.4); strings without '=', with an empty key, or with bytes outside
// printable ASCII in the key are ignored; values are cleaned (display_text) and cut.
struct TxtInfo {
  std::string version;              // "" when absent
  std::vector<std::string> codecs;  // known codecs only: "raw", "opus"
  std::string state;                // "" when absent
  std::string format;               // sender: "opus/48000/2"
  int clock_port = -1;              // sender: 0..65535, -1 when absent or invalid
  int data_port = -1;               // sender: the port it sends to, -1 when absent
  std::string multicast;            // receiver: the group it listens on ("" unicast)
};
TxtInfo decode_txt(const std::vector<std::string>& records);

// Text from the network made safe to print on one line and inside JSON: invalid UTF-8
// and control characters become '?', at most `max_bytes` bytes (cut at a character).
std::string display_text(const std::string& text, size_t max_bytes);

// --name: 1 to 63 bytes of valid UTF-8 without control characters. On error one
// sentence in `error`.
bool valid_service_name(const std::string& name, std::string* error);

// The default --name: the host name without its domain, cleaned, at most 63 bytes;
// "syncwave" when it is empty.
std::string default_service_name(const std::string& host_name);

// The receiver state announced in TXT from the status line's state: "waiting",
// "playing" or "idle" (the sender stopped).
std::string announced_receiver_state(const std::string& status_state);

// One resolved sighting of a service: the platform layer reports one per interface and
// address family.
struct ServiceInstance {
  Role role = Role::kReceiver;
  std::string name;
  int interface_index = 0;
  int protocol = 0;  // the platform's address family number (only compared)
  std::string host;  // "kitchen.local"
  std::string address;
  int port = 0;
  std::vector<std::string> txt;  // raw TXT strings as received
  bool local = false;            // announced by this computer
};

// A service as shown by `list` and followed by `send`: one per (role, name).
struct Peer {
  Role role = Role::kReceiver;
  std::string name;  // as announced (may hold anything: clean it to print)
  std::string host;
  std::string address;  // IPv4 preferred
  int port = 0;
  bool local = false;
  TxtInfo info;
};

class PeerTable {
 public:
  // A service was resolved (new or changed). Returns true when what peers() returns
  // changed. Instances with an empty name, no address or a port outside 0..65535 are
  // ignored.
  bool update(const ServiceInstance& instance);
  // A service instance went away. Returns true when what peers() returns changed.
  bool remove(Role role, const std::string& name, int interface_index, int protocol);
  void clear() { instances_.clear(); }

  // Senders first, then receivers, each by name.
  std::vector<Peer> peers() const;
  size_t size() const { return peers().size(); }

 private:
  struct Key {
    Role role;
    std::string name;
    int interface_index;
    int protocol;
    bool operator<(const Key& o) const;
  };
  using Instances = std::map<Key, ServiceInstance>;
  // The peers of instances [begin, end) (at most one per role and name).
  static std::vector<Peer> merge(Instances::const_iterator begin, Instances::const_iterator end);
  std::vector<Peer> peers_named(Role role, const std::string& name) const;
  Instances instances_;
};

// A sender with no --target, --broadcast or --multicast sends to every receiver found:
// address:port of each, without duplicates (two names on one address and port are
// one destination), in a stable order. Receivers on a multicast group (TXT multicast)
// and with port 0 are left out.
std::vector<Endpoint> discovered_targets(const std::vector<Peer>& peers);

// What changes between two target lists: what to add and what to remove.
struct TargetChanges {
  std::vector<Endpoint> added;
  std::vector<Endpoint> removed;
};
TargetChanges diff_targets(const std::vector<Endpoint>& before, const std::vector<Endpoint>& after);

// The receiver's choice among the senders found: `from` is --from (a sender's name, or
// a host when no sender has that name).
struct SenderChoice {
  enum class Kind {
    kNone,       // no sender found yet
    kOnly,       // no --from and one sender: that one
    kNamed,      // --from names this sender
    kAmbiguous,  // no --from and several: the first heard plays (as without discovery)
    kNotFound,   // --from names no sender found (it may be a host name)
  };
  Kind kind = Kind::kNone;
  Peer sender;        // kOnly, kNamed
  size_t count = 0;   // senders found
};
SenderChoice choose_sender(const std::vector<Peer>& peers, const std::string& from);

// `list`: one line per peer ("kitchen  10.0.0.5:5555  receiver  waiting"), names and
// states cleaned; and the same as a JSON array, one object per line.
std::string format_peer_list(const std::vector<Peer>& peers);
std::string format_peer_json(const std::vector<Peer>& peers);

// ---------------------------------------------------------------------------------
// The platform's mDNS service (Avahi, Bonjour). Everything runs on GLib's default main
// context: callbacks come from g_main_loop_run, never from another thread.
class Discovery {
 public:
  enum class Event { kFound, kGone };
  using BrowseCallback = std::function<void(Event event, const ServiceInstance& instance)>;
  // A problem worth one line (the daemon stopped, a name was taken and replaced).
  using NoticeCallback = std::function<void(const std::string& sentence)>;

  virtual ~Discovery() = default;
  // Announces this service (again, with a new TXT, when called again for the same
  // role). The name actually used can differ when another service holds it.
  virtual void announce(const Announcement& announcement) = 0;
  // Follows every service of `role` on the network.
  virtual void browse(Role role, BrowseCallback callback) = 0;
  virtual void set_notice_callback(NoticeCallback callback) = 0;
};

// Connects to the platform's mDNS service. Returns nullptr with one sentence in
// *problem when there is none (no daemon running, built without discovery).
std::unique_ptr<Discovery> make_discovery(std::string* problem);

}  // namespace launcher
}  // namespace syncwave
