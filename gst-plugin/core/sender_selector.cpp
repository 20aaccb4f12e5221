// SPDX-License-Identifier: LGPL-2.1-or-later
#include "sender_selector.h"

#include "host_port.h"

namespace syncwave {

bool SenderSelector::pin(const std::vector<std::string>& hosts, uint16_t port) {
  pinned_ = true;
  pin_hosts_ = hosts;
  pin_port_ = port;
  if (locked_ && !matches(host_, port_)) {
    locked_ = false;
    last_heard_ = kTimeNone;
    return true;
  }
  return false;
}

void SenderSelector::unpin() {
  pinned_ = false;
  pin_hosts_.clear();
  pin_port_ = 0;
}

bool SenderSelector::matches(const std::string& host, uint16_t port) const {
  if (!pinned_) return true;
  if (pin_port_ != 0 && port != pin_port_) return false;
  for (const std::string& h : pin_hosts_)
    if (h == host) return true;
  return false;
}

SenderSelector::Result SenderSelector::offer(const std::string& host, uint16_t port,
                                             uint64_t now_ns, bool valid) {
  Result r;
  if (locked_ && port == port_ && host == host_) {
    last_heard_ = now_ns;
    r.verdict = Verdict::kPlay;
    return r;
  }
  // The caller's timebase went back (a new clock): the played sender counts as heard.
  if (locked_ && time_valid(now_ns) && time_valid(last_heard_) && now_ns < last_heard_)
    last_heard_ = now_ns;
  if (valid && matches(host, port)) {
    if (!locked_) {
      locked_ = true;
      host_ = host;
      port_ = port;
      last_heard_ = now_ns;
      r.verdict = Verdict::kPlay;
      r.first = true;
      return r;
    }
    if (time_valid(now_ns) && time_valid(last_heard_) && now_ns - last_heard_ > timeout_ns_) {
      r.previous = key();
      host_ = host;
      port_ = port;
      last_heard_ = now_ns;
      changes_++;
      announced_.erase(key());  // announced again if it ever becomes foreign again
      r.verdict = Verdict::kTakeOver;
      return r;
    }
  }
  foreign_++;
  if (announced_.size() < kMaxAnnounced && announced_.insert(format_host_port(host, port)).second)
    r.announce = true;
  return r;
}

void SenderSelector::reset() {
  locked_ = false;
  host_.clear();
  port_ = 0;
  last_heard_ = kTimeNone;
  announced_.clear();
}

std::string SenderSelector::key() const {
  return locked_ ? format_host_port(host_, port_) : std::string();
}

}  // namespace syncwave
