// SPDX-License-Identifier: LGPL-2.1-or-later
#include "sound_server.h"

#include <glib.h>
#include <unistd.h>

#include <set>
#include <vector>

#ifdef SYNCWAVE_HAVE_LIBPULSE
#include <pulse/glib-mainloop.h>
#include <pulse/pulseaudio.h>
#endif

namespace syncwave {
namespace launcher {

std::string output_label(const std::string& name, const std::string& description) {
  if (description.empty() || description == name) return name;
  return description + " (" + name + ")";
}

#ifdef SYNCWAVE_HAVE_LIBPULSE

bool have_sound_server_client() {
  return true;
}

namespace {

std::string str(const char* s) {
  return s ? s : "";
}

pa_context* new_context(pa_glib_mainloop* loop) {
  pa_proplist* props = pa_proplist_new();
  pa_proplist_sets(props, PA_PROP_APPLICATION_NAME, "syncwave-launch");
  pa_proplist_sets(props, PA_PROP_APPLICATION_ID, "org.syncwave.launch");
  pa_context* c =
      pa_context_new_with_proplist(pa_glib_mainloop_get_api(loop), "syncwave-launch", props);
  pa_proplist_free(props);
  return c;
}

void release(pa_context** c, pa_glib_mainloop** loop) {
  if (*c) {
    pa_context_set_state_callback(*c, nullptr, nullptr);
    pa_context_set_subscribe_callback(*c, nullptr, nullptr);
    pa_context_disconnect(*c);
    pa_context_unref(*c);
    *c = nullptr;
  }
  if (*loop) {
    pa_glib_mainloop_free(*loop);
    *loop = nullptr;
  }
}

// Runs an operation: false when it could not even be sent.
bool sent(pa_operation* op) {
  if (!op) return false;
  pa_operation_unref(op);
  return true;
}

// ---------------------------------------------------------------- one-shot query

struct Query {
  ServerDefaults* out = nullptr;
  bool done = false;
  bool answered = false;
};

void query_sink(pa_context*, const pa_sink_info* info, int eol, void* data) {
  auto* q = static_cast<Query*>(data);
  if (eol != 0) {
    q->done = true;
    return;
  }
  if (!info) return;
  q->out->sink_monitor = str(info->monitor_source_name);
  q->out->sink_description = str(info->description);
}

void query_server(pa_context* c, const pa_server_info* info, void* data) {
  auto* q = static_cast<Query*>(data);
  if (!info) {
    q->done = true;
    return;
  }
  q->answered = true;
  q->out->sink = str(info->default_sink_name);
  q->out->source = str(info->default_source_name);
  if (q->out->sink.empty() ||
      !sent(pa_context_get_sink_info_by_name(c, q->out->sink.c_str(), query_sink, q)))
    q->done = true;
}

void query_state(pa_context* c, void* data) {
  auto* q = static_cast<Query*>(data);
  switch (pa_context_get_state(c)) {
    case PA_CONTEXT_READY:
      if (!sent(pa_context_get_server_info(c, query_server, q))) q->done = true;
      break;
    case PA_CONTEXT_FAILED:
    case PA_CONTEXT_TERMINATED:
      q->done = true;
      break;
    default:
      break;
  }
}

gboolean on_query_timeout(gpointer data) {
  *static_cast<bool*>(data) = true;
  return G_SOURCE_REMOVE;
}

}  // namespace

bool query_server_defaults(ServerDefaults* out, int timeout_ms) {
  *out = ServerDefaults();
  GMainContext* ctx = g_main_context_new();
  pa_glib_mainloop* loop = pa_glib_mainloop_new(ctx);
  pa_context* c = new_context(loop);
  Query q;
  q.out = out;
  bool timed_out = false;
  GSource* timeout = g_timeout_source_new(static_cast<guint>(timeout_ms));
  g_source_set_callback(timeout, on_query_timeout, &timed_out, nullptr);
  g_source_attach(timeout, ctx);
  pa_context_set_state_callback(c, query_state, &q);
  if (pa_context_connect(c, nullptr, PA_CONTEXT_NOAUTOSPAWN, nullptr) < 0) q.done = true;
  while (!q.done && !timed_out) g_main_context_iteration(ctx, TRUE);
  release(&c, &loop);
  g_source_destroy(timeout);
  g_source_unref(timeout);
  g_main_context_unref(ctx);
  if (!q.answered || !q.done) *out = ServerDefaults();
  return q.answered && q.done;
}

// ---------------------------------------------------------------- following

struct DefaultOutputFollower::State {
  Report report;
  std::string capturing;  // the monitor the capture stream reads, as far as we know
  pa_glib_mainloop* loop = nullptr;
  pa_context* ctx = nullptr;
  bool started = false;  // kStart reported
  bool busy = false;     // a check is in flight
  bool again = false;    // an event came while busy: check once more
  // The check in flight.
  std::string sink, monitor, description;
  std::set<uint32_t> our_clients;
  std::vector<uint32_t> to_move;
  int moves_pending = 0;
  bool move_failed = false;
  std::string move_error;

