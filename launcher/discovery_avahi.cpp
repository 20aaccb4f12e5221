// SPDX-License-Identifier: LGPL-2.1-or-later
// Discovery through Avahi (Linux): libavahi-client talks to avahi-daemon over D-Bus,
// and libavahi-glib runs it on GLib's default main context, the launcher's main loop.
//
// Announcing: one entry group per role; a name another service already holds is
// replaced by Avahi's alternative ("kitchen #2") and said once. Browsing: one service
// browser per role over IPv4; each service found gets a resolver that stays open, so
// TXT changes (a receiver's state) are reported as kFound again; kGone when the
// browser reports it removed.

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-glib/glib-watch.h>

#include <map>
#include <tuple>

#include "discovery.h"

namespace syncwave {
namespace launcher {

namespace {

class AvahiDiscovery : public Discovery {
 public:
  AvahiDiscovery() = default;
  ~AvahiDiscovery() override {
    for (auto& kv : resolvers_) avahi_service_resolver_free(kv.second.resolver);
    for (auto& b : browsers_) avahi_service_browser_free(b.second.browser);
    for (auto& g : groups_)
      if (g.second.group) avahi_entry_group_free(g.second.group);
    if (client_) avahi_client_free(client_);
    if (poll_) avahi_glib_poll_free(poll_);
  }

  bool start(std::string* problem) {
    poll_ = avahi_glib_poll_new(nullptr, G_PRIORITY_DEFAULT);
    int error = 0;
    client_ = avahi_client_new(avahi_glib_poll_get(poll_), static_cast<AvahiClientFlags>(0),
                               on_client, this, &error);
    if (!client_) {
      *problem = std::string("mDNS discovery is off: no Avahi daemon answers (") +
                 avahi_strerror(error) + "); start avahi-daemon to find senders and receivers by name.";
      return false;
    }
    return true;
  }

  void announce(const Announcement& a) override {
    Group& g = groups_[a.role];
    const bool same_name = !g.wanted.name.empty() && g.wanted.name == a.name;
    g.wanted = a;
    if (!same_name || g.name.empty()) g.name = a.name;
    if (g.group && same_name && g.committed) {
      AvahiStringList* txt = txt_list(a);
      int r = avahi_entry_group_update_service_txt_strlst(
          g.group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, static_cast<AvahiPublishFlags>(0),
          g.name.c_str(), service_type(a.role), nullptr, txt);
      avahi_string_list_free(txt);
      if (r >= 0) return;
    }
    publish(a.role);
  }

  void browse(Role role, BrowseCallback callback) override {
    Browser& b = browsers_[role];
    b.callback = std::move(callback);
    if (!b.browser) {
      b.browser = avahi_service_browser_new(client_, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET,
                                            service_type(role), nullptr,
                                            static_cast<AvahiLookupFlags>(0), on_browse, this);
      if (!b.browser) notice(std::string("mDNS browsing failed: ") + last_error() + ".");
    }
  }

  void set_notice_callback(NoticeCallback callback) override { notice_ = std::move(callback); }

 private:
  struct Group {
    AvahiEntryGroup* group = nullptr;
    Announcement wanted;
    std::string name;  // the name in use (an alternative after a collision)
    bool committed = false;
  };
  struct Browser {
    AvahiServiceBrowser* browser = nullptr;
    BrowseCallback callback;
  };
  struct Resolver {
    AvahiServiceResolver* resolver = nullptr;
  };
  using ResolverKey = std::tuple<int, int, std::string, std::string, std::string>;

  static AvahiStringList* txt_list(const Announcement& a) {
    AvahiStringList* list = nullptr;
    std::vector<std::string> records = encode_txt(a.txt);
    for (auto it = records.rbegin(); it != records.rend(); ++it)
      list = avahi_string_list_add(list, it->c_str());
    return list;
  }

  const char* last_error() const { return avahi_strerror(avahi_client_errno(client_)); }

  void notice(const std::string& s) {
    if (notice_) notice_(s);
  }

  Role role_of(const char* type) const {
    return std::string(type) == kSenderServiceType ? Role::kSender : Role::kReceiver;
  }

  void publish(Role role) {
    Group& g = groups_[role];
    if (!client_ || avahi_client_get_state(client_) != AVAHI_CLIENT_S_RUNNING) return;
    if (!g.group) {
      g.group = avahi_entry_group_new(client_, on_group, this);
      if (!g.group) {
        notice(std::string("mDNS: cannot announce this ") + role_name(role) + " (" +
               last_error() + ").");
        return;
      }
    } else {
      avahi_entry_group_reset(g.group);
    }
    g.committed = false;
    for (int attempt = 0; attempt < 20; attempt++) {
      AvahiStringList* txt = txt_list(g.wanted);
      int r = avahi_entry_group_add_service_strlst(
          g.group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, static_cast<AvahiPublishFlags>(0),
          g.name.c_str(), service_type(role), nullptr, nullptr,
          static_cast<uint16_t>(g.wanted.port), txt);
      avahi_string_list_free(txt);
      if (r == AVAHI_ERR_COLLISION) {
        rename(role);
        continue;
      }
      if (r < 0) {
        notice(std::string("mDNS: cannot announce '") + display_text(g.name, 63) + "' (" +
               avahi_strerror(r) + ").");
        return;
      }
      r = avahi_entry_group_commit(g.group);
      if (r < 0) {
        notice(std::string("mDNS: cannot announce '") + display_text(g.name, 63) + "' (" +
               avahi_strerror(r) + ").");
        return;
      }
      g.committed = true;
      return;
    }
  }

