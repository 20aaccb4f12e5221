/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgstsyncwave: registers every SyncWave element. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstsyncwavedecodebin.h"
#include "gstsyncwavedepay.h"
#include "gstsyncwavejitter.h"
#include "gstsyncwaveoutput.h"
#include "gstsyncwavepay.h"
#include "gstsyncwavesink.h"
#ifdef HAVE_LIBPULSE
#include "gstsyncwavepulsesink.h"
#endif

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  /* Each element adds one GST_ELEMENT_REGISTER line here. */
  ret |= GST_ELEMENT_REGISTER (syncwavepay, plugin);
  ret |= GST_ELEMENT_REGISTER (syncwavedepay, plugin);
  ret |= GST_ELEMENT_REGISTER (syncwavedecodebin, plugin);
  ret |= GST_ELEMENT_REGISTER (syncwavejitter, plugin);
  ret |= GST_ELEMENT_REGISTER (syncwaveoutput, plugin);
  ret |= GST_ELEMENT_REGISTER (syncwavesink, plugin);
#ifdef HAVE_LIBPULSE
  ret |= GST_ELEMENT_REGISTER (syncwavepulsesink, plugin);
#endif
  (void) plugin;

  return ret || TRUE;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, syncwave,
    "SyncWave: system audio over UDP, played in sync on many devices",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
