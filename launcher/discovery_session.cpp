// SPDX-License-Identifier: LGPL-2.1-or-later
#include "discovery_session.h"

#include <algorithm>

#include <gst/gst.h>

#include <cstdio>
#include <vector>

namespace syncwave {
namespace launcher {

namespace {

// How long a sender with no destination waits before saying it found none.
constexpr guint kNoneFoundNoticeMs = 2000;

std::string endpoint_text(const Endpoint& e) {
  return (e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host) + ":" +
         std::to_string(e.port);
}

bool have_factory(const char* name) {
  GstElementFactory* f = gst_element_factory_find(name);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

}  // namespace

std::string announced_name(const std::string& option_name) {
  if (!option_name.empty()) return option_name;
  return default_service_name(g_get_host_name());
}

struct DiscoverySession::Impl {
  const Options& options;
  std::unique_ptr<Discovery> discovery;
  PeerTable receivers;
  PeerTable senders;
  std::vector<Endpoint> targets;  // the receivers the sender sends to
  GstElement* net = nullptr;      // multiudpsink "net", once the pipeline exists
  Announcement announcement;
  std::string announced_state;
  guint none_found_source = 0;
  bool told_ambiguous = false;

  Impl(const Options& o, std::unique_ptr<Discovery> d) : options(o), discovery(std::move(d)) {}
  ~Impl() {
    if (none_found_source) g_source_remove(none_found_source);
    if (net) gst_object_unref(net);
  }

  bool quiet() const { return options.common.quiet; }
  void say(const std::string& text) {
    if (!quiet()) print_event_line(text);
  }

  void start() {
    discovery->set_notice_callback([this](const std::string& s) { print_event_line(s); });
    const std::string name = announced_name(
        options.command == Command::kSend ? options.send.name : options.receive.name);
    if (options.command == Command::kSend) {
      announced_state = "sending";
      announcement = sender_announcement(name, options.send, announced_state);
      discovery->announce(announcement);
      if (options.send.discover()) {
        discovery->browse(Role::kReceiver, [this](Discovery::Event e, const ServiceInstance& s) {
          on_receiver(e, s);
        });
        say("Looking for receivers on the network (mDNS); each one found is added.");
        none_found_source = g_timeout_add(kNoneFoundNoticeMs, on_none_found, this);
      }
    } else if (options.command == Command::kReceive) {
      std::vector<std::string> codecs = {"raw"};
      if (have_factory("opusdec")) codecs.push_back("opus");
      announced_state = "waiting";
      announcement =
          receiver_announcement(name, options.receive.port, codecs, announced_state);
      // A receiver on a multicast group gets nothing sent to its address: senders that
      // follow receivers skip it (discovered_targets).
      if (!options.receive.multicast.empty())
        announcement.txt["multicast"] = options.receive.multicast;
      discovery->announce(announcement);
      discovery->browse(Role::kSender, [this](Discovery::Event e, const ServiceInstance& s) {
        on_sender(e, s);
      });
    }
  }

  static gboolean on_none_found(gpointer data) {
    auto* self = static_cast<Impl*>(data);
    self->none_found_source = 0;
    if (self->targets.empty())
      self->say(
          "No SyncWave receiver found yet: still looking (start 'syncwave-launch receive' on "
          "a device, or give --target).");
    return G_SOURCE_REMOVE;
  }

  void on_receiver(Discovery::Event e, const ServiceInstance& s) {
    const std::vector<Peer> before = receivers.peers();
    const bool changed = e == Discovery::Event::kFound
                             ? receivers.update(s)
                             : receivers.remove(s.role, s.name, s.interface_index, s.protocol);
    if (!changed) return;
    const std::vector<Peer> after = receivers.peers();
    apply_targets(discovered_targets(after), before, after);
  }

  static std::string name_at(const std::vector<Peer>& peers, const Endpoint& e) {
    for (const Peer& p : peers)
      if (p.role == Role::kReceiver && p.address == e.host && p.port == e.port)
        return display_text(p.name, kMaxServiceNameBytes);
    return "";
  }

  void apply_targets(const std::vector<Endpoint>& next, const std::vector<Peer>& before,
                     const std::vector<Peer>& after) {
    const TargetChanges c = diff_targets(targets, next);
    for (const Endpoint& e : c.added) {
      if (net) g_signal_emit_by_name(net, "add", e.host.c_str(), e.port);
      say("Receiver '" + name_at(after, e) + "' (" + endpoint_text(e) + ") found: sending to it.");
    }
    for (const Endpoint& e : c.removed) {
      if (net) g_signal_emit_by_name(net, "remove", e.host.c_str(), e.port);
      say("Receiver '" + name_at(before, e) + "' (" + endpoint_text(e) + ") left.");
    }
    const bool had = !targets.empty();
    targets = next;
    if (had && targets.empty()) say("No receiver left: still looking.");
  }

  void on_sender(Discovery::Event e, const ServiceInstance& s) {
    const bool changed = e == Discovery::Event::kFound
                             ? senders.update(s)
                             : senders.remove(s.role, s.name, s.interface_index, s.protocol);
    if (!changed || !options.receive.from.empty()) return;
    const SenderChoice c = choose_sender(senders.peers(), "");
    if (c.kind == SenderChoice::Kind::kAmbiguous && !told_ambiguous) {
      told_ambiguous = true;
      std::string names;
      for (const Peer& p : senders.peers())
        names += (names.empty() ? "'" : ", '") + display_text(p.name, kMaxServiceNameBytes) + "'";
      say(std::to_string(c.count) + " senders are on the network (" + names +
          "): the first heard plays; choose one with --from=NAME.");
    }
  }

