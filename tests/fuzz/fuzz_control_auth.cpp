// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: the control surface's token verifier (core/control_auth, -Dsecure).
// The input is a script: each byte pair picks an operation (the clock moving forward or
// back, a genuine token for a request made from the input, the replay of an earlier
// one, one changed by a byte, one checked against another request, garbage) and its
// argument. What must hold, whatever the order:
//   - only genuine tokens are ever accepted, and each at most once;
//   - a genuine token newer than every token accepted before and within the window is
//     accepted (the floor never shuts out fresh requests);
//   - the nonce store stays within its bound, and every call is counted once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "control_auth.h"

namespace a = syncwave::control_auth;

namespace {

struct Issued {
  std::string token, method, path, body;
  int64_t ts = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!a::available()) return 0;
  a::Key key{};
  for (size_t i = 0; i < key.size(); i++) key[i] = static_cast<uint8_t>(i * 7 + 1);
  constexpr size_t kStore = 8;  // small, so that eviction and the floor are reached
  a::Verifier v(key, a::kMaxSkewMs, kStore);
  int64_t now = 1764763200000;
  std::vector<Issued> issued;
  std::set<std::string> accepted;
  int64_t newest_accepted = INT64_MIN;
  uint64_t calls = 0, nonce_counter = 0;
  static const char* kMethods[] = {"GET", "POST", "SWCTL1-R", "SWCTL1-S"};
  static const char* kPaths[] = {"/api/receivers", "/api/receivers/Kitchen", "", "Kitchen",
                                 "/api/events"};

  auto check = [&](const std::string& token, const std::string& method, const std::string& path,
                   const std::string& body, bool genuine) {
    const a::Reject r = v.verify(token, method, path, body, now);
    calls++;
    if (r == a::Reject::kNone) {
      if (!genuine || !accepted.insert(token).second) std::abort();
      a::Token t;
      if (a::parse_token(token, &t) != a::Reject::kNone) std::abort();
      if (t.ts_ms > newest_accepted) newest_accepted = t.ts_ms;
    }
    if (v.nonces() > kStore) std::abort();
    if (v.accepted() != accepted.size() || v.accepted() + v.rejected_total() != calls) std::abort();
    return r;
  };

  for (size_t i = 0; i + 1 < size; i += 2) {
    const uint8_t op = data[i] % 6, arg = data[i + 1];
    switch (op) {
      case 0:  // the clock: forward up to 63.75 s, or back up to 32 s
        now +=
            arg & 0x80 ? -static_cast<int64_t>(arg & 0x7f) * 250 : static_cast<int64_t>(arg) * 250;
        break;
      case 1: {  // a genuine token, its time within about ±40 s of now
        Issued is;
        is.method = kMethods[arg % 4];
        is.path = kPaths[(arg / 4) % 5];
        is.body = std::string(reinterpret_cast<const char*>(data), std::min<size_t>(i, 40));
        is.ts = now + (static_cast<int64_t>(arg) - 128) * 320;
        char nonce[33];
        std::snprintf(nonce, sizeof nonce, "%032llx",
                      static_cast<unsigned long long>(++nonce_counter));
        is.token = a::make_token(key, is.ts, nonce, is.method, is.path, is.body);
        const bool fresh =
            is.ts > newest_accepted && is.ts - now <= a::kMaxSkewMs && now - is.ts <= a::kMaxSkewMs;
        const a::Reject r = check(is.token, is.method, is.path, is.body, true);
        if (fresh && r != a::Reject::kNone) std::abort();
        issued.push_back(is);
        break;
      }
      case 2:  // a replay of an earlier one
        if (!issued.empty()) {
          const Issued& is = issued[arg % issued.size()];
          check(is.token, is.method, is.path, is.body, !accepted.count(is.token));
        }
        break;
      case 3:  // an earlier one with one byte changed
        if (!issued.empty()) {
          const Issued& is = issued[arg % issued.size()];
          std::string t = is.token;
          const size_t at = (arg * 7u) % t.size();
          t[at] = static_cast<char>(t[at] ^ (1 + (arg & 0x3f)));
          check(t, is.method, is.path, is.body, false);
        }
        break;
      case 4:  // an earlier one for another request
        if (!issued.empty()) {
          const Issued& is = issued[arg % issued.size()];
          check(is.token, is.method, is.path, is.body + "x", false);
          check(is.token, is.method == std::string("GET") ? "POST" : "GET", is.path, is.body,
                false);
        }
        break;
      case 5: {  // garbage: the rest of the input, up to arg bytes
        const size_t n = std::min<size_t>(arg, size - i - 2);
        check(std::string(reinterpret_cast<const char*>(data + i + 2), n), "POST",
              "/api/receivers/Kitchen", "", false);
        break;
      }
    }
  }
  return 0;
}
