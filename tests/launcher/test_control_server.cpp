// SPDX-License-Identifier: LGPL-2.1-or-later
// The control surface over real HTTP on 127.0.0.1 (launcher/control_server): every call,
// every kind of refusal, and the event stream. The server runs on its own GMainContext
// thread, with a ReceiverTable behind its hooks; requests go through libsoup's client.
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control_model.h"
#include "control_server.h"

namespace c = syncwave::control;

namespace {

struct Reply {
  guint status = 0;
  std::string body;
  std::string allow;
  std::string www_authenticate;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    context_ = g_main_context_new();
    loop_ = g_main_loop_new(context_, FALSE);
    c::ReceiverReport k;
    k.name = "Kitchen";
    k.address = "127.0.0.1:5555";
    k.state = "synced";
    k.latency_ms = 60;
    k.level_db = {-20, -21};
    table_.report(k, 0);
    k.name = "Living room";
    table_.report(k, 0);
    std::atomic<int> port{-1};
    thread_ = std::thread([this, &port] {
      g_main_context_push_thread_default(context_);
      c::ControlServer::Hooks hooks;
      hooks.receivers_json = [this] {
        std::lock_guard<std::mutex> lk(lock_);
        return table_.to_json(0);
      };
      hooks.latency_of = [this](const std::string& name) {
        std::lock_guard<std::mutex> lk(lock_);
        const c::ReceiverReport* r = table_.find(name);
        return r ? r->latency_ms : -1;
      };
      hooks.apply = [this](const std::string& name, const c::ChangeRequest& ch, std::string*) {
        std::lock_guard<std::mutex> lk(lock_);
        c::ReceiverReport r = *table_.find(name);
        if (ch.volume) r.volume = *ch.volume;
        if (ch.mute) r.mute = *ch.mute;
        if (ch.delay_ms) r.delay_ms = *ch.delay_ms;
        table_.report(r, 0);
        applied_.push_back(name + " " + c::change_to_json(ch));
        return true;
      };
      if (secured_) {
        hooks.authorize = [this](const std::string& token, const std::string& method,
                                 const std::string& path, const std::string& body,
                                 std::string* error) {
          std::lock_guard<std::mutex> lk(lock_);
          authorized_.push_back(token + "|" + method + "|" + path + "|" + body);
          *error = "the request's token does not verify: wrong secret or key?";
          return token == "good";
        };
        hooks.now_ms = [] { return int64_t{1764763200000}; };
      }
      c::ControlServer server(hooks);
      std::string error;
      if (!server.start({"127.0.0.1"}, 0, &error)) {
        ADD_FAILURE() << error;
        port = 0;
      } else {
        port = server.port();
      }
      g_main_loop_run(loop_);
      g_main_context_pop_thread_default(context_);
    });
    while (port < 0) std::this_thread::yield();
    port_ = port;
    session_ = soup_session_new();
  }
  void TearDown() override {
    g_object_unref(session_);
    g_main_context_invoke(context_, [](gpointer l) -> gboolean {
      g_main_loop_quit(static_cast<GMainLoop*>(l));
      return G_SOURCE_REMOVE;
    }, loop_);
    thread_.join();
    g_main_loop_unref(loop_);
    g_main_context_unref(context_);
  }
  std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  Reply request(const char* method, const std::string& path, const std::string& body = "",
                bool with_body = false, const char* authorization = nullptr) {
    SoupMessage* msg = soup_message_new(method, url(path).c_str());
    EXPECT_NE(msg, nullptr);
    if (authorization)
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                   authorization);
    if (with_body) {
      GBytes* b = g_bytes_new(body.data(), body.size());
      soup_message_set_request_body_from_bytes(msg, "application/json", b);
      g_bytes_unref(b);
    }
    GError* err = nullptr;
    GBytes* out = soup_session_send_and_read(session_, msg, nullptr, &err);
    Reply r;
    EXPECT_EQ(err, nullptr) << (err ? err->message : "");
    g_clear_error(&err);
    r.status = soup_message_get_status(msg);
    if (out) {
      gsize n = 0;
      const char* d = static_cast<const char*>(g_bytes_get_data(out, &n));
      r.body.assign(d ? d : "", n);
      g_bytes_unref(out);
    }
    const char* allow = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Allow");
    if (allow) r.allow = allow;
    const char* www =
        soup_message_headers_get_one(soup_message_get_response_headers(msg), "WWW-Authenticate");
    if (www) r.www_authenticate = www;
    g_object_unref(msg);
    return r;
  }

  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  std::thread thread_;
  std::mutex lock_;
  c::ReceiverTable table_{3600'000'000};
  std::vector<std::string> applied_;
  bool secured_ = false;                 // an authorize hook (a secret is set)
  std::vector<std::string> authorized_;  // "token|method|path|body" it was asked about
  SoupSession* session_ = nullptr;
  int port_ = 0;
};

}  // namespace

