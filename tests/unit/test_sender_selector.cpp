// SPDX-License-Identifier: LGPL-2.1-or-later
// SenderSelector: first heard is played, others are foreign and announced once, the next
// one takes over after the timeout, pinning, a restarted sender on a new port, time
// going backwards, interleaved senders.
#include <gtest/gtest.h>

#include "sender_selector.h"

using namespace syncwave;
using V = SenderSelector::Verdict;

namespace {
constexpr uint64_t kMs = kNsPerMs;
constexpr uint64_t kT0 = 1000 * kNsPerSec;
}  // namespace

TEST(SenderSelector, FirstHeardIsPlayedOthersAreForeignAndAnnouncedOnce) {
  SenderSelector s;
  auto first = s.offer("10.0.0.1", 4000, kT0);
  EXPECT_EQ(first.verdict, V::kPlay);
  EXPECT_TRUE(first.first);
  EXPECT_EQ(s.key(), "10.0.0.1:4000");
  EXPECT_FALSE(s.offer("10.0.0.1", 4000, kT0 + kMs).first);
  auto r = s.offer("10.0.0.2", 4000, kT0 + kMs);
  EXPECT_EQ(r.verdict, V::kForeign);
  EXPECT_TRUE(r.announce);
  r = s.offer("10.0.0.2", 4000, kT0 + 2 * kMs);
  EXPECT_EQ(r.verdict, V::kForeign);
  EXPECT_FALSE(r.announce);
  // Same host, other port: another sender.
  r = s.offer("10.0.0.1", 4001, kT0 + 3 * kMs);
  EXPECT_EQ(r.verdict, V::kForeign);
  EXPECT_TRUE(r.announce);
  EXPECT_EQ(s.foreign_packets(), 3u);
  EXPECT_EQ(s.foreign_senders(), 2u);
  EXPECT_EQ(s.changes(), 0u);
}

// Two, then three senders interleaved packet by packet for 10 s: the first keeps
// playing, every datagram of the others is foreign.
TEST(SenderSelector, InterleavedSendersNeverTakeOverWhileThePlayedOneSends) {
  SenderSelector s;
  uint64_t foreign = 0;
  for (int i = 0; i < 2000; i++) {
    const uint64_t t = kT0 + i * 5 * kMs;
    EXPECT_EQ(s.offer("127.0.0.1", 40000, t).verdict, V::kPlay);
    EXPECT_EQ(s.offer("127.0.0.1", 40001, t + kMs).verdict, V::kForeign);
    foreign++;
    if (i >= 1000) {
      EXPECT_EQ(s.offer("127.0.0.2", 50000, t + 2 * kMs).verdict, V::kForeign);
      foreign++;
    }
  }
  EXPECT_EQ(s.foreign_packets(), foreign);
  EXPECT_EQ(s.changes(), 0u);
}

TEST(SenderSelector, NextSenderTakesOverAfterTheTimeout) {
  SenderSelector s;
  s.offer("a", 1, kT0);
  EXPECT_EQ(s.offer("b", 2, kT0 + 400 * kMs).verdict, V::kForeign);
  EXPECT_EQ(s.offer("b", 2, kT0 + 500 * kMs).verdict, V::kForeign);  // not longer yet
  auto took = s.offer("b", 2, kT0 + 501 * kMs);
  EXPECT_EQ(took.verdict, V::kTakeOver);
  EXPECT_EQ(took.previous, "a:1");
  EXPECT_FALSE(took.first);
  EXPECT_EQ(s.key(), "b:2");
  EXPECT_EQ(s.offer("b", 2, kT0 + 510 * kMs).verdict, V::kPlay);
  // The old one comes back: foreign now, announced again.
  auto r = s.offer("a", 1, kT0 + 520 * kMs);
  EXPECT_EQ(r.verdict, V::kForeign);
  EXPECT_TRUE(r.announce);
  EXPECT_EQ(s.changes(), 1u);
}

TEST(SenderSelector, RestartedSenderOnANewPortIsFollowed) {
  SenderSelector s;
  for (int i = 0; i < 100; i++) s.offer("192.168.1.5", 41000, kT0 + i * 10 * kMs);
  // The process restarts: silent 700 ms, back from another source port.
  const uint64_t back = kT0 + 99 * 10 * kMs + 700 * kMs;
  EXPECT_EQ(s.offer("192.168.1.5", 52000, back).verdict, V::kTakeOver);
  EXPECT_EQ(s.offer("192.168.1.5", 52000, back + 10 * kMs).verdict, V::kPlay);
}

