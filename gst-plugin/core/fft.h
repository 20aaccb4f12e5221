// SPDX-License-Identifier: LGPL-2.1-or-later
// A small radix-2 complex FFT (double precision), for the acoustic calibration's
// correlations. Pure C++, no dependency: iterative Cooley-Tukey, decimation in time,
// in place, with the twiddles computed once per size (each directly with cos/sin, not
// by recurrence, so the error does not grow with the size).
//
//   forward:  X[k] = sum_n x[n] e^(-2 pi i k n / N)
//   inverse:  x[n] = (1/N) sum_k X[k] e^(+2 pi i k n / N)     (inverse(forward(x)) == x)
//
// N must be a power of two (1 is allowed); an Fft of another size is invalid and its
// transforms do nothing.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

namespace syncwave {

// True for 1, 2, 4, 8, ...
bool is_power_of_two(size_t n);
// The smallest power of two >= n (1 for n = 0), or 0 when it does not fit in size_t.
size_t next_power_of_two(size_t n);

class Fft {
 public:
  explicit Fft(size_t n);

  bool valid() const { return n_ != 0; }
  size_t size() const { return n_; }

  // In place; `data` holds size() values.
  void forward(std::complex<double>* data) const;
  void inverse(std::complex<double>* data) const;
  void forward(std::vector<std::complex<double>>* data) const;
  void inverse(std::vector<std::complex<double>>* data) const;

 private:
  void transform(std::complex<double>* data, bool inverse) const;

  size_t n_ = 0;
  std::vector<std::complex<double>> twiddle_;  // e^(-2 pi i k / N), k < N/2
  std::vector<size_t> reversed_;               // bit-reversed index of each index
};

}  // namespace syncwave
