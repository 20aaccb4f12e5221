// SPDX-License-Identifier: LGPL-2.1-or-later
// Lists the machine's audio sources and outputs through GstDeviceMonitor.

#pragma once

#include <vector>

#include "device_list.h"

namespace syncwave {
namespace launcher {

// Needs gst_init(). Empty when no audio server or provider answers. The default output
// and source are the sound server's own (sound_server.h), when it answers.
std::vector<AudioDevice> probe_audio_devices();

}  // namespace launcher
}  // namespace syncwave
