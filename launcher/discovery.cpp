// SPDX-License-Identifier: LGPL-2.1-or-later
#include "discovery.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <set>
#include <sstream>

#include "config.h"
#include "status_format.h"

namespace syncwave {
namespace launcher {

namespace {

// Length of the UTF-8 sequence starting at s[i] (1..4), or 0 when it is not a valid,
// shortest-form sequence of a Unicode scalar value.
size_t utf8_sequence(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned min = 0, cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_control(const std::string& s, size_t i, size_t n) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (n == 1) return c < 0x20 || c == 0x7F;
  // C1 controls U+0080..U+009F are C2 80..C2 9F.
  return n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

int port_value(const std::string& v) {
  if (v.empty() || v.size() > 5) return -1;
  int p = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    p = p * 10 + (c - '0');
  }
  return p <= 65535 ? p : -1;
}

const char* codec_name(Codec c) {
  return c == Codec::kOpus ? "opus" : "raw";
}

std::string endpoint_text(const std::string& address, int port) {
  if (address.find(':') != std::string::npos)
    return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

}  // namespace

const char* role_name(Role role) {
  return role == Role::kSender ? "sender" : "receiver";
}

const char* service_type(Role role) {
  return role == Role::kSender ? kSenderServiceType : kReceiverServiceType;
}

Announcement receiver_announcement(const std::string& name, int port,
                                   const std::vector<std::string>& codecs,
                                   const std::string& state) {
  Announcement a;
  a.role = Role::kReceiver;
  a.name = name;
  a.port = port;
  a.txt["version"] = VERSION;
  std::string list;
  for (const std::string& c : codecs) list += (list.empty() ? "" : ",") + c;
  a.txt["codecs"] = list;
  a.txt["state"] = state;
  return a;
}

Announcement sender_announcement(const std::string& name, const SendOptions& send,
                                 const std::string& state) {
  Announcement a;
  a.role = Role::kSender;
  a.name = name;
  a.port = send.clock_port;
  a.txt["version"] = VERSION;
  a.txt["format"] = std::string(codec_name(send.codec)) + "/" + std::to_string(kSampleRate) + "/" +
                    std::to_string(kChannels);
  a.txt["clock-port"] = std::to_string(send.clock_port);
  a.txt["port"] = std::to_string(send.port);
  a.txt["state"] = state;
  return a;
}

std::vector<std::string> encode_txt(const std::map<std::string, std::string>& txt) {
  std::vector<std::string> out;
  for (const auto& kv : txt) {
    if (kv.first.empty()) continue;
    std::string record = kv.first + "=" + kv.second;
    if (record.size() > kMaxTxtRecordBytes) continue;
    out.push_back(record);
  }
  return out;
}

std::string display_text(const std::string& text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_sequence(text, i);
    std::string piece;
    if (n == 0) {
      piece = "?";
      n = 1;
    } else if (is_control(text, i, n)) {
      piece = "?";
    } else {
      piece = text.substr(i, n);
    }
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += n;
  }
  return out;
}

TxtInfo decode_txt(const std::vector<std::string>& records) {
  TxtInfo info;
  std::set<std::string> seen;
  for (const std::string& r : records) {
    if (r.size() > kMaxTxtRecordBytes) continue;
    const size_t eq = r.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = r.substr(0, eq);
    bool printable = true;
    for (char c : key) printable = printable && c >= 0x20 && c <= 0x7E;
    if (!printable) continue;
    key = lower_ascii(key);
    if (!seen.insert(key).second) continue;  // the first one wins
    const std::string raw = r.substr(eq + 1);
    const std::string value = display_text(raw, kMaxTxtValueBytes);
    if (key == "version") {
      info.version = value;
    } else if (key == "state") {
      info.state = value;
    } else if (key == "format") {
      info.format = value;
    } else if (key == "clock-port") {
      info.clock_port = port_value(raw);
    } else if (key == "port") {
      info.data_port = port_value(raw);
    } else if (key == "multicast") {
      info.multicast = value;
    } else if (key == "codecs") {
      std::stringstream ss(raw);
      std::string c;
      while (std::getline(ss, c, ',')) {
        c = lower_ascii(c);
        if ((c == "raw" || c == "opus") &&
            std::find(info.codecs.begin(), info.codecs.end(), c) == info.codecs.end())
          info.codecs.push_back(c);
      }
    }
  }
  return info;
}

bool valid_service_name(const std::string& name, std::string* error) {
  const auto fail = [&](const std::string& why) {
    if (error) *error = "--name='" + display_text(name, 80) + "' is invalid: " + why + ".";
    return false;
  };
  if (name.empty()) return fail("expected a name such as kitchen");
  if (name.size() > kMaxServiceNameBytes) return fail("at most 63 bytes (UTF-8)");
  for (size_t i = 0; i < name.size();) {
    const size_t n = utf8_sequence(name, i);
    if (n == 0) return fail("not valid UTF-8");
    if (is_control(name, i, n)) return fail("control characters are not allowed");
    i += n;
  }
  return true;
}

std::string default_service_name(const std::string& host_name) {
  std::string h = host_name.substr(0, host_name.find('.'));
  h = display_text(h, kMaxServiceNameBytes);
  return h.empty() ? "syncwave" : h;
}

std::string announced_receiver_state(const std::string& status_state) {
  if (status_state.empty() || status_state.compare(0, 7, "waiting") == 0) return "waiting";
  if (status_state == "quiet") return "idle";
  return "playing";
}

bool PeerTable::Key::operator<(const Key& o) const {
  if (role != o.role) return role < o.role;
  if (name != o.name) return name < o.name;
  if (interface_index != o.interface_index) return interface_index < o.interface_index;
  return protocol < o.protocol;
}

bool PeerTable::update(const ServiceInstance& instance) {
  if (instance.name.empty() || instance.address.empty() || instance.port < 0 ||
      instance.port > 65535)
    return false;
  const std::vector<Peer> before = peers_named(instance.role, instance.name);
  instances_[Key{instance.role, instance.name, instance.interface_index, instance.protocol}] =
      instance;
  const std::vector<Peer> after = peers_named(instance.role, instance.name);
  if (before.size() != after.size()) return true;
  for (size_t i = 0; i < before.size(); i++) {
    const Peer &x = before[i], &y = after[i];
    if (x.address != y.address || x.port != y.port || x.host != y.host ||
        x.info.state != y.info.state || x.info.version != y.info.version ||
        x.info.codecs != y.info.codecs || x.info.format != y.info.format ||
        x.info.clock_port != y.info.clock_port || x.info.data_port != y.info.data_port ||
        x.info.multicast != y.info.multicast)
      return true;
  }
  return false;
}

bool PeerTable::remove(Role role, const std::string& name, int interface_index, int protocol) {
  const std::vector<Peer> before = peers_named(role, name);
  instances_.erase(Key{role, name, interface_index, protocol});
  const std::vector<Peer> after = peers_named(role, name);
  if (before.size() != after.size()) return true;
  for (size_t i = 0; i < before.size(); i++)
    if (before[i].address != after[i].address || before[i].port != after[i].port) return true;
  return false;
}

std::vector<Peer> PeerTable::peers_named(Role role, const std::string& name) const {
  const auto lo = instances_.lower_bound(Key{role, name, INT_MIN, INT_MIN});
  const auto hi = instances_.upper_bound(Key{role, name, INT_MAX, INT_MAX});
  return merge(lo, hi);
}

std::vector<Peer> PeerTable::peers() const {
  return merge(instances_.begin(), instances_.end());
}

namespace {

// Which address of a service to use, higher first: IPv4 off the loopback (what other
// computers reach too), IPv4 loopback (a service of this computer, seen on lo), IPv6.
int address_rank(const std::string& address) {
  if (address.find(':') != std::string::npos) return 0;
  return address.compare(0, 4, "127.") == 0 ? 1 : 2;
}

}  // namespace

std::vector<Peer> PeerTable::merge(Instances::const_iterator begin,
                                   Instances::const_iterator end) {
  // The map is ordered by role (senders first), name, interface, protocol: of the
  // instances of one name the best address stands for it (address_rank), the first
  // one among equals.
  std::vector<Peer> out;
  for (auto it = begin; it != end; ++it) {
    const ServiceInstance& s = it->second;
    if (!out.empty() && out.back().role == s.role && out.back().name == s.name) {
      if (address_rank(s.address) <= address_rank(out.back().address)) continue;
      out.pop_back();
    }
    Peer p;
    p.role = s.role;
    p.name = s.name;
    p.host = s.host;
    p.address = s.address;
    p.port = s.port;
    p.local = s.local;
    p.info = decode_txt(s.txt);
    out.push_back(p);
  }
  return out;
}

std::vector<Endpoint> discovered_targets(const std::vector<Peer>& peers) {
  std::vector<Endpoint> out;
  for (const Peer& p : peers) {
    if (p.role != Role::kReceiver || p.port <= 0 || !p.info.multicast.empty()) continue;
    Endpoint e{p.address, p.port};
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const Endpoint& a, const Endpoint& b) {
    return a.host != b.host ? a.host < b.host : a.port < b.port;
  });
  return out;
}

TargetChanges diff_targets(const std::vector<Endpoint>& before, const std::vector<Endpoint>& after) {
  TargetChanges c;
  for (const Endpoint& e : after)
    if (std::find(before.begin(), before.end(), e) == before.end()) c.added.push_back(e);
  for (const Endpoint& e : before)
    if (std::find(after.begin(), after.end(), e) == after.end()) c.removed.push_back(e);
  return c;
}

SenderChoice choose_sender(const std::vector<Peer>& peers, const std::string& from) {
  SenderChoice choice;
  std::vector<const Peer*> senders;
  for (const Peer& p : peers)
    if (p.role == Role::kSender) senders.push_back(&p);
  choice.count = senders.size();
  if (!from.empty()) {
    for (const Peer* p : senders) {
      if (p->name == from) {
        choice.kind = SenderChoice::Kind::kNamed;
        choice.sender = *p;
        return choice;
      }
    }
    choice.kind = SenderChoice::Kind::kNotFound;
    return choice;
  }
  if (senders.empty()) return choice;
  if (senders.size() == 1) {
    choice.kind = SenderChoice::Kind::kOnly;
    choice.sender = *senders[0];
    return choice;
  }
  choice.kind = SenderChoice::Kind::kAmbiguous;
  return choice;
}

std::string format_peer_list(const std::vector<Peer>& peers) {
  std::string out;
  for (const Peer& p : peers) {
    const std::string name = display_text(p.name, kMaxServiceNameBytes);
    const std::string state = p.info.state.empty() ? "-" : display_text(p.info.state, 32);
    char line[256];
    std::snprintf(line, sizeof line, "%-20s  %-21s  %-8s  %s\n", name.c_str(),
                  endpoint_text(p.address, p.port).c_str(), role_name(p.role), state.c_str());
    out += line;
  }
  return out;
}

std::string format_peer_json(const std::vector<Peer>& peers) {
  std::string out = "[";
  bool first = true;
  for (const Peer& p : peers) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"name\":\"" + json_escape(display_text(p.name, kMaxServiceNameBytes)) + "\"";
    out += ",\"role\":\"" + std::string(role_name(p.role)) + "\"";
    out += ",\"address\":\"" + json_escape(p.address) + "\"";
    out += ",\"port\":" + std::to_string(p.port);
    out += ",\"host\":\"" + json_escape(display_text(p.host, 255)) + "\"";
    out += ",\"state\":" + (p.info.state.empty() ? std::string("null")
                                                  : "\"" + json_escape(p.info.state) + "\"");
    out += ",\"version\":" + (p.info.version.empty() ? std::string("null")
                                                      : "\"" + json_escape(p.info.version) + "\"");
    if (p.role == Role::kReceiver) {
      out += ",\"codecs\":[";
      for (size_t i = 0; i < p.info.codecs.size(); i++)
        out += (i ? ",\"" : "\"") + p.info.codecs[i] + "\"";
      out += "]";
    } else {
      out += ",\"format\":" + (p.info.format.empty() ? std::string("null")
                                                     : "\"" + json_escape(p.info.format) + "\"");
      out += ",\"clock_port\":" +
             (p.info.clock_port < 0 ? std::string("null") : std::to_string(p.info.clock_port));
    }
    out += ",\"local\":" + std::string(p.local ? "true" : "false") + "}";
  }
  out += first ? "]\n" : "\n]\n";
  return out;
}

}  // namespace launcher
}  // namespace syncwave