TEST_F(ControlServerTest, ListsReceiversAndServesThePage) {
  ASSERT_GT(port_, 0);
  Reply list = request("GET", "/api/receivers");
  EXPECT_EQ(list.status, 200u);
  EXPECT_NE(list.body.find("\"name\":\"Kitchen\""), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("\"name\":\"Living room\""), std::string::npos) << list.body;
  Reply page = request("GET", "/");
  EXPECT_EQ(page.status, 200u);
  EXPECT_NE(page.body.find("<title>SyncWave rooms</title>"), std::string::npos);
  EXPECT_NE(page.body.find("/api/events"), std::string::npos);
}

TEST_F(ControlServerTest, ChangesOneReceiver) {
  Reply r = request("POST", "/api/receivers/Kitchen", "{\"volume\":0.25}", true);
  EXPECT_EQ(r.status, 200u) << r.body;
  r = request("POST", "/api/receivers/Living%20room", "{\"mute\":true,\"delay_ms\":-60}", true);
  EXPECT_EQ(r.status, 200u) << r.body;
  {
    std::lock_guard<std::mutex> lk(lock_);
    ASSERT_EQ(applied_.size(), 2u);
    EXPECT_EQ(applied_[0], "Kitchen {\"volume\":0.25}");
    EXPECT_EQ(applied_[1], "Living room {\"mute\":true,\"delay_ms\":-60}");
  }
  Reply list = request("GET", "/api/receivers");
  EXPECT_NE(list.body.find("\"name\":\"Kitchen\",\"address\":\"127.0.0.1:5555\",\"state\":\"synced\""
                           ",\"latency_ms\":60,\"sync_offset_us\":0,\"lost\":0,\"late\":0,"
                           "\"level_db\":[-20,-21],\"volume\":0.25,\"mute\":false"),
            std::string::npos)
      << list.body;
}

TEST_F(ControlServerTest, RefusesWithOneSentenceAndTheRightStatus) {
  Reply r = request("POST", "/api/receivers/Kitchen", "{\"volume\":3}", true);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("{\"error\":\"volume must be from 0 to 1.5"), std::string::npos) << r.body;
  r = request("POST", "/api/receivers/Kitchen", "{\"delay_ms\":-61}", true);
  EXPECT_EQ(r.status, 400u) << r.body;
  r = request("POST", "/api/receivers/Kitchen", "not json", true);
  EXPECT_EQ(r.status, 400u) << r.body;
  r = request("POST", "/api/receivers/Kitchen", "{\"exec\":\"/bin/sh\"}", true);
  EXPECT_EQ(r.status, 400u) << r.body;
  r = request("POST", "/api/receivers/Garage", "{\"volume\":0.5}", true);
  EXPECT_EQ(r.status, 404u) << r.body;
  // A path that climbs out: refused by libsoup itself (400) or as no receiver (404).
  r = request("POST", "/api/receivers/..%2F..%2Fetc", "{\"volume\":0.5}", true);
  EXPECT_TRUE(r.status == 400u || r.status == 404u) << r.status << " " << r.body;
  r = request("PUT", "/api/receivers/Kitchen", "{\"volume\":0.5}", true);
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.allow, "POST");
  r = request("POST", "/api/receivers");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.allow, "GET");
  r = request("GET", "/etc/passwd");
  EXPECT_EQ(r.status, 404u);
  r = request("POST", "/api/receivers/Kitchen", std::string(c::kMaxBodyBytes + 1, ' '), true);
  EXPECT_EQ(r.status, 413u) << r.body;
  std::lock_guard<std::mutex> lk(lock_);
  EXPECT_TRUE(applied_.empty());
}

