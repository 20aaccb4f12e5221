// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: the control API's request parser (launcher/control_model). Any
// body is parsed as a POST would be; what must hold: no crash or out-of-bounds read,
// an accepted change is within the documented limits and round-trips through
// change_to_json, and the table's JSON of a reported name stays one JSON string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "control_model.h"

namespace c = syncwave::control;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  c::ChangeRequest r;
  std::string error;
  if (c::parse_change(body, 60, &r, &error)) {
    if (r.volume && !(*r.volume >= 0 && *r.volume <= c::kMaxVolume)) std::abort();
    if (r.delay_ms && (*r.delay_ms < -60 || *r.delay_ms > c::kMaxDelayMs)) std::abort();
    if (r.latency_ms && (*r.latency_ms < c::kMinLatencyMs || *r.latency_ms > c::kMaxLatencyMs))
      std::abort();
    if (r.name && !c::valid_name(*r.name)) std::abort();
    c::ChangeRequest back;
    if (!c::parse_change(c::change_to_json(r), 60, &back, &error)) std::abort();
  } else if (error.empty()) {
    std::abort();
  }
  c::ReceiverTable t;
  c::ReceiverReport rep;
  rep.name = "x";
  rep.state = body.substr(0, 64);
  t.report(rep, 0);
  const std::string json = t.to_json(0);
  if (json.find('\n') != std::string::npos) std::abort();
  return 0;
}
