// Cache engine `none`: holds nothing; every Get loads.
#pragma once

#include "cache/cache.h"

namespace mpim::cache {

template <typename K, typename V>
class NullCache final : public Cache<K, V> {
 public:
  using typename Cache<K, V>::Loader;
  void Get(const K&, Loader load, core::Callback<V> done) override {
    std::move(load)(std::move(done));
  }
  void Put(const K&, V, int64_t) override {}
  std::optional<V> Peek(const K&) const override { return std::nullopt; }
  using Cache<K, V>::Invalidate;
  void Invalidate(const K&, typename Cache<K, V>::Invalidated done) override { std::move(done)(); }
  size_t size() const override { return 0; }
};

}  // namespace mpim::cache
