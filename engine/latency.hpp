#pragma once

// A latency histogram in constant memory: logarithmic buckets 2% wide from 1 µs to about 20
// minutes, so percentiles are exact to within 2% however many samples there are.

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace wf::engine {

class LatencyHistogram {
 public:
  void Add(std::chrono::microseconds latency) {
    double us = std::max<double>(1.0, static_cast<double>(latency.count()));
    auto bucket = static_cast<size_t>(std::log(us) / std::log(kGrowth));
    ++counts_[std::min(bucket, counts_.size() - 1)];
    ++count_;
    max_us_ = std::max<std::int64_t>(max_us_, latency.count());
  }

  std::int64_t count() const { return count_; }
  double max_ms() const { return static_cast<double>(max_us_) / 1000.0; }

  // The q-quantile (0 < q <= 1) in milliseconds: the upper edge of the bucket holding it; 0 when
  // there are no samples.
  double QuantileMs(double q) const {
    if (count_ == 0) return 0.0;
    auto rank = static_cast<std::int64_t>(std::ceil(q * static_cast<double>(count_)));
    std::int64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(std::pow(kGrowth, i + 1), 1.0 * max_us_) / 1000.0;
    }
    return max_ms();
  }

 private:
  static constexpr double kGrowth = 1.02;
  std::array<std::int64_t, 1060> counts_{};  // 1.02^1060 µs is about 22 minutes
  std::int64_t count_ = 0;
  std::int64_t max_us_ = 0;
};

}  // namespace wf::engine