  void check();
  void finish();
  std::string label() const { return output_label(sink, description); }
};

namespace {

using State = DefaultOutputFollower::State;
using Event = DefaultOutputFollower::Event;

void on_moved(pa_context* c, int success, void* data) {
  auto* s = static_cast<State*>(data);
  if (!success) {
    s->move_failed = true;
    s->move_error = pa_strerror(pa_context_errno(c));
  }
  if (--s->moves_pending > 0) return;
  if (!s->move_failed) {
    s->capturing = s->monitor;
    s->report(Event::kMoved,
              "The default output is now " + s->label() + ": capturing " + s->monitor + ".");
  } else {
    s->report(Event::kProblem, "The capture could not follow the default output to " + s->label() +
                                   " (" + s->move_error + "); it still captures " + s->capturing +
                                   ".");
  }
  s->finish();
}

void on_source_output(pa_context* c, const pa_source_output_info* info, int eol, void* data) {
  auto* s = static_cast<State*>(data);
  if (eol < 0) return s->finish();
  if (eol == 0) {
    if (info && s->our_clients.count(info->client)) s->to_move.push_back(info->index);
    return;
  }
  // No capture stream yet (the default changed while the pipeline started): the next
  // new source output triggers another check.
  if (s->to_move.empty()) return s->finish();
  for (uint32_t index : s->to_move)
    if (sent(pa_context_move_source_output_by_name(c, index, s->monitor.c_str(), on_moved, s)))
      s->moves_pending++;
  if (s->moves_pending == 0) s->finish();
}

void on_client(pa_context* c, const pa_client_info* info, int eol, void* data) {
  auto* s = static_cast<State*>(data);
  if (eol < 0) return s->finish();
  if (eol == 0) {
    const char* pid =
        info ? pa_proplist_gets(info->proplist, PA_PROP_APPLICATION_PROCESS_ID) : nullptr;
    if (pid && std::to_string(getpid()) == pid) s->our_clients.insert(info->index);
    return;
  }
  if (!sent(pa_context_get_source_output_info_list(c, on_source_output, s))) s->finish();
}

void on_sink(pa_context* c, const pa_sink_info* info, int eol, void* data) {
  auto* s = static_cast<State*>(data);
  if (eol < 0) return s->finish();
  if (eol == 0) {
    if (info) {
      s->monitor = str(info->monitor_source_name);
      s->description = str(info->description);
    }
    return;
  }
  if (!s->started) {
    s->started = true;
    // The pipeline was built with the default's monitor a moment ago (or it changed
    // since, and is followed just below).
    const bool same = s->monitor == s->capturing;
    s->report(Event::kStart, same ? "Capturing what " + s->label() + " plays: " + s->monitor + "."
                                  : "Capturing " + s->capturing + ".");
  }
  if (s->monitor.empty() || s->monitor == s->capturing) return s->finish();
  if (!sent(pa_context_get_client_info_list(c, on_client, s))) s->finish();
}

void on_server(pa_context* c, const pa_server_info* info, void* data) {
  auto* s = static_cast<State*>(data);
  if (!info || !info->default_sink_name || !*info->default_sink_name) return s->finish();
  s->sink = info->default_sink_name;
  if (!sent(pa_context_get_sink_info_by_name(c, s->sink.c_str(), on_sink, s))) s->finish();
}

void on_event(pa_context*, pa_subscription_event_type_t type, uint32_t, void* data) {
  auto* s = static_cast<State*>(data);
  const unsigned facility = type & PA_SUBSCRIPTION_EVENT_FACILITY_MASK;
  const unsigned kind = type & PA_SUBSCRIPTION_EVENT_TYPE_MASK;
  if (facility == PA_SUBSCRIPTION_EVENT_SERVER ||
      (facility == PA_SUBSCRIPTION_EVENT_SOURCE_OUTPUT && kind == PA_SUBSCRIPTION_EVENT_NEW))
    s->check();
}

void on_state(pa_context* c, void* data) {
  auto* s = static_cast<State*>(data);
  if (pa_context_get_state(c) != PA_CONTEXT_READY) return;
  pa_context_set_subscribe_callback(c, on_event, s);
  sent(pa_context_subscribe(c,
                            static_cast<pa_subscription_mask_t>(PA_SUBSCRIPTION_MASK_SERVER |
                                                                PA_SUBSCRIPTION_MASK_SOURCE_OUTPUT),
                            nullptr, nullptr));
  s->check();
}

}  // namespace

void DefaultOutputFollower::State::check() {
  if (!ctx || pa_context_get_state(ctx) != PA_CONTEXT_READY) return;
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  sink.clear();
  monitor.clear();
  description.clear();
  if (!sent(pa_context_get_server_info(ctx, on_server, this))) finish();
}

void DefaultOutputFollower::State::finish() {
  busy = false;
  our_clients.clear();
  to_move.clear();
  moves_pending = 0;
  move_failed = false;
  if (again) {
    again = false;
    check();
  }
}

DefaultOutputFollower::DefaultOutputFollower(std::string capturing, Report report)
    : state_(new State) {
  state_->capturing = std::move(capturing);
  state_->report = std::move(report);
}

DefaultOutputFollower::~DefaultOutputFollower() {
  release(&state_->ctx, &state_->loop);
}

bool DefaultOutputFollower::start() {
  if (state_->ctx) return true;
  state_->loop = pa_glib_mainloop_new(nullptr);
  state_->ctx = new_context(state_->loop);
  pa_context_set_state_callback(state_->ctx, on_state, state_.get());
  if (pa_context_connect(state_->ctx, nullptr, PA_CONTEXT_NOAUTOSPAWN, nullptr) < 0) {
    release(&state_->ctx, &state_->loop);
    return false;
  }
  return true;
}

#else  // no libpulse: the device list decides, nothing follows

bool have_sound_server_client() {
  return false;
}

bool query_server_defaults(ServerDefaults* out, int) {
  *out = ServerDefaults();
  return false;
}

struct DefaultOutputFollower::State {};

DefaultOutputFollower::DefaultOutputFollower(std::string, Report) : state_(new State) {}
DefaultOutputFollower::~DefaultOutputFollower() = default;
bool DefaultOutputFollower::start() {
  return false;
}

#endif

}  // namespace launcher
}  // namespace syncwave
