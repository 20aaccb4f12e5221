#include <gtest/gtest.h>

#include "wire_format.h"

using namespace syncwave::wire;

TEST(WireFormat, HeaderGolden) {
  StreamHeader h{48000, 2, Compression::kRaw};
  auto b = serialize_header(h);
  const std::array<uint8_t, 12> golden = {'S', 'Y', 'N', 'C', 1, 0x80, 0xbb, 0, 0, 2, 0, 0};
  EXPECT_EQ(b, golden);
}
