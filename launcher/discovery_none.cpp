// SPDX-License-Identifier: LGPL-2.1-or-later
// Discovery when syncwave-launch is built without it (-Ddiscovery=disabled, or no
// libavahi-client on Linux): every command still works with manual destinations.

#include "discovery.h"

namespace syncwave {
namespace launcher {

std::unique_ptr<Discovery> make_discovery(std::string* problem) {
  *problem =
      "mDNS discovery is off: this syncwave-launch was built without it (meson "
      "-Ddiscovery).";
  return nullptr;
}

}  // namespace launcher
}  // namespace syncwave