  void started(GstElement* pipeline) {
    if (options.command != Command::kSend || !options.send.discover()) return;
    net = gst_bin_get_by_name(GST_BIN(pipeline), "net");
    if (!net) {
      print_event_line(
          "The pipeline has no multiudpsink named 'net': the receivers found cannot be added "
          "(keep {transmit} in the preset).");
      return;
    }
    for (const Endpoint& e : targets) g_signal_emit_by_name(net, "add", e.host.c_str(), e.port);
  }

  void tick(StatsSample* s) {
    if (options.command == Command::kSend) {
      if (options.send.discover()) s->targets = static_cast<int>(targets.size());
      return;
    }
    if (options.command != Command::kReceive) return;
    const std::string state = announced_receiver_state(s->state);
    if (state == announced_state) return;
    announced_state = state;
    announcement.txt["state"] = state;
    discovery->announce(announcement);
  }
};

DiscoverySession::DiscoverySession(const Options& options, std::unique_ptr<Discovery> discovery) {
  discovery_ = discovery.get();
  impl_ = std::make_unique<Impl>(options, std::move(discovery));
}

DiscoverySession::~DiscoverySession() = default;

void DiscoverySession::start() {
  if (discovery_) impl_->start();
}

RunHooks DiscoverySession::hooks() {
  RunHooks h;
  if (!discovery_) return h;
  Impl* impl = impl_.get();
  h.started = [impl](GstElement* pipeline) { impl->started(pipeline); };
  h.tick = [impl](StatsSample* s) { impl->tick(s); };
  return h;
}

namespace {

struct Browse {
  PeerTable table;
  GMainLoop* loop = nullptr;
  guint timer = 0;
  std::string wanted;  // find_sender: stop when found
  std::string found;

  void on_event(Discovery::Event e, const ServiceInstance& s) {
    if (e == Discovery::Event::kFound)
      table.update(s);
    else
      table.remove(s.role, s.name, s.interface_index, s.protocol);
    if (wanted.empty()) return;
    const SenderChoice c = choose_sender(table.peers(), wanted);
    if (c.kind == SenderChoice::Kind::kNamed) {
      found = c.sender.address;
      g_main_loop_quit(loop);
    }
  }
  static gboolean on_timeout(gpointer data) {
    auto* self = static_cast<Browse*>(data);
    self->timer = 0;
    g_main_loop_quit(self->loop);
    return G_SOURCE_REMOVE;
  }
};

void browse_for(Discovery* d, Browse* b, double timeout_s, bool both) {
  b->loop = g_main_loop_new(nullptr, FALSE);
  auto cb = [b](Discovery::Event e, const ServiceInstance& s) { b->on_event(e, s); };
  d->browse(Role::kSender, cb);
  if (both) d->browse(Role::kReceiver, cb);
  b->timer = g_timeout_add(static_cast<guint>(timeout_s * 1000), Browse::on_timeout, b);
  g_main_loop_run(b->loop);
  // `b` is gone after this: no more events for it (a session may browse again).
  d->browse(Role::kSender, nullptr);
  if (both) d->browse(Role::kReceiver, nullptr);
  if (b->timer) g_source_remove(b->timer);
  b->timer = 0;
  g_main_loop_unref(b->loop);
  b->loop = nullptr;
}

}  // namespace

std::string find_sender(Discovery* discovery, const std::string& name, double timeout_s,
                        std::string* problem) {
  Browse b;
  b.wanted = name;
  browse_for(discovery, &b, timeout_s, false);
  if (b.found.empty()) {
    *problem = "No sender called '" + display_text(name, kMaxServiceNameBytes) +
               "' was found on the network, and no host has that name (--from): run "
               "'syncwave-launch list' to see the senders.";
  }
  return b.found;
}

std::vector<std::string> find_senders(Discovery* discovery, double timeout_s) {
  Browse b;
  browse_for(discovery, &b, timeout_s, false);
  std::vector<std::string> local, others;
  for (const Peer& p : b.table.peers()) {
    if (p.role != Role::kSender || p.address.empty()) continue;
    std::vector<std::string>& list = p.local ? local : others;
    const std::string address = p.local ? "127.0.0.1" : p.address;
    if (std::find(local.begin(), local.end(), address) == local.end() &&
        std::find(others.begin(), others.end(), address) == others.end())
      list.push_back(address);
  }
  local.insert(local.end(), others.begin(), others.end());
  return local;
}

std::vector<Peer> find_receivers(Discovery* discovery, double timeout_s) {
  Browse b;
  browse_for(discovery, &b, timeout_s, true);
  std::vector<Peer> out;
  for (const Peer& p : b.table.peers()) {
    if (p.role != Role::kReceiver || p.address.empty() || p.port <= 0) continue;
    Peer q = p;
    if (q.local) q.address = "127.0.0.1";
    out.push_back(q);
  }
  return out;
}

int run_list(const Options& options) {
  std::string problem;
  std::unique_ptr<Discovery> d = make_discovery(&problem);
  if (!d) {
    std::fprintf(stderr, "syncwave-launch: %s\n", problem.c_str());
    return kExitRuntimeError;
  }
  d->set_notice_callback([&options](const std::string& s) {
    if (!options.common.quiet) std::fprintf(stderr, "%s\n", s.c_str());
  });
  Browse b;
  browse_for(d.get(), &b, options.list.timeout_s, true);
  const std::vector<Peer> peers = b.table.peers();
  if (options.list.json) {
    std::printf("%s", format_peer_json(peers).c_str());
  } else {
    std::printf("%s", format_peer_list(peers).c_str());
    if (peers.empty() && !options.common.quiet)
      std::fprintf(stderr, "No SyncWave senders or receivers found.\n");
  }
  return kExitOk;
}

}  // namespace launcher
}  // namespace syncwave