  void rename(Role role) {
    Group& g = groups_[role];
    char* alt = avahi_alternative_service_name(g.name.c_str());
    std::string before = g.name;
    g.name = alt ? alt : g.name + "-2";
    avahi_free(alt);
    notice("Another " + std::string(role_name(role)) + " is already called '" +
           display_text(before, 63) + "': announced as '" + display_text(g.name, 63) + "'.");
  }

  Group* group_of(AvahiEntryGroup* group) {
    for (auto& kv : groups_)
      if (kv.second.group == group) return &kv.second;
    return nullptr;
  }

  static void on_client(AvahiClient* client, AvahiClientState state, void* data) {
    auto* self = static_cast<AvahiDiscovery*>(data);
    if (!self->client_) self->client_ = client;  // called from within avahi_client_new
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        for (auto& kv : self->groups_)
          if (!kv.second.committed && !kv.second.wanted.name.empty()) self->publish(kv.first);
        break;
      case AVAHI_CLIENT_S_COLLISION:
      case AVAHI_CLIENT_S_REGISTERING:
        for (auto& kv : self->groups_) {
          if (kv.second.group) avahi_entry_group_reset(kv.second.group);
          kv.second.committed = false;
        }
        break;
      case AVAHI_CLIENT_FAILURE:
        self->notice(std::string("The Avahi daemon stopped answering (") +
                     avahi_strerror(avahi_client_errno(client)) +
                     "): discovery is off until syncwave-launch is restarted.");
        break;
      case AVAHI_CLIENT_CONNECTING:
        break;
    }
  }

  static void on_group(AvahiEntryGroup* group, AvahiEntryGroupState state, void* data) {
    auto* self = static_cast<AvahiDiscovery*>(data);
    if (state != AVAHI_ENTRY_GROUP_COLLISION) return;
    for (auto& kv : self->groups_) {
      if (kv.second.group != group) continue;
      self->rename(kv.first);
      self->publish(kv.first);
      return;
    }
  }

  static void on_browse(AvahiServiceBrowser* browser, AvahiIfIndex iface, AvahiProtocol protocol,
                        AvahiBrowserEvent event, const char* name, const char* type,
                        const char* domain, AvahiLookupResultFlags, void* data) {
    auto* self = static_cast<AvahiDiscovery*>(data);
    (void)browser;
    if (event != AVAHI_BROWSER_NEW && event != AVAHI_BROWSER_REMOVE) return;
    if (!name || !type || !domain) return;
    const ResolverKey key{iface, protocol, name, type, domain};
    const Role role = self->role_of(type);
    if (event == AVAHI_BROWSER_NEW) {
      if (self->resolvers_.count(key)) return;
      AvahiServiceResolver* r = avahi_service_resolver_new(
          self->client_, iface, protocol, name, type, domain, AVAHI_PROTO_INET,
          static_cast<AvahiLookupFlags>(0), on_resolve, self);
      if (r) self->resolvers_[key].resolver = r;
      return;
    }
    auto it = self->resolvers_.find(key);
    if (it != self->resolvers_.end()) {
      avahi_service_resolver_free(it->second.resolver);
      self->resolvers_.erase(it);
    }
    ServiceInstance gone;
    gone.role = role;
    gone.name = name;
    gone.interface_index = iface;
    gone.protocol = protocol;
    auto b = self->browsers_.find(role);
    if (b != self->browsers_.end() && b->second.callback) b->second.callback(Event::kGone, gone);
  }

  static void on_resolve(AvahiServiceResolver*, AvahiIfIndex iface, AvahiProtocol protocol,
                         AvahiResolverEvent event, const char* name, const char* type,
                         const char*, const char* host, const AvahiAddress* address,
                         uint16_t port, AvahiStringList* txt, AvahiLookupResultFlags flags,
                         void* data) {
    auto* self = static_cast<AvahiDiscovery*>(data);
    // A failed resolution (timeout) keeps the resolver: it reports once the service
    // answers. Only the browser says a service is gone.
    if (event != AVAHI_RESOLVER_FOUND || !name || !type || !address) return;
    ServiceInstance s;
    s.role = self->role_of(type);
    s.name = name;
    s.interface_index = iface;
    s.protocol = protocol;
    s.host = host ? host : "";
    char buf[AVAHI_ADDRESS_STR_MAX] = {0};
    avahi_address_snprint(buf, sizeof buf, address);
    s.address = buf;
    s.port = port;
    s.local = (flags & AVAHI_LOOKUP_RESULT_LOCAL) != 0;
    for (AvahiStringList* l = txt; l; l = avahi_string_list_get_next(l))
      s.txt.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(l)),
                         avahi_string_list_get_size(l));
    auto b = self->browsers_.find(s.role);
    if (b != self->browsers_.end() && b->second.callback) b->second.callback(Event::kFound, s);
  }

  AvahiGLibPoll* poll_ = nullptr;
  AvahiClient* client_ = nullptr;
  std::map<Role, Group> groups_;
  std::map<Role, Browser> browsers_;
  std::map<ResolverKey, Resolver> resolvers_;
  NoticeCallback notice_;
};

}  // namespace

std::unique_ptr<Discovery> make_discovery(std::string* problem) {
  auto d = std::make_unique<AvahiDiscovery>();
  if (!d->start(problem)) return nullptr;
  return d;
}

}  // namespace launcher
}  // namespace syncwave
