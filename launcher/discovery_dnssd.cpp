// SPDX-License-Identifier: LGPL-2.1-or-later
// Discovery through the dns_sd API: Bonjour on macOS (part of the system) and on
// Windows (Bonjour for Windows / the Bonjour SDK's dnssd.lib and dns_sd.h).
//
// NOT BUILT OR RUN IN THIS PROJECT'S CI: it is compiled only on Windows and macOS
// (meson picks it there when dns_sd.h is found), and no test exercises it. It follows
// Apple's dns_sd.h as documented; expect to fix details the first time it is built.
//
// Each DNSServiceRef has a socket; a GLib watch on it calls DNSServiceProcessResult
// on the default main context, so callbacks arrive on the launcher's main loop as
// with Avahi. Browsing: DNSServiceBrowse, then per service DNSServiceResolve (host,
// port, TXT) and DNSServiceGetAddrInfo (IPv4 address); the resolve stays open, so TXT
// changes are reported again.

#if defined(_WIN32) || defined(__APPLE__)

#include <dns_sd.h>
#include <glib.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#include <map>
#include <memory>
#include <tuple>

#include "discovery.h"

namespace syncwave {
namespace launcher {

namespace {

// A DNSServiceRef served by the GLib main loop; freed with the watch.
class Watched {
 public:
  explicit Watched(DNSServiceRef ref) : ref_(ref) {
    const dnssd_sock_t fd = DNSServiceRefSockFD(ref);
#ifdef _WIN32
    channel_ = g_io_channel_win32_new_socket(static_cast<gint>(fd));
#else
    channel_ = g_io_channel_unix_new(fd);
#endif
    source_ = g_io_add_watch(channel_, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                             on_ready, this);
  }
  ~Watched() {
    if (source_) g_source_remove(source_);
    if (channel_) g_io_channel_unref(channel_);
    if (ref_) DNSServiceRefDeallocate(ref_);
  }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;
  DNSServiceRef ref() const { return ref_; }

 private:
  static gboolean on_ready(GIOChannel*, GIOCondition cond, gpointer data) {
    auto* self = static_cast<Watched*>(data);
    if (cond & (G_IO_HUP | G_IO_ERR)) {
      self->source_ = 0;
      return G_SOURCE_REMOVE;
    }
    if (DNSServiceProcessResult(self->ref_) != kDNSServiceErr_NoError) {
      self->source_ = 0;
      return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
  }
  DNSServiceRef ref_ = nullptr;
  GIOChannel* channel_ = nullptr;
  guint source_ = 0;
};

std::string txt_bytes(const Announcement& a) {
  std::string out;
  for (const std::string& r : encode_txt(a.txt)) {
    out += static_cast<char>(r.size());
    out += r;
  }
  return out;
}

std::vector<std::string> txt_records(const unsigned char* txt, uint16_t len) {
  std::vector<std::string> out;
  for (size_t i = 0; i < len;) {
    const size_t n = txt[i];
    if (i + 1 + n > len) break;  // a length past the end: the rest is dropped
    out.emplace_back(reinterpret_cast<const char*>(txt + i + 1), n);
    i += 1 + n;
  }
  return out;
}

class DnssdDiscovery : public Discovery {
 public:
  void announce(const Announcement& a) override {
    const std::string txt = txt_bytes(a);
    auto it = registrations_.find(a.role);
    if (it != registrations_.end() && it->second.name == a.name) {
      if (DNSServiceUpdateRecord(it->second.watched->ref(), nullptr, 0,
                                 static_cast<uint16_t>(txt.size()), txt.data(),
                                 0) == kDNSServiceErr_NoError)
        return;
    }
    registrations_.erase(a.role);
    DNSServiceRef ref = nullptr;
    // No kDNSServiceFlagsNoAutoRename: Bonjour picks "name (2)" on a conflict.
    DNSServiceErrorType e = DNSServiceRegister(
        &ref, 0, kDNSServiceInterfaceIndexAny, a.name.c_str(), service_type(a.role), nullptr,
        nullptr, htons(static_cast<uint16_t>(a.port)), static_cast<uint16_t>(txt.size()),
        txt.data(), on_registered, this);
    if (e != kDNSServiceErr_NoError) {
      notice("mDNS: cannot announce '" + display_text(a.name, 63) + "' (Bonjour error " +
             std::to_string(e) + ").");
      return;
    }
    Registration& r = registrations_[a.role];
    r.name = a.name;
    r.watched = std::make_unique<Watched>(ref);
  }

  void browse(Role role, BrowseCallback callback) override {
    callbacks_[role] = std::move(callback);
    if (browsers_.count(role)) return;
    DNSServiceRef ref = nullptr;
    DNSServiceErrorType e = DNSServiceBrowse(&ref, 0, kDNSServiceInterfaceIndexAny,
                                             service_type(role), nullptr, on_browse, this);
    if (e != kDNSServiceErr_NoError) {
      notice("mDNS browsing failed (Bonjour error " + std::to_string(e) + ").");
      return;
    }
    browsers_[role] = std::make_unique<Watched>(ref);
  }

  void set_notice_callback(NoticeCallback callback) override { notice_ = std::move(callback); }