TEST_F(ControlServerTest, RateLimitsAClient) {
  unsigned limited = 0, ok = 0;
  for (int i = 0; i < 120; i++) {
    Reply r = request("GET", "/api/receivers");
    if (r.status == 429) limited++;
    if (r.status == 200) ok++;
  }
  EXPECT_GT(limited, 0u);
  EXPECT_GE(ok, 40u);  // the burst at least
}

TEST_F(ControlServerTest, EventStreamCarriesTheReceivers) {
  SoupMessage* msg = soup_message_new("GET", url("/api/events").c_str());
  GError* err = nullptr;
  GInputStream* in = soup_session_send(session_, msg, nullptr, &err);
  ASSERT_NE(in, nullptr) << (err ? err->message : "");
  EXPECT_EQ(soup_message_get_status(msg), 200u);
  std::string got;
  char buf[4096];
  while (got.find("\n\n") == std::string::npos && got.size() < 65536) {
    gssize n = g_input_stream_read(in, buf, sizeof buf, nullptr, &err);
    if (n <= 0) break;
    got.append(buf, (size_t)n);
  }
  EXPECT_NE(got.find("data: {\"receivers\":[{\"name\":\"Kitchen\""), std::string::npos) << got;
  g_input_stream_close(in, nullptr, nullptr);
  g_object_unref(in);
  g_object_unref(msg);
}

// With a secret (docs/control.md, "Authentication"): the server hands every request but
// the page to the authorize hook, with the token from the header or ?auth=, the decoded
// path and the body; a refusal is 401 before routing.
class ControlServerAuthTest : public ControlServerTest {
 protected:
  ControlServerAuthTest() { secured_ = true; }
  std::vector<std::string> asked() {
    std::lock_guard<std::mutex> lk(lock_);
    return authorized_;
  }
};

TEST_F(ControlServerAuthTest, RefusesWithoutATokenBeforeRouting) {
  Reply r = request("GET", "/api/receivers");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.www_authenticate, "SyncWave");
  EXPECT_EQ(r.body,
            "{\"error\":\"the request's token does not verify: wrong secret or key?\","
            "\"server_time_ms\":1764763200000}");
  EXPECT_EQ(r.body.find("Kitchen"), std::string::npos);
  // Unknown receivers and paths: 401 too, not 404 (names stay private); nothing applied.
  EXPECT_EQ(request("POST", "/api/receivers/Garage", "{\"volume\":0}", true).status, 401u);
  EXPECT_EQ(request("POST", "/api/receivers/Kitchen", "{\"volume\":0}", true).status, 401u);
  EXPECT_EQ(request("GET", "/nothing").status, 401u);
  EXPECT_EQ(request("GET", "/api/events").status, 401u);
  EXPECT_EQ(request("GET", "/api/receivers", "", false, "Bearer good").status, 401u);
  {
    std::lock_guard<std::mutex> lk(lock_);
    EXPECT_TRUE(applied_.empty());
  }
  const auto a = asked();
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0], "|GET|/api/receivers|");
  EXPECT_EQ(a[2], "|POST|/api/receivers/Kitchen|{\"volume\":0}");
  EXPECT_EQ(a[5], "|GET|/api/receivers|");  // another scheme is no token
}

TEST_F(ControlServerAuthTest, ThePageNeedsNoToken) {
  Reply r = request("GET", "/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("keyform"), std::string::npos);
  EXPECT_TRUE(asked().empty());
}

TEST_F(ControlServerAuthTest, TakesTheTokenFromTheHeaderOrTheQuery) {
  Reply r = request("GET", "/api/receivers", "", false, "SyncWave good");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("Kitchen"), std::string::npos);
  EXPECT_EQ(request("GET", "/api/receivers?auth=good").status, 200u);
  r = request("POST", "/api/receivers/Living%20room", "{\"mute\":true}", true, "SyncWave good");
  EXPECT_EQ(r.status, 200u) << r.body;
  const auto a = asked();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], "good|GET|/api/receivers|");
  EXPECT_EQ(a[1], "good|GET|/api/receivers|");
  EXPECT_EQ(a[2], "good|POST|/api/receivers/Living room|{\"mute\":true}");
  std::lock_guard<std::mutex> lk(lock_);
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0], "Living room {\"mute\":true}");
}