TEST(SenderSelector, PinnedSenderOnly) {
  SenderSelector s;
  s.pin({"10.0.0.2"}, 5000);
  EXPECT_EQ(s.offer("10.0.0.1", 5000, kT0).verdict, V::kForeign);
  EXPECT_EQ(s.offer("10.0.0.2", 5001, kT0).verdict, V::kForeign);
  EXPECT_EQ(s.offer("10.0.0.2", 5000, kT0 + kMs).verdict, V::kPlay);
  // Silent for long: a non-matching sender still never takes over.
  EXPECT_EQ(s.offer("10.0.0.1", 5000, kT0 + 10 * kNsPerSec).verdict, V::kForeign);
  // Any port of the pinned host.
  SenderSelector any_port;
  any_port.pin({"::1"}, 0);
  EXPECT_EQ(any_port.offer("::1", 7, kT0).verdict, V::kPlay);
  EXPECT_EQ(any_port.key(), "[::1]:7");
}

TEST(SenderSelector, PinningAnotherSenderDropsThePlayedOne) {
  SenderSelector s;
  s.offer("10.0.0.1", 5000, kT0);
  EXPECT_TRUE(s.pin({"10.0.0.2"}, 0));
  EXPECT_FALSE(s.locked());
  EXPECT_EQ(s.offer("10.0.0.1", 5000, kT0 + kMs).verdict, V::kForeign);
  EXPECT_EQ(s.offer("10.0.0.2", 6000, kT0 + 2 * kMs).verdict, V::kPlay);
  EXPECT_FALSE(s.pin({"10.0.0.2"}, 6000));  // still matches
  s.unpin();
  EXPECT_EQ(s.offer("10.0.0.2", 6000, kT0 + 3 * kMs).verdict, V::kPlay);
}

TEST(SenderSelector, UnresolvedPinPlaysNothing) {
  SenderSelector s;
  s.pin({}, 0);
  EXPECT_EQ(s.offer("10.0.0.1", 1, kT0).verdict, V::kForeign);
  EXPECT_FALSE(s.locked());
}

TEST(SenderSelector, TimeGoingBackIsNoSilence) {
  SenderSelector s;
  s.offer("a", 1, kT0);
  // The caller's clock was replaced: times restart near 0.
  EXPECT_EQ(s.offer("b", 2, 5 * kMs).verdict, V::kForeign);
  EXPECT_EQ(s.offer("b", 2, 400 * kMs).verdict, V::kForeign);
  EXPECT_EQ(s.offer("b", 2, 506 * kMs).verdict, V::kTakeOver);
}

TEST(SenderSelector, ResetForgetsThePlayedSenderAndTheAnnouncements) {
  SenderSelector s;
  s.offer("a", 1, kT0);
  EXPECT_TRUE(s.offer("b", 2, kT0).announce);
  s.reset();
  EXPECT_EQ(s.offer("b", 2, kT0 + kMs).verdict, V::kPlay);
  EXPECT_TRUE(s.offer("a", 1, kT0 + kMs).announce);
  EXPECT_EQ(s.foreign_packets(), 2u);
}

TEST(SenderSelector, AnnouncementsAreBounded) {
  SenderSelector s;
  s.offer("a", 1, kT0);
  size_t announced = 0;
  for (int p = 2; p < 2000; p++) announced += s.offer("b", static_cast<uint16_t>(p), kT0).announce;
  EXPECT_EQ(announced, SenderSelector::kMaxAnnounced);
}

TEST(SenderSelector, StrayDatagramsNeitherLockNorTakeOver) {
  SenderSelector s;
  EXPECT_EQ(s.offer("10.9.9.9", 1, kT0, /*valid=*/false).verdict, V::kForeign);
  EXPECT_FALSE(s.locked());
  EXPECT_EQ(s.offer("10.0.0.1", 2, kT0 + kMs).verdict, V::kPlay);
  EXPECT_EQ(s.offer("10.9.9.9", 1, kT0 + 10 * kNsPerSec, false).verdict, V::kForeign);
  EXPECT_EQ(s.key(), "10.0.0.1:2");
}