  bool probe(std::string* problem) {
    // Whether the Bonjour service runs: a browse that cannot reach it fails at once.
    DNSServiceRef ref = nullptr;
    DNSServiceErrorType e = DNSServiceBrowse(&ref, 0, kDNSServiceInterfaceIndexAny,
                                             kReceiverServiceType, nullptr, on_browse, this);
    if (e != kDNSServiceErr_NoError) {
      *problem =
          "mDNS discovery is off: the Bonjour service does not answer (install or start "
          "Bonjour) to find senders and receivers by name.";
      return false;
    }
    DNSServiceRefDeallocate(ref);
    return true;
  }

 private:
  using Key = std::tuple<Role, std::string, uint32_t>;  // role, name, interface
  struct Registration {
    std::string name;
    std::unique_ptr<Watched> watched;
  };
  struct Pending {
    DnssdDiscovery* self = nullptr;
    ServiceInstance instance;
    std::unique_ptr<Watched> resolve;
    std::unique_ptr<Watched> address;
  };

  void notice(const std::string& s) {
    if (notice_) notice_(s);
  }

  static Role role_of(const char* type) {
    return std::string(type).compare(0, std::string(kSenderServiceType).size(),
                                     kSenderServiceType) == 0
               ? Role::kSender
               : Role::kReceiver;
  }

  static void DNSSD_API on_registered(DNSServiceRef, DNSServiceFlags, DNSServiceErrorType error,
                                      const char* name, const char* type, const char*,
                                      void* context) {
    auto* self = static_cast<DnssdDiscovery*>(context);
    if (error != kDNSServiceErr_NoError) {
      self->notice("mDNS: announcing failed (Bonjour error " + std::to_string(error) + ").");
      return;
    }
    auto it = self->registrations_.find(role_of(type));
    if (it != self->registrations_.end() && name && it->second.name != name) {
      self->notice("Another " + std::string(role_name(it->first)) + " is already called '" +
                   display_text(it->second.name, 63) + "': announced as '" +
                   display_text(name, 63) + "'.");
    }
  }

  static void DNSSD_API on_browse(DNSServiceRef, DNSServiceFlags flags, uint32_t iface,
                                  DNSServiceErrorType error, const char* name, const char* type,
                                  const char* domain, void* context) {
    auto* self = static_cast<DnssdDiscovery*>(context);
    if (error != kDNSServiceErr_NoError || !name || !type || !domain) return;
    const Role role = role_of(type);
    const Key key{role, name, iface};
    if (flags & kDNSServiceFlagsAdd) {
      if (self->pending_.count(key)) return;
      auto p = std::make_unique<Pending>();
      p->self = self;
      p->instance.role = role;
      p->instance.name = name;
      p->instance.interface_index = static_cast<int>(iface);
      DNSServiceRef ref = nullptr;
      if (DNSServiceResolve(&ref, 0, iface, name, type, domain, on_resolved, p.get()) !=
          kDNSServiceErr_NoError)
        return;
      p->resolve = std::make_unique<Watched>(ref);
      self->pending_[key] = std::move(p);
      return;
    }
    self->pending_.erase(key);
    ServiceInstance gone;
    gone.role = role;
    gone.name = name;
    gone.interface_index = static_cast<int>(iface);
    auto cb = self->callbacks_.find(role);
    if (cb != self->callbacks_.end() && cb->second) cb->second(Event::kGone, gone);
  }

  static void DNSSD_API on_resolved(DNSServiceRef, DNSServiceFlags, uint32_t iface,
                                    DNSServiceErrorType error, const char*, const char* host,
                                    uint16_t port_be, uint16_t txt_len, const unsigned char* txt,
                                    void* context) {
    auto* p = static_cast<Pending*>(context);
    if (error != kDNSServiceErr_NoError || !host) return;
    p->instance.host = host;
    p->instance.port = ntohs(port_be);
    p->instance.txt = txt_records(txt, txt_len);
    if (!p->instance.address.empty()) {
      p->self->report(*p);  // a TXT change of a service already resolved
      return;
    }
    DNSServiceRef ref = nullptr;
    if (DNSServiceGetAddrInfo(&ref, 0, iface, kDNSServiceProtocol_IPv4, host, on_address, p) ==
        kDNSServiceErr_NoError)
      p->address = std::make_unique<Watched>(ref);
  }

  static void DNSSD_API on_address(DNSServiceRef, DNSServiceFlags flags, uint32_t,
                                   DNSServiceErrorType error, const char*,
                                   const struct sockaddr* address, uint32_t, void* context) {
    auto* p = static_cast<Pending*>(context);
    if (error != kDNSServiceErr_NoError || !address || address->sa_family != AF_INET) return;
    if (!(flags & kDNSServiceFlagsAdd)) return;
    char buf[INET_ADDRSTRLEN] = {0};
    const auto* in = reinterpret_cast<const struct sockaddr_in*>(address);
    if (!inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) return;
    p->instance.address = buf;
    p->self->report(*p);
  }

  void report(const Pending& p) {
    auto cb = callbacks_.find(p.instance.role);
    if (cb != callbacks_.end() && cb->second) cb->second(Event::kFound, p.instance);
  }

  std::map<Role, Registration> registrations_;
  std::map<Role, std::unique_ptr<Watched>> browsers_;
  std::map<Role, BrowseCallback> callbacks_;
  std::map<Key, std::unique_ptr<Pending>> pending_;
  NoticeCallback notice_;
};

}  // namespace

std::unique_ptr<Discovery> make_discovery(std::string* problem) {
  auto d = std::make_unique<DnssdDiscovery>();
  if (!d->probe(problem)) return nullptr;
  return d;
}

}  // namespace launcher
}  // namespace syncwave

#endif  // defined(_WIN32) || defined(__APPLE__)
