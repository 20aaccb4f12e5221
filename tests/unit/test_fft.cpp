// SPDX-License-Identifier: LGPL-2.1-or-later
// Fft (core/fft.h) against a direct DFT, the round trip, and sizes it refuses.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "fft.h"

namespace syncwave {
namespace {

using cplx = std::complex<double>;

std::vector<cplx> dft(const std::vector<cplx>& x, bool inverse) {
  const size_t n = x.size();
  const double pi = std::acos(-1.0);
  std::vector<cplx> y(n);
  for (size_t k = 0; k < n; k++) {
    cplx s(0, 0);
    for (size_t i = 0; i < n; i++) {
      const double a = (inverse ? 2 : -2) * pi * static_cast<double>((k * i) % n) / n;
      s += x[i] * cplx(std::cos(a), std::sin(a));
    }
    y[k] = inverse ? s / static_cast<double>(n) : s;
  }
  return y;
}

TEST(Fft, MatchesTheDirectDft) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  for (size_t n : {1u, 2u, 4u, 8u, 16u, 64u, 256u, 1024u}) {
    std::vector<cplx> x(n);
    for (cplx& v : x) v = cplx(u(rng), u(rng));
    std::vector<cplx> y = x;
    Fft fft(n);
    ASSERT_TRUE(fft.valid());
    fft.forward(&y);
    const std::vector<cplx> ref = dft(x, false);
    double worst = 0;
    for (size_t k = 0; k < n; k++) worst = std::max(worst, std::abs(y[k] - ref[k]));
    EXPECT_LT(worst, 1e-10 * n) << n;
    fft.inverse(&y);
    worst = 0;
    for (size_t k = 0; k < n; k++) worst = std::max(worst, std::abs(y[k] - x[k]));
    EXPECT_LT(worst, 1e-12 * n) << n;
    std::vector<cplx> z = ref;
    fft.inverse(&z);
    const std::vector<cplx> iref = dft(ref, true);
    for (size_t k = 0; k < n; k++) EXPECT_LT(std::abs(z[k] - iref[k]), 1e-10) << n;
  }
}

TEST(Fft, ALargeRoundTripStaysExact) {
  const size_t n = size_t{1} << 18;
  std::vector<cplx> x(n);
  std::mt19937 rng(3);
  std::normal_distribution<double> g(0, 1);
  for (cplx& v : x) v = cplx(g(rng), 0);
  std::vector<cplx> y = x;
  Fft fft(n);
  fft.forward(&y);
  // Parseval: sum |x|^2 = sum |X|^2 / n.
  double ex = 0, ey = 0;
  for (size_t i = 0; i < n; i++) {
    ex += std::norm(x[i]);
    ey += std::norm(y[i]);
  }
  EXPECT_NEAR(ey / n / ex, 1.0, 1e-12);
  fft.inverse(&y);
  double worst = 0;
  for (size_t i = 0; i < n; i++) worst = std::max(worst, std::abs(y[i] - x[i]));
  EXPECT_LT(worst, 1e-12);
}

TEST(Fft, PowersOfTwoOnly) {
  EXPECT_FALSE(Fft(0).valid());
  EXPECT_FALSE(Fft(3).valid());
  EXPECT_FALSE(Fft(1000).valid());
  std::vector<cplx> x(1000, cplx(1, 0));
  Fft bad(1000);
  bad.forward(&x);  // does nothing
  EXPECT_EQ(x[0], cplx(1, 0));
  Fft ok(8);
  std::vector<cplx> wrong_size(4, cplx(1, 0));
  ok.forward(&wrong_size);  // ignored
  EXPECT_EQ(wrong_size[1], cplx(1, 0));
  ok.forward(static_cast<cplx*>(nullptr));
  EXPECT_TRUE(is_power_of_two(1));
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_FALSE(is_power_of_two(6));
  EXPECT_EQ(next_power_of_two(0), 1u);
  EXPECT_EQ(next_power_of_two(5), 8u);
  EXPECT_EQ(next_power_of_two(1024), 1024u);
  EXPECT_EQ(next_power_of_two(static_cast<size_t>(-1)), 0u);
}

}  // namespace
}  // namespace syncwave
