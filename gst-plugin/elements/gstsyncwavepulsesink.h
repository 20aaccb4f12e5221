/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavepulsesink: a PulseAudio output that knows exactly which frame it plays.
 * See gstsyncwavepulsesink.cpp and docs/synchronization.md. */
#pragma once

#include <gst/audio/audio.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_PULSE_SINK (gst_syncwave_pulse_sink_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWavePulseSink, gst_syncwave_pulse_sink, GST, SYNCWAVE_PULSE_SINK,
                     GstAudioSink);

GST_ELEMENT_REGISTER_DECLARE(syncwavepulsesink);

G_END_DECLS
