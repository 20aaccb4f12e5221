// SPDX-License-Identifier: LGPL-2.1-or-later
// Free UDP ports on 127.0.0.1 for tests that run in parallel.
#pragma once

#include <cstdint>

namespace syncwave_test {

// Binds a UDP socket to 127.0.0.1:0, reads the port the kernel chose and closes it.
// Never the same port twice in one process (two receivers of one test asked for ports
// before the first bound its own). Another process may take it before the caller
// binds; it is the usual test trade-off. Returns 0 on failure.
uint16_t free_udp_port();

}  // namespace syncwave_test
